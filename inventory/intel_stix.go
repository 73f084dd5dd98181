package inventory

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// This file reads STIX 2.1 bundles of indicators and their patterns.

// readSTIX reads a STIX 2.1 bundle, decoding one object at a time so that
// a large bundle is never held whole.
func (b *intelBuilder) readSTIX(st *IntelStats, file string, br *bufio.Reader) error {
	lc := &lineCounter{r: br}
	dec := json.NewDecoder(lc)
	fail := func(err error) error {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // inside the bundle
		}
		return fmt.Errorf("%s:%d: %w", file, lc.lineAt(jsonErrOffset(dec, lc, err)), err)
	}
	tok, err := dec.Token()
	if err == io.EOF {
		return fmt.Errorf("%s:1: empty file, want a STIX bundle", file)
	}
	if err != nil {
		return fail(err)
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%s:%d: want a STIX bundle, a JSON object", file, lc.lineAt(dec.InputOffset()))
	}
	typ := ""
	var raw json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		switch tok {
		case "type":
			if err := dec.Decode(&typ); err != nil {
				return fail(fmt.Errorf("bundle type: %w", err))
			}
			if typ != "bundle" {
				return fmt.Errorf("%s:%d: a STIX %.80q, not a bundle", file, lc.lineAt(dec.InputOffset()), typ)
			}
		case "objects":
			if tok, err := dec.Token(); err != nil {
				return fail(err)
			} else if tok != json.Delim('[') {
				return fmt.Errorf("%s:%d: bundle objects are not an array", file, lc.lineAt(dec.InputOffset()))
			}
			for dec.More() {
				if err := dec.Decode(&raw); err != nil {
					return fail(err)
				}
				line := lc.lineAt(dec.InputOffset() - int64(len(raw)))
				b.addSTIXObject(st, raw, line)
			}
			if _, err := dec.Token(); err != nil {
				return fail(err)
			}
		default:
			if err := dec.Decode(&raw); err != nil { // id, spec_version, …
				return fail(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s:%d: data after the bundle", file, lc.lineAt(dec.InputOffset()))
	}
	if typ == "" {
		return fmt.Errorf("%s:1: not a STIX bundle: no \"type\": \"bundle\"", file)
	}
	return nil
}

// stixObject holds the fields of a STIX object that LoadIntel uses.
type stixObject struct {
	Type           string   `json:"type"`
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	IndicatorTypes []string `json:"indicator_types"`
	Labels         []string `json:"labels"` // STIX 2.0's indicator types
	Pattern        string   `json:"pattern"`
	PatternType    string   `json:"pattern_type"`
	Revoked        bool     `json:"revoked"`
	ValidUntil     string   `json:"valid_until"`
}

// addSTIXObject adds the indicators of one bundle object.
func (b *intelBuilder) addSTIXObject(st *IntelStats, raw []byte, line int) {
	var obj stixObject
	if err := json.Unmarshal(raw, &obj); err != nil {
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &head) == nil && head.Type != "indicator" {
			st.Ignored++
			return
		}
		st.skip(line, "bad STIX object: "+err.Error())
		return
	}
	if obj.Type != "indicator" {
		st.Ignored++
		return
	}
	if obj.Revoked {
		st.skip(line, "revoked")
		return
	}
	if obj.ValidUntil != "" {
		until, err := time.Parse(time.RFC3339Nano, obj.ValidUntil)
		if err != nil {
			st.skip(line, fmt.Sprintf("bad valid_until %.80q", obj.ValidUntil))
			return
		}
		if !until.After(b.now) {
			st.skip(line, "expired at "+obj.ValidUntil)
			return
		}
	}
	if obj.PatternType != "" && obj.PatternType != "stix" {
		st.skip(line, "pattern_type "+truncate(obj.PatternType, 40))
		return
	}
	cmps, err := parseSTIXPattern(obj.Pattern)
	if err != nil {
		st.skip(line, fmt.Sprintf("pattern %.80q: %v", obj.Pattern, err))
		return
	}
	desc := obj.Name
	if desc == "" {
		desc = obj.Description
	}
	types := obj.IndicatorTypes
	if types == nil {
		types = obj.Labels
	}
	label := b.label(Match{Source: st.Name, Type: strings.Join(types, ","), Description: desc})
	for _, c := range cmps {
		ind, err := c.indicator()
		if err != nil {
			st.skip(line, err.Error())
			continue
		}
		b.add(ind, label, st)
	}
}

// A stixComparison is one comparison of a STIX pattern: path op value.
type stixComparison struct {
	object string // ipv4-addr, file, …
	prop   string // value, hashes.'SHA-256', …
	op     string // =, ISSUBSET, …
	value  string // the string literal, unescaped
}

// indicator converts a comparison to the indicator it names.
func (c stixComparison) indicator() (indicator, error) {
	path := c.object + ":" + c.prop
	isIP := c.object == "ipv4-addr" || c.object == "ipv6-addr"
	if c.op != "=" && !(isIP && c.op == "ISSUBSET") {
		return indicator{}, fmt.Errorf("unsupported comparison %.80s %.20s", path, c.op)
	}
	switch {
	case isIP && c.prop == "value":
		ind, err := parseNet(c.value)
		if err != nil {
			return ind, err
		}
		if ind.prefix.Addr().Is4() != (c.object == "ipv4-addr") {
			return indicator{}, fmt.Errorf("%.80s is %.80q", path, c.value)
		}
		return ind, nil
	case c.object == "domain-name" && c.prop == "value":
		d, err := normDomain(c.value)
		if err != nil {
			return indicator{}, err
		}
		return indicator{kind: kindDomain, domain: d}, nil
	case c.object == "url" && c.prop == "value":
		return urlIndicator(c.value)
	case c.object == "file" && strings.HasPrefix(c.prop, "hashes."):
		var want indKind
		switch strings.ToUpper(strings.Trim(c.prop[len("hashes."):], "'")) {
		case "MD5":
			want = kindMD5
		case "SHA-1", "SHA1":
			want = kindSHA1
		case "SHA-256", "SHA256":
			want = kindSHA256
		default:
			return indicator{}, fmt.Errorf("unsupported hash %.80s", path)
		}
		ind, ok := parseHashIndicator(c.value)
		if !ok || ind.kind != want {
			return indicator{}, fmt.Errorf("%.80s is %.80q", path, c.value)
		}
		return ind, nil
	}
	return indicator{}, fmt.Errorf("unsupported object path %.80s", path)
}

// parseSTIXPattern parses a STIX pattern that is a disjunction of
// comparisons: observation expressions joined by OR, each comparisons
// joined by OR, in any parentheses. It refuses AND, FOLLOWEDBY and
// qualifiers: their meaning is not "any of these indicators".
func parseSTIXPattern(s string) ([]stixComparison, error) {
	p := stixParser{lex: stixLexer{s: s}}
	p.next()
	var out []stixComparison
	if err := p.observations(&out, 0); err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, fmt.Errorf("unexpected %s", p.tok)
	}
	return out, nil
}

const maxPatternDepth = 32 // parentheses nest no deeper in real patterns

type stixParser struct {
	lex stixLexer
	tok stixToken
}

func (p *stixParser) next() { p.tok = p.lex.next() }

// observations parses obs { OR obs }.
func (p *stixParser) observations(out *[]stixComparison, depth int) error {
	if depth > maxPatternDepth {
		return errors.New("nested too deep")
	}
	for {
		switch {
		case p.tok.is('['):
			p.next()
			if err := p.comparisons(out, depth+1); err != nil {
				return err
			}
			if !p.tok.is(']') {
				return fmt.Errorf("want ], got %s", p.tok)
			}
			p.next()
		case p.tok.is('('):
			p.next()
			if err := p.observations(out, depth+1); err != nil {
				return err
			}
			if !p.tok.is(')') {
				return fmt.Errorf("want ), got %s", p.tok)
			}
			p.next()
		default:
			return fmt.Errorf("want [ or (, got %s", p.tok)
		}
		if p.tok.kind == tokWord && strings.EqualFold(p.tok.text, "OR") {
			p.next()
			continue
		}
		if p.tok.kind == tokWord {
			return fmt.Errorf("unsupported %.40s", strings.ToUpper(p.tok.text))
		}
		return p.tok.err
	}
}

// comparisons parses cmp { OR cmp } inside an observation's brackets.
func (p *stixParser) comparisons(out *[]stixComparison, depth int) error {
	if depth > maxPatternDepth {
		return errors.New("nested too deep")
	}
	for {
		if p.tok.is('(') {
			p.next()
			if err := p.comparisons(out, depth+1); err != nil {
				return err
			}
			if !p.tok.is(')') {
				return fmt.Errorf("want ), got %s", p.tok)
			}
			p.next()
		} else {
			c, err := p.comparison()
			if err != nil {
				return err
			}
			*out = append(*out, c)
		}
		if p.tok.kind == tokWord && strings.EqualFold(p.tok.text, "OR") {
			p.next()
			continue
		}
		if p.tok.kind == tokWord {
			return fmt.Errorf("unsupported %.40s", strings.ToUpper(p.tok.text))
		}
		return p.tok.err
	}
}

// comparison parses object-type:property op 'value'.
func (p *stixParser) comparison() (stixComparison, error) {
	if p.tok.kind != tokWord {
		return stixComparison{}, fmt.Errorf("want an object path, got %s", p.tok)
	}
	object, prop, ok := strings.Cut(p.tok.text, ":")
	if !ok || object == "" || prop == "" {
		return stixComparison{}, fmt.Errorf("bad object path %.80q", p.tok.text)
	}
	p.next()
	var op string
	switch {
	case p.tok.kind == tokOp:
		op = p.tok.text
	case p.tok.kind == tokWord:
		op = strings.ToUpper(p.tok.text) // NOT, LIKE, MATCHES, ISSUBSET, IN, …
	default:
		return stixComparison{}, fmt.Errorf("want an operator, got %s", p.tok)
	}
	p.next()
	if p.tok.kind != tokString {
		if p.tok.err != nil {
			return stixComparison{}, p.tok.err
		}
		return stixComparison{}, fmt.Errorf("unsupported comparison %.80s:%.80s %.20s %s", object, prop, op, p.tok)
	}
	c := stixComparison{object: strings.ToLower(object), prop: prop, op: op, value: p.tok.text}
	p.next()
	return c, nil
}

type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokPunct          // [ ] ( ) ,
	tokOp             // = != < <= > >=
	tokString         // 'quoted', text unescaped
	tokWord           // a keyword, an object path, a number, a t'…'/h'…'/b'…' literal
	tokError
)

type stixToken struct {
	kind tokKind
	text string
	err  error // tokError
}

func (t stixToken) is(c byte) bool { return t.kind == tokPunct && t.text[0] == c }

func (t stixToken) String() string {
	switch t.kind {
	case tokEOF:
		return "end of pattern"
	case tokString:
		return strconv.Quote(truncate(t.text, 80))
	case tokError:
		return t.err.Error()
	}
	return strconv.Quote(truncate(t.text, 80))
}

type stixLexer struct {
	s string
	i int
}

func (l *stixLexer) next() stixToken {
	for l.i < len(l.s) && strings.IndexByte(" \t\r\n", l.s[l.i]) >= 0 {
		l.i++
	}
	if l.i >= len(l.s) {
		return stixToken{kind: tokEOF}
	}
	start := l.i
	c := l.s[l.i]
	switch {
	case strings.IndexByte("[](),", c) >= 0:
		l.i++
		return stixToken{kind: tokPunct, text: l.s[start:l.i]}
	case strings.IndexByte("=!<>", c) >= 0:
		l.i++
		if l.i < len(l.s) && l.s[l.i] == '=' {
			l.i++
		}
		op := l.s[start:l.i]
		if op == "!" {
			return stixToken{kind: tokError, err: errors.New("stray '!'")}
		}
		return stixToken{kind: tokOp, text: op}
	case c == '\'':
		s, err := l.quoted()
		if err != nil {
			return stixToken{kind: tokError, err: err}
		}
		return stixToken{kind: tokString, text: s}
	}
	// A word runs to a space or punctuation; a quoted part of it
	// (hashes.'SHA-256', t'2020-…') is kept whole.
	for l.i < len(l.s) {
		c := l.s[l.i]
		if c == '\'' {
			if _, err := l.quoted(); err != nil {
				return stixToken{kind: tokError, err: err}
			}
			continue
		}
		if strings.IndexByte(" \t\r\n[](),=!<>", c) >= 0 {
			break
		}
		l.i++
	}
	return stixToken{kind: tokWord, text: l.s[start:l.i]}
}

// quoted reads a '…' literal at l.i, with \' and \\ escapes.
func (l *stixLexer) quoted() (string, error) {
	l.i++ // the opening quote
	var sb strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		switch c {
		case '\'':
			return sb.String(), nil
		case '\\':
			if l.i >= len(l.s) || (l.s[l.i] != '\'' && l.s[l.i] != '\\') {
				return "", errors.New("bad escape in string")
			}
			sb.WriteByte(l.s[l.i])
			l.i++
		default:
			sb.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string")
}

// lineCounter counts the lines a json.Decoder reads, so that the offsets
// it reports turn into line numbers without the file being kept. It holds
// the offsets of the newlines read but not yet passed by a query, which
// the decoder's read-ahead bounds.
type lineCounter struct {
	r    io.Reader
	read int64   // bytes read
	nl   []int64 // offsets of newlines not yet passed
	head int     // nl[:head] are passed
	line int     // newlines passed
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i := 0; i < n; {
		j := bytes.IndexByte(p[i:n], '\n')
		if j < 0 {
			break
		}
		c.nl = append(c.nl, c.read+int64(i+j))
		i += j + 1
	}
	c.read += int64(n)
	return n, err
}

// lineAt returns the line, from 1, of the byte at off. Offsets must not
// decrease from call to call.
func (c *lineCounter) lineAt(off int64) int {
	for c.head < len(c.nl) && c.nl[c.head] < off {
		c.head++
		c.line++
	}
	if c.head > 1024 && c.head > len(c.nl)/2 {
		c.nl = append(c.nl[:0], c.nl[c.head:]...)
		c.head = 0
	}
	return c.line + 1
}

// jsonErrOffset finds where in the stream a json.Decoder's error is. The
// decoder's own syntax-error offsets do not count the bytes its Token
// calls consumed, so the value being read is scanned again from its start.
func jsonErrOffset(dec *json.Decoder, lc *lineCounter, err error) int64 {
	off := dec.InputOffset()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return max(lc.read-1, off)
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) || se.Offset == off {
		return off // not a syntax error, or one Token placed right
	}
	rest, _ := io.ReadAll(dec.Buffered())
	i := 0
	for i < len(rest) && strings.IndexByte(" \t\r\n,:", rest[i]) >= 0 {
		i++
	}
	var v json.RawMessage
	err2 := json.Unmarshal(rest[i:], &v)
	if errors.As(err2, &se) && se.Offset > 0 {
		return off + int64(i) + se.Offset - 1
	}
	return off + int64(i)
}
