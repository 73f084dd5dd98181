package parse

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// lineReader reads newline-terminated lines of bounded length, keeping
// the line number and byte offset of each so that quarantined records can
// be found again in the input.
type lineReader struct {
	r      *bufio.Reader
	max    int
	line   int64 // number of the line last returned, 1-based
	offset int64 // offset of the next line
	buf    []byte
}

// A line is one line of input without its terminator.
type line struct {
	b       []byte // valid until the next call to next
	num     int64
	offset  int64
	tooLong bool // b holds only the first bytes of a longer line
}

func newLineReader(r *bufio.Reader, max int) *lineReader {
	return &lineReader{r: r, max: max}
}

// previewSize is how much of an over-long line is kept for quarantine.
const previewSize = 4 << 10

// next returns the next line, or io.EOF. Other errors are read errors.
func (lr *lineReader) next() (line, error) {
	lr.buf = lr.buf[:0]
	start := lr.offset
	tooLong := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		lr.offset += int64(len(chunk))
		if !tooLong {
			if len(lr.buf)+len(chunk) > lr.max+1 { // +1 for the newline
				keep := previewSize - len(lr.buf)
				if keep > len(chunk) {
					keep = len(chunk)
				}
				if keep > 0 {
					lr.buf = append(lr.buf, chunk[:keep]...)
				}
				tooLong = true
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(lr.buf) == 0 && !tooLong {
				return line{}, io.EOF
			}
			break
		}
		if err != nil {
			return line{}, err
		}
		break
	}
	lr.line++
	b := bytes.TrimSuffix(lr.buf, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return line{b: b, num: lr.line, offset: start, tooLong: tooLong}, nil
}

// errTooLong is the quarantine reason for an over-long line.
func (lr *lineReader) errTooLong() error {
	return fmt.Errorf("line longer than %d bytes", lr.max)
}
