package query

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// An Error is a mistake in a query, located at the byte offset Pos of the
// query text so that a user interface can point at it.
type Error struct {
	Pos    int    // 0-based byte offset into the query text
	Column int    // 1-based column: the number of characters (runes) before Pos, plus one
	Msg    string // what is wrong, in the user's terms
}

func (e *Error) Error() string {
	return fmt.Sprintf("query: column %d: %s", e.Column, e.Msg)
}

// errorf returns an *Error at byte offset pos of src.
func errorf(src string, pos int, format string, args ...any) *Error {
	pos = max(pos, 0)
	// A query built by hand has no text: count bytes past its end.
	col := utf8.RuneCountInString(src[:min(pos, len(src))]) + max(pos-len(src), 0) + 1
	return &Error{Pos: pos, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// Caret renders err for a terminal: the line of src that holds the
// mistake, a caret under it, and the message. Errors that are not an
// *Error are rendered with their own text.
//
//	action:CreateUser AND (src_ip:10.0.0.0/33
//	                              ^
//	query: column 31: bad CIDR prefix "10.0.0.0/33"
func Caret(src string, err error) string {
	var qe *Error
	if !errors.As(err, &qe) {
		return err.Error()
	}
	pos := min(max(qe.Pos, 0), len(src))
	start := strings.LastIndexByte(src[:pos], '\n') + 1
	end := strings.IndexByte(src[pos:], '\n')
	if end < 0 {
		end = len(src)
	} else {
		end += pos
	}
	var b strings.Builder
	b.WriteString(src[start:end])
	b.WriteByte('\n')
	// Keep tabs so that the caret lines up with the text above it.
	for _, r := range src[start:pos] {
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("^\n")
	b.WriteString(qe.Error())
	return b.String()
}
