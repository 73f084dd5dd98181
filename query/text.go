package query

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text search matches words, not substrings: a bare word or a quoted
// phrase finds the events whose raw text holds it with a non-word
// character (or the start or end of the text) on each side, ignoring
// case. christophe finds "Christophe" but not "christopher"; "stop
// logging" finds "Stop  Logging" only if the spaces match too, as every
// character that is not part of a word is compared literally.
//
// Word semantics are what let a store index words: a word index (the
// bloom filters of store/duckdb) can rule out every event that lacks one
// of a query's words, and that is only exact if the query matches whole
// words. A value with wildcards stays a substring pattern, which no word
// index can serve.

// IsWordRune reports whether r is part of a word for text search: a
// letter, a digit or other number, a combining mark, or '_'. Every other
// character separates words. A store that indexes words must split text
// with this function, or it would rule out events that match.
func IsWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// notWord is the RE2 class of the characters IsWordRune rejects.
const notWord = `[^\pL\pN\pM_]`

// textPattern returns an RE2 pattern that finds s as words, to be matched
// case-insensitively: every character of s literally, after a word
// boundary when s starts with a word character and before one when it
// ends with one. A needle that starts or ends with a separator ("/alice")
// needs no boundary there: the separator is one.
func textPattern(s string) string {
	var b strings.Builder
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if s != "" && IsWordRune(first) {
		b.WriteString(`(?:^|` + notWord + `)`)
	}
	for _, r := range s {
		// Word characters are never RE2 syntax; everything else is
		// written as a code point, so that no character of the user's,
		// not even NUL, reaches the pattern as syntax. An invalid byte
		// ranges over as U+FFFD, which is also what the store keeps in
		// raw in its place.
		if IsWordRune(r) {
			b.WriteRune(r)
			continue
		}
		b.WriteString(`\x{`)
		b.WriteString(strconv.FormatInt(int64(r), 16))
		b.WriteString(`}`)
	}
	if s != "" && IsWordRune(last) {
		b.WriteString(`(?:` + notWord + `|$)`)
	}
	return b.String()
}

// RequiredText returns the words and phrases that every event the query
// matches contains: the text of the Text terms that the filter's
// top-level AND requires, that is, those not under OR or NOT. Terms with
// wildcards, which match substrings, are left out.
//
// A store with a word index can skip the events that lack one of them.
// That is only ever an optimization: the compiled SQL checks every event
// it reads, so results never depend on what the index skipped.
func (q *Query) RequiredText() []string {
	if q == nil {
		return nil
	}
	var out []string
	var walk func(e Expr)
	walk = func(e Expr) {
		switch e := e.(type) {
		case *And:
			for _, a := range e.Args {
				walk(a)
			}
		case *Text:
			if !e.Value.HasWildcard() {
				if s := e.Value.Text(); s != "" {
					out = append(out, s)
				}
			}
		}
	}
	walk(q.Filter)
	return out
}
