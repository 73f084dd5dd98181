package query

import (
	"strings"
	"unicode/utf8"
)

// The lexer turns query text into tokens on demand. It has two modes
// because the filter and the pipeline have different words: in the filter
// "count()" would be a search term and '(' groups terms; after the first
// '|' they are a function call.

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tPipe
	tAnd
	tOr
	tNot
	tMinus // '-' before a term (NOT) or a sort key (descending)
	tTerm  // field, operator and value: action:CreateUser
	tWord  // bare word or quoted phrase
	tIdent // pipeline: a name or number
	tComma
	tEq
	tPlus
)

var tokNames = map[tokKind]string{
	tEOF: "end of query", tLParen: "'('", tRParen: "')'", tPipe: "'|'", tAnd: "AND", tOr: "OR",
	tNot: "NOT", tMinus: "'-'", tTerm: "comparison", tWord: "word", tIdent: "name",
	tComma: "','", tEq: "'='", tPlus: "'+'",
}

type token struct {
	kind tokKind
	pos  int
	text string // tTerm: the field name; tIdent: the name
	op   Op     // tTerm
	val  Value  // tTerm, tWord
}

// describe names the token for an error message.
func (t token) describe() string {
	switch t.kind {
	case tIdent:
		return "'" + t.text + "'"
	case tWord, tTerm:
		return "'" + t.String() + "'"
	}
	return tokNames[t.kind]
}

func (t token) String() string {
	switch t.kind {
	case tTerm:
		return t.text + t.op.String() + t.val.String()
	case tWord:
		return t.val.String()
	case tIdent:
		return t.text
	}
	return tokNames[t.kind]
}

type lexer struct {
	src string
	pos int
}

func (l *lexer) errorf(pos int, format string, args ...any) *Error {
	return errorf(l.src, pos, format, args...)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isFieldStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '@' || c == '$'
}

func isFieldChar(c byte) bool {
	return isFieldStart(c) || '0' <= c && c <= '9' || c == '.' || c == '-'
}

// validFieldName reports whether name is a field name: dot-separated
// non-empty segments of field characters, starting with a letter, '_',
// '@' or '$'. The restriction keeps names unambiguous to lex; document
// paths reach SQL only as bound parameters in any case.
func validFieldName(name string) bool {
	if name == "" || !isFieldStart(name[0]) {
		return false
	}
	for _, seg := range strings.Split(name, ".") {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if !isFieldChar(seg[i]) {
				return false
			}
		}
	}
	return true
}

// keywords are upper case only, as in Lucene and Splunk: "and" is a word.
var keywords = map[string]tokKind{"AND": tAnd, "OR": tOr, "NOT": tNot}

func isKeyword(s string) bool {
	_, ok := keywords[s]
	return ok
}

// runeAt returns the character at byte offset i, for error messages.
func (l *lexer) runeAt(i int) rune {
	r, _ := utf8.DecodeRuneInString(l.src[i:])
	return r
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
}

// opAt returns the comparison operator at s[i:] and its length, or 0.
func opAt(s string, i int) (Op, int) {
	if i >= len(s) {
		return 0, 0
	}
	next := byte(0)
	if i+1 < len(s) {
		next = s[i+1]
	}
	switch s[i] {
	case ':', '=':
		return Eq, 1
	case '!':
		if next == '=' {
			return Ne, 2
		}
	case '<':
		if next == '=' {
			return Le, 2
		}
		return Lt, 1
	case '>':
		if next == '=' {
			return Ge, 2
		}
		return Gt, 1
	}
	return 0, 0
}

// filterToken lexes one token of the filter.
func (l *lexer) filterToken() (token, error) {
	l.skipSpace()
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	switch c := l.src[l.pos]; c {
	case '(':
		l.pos++
		return token{kind: tLParen, pos: start}, nil
	case ')':
		l.pos++
		return token{kind: tRParen, pos: start}, nil
	case '|':
		l.pos++
		return token{kind: tPipe, pos: start}, nil
	case '"':
		v, err := l.quoted()
		if err != nil {
			return token{}, err
		}
		return token{kind: tWord, pos: start, val: v}, l.endOfValue()
	case '-':
		if l.pos+1 < len(l.src) {
			if n := l.src[l.pos+1]; !isSpace(n) && n != ')' && n != '|' {
				l.pos++
				return token{kind: tMinus, pos: start}, nil
			}
		}
		return token{}, l.errorf(start, "expected a term after '-'")
	}

	if isFieldStart(l.src[l.pos]) {
		j := l.pos
		for j < len(l.src) && isFieldChar(l.src[j]) {
			j++
		}
		if op, n := opAt(l.src, j); n > 0 {
			name := l.src[start:j]
			if !validFieldName(name) {
				return token{}, l.errorf(start, "bad field name %q", name)
			}
			l.pos = j + n
			v, err := l.value(op)
			if err != nil {
				return token{}, err
			}
			return token{kind: tTerm, pos: start, text: name, op: op, val: v}, nil
		}
	}

	v, stop := l.unquoted()
	if k, ok := keywords[l.src[start:l.pos]]; ok {
		return token{kind: k, pos: start}, nil
	}
	if stop != 0 {
		return token{}, l.errorf(l.pos, "unexpected %q in a word: put the word in double quotes", stop)
	}
	return token{kind: tWord, pos: start, val: v}, nil
}

// value lexes the value after a comparison operator, which must follow
// it without space.
func (l *lexer) value(op Op) (Value, error) {
	if l.pos >= len(l.src) || isSpace(l.src[l.pos]) || l.src[l.pos] == ')' || l.src[l.pos] == '|' {
		return Value{}, l.errorf(l.pos, "expected value after '%s'", op)
	}
	switch l.src[l.pos] {
	case '"':
		v, err := l.quoted()
		if err != nil {
			return Value{}, err
		}
		return v, l.endOfValue()
	case '(':
		return Value{}, l.errorf(l.pos, "expected value after '%s' (to match one of several values, write (f:a OR f:b))", op)
	}
	v, stop := l.unquoted()
	if stop != 0 {
		return Value{}, l.errorf(l.pos, "unexpected %q in a value: put the value in double quotes", stop)
	}
	return v, nil
}

// endOfValue checks that a quoted value is not glued to what follows.
func (l *lexer) endOfValue() error {
	if l.pos < len(l.src) {
		if c := l.src[l.pos]; !isSpace(c) && c != ')' && c != '|' {
			return l.errorf(l.pos, "unexpected %q after a quoted value", l.runeAt(l.pos))
		}
	}
	return nil
}

// escapable lists the characters a backslash makes literal. A backslash
// before any other character is itself literal, so that Windows paths
// (C:\Windows\System32) need no doubling.
const escapable = "\\\"*?()|:=<>! \t\n\r\v\f"

// escape handles a backslash at l.pos, appending to b the Pattern form
// of what it escapes, and advances past it.
func (l *lexer) escape(b *strings.Builder) {
	if l.pos+1 < len(l.src) && strings.IndexByte(escapable, l.src[l.pos+1]) >= 0 {
		c := l.src[l.pos+1]
		if c == '*' || c == '?' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
		l.pos += 2
		return
	}
	b.WriteString(`\\`)
	l.pos++
}

// unquoted lexes a word or an unquoted value: up to white space, '(',
// ')', '|' or '"'. It returns the value and, if it stopped at '(' or '"'
// (which cannot follow a word without space), that character.
func (l *lexer) unquoted() (Value, byte) {
	v := Value{At: l.pos}
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case isSpace(c) || c == ')' || c == '|':
			v.Pattern = b.String()
			return v, 0
		case c == '(' || c == '"':
			v.Pattern = b.String()
			return v, c
		case c == '\\':
			l.escape(&b)
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	v.Pattern = b.String()
	return v, 0
}

// quoted lexes a double-quoted string starting at l.pos.
func (l *lexer) quoted() (Value, error) {
	v := Value{At: l.pos, Quoted: true}
	var b strings.Builder
	l.pos++
	for l.pos < len(l.src) {
		switch c := l.src[l.pos]; c {
		case '"':
			l.pos++
			v.Pattern = b.String()
			return v, nil
		case '\\':
			l.escape(&b)
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return Value{}, l.errorf(v.At, "unterminated quoted string")
}

// pipeToken lexes one token of the pipeline.
func (l *lexer) pipeToken() (token, error) {
	l.skipSpace()
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	if k, ok := pipePunct[c]; ok {
		l.pos++
		return token{kind: k, pos: start}, nil
	}
	if isFieldChar(c) {
		for l.pos < len(l.src) && isFieldChar(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tIdent, pos: start, text: l.src[start:l.pos]}, nil
	}
	return token{}, l.errorf(start, "unexpected %q", l.runeAt(start))
}

var pipePunct = map[byte]tokKind{
	'(': tLParen, ')': tRParen, '|': tPipe, ',': tComma, '=': tEq, '-': tMinus, '+': tPlus,
}
