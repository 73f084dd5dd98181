package detect

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits on what one rule may ask for, so that a hostile or mistaken
// rule cannot make loading or matching slow: Go's regexp (RE2) runs in
// time linear in its input, and these bound its size and the number of
// values modifiers such as windash multiply into.
const (
	maxRegexpLen   = 4096
	maxRegexpInsts = maxRegexpLen // instructions of a compiled regexp (about one a byte, unless repeated)
	maxValues      = 4096         // values of one field, after expansion
	maxPatternSize = 64 << 10     // bytes of one value
	maxExpanded    = 1 << 20      // bytes the encodings make of one value
)

// A pattern is a string value of a rule compiled with its modifiers:
// Sigma's wildcards (* and ?) and the string modifiers turn into one of a
// few shapes, so that the common ones (equality, prefix, suffix,
// substring) cost a comparison and only the rest a wildcard match.
type pattern struct {
	shape patShape
	s     []byte   // lower-cased unless cased; for shapeGlob, unused
	parts [][]byte // shapeGlob: the literal parts between *, with ? kept as wildcards
	globQ bool     // shapeGlob: a part holds a ?
	cased bool
	text  string // the value as the rule wrote it, for messages
}

type patShape uint8

const (
	shapeExact patShape = iota
	shapePrefix
	shapeSuffix
	shapeContains
	shapeGlob
	shapeAny // "*": any value, even empty
)

// wildcard bytes in a parsed value: Sigma's * and ?, kept apart from
// literal (escaped) ones.
const (
	wildStar  = 0xff // bytes that cannot occur in UTF-8 text
	wildQuest = 0xfe
)

// unescapeValue turns a Sigma string value into bytes in which the
// wildcards * and ? are wildStar and wildQuest, and \*, \? and \\ their
// literal characters. Any other backslash is literal, as the
// specification says.
func unescapeValue(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '*':
			b = append(b, wildStar)
		case '?':
			b = append(b, wildQuest)
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				i++
				b = append(b, s[i])
			} else {
				b = append(b, c)
			}
		default:
			b = append(b, c)
		}
	}
	return b
}

// newLiteralPattern compiles a value in which every byte is literal, as
// an encoding modifier produces it (wildcards encoded are not wildcards),
// with the match type of its modifiers. Its bytes may be any, 0xff and
// 0xfe included, which newPattern would take for wildcards.
func newLiteralPattern(v []byte, match string, cased bool, text string) pattern {
	p := pattern{cased: cased, text: text, s: v}
	if !cased {
		p.s = appendLower(nil, v)
	}
	switch match {
	case "contains":
		p.shape = shapeContains
	case "startswith":
		p.shape = shapePrefix
	case "endswith":
		p.shape = shapeSuffix
	default:
		p.shape = shapeExact
	}
	return p
}

// newPattern compiles a value from unescapeValue with the match type of
// its modifiers.
func newPattern(v []byte, match string, cased bool, text string) pattern {
	switch match {
	case "contains":
		v = append(append([]byte{wildStar}, v...), wildStar)
	case "startswith":
		v = append(v, wildStar)
	case "endswith":
		v = append([]byte{wildStar}, v...)
	}
	// Runs of * are one *.
	v = bytes.ReplaceAll(v, []byte{wildStar, wildStar}, []byte{wildStar})
	for bytes.Contains(v, []byte{wildStar, wildStar}) {
		v = bytes.ReplaceAll(v, []byte{wildStar, wildStar}, []byte{wildStar})
	}
	p := pattern{cased: cased, text: text}
	fold := func(b []byte) []byte {
		if cased {
			return b
		}
		return appendLower(nil, b)
	}
	inner := v
	lead := len(inner) > 0 && inner[0] == wildStar
	if lead {
		inner = inner[1:]
	}
	trail := len(inner) > 0 && inner[len(inner)-1] == wildStar
	if trail {
		inner = inner[:len(inner)-1]
	}
	switch {
	case lead && len(inner) == 0:
		p.shape = shapeAny
	case bytes.IndexByte(inner, wildStar) < 0 && bytes.IndexByte(inner, wildQuest) < 0:
		p.s = fold(inner)
		switch {
		case lead && trail:
			p.shape = shapeContains
		case lead:
			p.shape = shapeSuffix
		case trail:
			p.shape = shapePrefix
		default:
			p.shape = shapeExact
		}
	default:
		p.shape = shapeGlob
		for _, part := range bytes.Split(v, []byte{wildStar}) {
			p.parts = append(p.parts, fold(part))
			if bytes.IndexByte(part, wildQuest) >= 0 {
				p.globQ = true
			}
		}
	}
	return p
}

// match reports whether text (lower-cased already unless p is cased)
// matches.
func (p *pattern) match(text []byte) bool {
	switch p.shape {
	case shapeExact:
		return bytes.Equal(text, p.s)
	case shapePrefix:
		return bytes.HasPrefix(text, p.s)
	case shapeSuffix:
		return bytes.HasSuffix(text, p.s)
	case shapeContains:
		return bytes.Contains(text, p.s)
	case shapeAny:
		return true
	}
	return globMatch(p.parts, text)
}

// globMatch matches text against literal parts that were separated by *:
// the first must start text, the last end it, the others appear in order
// between. A part may hold wildQuest, which matches one character. The
// leftmost placement of each middle part is the right one, so the match
// is linear for parts without ?.
func globMatch(parts [][]byte, text []byte) bool {
	if len(parts) == 1 {
		n, ok := partAt(parts[0], text)
		return ok && n == len(text)
	}
	n, ok := partAt(parts[0], text)
	if !ok {
		return false
	}
	text = text[n:]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i, n := partIndex(part, text)
		if i < 0 {
			return false
		}
		text = text[i+n:]
	}
	return partSuffix(last, text)
}

// partAt reports whether part matches at the start of text, and the bytes
// it covers.
func partAt(part, text []byte) (int, bool) {
	j := 0
	for _, c := range part {
		if j >= len(text) {
			return 0, false
		}
		if c == wildQuest {
			_, size := utf8.DecodeRune(text[j:])
			j += size
			continue
		}
		if text[j] != c {
			return 0, false
		}
		j++
	}
	return j, true
}

// partIndex finds the first place part matches in text.
func partIndex(part, text []byte) (int, int) {
	if bytes.IndexByte(part, wildQuest) < 0 {
		return bytes.Index(text, part), len(part)
	}
	for i := 0; i <= len(text); i++ {
		if n, ok := partAt(part, text[i:]); ok {
			return i, n
		}
	}
	return -1, 0
}

// partSuffix reports whether part matches the end of text.
func partSuffix(part, text []byte) bool {
	if bytes.IndexByte(part, wildQuest) < 0 {
		return bytes.HasSuffix(text, part)
	}
	for i := len(text); i >= 0; i-- {
		if n, ok := partAt(part, text[i:]); ok && i+n == len(text) {
			return true
		}
	}
	return false
}

// appendLower appends the lower-case form of b to dst: ASCII by table,
// the rest rune by rune (invalid UTF-8 is kept as it is).
func appendLower(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		if c == wildStar || c == wildQuest {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, c)
		} else {
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		i += size
	}
	return dst
}

// A valueTest decides whether one value of a field matches.
type valueTest interface {
	test(r *record, v *val) bool
}

type patternTest struct{ p pattern }

func (t *patternTest) test(r *record, v *val) bool {
	if t.p.cased {
		return t.p.match(r.text(v))
	}
	return t.p.match(r.lower(v))
}

type regexpTest struct {
	re    *regexp.Regexp
	insts int // the size of its program, which matching costs per byte
	// must are literals every match contains (case-sensitive), found in
	// the expression. Looking for them first spares most texts the
	// regexp: an unanchored .+:assumed-role/.+ tries every start.
	must [][]byte
}

func (t *regexpTest) test(r *record, v *val) bool {
	text := r.text(v)
	for _, lit := range t.must {
		if !bytes.Contains(text, lit) {
			return false
		}
	}
	return t.re.Match(text)
}

type cidrTest struct{ prefix netip.Prefix }

func (t *cidrTest) test(r *record, v *val) bool {
	a, ok := r.addr(v)
	return ok && t.prefix.Contains(a)
}

// numberTest compares a field's value as a number: lt, lte, gt, gte, and
// plain equality of numbers (4624 matches "4624" and 4624.0).
type numberTest struct {
	op string
	n  float64
	// part, for the time modifiers, is what to take of a timestamp
	// (minute, hour, …) before comparing.
	part string
}

func (t *numberTest) test(r *record, v *val) bool {
	var x float64
	if t.part != "" {
		tm, ok := parseTime(string(r.text(v)))
		if !ok {
			return false
		}
		x = float64(timePart(tm, t.part))
	} else {
		f, err := strconv.ParseFloat(string(r.text(v)), 64)
		if err != nil || math.IsNaN(f) {
			return false
		}
		x = f
	}
	switch t.op {
	case "lt":
		return x < t.n
	case "lte":
		return x <= t.n
	case "gt":
		return x > t.n
	case "gte":
		return x >= t.n
	}
	return x == t.n
}

func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func timePart(t time.Time, part string) int {
	switch part {
	case "minute":
		return t.Minute()
	case "hour":
		return t.Hour()
	case "day":
		return t.Day()
	case "week":
		_, w := t.ISOWeek()
		return w
	case "month":
		return int(t.Month())
	}
	return t.Year()
}

// nullTest matches a JSON null.
type nullTest struct{}

func (nullTest) test(r *record, v *val) bool { return v.null }

// fieldrefTest matches when the value equals a value of another field of
// the same event.
type fieldrefTest struct {
	other *fieldRef
	cased bool
}

func (t *fieldrefTest) test(r *record, v *val) bool {
	for i := range r.values(t.other) {
		o := &r.vals[t.other.slot][i]
		if t.cased && bytes.Equal(r.text(v), r.text(o)) || !t.cased && bytes.Equal(r.lower(v), r.lower(o)) {
			return true
		}
	}
	return false
}

// modifiers is a field's modifier list, checked and sorted out.
type modifiers struct {
	match    string   // contains, startswith, endswith, or ""
	encode   []string // utf16le, utf16be, utf16, base64, base64offset, windash, in order
	re       bool
	reFlags  string // i, m, s
	cidr     bool
	cmp      string // lt, lte, gt, gte
	timePart string
	exists   bool
	fieldref bool
	expand   bool
	cased    bool
	all      bool
	neq      bool
}

func parseModifiers(mods []string) (modifiers, error) {
	var m modifiers
	seen := map[string]bool{}
	for _, mod := range mods {
		if seen[mod] {
			return m, fmt.Errorf("modifier %q given twice", mod)
		}
		seen[mod] = true
		switch mod {
		case "contains", "startswith", "endswith":
			if m.match != "" {
				return m, fmt.Errorf("modifiers %q and %q exclude each other", m.match, mod)
			}
			m.match = mod
		case "all":
			m.all = true
		case "cased":
			m.cased = true
		case "neq":
			m.neq = true
		case "exists":
			m.exists = true
		case "re":
			m.re = true
		case "i", "m", "s":
			if !m.re {
				return m, fmt.Errorf("modifier %q is a flag of re, and must follow it", mod)
			}
			m.reFlags += mod
		case "cidr":
			m.cidr = true
		case "lt", "lte", "gt", "gte":
			if m.cmp != "" {
				return m, fmt.Errorf("modifiers %q and %q exclude each other", m.cmp, mod)
			}
			m.cmp = mod
		case "minute", "hour", "day", "week", "month", "year":
			if m.timePart != "" {
				return m, fmt.Errorf("modifiers %q and %q exclude each other", m.timePart, mod)
			}
			m.timePart = mod
		case "fieldref":
			m.fieldref = true
		case "expand":
			m.expand = true
		case "base64", "base64offset", "utf16le", "utf16be", "utf16", "wide", "windash":
			if mod == "wide" {
				mod = "utf16le"
			}
			m.encode = append(m.encode, mod)
		case "":
			return m, errors.New("empty modifier (two | in a row)")
		default:
			return m, fmt.Errorf("unknown modifier %q", mod)
		}
	}
	special := 0
	for _, b := range []bool{m.re, m.cidr, m.cmp != "", m.exists, m.fieldref} {
		if b {
			special++
		}
	}
	if special > 1 {
		return m, errors.New("re, cidr, lt/lte/gt/gte, exists and fieldref exclude each other")
	}
	if m.match != "" && (m.re || m.cidr || m.cmp != "" || m.exists) {
		return m, fmt.Errorf("%s cannot be combined with re, cidr, lt/lte/gt/gte or exists", m.match)
	}
	if len(m.encode) > 0 && (m.re || m.cidr || m.cmp != "" || m.exists || m.fieldref) {
		return m, errors.New("encoding modifiers apply to string values, not to re, cidr, lt/lte/gt/gte, exists or fieldref")
	}
	if m.timePart != "" && (m.re || m.cidr || m.exists || m.fieldref || len(m.encode) > 0 || m.match != "") {
		return m, fmt.Errorf("the %s modifier only combines with lt/lte/gt/gte", m.timePart)
	}
	return m, nil
}

// encodeValues applies the encoding modifiers, in the order written, to
// the values (wildcards are kept only when no encoding was applied, since
// an encoded wildcard is not one).
func encodeValues(vals []string, enc []string) ([]string, error) {
	for _, e := range enc {
		var out []string
		size := 0
		for _, v := range vals {
			n := len(out)
			switch e {
			case "utf16le", "utf16be", "utf16":
				out = append(out, encodeUTF16(v, e))
			case "base64":
				out = append(out, base64.StdEncoding.EncodeToString([]byte(v)))
			case "base64offset":
				out = append(out, base64Offsets(v)...)
			case "windash":
				w, err := windash(v, maxValues-len(out), maxExpanded-size)
				if err != nil {
					return nil, err
				}
				out = append(out, w...)
			}
			if len(out) > maxValues {
				return nil, fmt.Errorf("%s makes more than %d values", e, maxValues)
			}
			for _, s := range out[n:] {
				size += len(s)
			}
			if size > maxExpanded {
				return nil, fmt.Errorf("%s makes more than %d bytes of values", e, maxExpanded)
			}
		}
		vals = out
	}
	return vals, nil
}

func encodeUTF16(s, how string) string {
	var b []byte
	if how == "utf16" {
		b = append(b, 0xff, 0xfe)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if how == "utf16be" {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return string(b)
}

// base64Offsets returns the three forms the value takes inside base64
// text, depending on its offset modulo 3: the characters that do not
// depend on the bytes around it.
func base64Offsets(s string) []string {
	start := [3]int{0, 2, 3}
	endTrim := [3]int{0, 3, 2}
	out := make([]string, 0, 3)
	for i := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(bytes.Repeat([]byte{' '}, i), s...))
		end := len(enc)
		if t := endTrim[(len(s)+i)%3]; t > 0 {
			end -= t
		}
		if start[i] <= end {
			out = append(out, enc[start[i]:end])
		}
	}
	return out
}

var dashes = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

// windash returns every form of s with each dash (or slash) replaced by
// every other dash: Windows command lines take -flag and /flag alike. It
// fails, before making them, when there would be more than maxN forms or
// more than maxBytes bytes of them.
func windash(s string, maxN, maxBytes int) ([]string, error) {
	// The text between dashes.
	var pieces []string
	n, start := 1, 0
	for i := 0; i < len(s); {
		var d string
		for _, c := range dashes {
			if strings.HasPrefix(s[i:], c) {
				d = c
			}
		}
		if d == "" {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			continue
		}
		pieces = append(pieces, s[start:i])
		i += len(d)
		start = i
		if n *= len(dashes); n > maxN {
			return nil, fmt.Errorf("windash makes more than %d values", maxValues)
		}
	}
	pieces = append(pieces, s[start:])
	// A dash is 3 bytes at most.
	if n*(len(s)+2*(len(pieces)-1)) > maxBytes {
		return nil, fmt.Errorf("windash makes more than %d bytes of values", maxExpanded)
	}
	out := make([]string, 0, n)
	which := make([]int, len(pieces)-1) // the dash at each place
	var b []byte
	for {
		b = append(b[:0], pieces[0]...)
		for i, d := range which {
			b = append(append(b, dashes[d]...), pieces[i+1]...)
		}
		out = append(out, string(b))
		i := len(which) - 1
		for ; i >= 0; i-- {
			if which[i]++; which[i] < len(dashes) {
				break
			}
			which[i] = 0
		}
		if i < 0 {
			return out, nil
		}
	}
}

// compileRegexp compiles a Sigma re value with its flags. Go's RE2
// syntax accepts what the specification defines (PCRE's basic
// metacharacters) and refuses back-references and look-around, which
// the specification excludes anyway; matching is linear in the input.
func compileRegexp(expr, flags string) (*regexpTest, error) {
	if len(expr) > maxRegexpLen {
		return nil, fmt.Errorf("regular expression longer than %d bytes", maxRegexpLen)
	}
	if flags != "" {
		expr = "(?" + flags + ")" + expr
	}
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", expr, err)
	}
	// Matching costs up to the program's size for each byte of the
	// text, and nested repetitions multiply it: ([ab]{0,100}){10}, 4,000
	// instructions, fits 200 times in maxRegexpLen.
	n := progSize(re)
	if n > maxRegexpInsts {
		return nil, fmt.Errorf("regular expression %q is too large (more than %d instructions)", expr, maxRegexpInsts)
	}
	compiled, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", expr, err)
	}
	return &regexpTest{re: compiled, insts: n, must: requiredLiterals(re, nil)}, nil
}

// requiredLiterals appends to lits the case-sensitive literals that a
// match of re must contain: of the parts of a concatenation at the top
// (or inside a capture), those that are plain literals.
func requiredLiterals(re *syntax.Regexp, lits [][]byte) [][]byte {
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 {
			lits = append(lits, []byte(string(re.Rune)))
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			lits = requiredLiterals(sub, lits)
		}
	}
	return lits
}

// progSize estimates the instructions re compiles to, up to
// maxRegexpInsts+1.
func progSize(re *syntax.Regexp) int {
	n := 1
	if re.Op == syntax.OpLiteral {
		n += len(re.Rune) // a rune each
	}
	for _, sub := range re.Sub {
		n += progSize(sub)
	}
	if re.Op == syntax.OpRepeat {
		// x{n,m} is m copies of x, x{n,} n copies and a star.
		n *= max(re.Max, re.Min+1)
	}
	return min(n, maxRegexpInsts+1)
}
