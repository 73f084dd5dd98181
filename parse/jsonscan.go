package parse

import (
	"encoding/json"
	"unicode/utf8"
)

// A jsonScanner reads a JSON document in one pass, checking it as it goes,
// for the parsers whose records are numerous enough that encoding/json's
// two passes (json.Valid, then a reflective decode) dominate an import.
//
// It is a fast path only. Every method reports false on anything it does
// not handle exactly as encoding/json would — invalid JSON, a value of an
// unexpected type, an escaped key — and the caller then decodes the record
// with encoding/json, so that results, and errors, are always
// encoding/json's. What the scanner accepts is valid JSON by json.Valid's
// rules.
type jsonScanner struct {
	b []byte
	i int
}

// maxScanDepth is encoding/json's nesting limit; deeper documents are left
// to encoding/json, which rejects them.
const maxScanDepth = 10000

// jsonValid is json.Valid, in a third of the time.
func jsonValid(b []byte) bool {
	s := jsonScanner{b: b}
	return s.skip(0) && s.end()
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// end reports whether only white space is left.
func (s *jsonScanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// object starts reading an object, which must be next.
func (s *jsonScanner) object() bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	return true
}

// array starts reading an array, which must be next.
func (s *jsonScanner) array() bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	return true
}

// member reads the key of the next member of an object and the colon
// after it. more is false at the end of the object; ok is false if the
// input is not as expected. first says whether this is the object's first
// member. The key is returned as written, with what it holds (see str):
// only a strASCII key can be matched with keyIs as encoding/json would.
func (s *jsonScanner) member(first bool) (key []byte, kind int, more, ok bool) {
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, 0, false, true
	}
	if !first {
		if c != ',' {
			return nil, 0, false, false
		}
		s.i++
		c = s.peek()
	}
	if c != '"' {
		return nil, 0, false, false
	}
	raw, kind, ok := s.str()
	if !ok || s.peek() != ':' {
		return nil, 0, false, false
	}
	s.i++
	return raw, kind, true, true
}

// element moves to the next element of an array, reporting whether there
// is one.
func (s *jsonScanner) element(first bool) (more, ok bool) {
	c := s.peek()
	if c == ']' {
		s.i++
		return false, true
	}
	if !first {
		if c != ',' {
			return false, false
		}
		s.i++
	}
	return true, true
}

// strChar classifies the bytes of a string: 0 for a byte that stands for
// itself, 1 for a quote or backslash, 2 for a control character (invalid)
// and 3 for a byte of a multi-byte UTF-8 sequence.
var strChar = func() (t [256]byte) {
	for c := range 0x20 {
		t[c] = 2
	}
	t['"'], t['\\'] = 1, 1
	for c := 0x80; c < 0x100; c++ {
		t[c] = 3
	}
	return t
}()

// What str found in a string.
const (
	strASCII   = iota // ASCII without escapes: the bytes are the value
	strUTF8           // valid UTF-8 without escapes: the bytes are the value
	strEscaped        // escapes or invalid UTF-8: the value must be decoded
)

// str reads a string, which must be next, and returns its bytes between
// the quotes and what they hold.
func (s *jsonScanner) str() (raw []byte, kind int, ok bool) {
	if s.peek() != '"' {
		return nil, 0, false
	}
	start := s.i + 1
	i := start
	kind = strASCII
	for {
		for i < len(s.b) && strChar[s.b[i]] == 0 {
			i++
		}
		if i >= len(s.b) {
			return nil, 0, false
		}
		switch c := s.b[i]; strChar[c] {
		case 1:
			if c == '"' {
				raw = s.b[start:i]
				s.i = i + 1
				if kind == strUTF8 && !utf8.Valid(raw) {
					kind = strEscaped // encoding/json replaces each invalid byte
				}
				return raw, kind, true
			}
			kind = strEscaped
			if i+1 >= len(s.b) {
				return nil, 0, false
			}
			switch s.b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s.b) || !isHex(s.b[i+2]) || !isHex(s.b[i+3]) || !isHex(s.b[i+4]) || !isHex(s.b[i+5]) {
					return nil, 0, false
				}
				i += 6
			default:
				return nil, 0, false
			}
		case 2:
			return nil, 0, false
		case 3:
			if kind == strASCII {
				kind = strUTF8
			}
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringValue reads a value into a Go string field as encoding/json would:
// a string sets it, null leaves it as it is, and any other type is a
// mismatch, reported as !ok.
func (s *jsonScanner) stringValue(dst *string) bool {
	switch s.peek() {
	case '"':
		start := s.i
		raw, kind, ok := s.str()
		if !ok {
			return false
		}
		if kind != strEscaped {
			*dst = string(raw)
			return true
		}
		// Escapes and invalid UTF-8 are rare: let encoding/json unquote.
		return json.Unmarshal(s.b[start:s.i], dst) == nil
	case 'n':
		return s.literal("null")
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// null reads a null if one is next.
func (s *jsonScanner) null() bool {
	return s.peek() == 'n' && s.literal("null")
}

// raw reads any value and returns its bytes, as a json.RawMessage field
// would hold them. depth is the number of arrays and objects the value is
// in.
func (s *jsonScanner) raw(depth int) ([]byte, bool) {
	s.ws()
	start := s.i
	if !s.skip(depth) {
		return nil, false
	}
	return s.b[start:s.i], true
}

// skip reads and checks any value. depth is the number of arrays and
// objects the value is in.
func (s *jsonScanner) skip(depth int) bool {
	switch c := s.peek(); c {
	case '"':
		_, _, ok := s.str()
		return ok
	case '{':
		if depth >= maxScanDepth {
			return false
		}
		s.i++
		for first := true; ; first = false {
			_, _, more, ok := s.member(first)
			if !ok {
				return false
			}
			if !more {
				return true
			}
			if !s.skip(depth + 1) {
				return false
			}
		}
	case '[':
		if depth >= maxScanDepth {
			return false
		}
		s.i++
		for first := true; ; first = false {
			more, ok := s.element(first)
			if !ok {
				return false
			}
			if !more {
				return true
			}
			if !s.skip(depth + 1) {
				return false
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	case 0:
		return false
	default:
		return s.number()
	}
}

// number reads a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	s.i = i
	return true
}

// keyIs reports whether a simple member key (see member) names the field
// name, matching as encoding/json does: exactly, or else ignoring case.
// For ASCII keys and names, encoding/json's case folding is ASCII's.
func keyIs(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range len(key) {
		a, b := key[i], name[i]
		if a == b {
			continue
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
