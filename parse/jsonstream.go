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
		rec := bytes.Clone(b)
		if first {
			first = false
			if !json.Valid(rec) {
				// Either a pretty-printed document spans lines, or the
				// first line of JSON lines is broken. The line after
				// tells: alone, a line of a pretty-printed document is
				// not valid JSON.
				first := bytes.Clone(l.b) // l.b is overwritten by the next read
				l2, err := nextNonEmpty(lr)
				if err != nil && err != io.EOF {
					return err
				}
				if rec[0] == '[' || err == io.EOF || l2.tooLong || !json.Valid(trimSpace(l2.b)) {
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
				l, rec = l2, bytes.Clone(trimSpace(l2.b))
			}
		}
		if !json.Valid(rec) {
			if err := p.reject(jsonError(rec), rec, l.num, l.offset); err != nil {
				return err
			}
			continue
		}
		if err := p.jsonValue(rec, l.num, l.offset, fn); err != nil {
			return err
		}
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

// jsonValue passes a record, or the records of an array or wrapper, to fn.
func (p *parser) jsonValue(v []byte, line, offset int64, fn recordFunc) error {
	switch {
	case len(v) > 0 && v[0] == '[':
		return p.jsonArray(v, 0, line, offset, fn)
	case isWrapper(v):
		at := bytes.IndexByte(v, '[') // isWrapper saw only space, the key and ':' before it
		return p.jsonArray(v, at, line, offset, fn)
	}
	return fn(v, line, offset)
}

// jsonArray calls fn for each element of the array starting at v[at:].
func (p *parser) jsonArray(v []byte, at int, line, offset int64, fn recordFunc) error {
	lines := newLineCounter(v, line)
	dec := json.NewDecoder(bytes.NewReader(v[at:]))
	if _, err := dec.Token(); err != nil { // [
		return p.reject(jsonError(v), v, line, offset)
	}
	for dec.More() {
		start := at + skipSpaceComma(v[at:], int(dec.InputOffset()))
		var el json.RawMessage
		if err := dec.Decode(&el); err != nil {
			return p.reject(jsonError(v[start:]), v[start:], lines.at(start), offset+int64(start))
		}
		if err := fn(el, lines.at(start), offset+int64(start)); err != nil {
			return err
		}
	}
	return nil
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
