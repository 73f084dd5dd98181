package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// recordFunc receives one JSON record with its exact bytes, the 1-based
// line it starts on and its byte offset.
type recordFunc func(rec []byte, line, offset int64) error

// jsonRecords reads the JSON records of an input in any of the shapes
// logs are shipped in: JSON lines; one JSON array; one document, possibly
// pretty-printed; and any of these holding wrapper objects whose first key
// is "Records" or "records" (CloudTrail's S3 delivery, Azure Monitor
// exports), whose elements are the records. A record that is not valid
// JSON is rejected and reading goes on with the next line; a broken
// document rejects what remains of it.
func (p *parser) jsonRecords(r *bufio.Reader, fn recordFunc) error {
	lr := newLineReader(r, p.opts.MaxLine)
	// A CloudTrail file is one line of megabytes: growing a new buffer to
	// that size for every file costs more than parsing the file, so line
	// buffers are reused, and records are copied out of them (jsonValue).
	lr.buf = getLineBuffer()
	defer func() { putLineBuffer(lr.buf) }()
	first := true
	for {
		l, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if l.tooLong {
			if err := p.reject(lr.errTooLong(), bytes.Clone(l.b), l.num, l.offset); err != nil {
				return err
			}
			continue
		}
		b := trimSpace(l.b)
		if len(b) == 0 {
			continue
		}
		rec := b // valid until the next line is read
		valid := jsonValid(rec)
		if first {
			first = false
			if !valid {
				rec = bytes.Clone(rec)
				// Either a pretty-printed document spans lines, or the
				// first line of JSON lines is broken. The line after
				// tells: alone, a line of a pretty-printed document is
				// not valid JSON.
				first := bytes.Clone(l.b) // l.b is overwritten by the next read
				l2, err := nextNonEmpty(lr)
				if err != nil && err != io.EOF {
					return err
				}
				if rec[0] == '[' || err == io.EOF || l2.tooLong || !jsonValid(trimSpace(l2.b)) {
					var head []byte
					head = append(append(head, first...), '\n')
					if err == nil {
						head = append(append(head, l2.b...), '\n')
					}
					return p.jsonDocument(io.MultiReader(bytes.NewReader(head), r), l.num, l.offset, fn)
				}
				if err := p.reject(jsonError(rec), rec, l.num, l.offset); err != nil {
					return err
				}
				l, rec, valid = l2, trimSpace(l2.b), true
			}
		}
		if !valid {
			if err := p.reject(jsonError(rec), bytes.Clone(rec), l.num, l.offset); err != nil {
				return err
			}
			continue
		}
		if err := p.jsonValue(rec, l.num, l.offset, fn); err != nil {
			return err
		}
	}
}

// lineBuffers holds the line buffers of jsonRecords between inputs. It is
// a channel rather than a sync.Pool because a pool is emptied by every
// other garbage collection, which a large import runs several times per
// file.
var lineBuffers = make(chan []byte, 8)

// maxPooledLine bounds the buffers kept in lineBuffers, so that one huge
// input does not pin its buffer.
const maxPooledLine = 64 << 20

func getLineBuffer() []byte {
	select {
	case b := <-lineBuffers:
		return b
	default:
		return nil
	}
}

func putLineBuffer(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledLine {
		return
	}
	select {
	case lineBuffers <- b[:0]:
	default:
	}
}

func nextNonEmpty(lr *lineReader) (line, error) {
	for {
		l, err := lr.next()
		if err != nil || l.tooLong || len(trimSpace(l.b)) > 0 {
			return l, err
		}
	}
}

// jsonDocument reads the rest of the input as a sequence of JSON values.
func (p *parser) jsonDocument(r io.Reader, line, offset int64, fn recordFunc) error {
	buf, err := io.ReadAll(io.LimitReader(r, int64(p.opts.MaxLine)+1))
	if err != nil {
		return err
	}
	if len(buf) > p.opts.MaxLine {
		return p.reject(fmt.Errorf("JSON document longer than %d bytes", p.opts.MaxLine), buf[:min(len(buf), previewSize)], line, offset)
	}
	lines := newLineCounter(buf, line)
	dec := json.NewDecoder(bytes.NewReader(buf))
	for {
		start := skipSpace(buf, int(dec.InputOffset()))
		if start >= len(buf) {
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			rest := buf[start:]
			return p.reject(jsonError(rest), rest, lines.at(start), offset+int64(start))
		}
		if err := p.jsonValue(v, lines.at(start), offset+int64(start), fn); err != nil {
			return err
		}
	}
}

// jsonValue passes a record, or the records of an array or wrapper, to fn,
// each a copy that fn may keep. v is valid JSON: every caller has checked
// it, so that jsonArray can split it without checking it again.
func (p *parser) jsonValue(v []byte, line, offset int64, fn recordFunc) error {
	switch {
	case len(v) > 0 && v[0] == '[':
		return p.jsonArray(v, 0, line, offset, fn)
	case isWrapper(v):
		at := bytes.IndexByte(v, '[') // isWrapper saw only space, the key and ':' before it
		return p.jsonArray(v, at, line, offset, fn)
	}
	return fn(bytes.Clone(v), line, offset)
}

// jsonArray calls fn for a copy of each element of the valid JSON array
// starting at v[at:].
func (p *parser) jsonArray(v []byte, at int, line, offset int64, fn recordFunc) error {
	lines := newLineCounter(v, line)
	i := skipSpace(v, at+1) // past '['
	for i < len(v) && v[i] != ']' {
		end := skipValue(v, i)
		if end < 0 { // only if v was not valid after all
			return p.reject(jsonError(v[i:]), v[i:], lines.at(i), offset+int64(i))
		}
		if err := fn(bytes.Clone(v[i:end]), lines.at(i), offset+int64(i)); err != nil {
			return err
		}
		i = skipSpaceComma(v, end)
	}
	return nil
}

// skipValue returns the end of the JSON value starting at b[i], or -1 if
// b ends first. It does not check the value, which the caller knows to be
// valid, and so it runs at the speed of a byte search.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			j := skipString(b, i)
			if j < 0 {
				return -1
			}
			i = j
		case '{', '[':
			depth++
			i++
		case '}', ']', ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i // the end of a number or literal
			}
			if c == '}' || c == ']' {
				depth--
			}
			i++
		default:
			i++
		}
		if depth == 0 && (i >= len(b) || b[i-1] == '"' || b[i-1] == '}' || b[i-1] == ']') {
			return i
		}
	}
	if depth == 0 {
		return i // a number or literal that ends the input
	}
	return -1
}

// skipString returns the index after the closing quote of the string
// starting at b[i].
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		// The quote is escaped if an odd number of backslashes precede it.
		k := i - 1
		for b[k] == '\\' {
			k--
		}
		i++
		if (i-2-k)%2 == 0 {
			return i
		}
	}
}

// isWrapper reports whether v is an object whose first key is "Records"
// or "records" holding an array.
func isWrapper(v []byte) bool {
	if len(v) == 0 || v[0] != '{' || !bytes.Contains(v[:min(len(v), 64)], []byte(`ecords"`)) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	k, err := dec.Token()
	if err != nil || (k != "Records" && k != "records") {
		return false
	}
	t, err := dec.Token()
	return err == nil && t == json.Delim('[')
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func skipSpaceComma(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r' || b[i] == ',') {
		i++
	}
	return i
}

// lineCounter maps offsets in a buffer to line numbers, for offsets
// asked in increasing order.
type lineCounter struct {
	b    []byte
	pos  int
	line int64
}

func newLineCounter(b []byte, first int64) *lineCounter {
	if first == 0 {
		first = 1
	}
	return &lineCounter{b: b, line: first}
}

func (c *lineCounter) at(off int) int64 {
	if off < c.pos {
		return c.line
	}
	c.line += int64(bytes.Count(c.b[c.pos:off], []byte{'\n'}))
	c.pos = off
	return c.line
}

// jsonError describes why b is not valid JSON, with the offset.
func jsonError(b []byte) error {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	switch {
	case err == nil:
		return errors.New("invalid JSON")
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: truncated")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}
