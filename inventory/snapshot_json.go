package inventory

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// This file reads the JSON of snapshots: values that know their line,
// and the records in them.

// A snapLineError is an error at a line of the file.
type snapLineError struct {
	line int
	err  error
}

func (sr *snapReader) lineErr(le *snapLineError) error {
	if errors.Is(le.err, errSnapshotTooLarge) {
		return sr.fileErr(le.err)
	}
	return fmt.Errorf("%s:%d: %w", sr.name, le.line, le.err)
}

// jsonIn is a JSON decoder that knows its line, and reads no value larger
// than maxSnapshotItem.
type jsonIn struct {
	dec  *json.Decoder
	lc   *jsonLines
	base int // the lines before the decoder's input
}

func newJSONIn(r io.Reader, base int) *jsonIn {
	lc := &jsonLines{r: r}
	return &jsonIn{dec: json.NewDecoder(lc), lc: lc, base: base}
}

func (j *jsonIn) lineAt(off int64) int { return j.base + j.lc.lineAt(off) }

// reset lets the decoder read up to maxSnapshotItem bytes for the next
// token or value, counting those it holds already: none is larger.
func (j *jsonIn) reset() {
	j.lc.budget = maxSnapshotItem - int64(j.dec.Buffered().(interface{ Len() int }).Len())
}

func (j *jsonIn) token() (json.Token, error) {
	j.reset()
	return j.dec.Token()
}

func (j *jsonIn) more() bool {
	j.reset()
	return j.dec.More()
}

// value reads the next value, and returns it with the line it starts on.
func (j *jsonIn) value() (json.RawMessage, int, error) {
	j.reset()
	var raw json.RawMessage
	if err := j.dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			// The decoder's offsets of errors within a value are not of
			// its input; decoding the value alone finds where it broke.
			start := j.dec.InputOffset()
			var x json.RawMessage
			if err2 := json.NewDecoder(j.dec.Buffered()).Decode(&x); errors.As(err2, &se) {
				return nil, 0, &posError{start + se.Offset, err2}
			}
		}
		return nil, 0, err
	}
	return raw, j.lineAt(j.dec.InputOffset() - int64(len(raw))), nil
}

// A posError is an error at an offset of the decoder's input.
type posError struct {
	off int64
	err error
}

func (e *posError) Error() string { return e.err.Error() }

// fail says where a decoding error happened. io.EOF is an error only
// within a value: the input was cut short.
func (j *jsonIn) fail(err error) *snapLineError {
	var (
		pe *posError
		se *json.SyntaxError
	)
	switch {
	case errors.As(err, &pe):
		return &snapLineError{j.lineAt(pe.off), fmt.Errorf("bad JSON: %w", pe.err)}
	case errors.As(err, &se):
		off := se.Offset // from Token: of the input, unless of a value it read
		if off > j.lc.off {
			off = j.dec.InputOffset()
		}
		return &snapLineError{j.lineAt(off), fmt.Errorf("bad JSON: %w", err)}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return &snapLineError{j.lineAt(j.lc.off), errors.New("truncated JSON: unexpected end of input")}
	case errors.Is(err, errValueTooLarge):
		return &snapLineError{j.lineAt(j.lc.off), fmt.Errorf(valueTooLargeText, maxSnapshotItem)}
	}
	return &snapLineError{j.lineAt(j.lc.off), err}
}

// readJSON reads JSON values from r: objects wrapping configuration items,
// arrays of items or rows, items or rows. When lines is set and its first
// value is an item or row on a line of its own, the rest is read as JSON
// lines, so that a broken line costs only itself.
func (sr *snapReader) readJSON(r io.Reader, base int, lines bool) *snapLineError {
	j := newJSONIn(r, base)
	for first := true; ; first = false {
		t, err := j.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return j.fail(err)
		}
		switch t {
		case json.Delim('['):
			if le := sr.readArray(j); le != nil {
				return le
			}
		case json.Delim('{'):
			line := j.lineAt(j.dec.InputOffset() - 1)
			isRecord, le := sr.readObject(j, line)
			if le != nil {
				return le
			}
			if lines && first && isRecord && j.lineAt(j.dec.InputOffset()) == line {
				return sr.readLines(io.MultiReader(j.dec.Buffered(), j.lc.r), line)
			}
		default:
			return &snapLineError{j.lineAt(j.dec.InputOffset()), fmt.Errorf("not a snapshot: %.40v at the top level", t)}
		}
	}
}

// readArray reads the elements of an array whose '[' was read.
func (sr *snapReader) readArray(j *jsonIn) *snapLineError {
	for j.more() {
		raw, line, err := j.value()
		if err != nil {
			return j.fail(err)
		}
		sr.record(raw, line)
	}
	if _, err := j.token(); err != nil {
		return j.fail(err)
	}
	return nil
}

// readObject reads an object whose '{' was read at line: one wrapping
// configuration items, which it reads as it goes (an S3 file may hold
// thousands on one line), or a record. It says which.
func (sr *snapReader) readObject(j *jsonIn, line int) (isRecord bool, le *snapLineError) {
	var (
		stash   map[string]json.RawMessage
		size    int64
		wrapper bool
	)
	for j.more() {
		t, err := j.token()
		if err != nil {
			return false, j.fail(err)
		}
		key, _ := t.(string)
		switch key {
		case configItemsKey, baseConfigItemsKey:
			wrapper = true
			t, err := j.token()
			if err != nil {
				return false, j.fail(err)
			}
			switch t {
			case json.Delim('['):
				if le := sr.readArray(j); le != nil {
					return false, le
				}
			case nil:
			default:
				return false, &snapLineError{j.lineAt(j.dec.InputOffset()), fmt.Errorf("%s is not an array", key)}
			}
		case configItemKey:
			wrapper = true
			raw, l, err := j.value()
			if err != nil {
				return false, j.fail(err)
			}
			if string(raw) != "null" {
				sr.record(raw, l)
			}
		default:
			raw, _, err := j.value()
			if err != nil {
				return false, j.fail(err)
			}
			if size += int64(len(key) + len(raw)); size > maxSnapshotItem {
				return false, j.fail(errValueTooLarge)
			}
			if stash == nil {
				stash = map[string]json.RawMessage{}
			}
			stash[key] = raw
		}
	}
	if _, err := j.token(); err != nil {
		return false, j.fail(err)
	}
	if wrapper {
		return false, nil
	}
	raw := []byte("{}")
	if stash != nil {
		raw, _ = json.Marshal(stash) // of valid values: it cannot fail
	}
	sr.record(raw, line)
	return true, nil
}

// readLines reads JSON lines, the first of which is line first.
func (sr *snapReader) readLines(r io.Reader, first int) *snapLineError {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for line := first; ; line++ {
		b, long, err := readSnapLine(br, maxSnapshotItem, buf[:0])
		buf = b
		if err != nil && err != io.EOF {
			return &snapLineError{line, err}
		}
		if long {
			sr.skip(line, fmt.Sprintf(lineTooLongText, maxSnapshotItem))
		} else if b = bytes.TrimSpace(b); len(b) > 0 {
			before := sr.st.Records + sr.st.Skipped
			if le := sr.readJSON(bytes.NewReader(b), line-1, false); le != nil {
				sr.skip(line, le.err.Error())
			} else if sr.st.Records+sr.st.Skipped == before {
				sr.skip(line, "no record in the line")
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// readSnapLine reads a line into buf, up to max bytes of it, and says
// whether there was more.
func readSnapLine(br *bufio.Reader, max int64, buf []byte) (line []byte, long bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if int64(len(buf)+len(frag)) <= max {
			buf = append(buf, frag...)
		} else {
			long = true
		}
		if err != bufio.ErrBufferFull {
			return buf, long, err
		}
	}
}

// record reads a JSON value of a snapshot: a configuration item, a row or
// a Fact.
func (sr *snapReader) record(raw json.RawMessage, line int) {
	if len(raw) == 0 || raw[0] != '{' {
		sr.skip(line, fmt.Sprintf("not a JSON object: %.40s", raw))
		return
	}
	var ci configItem
	err := json.Unmarshal(raw, &ci)
	if len(ci.CaptureTime) > 0 {
		if sr.st.Records == 0 {
			sr.st.Format = configFormat
		}
		if err != nil {
			sr.skip(line, ci.what()+": "+err.Error())
			return
		}
		sr.configItem(&ci, line)
		return
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		sr.skip(line, "bad JSON: "+err.Error())
		return
	}
	if obj["asset"] != nil && obj["attr"] != nil {
		sr.factObject(raw, line)
		return
	}
	sr.jsonRow(obj, line)
}

// AWS Config

var (
	errSnapshotTooLarge = errors.New("snapshot too large")
	errValueTooLarge    = errors.New("JSON value too large")
)

// snapLimitReader reads at most n bytes, and fails after, every time
// it is read: a reader above it may swallow one error (json.Decoder.More
// does), but must not see the file end well.
type snapLimitReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *snapLimitReader) Read(p []byte) (int, error) {
	if l.over {
		return 0, errSnapshotTooLarge
	}
	if l.n <= 0 {
		// One byte more tells a file of exactly n bytes from a longer one.
		var b [1]byte
		k, err := l.r.Read(b[:])
		if k > 0 {
			l.over = true
			return 0, errSnapshotTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// jsonLines hands a decoder its input, noting where the lines end, and
// refuses more than budget bytes.
type jsonLines struct {
	r      io.Reader
	off    int64   // bytes handed out
	nls    []int64 // the offsets of newlines not yet counted in lines
	lines  int
	budget int64
}

func (c *jsonLines) Read(p []byte) (int, error) {
	if c.budget <= 0 {
		return 0, errValueTooLarge
	}
	if int64(len(p)) > c.budget {
		p = p[:c.budget]
	}
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			c.nls = append(c.nls, c.off+int64(i))
		}
	}
	c.off += int64(n)
	c.budget -= int64(n)
	return n, err
}

// lineAt returns the line of the byte at off. It is asked of offsets that
// never go back: the newlines before one are counted and let go.
func (c *jsonLines) lineAt(off int64) int {
	i, _ := slices.BinarySearch(c.nls, off)
	c.lines += i
	c.nls = c.nls[i:]
	return c.lines + 1
}

// lineLimiter fails on a line longer than maxSnapshotItem: encoding/csv
// would hold all of it.
type lineLimiter struct {
	r    io.Reader
	line int
	cur  int64 // the length of the line so far
}

type lineTooLongError struct{ line int }

func (e *lineTooLongError) Error() string {
	return fmt.Sprintf("line %d: "+lineTooLongText, e.line, maxSnapshotItem)
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.line++
			l.cur = 0
			continue
		}
		if l.cur++; l.cur > maxSnapshotItem {
			return 0, &lineTooLongError{l.line}
		}
	}
	return n, err
}
