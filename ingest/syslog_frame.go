package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The framing of syslog over TCP (RFC 6587), which RFC 5425 keeps over TLS.

// maxOctetDigits bounds MSG-LEN: a count of a billion bytes or more is
// garbage, not a message to skip.
const maxOctetDigits = 9

// frameSample bounds the bytes of a cut message, or of a stream that
// breaks the framing, kept for quarantine.
const frameSample = 4 << 10

// A frameReader splits a stream into syslog messages. It tells the two
// framings of RFC 6587 apart frame by frame, as rsyslog and syslog-ng do,
// so that a stream may mix them: a frame that starts with a digit from 1
// to 9 is octet-counted (MSG-LEN SP MSG), and any other runs to the next
// LF or NUL, dropping a CR before the LF (non-transparent framing). A
// message longer than the maximum is skipped as it arrives, keeping only
// its first bytes, so that no message costs more memory than the maximum.
type frameReader struct {
	r      *bufio.Reader
	max    int
	buf    []byte
	offset int64 // of the next byte of the stream
	err    error // the error that ended the stream, once it has
}

// A frame is one message of the stream.
type frame struct {
	msg    []byte // valid until the next call to next
	offset int64  // where msg starts in the stream
	size   int64  // the bytes of the message read, msg and skipped alike
	// cut, when set, says why msg is not the whole message: the message
	// was longer than the maximum, or the stream ended inside it. msg then
	// holds its first bytes.
	cut error
}

// A framingError is a stream that breaks the framing: after a malformed
// octet count there is no telling where the next message starts, so the
// stream cannot be read on.
type framingError struct {
	reason string
	offset int64  // where the frame starts in the stream
	sample []byte // the stream's bytes from offset, for quarantine
}

func (e *framingError) Error() string {
	return fmt.Sprintf("syslog framing: %s, at byte %d of the stream", e.reason, e.offset)
}

func newFrameReader(r io.Reader, maxMsg int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 16<<10), max: maxMsg}
}

// next returns the next message. It returns the messages already
// buffered before it reports a read error, a message cut by the error
// before that, and then the error: io.EOF at the end of the stream, or a
// *framingError.
func (fr *frameReader) next() (frame, error) {
	for fr.err == nil {
		b, err := fr.r.Peek(1)
		if err != nil {
			fr.err = err
			break
		}
		var f frame
		if '1' <= b[0] && b[0] <= '9' {
			f = fr.octetCounted()
		} else {
			f = fr.line()
		}
		if len(f.msg) > 0 || f.cut != nil {
			return f, nil
		}
		// An empty line, such as the LF some senders put after an
		// octet-counted message, holds no message.
	}
	return frame{}, fr.err
}

// octetCounted reads a frame of octet-counting framing.
func (fr *frameReader) octetCounted() frame {
	start := fr.offset
	fr.buf = fr.buf[:0]
	n := 0
	for {
		c, err := fr.r.ReadByte()
		if err != nil {
			fr.fail(err)
			return frame{msg: fr.buf, offset: start, size: int64(len(fr.buf)),
				cut: fmt.Errorf("octet count cut short: %s", ended(err))}
		}
		fr.offset++
		fr.buf = append(fr.buf, c)
		if c == ' ' {
			break
		}
		if c < '0' || c > '9' {
			fr.err = fr.framingError(start, fmt.Sprintf("octet count %q ends in %q, not a space", fr.buf[:len(fr.buf)-1], c))
			return frame{}
		}
		if len(fr.buf) > maxOctetDigits {
			fr.err = fr.framingError(start, fmt.Sprintf("octet count longer than %d digits", maxOctetDigits))
			return frame{}
		}
		n = n*10 + int(c-'0')
	}
	if n > fr.max {
		return fr.skip(n)
	}
	f := frame{offset: fr.offset}
	fr.buf = slices.Grow(fr.buf[:0], n)[:n]
	read, err := io.ReadFull(fr.r, fr.buf)
	fr.offset += int64(read)
	f.msg, f.size = fr.buf[:read], int64(read)
	if err != nil {
		fr.fail(err)
		f.cut = fmt.Errorf("octet-counted message cut short after %d of its %d bytes: %s", read, n, ended(err))
	}
	return f
}

// skip reads an octet-counted message of n bytes, longer than the
// maximum, keeping its first bytes.
func (fr *frameReader) skip(n int) frame {
	f := frame{offset: fr.offset}
	keep := min(frameSample, fr.max)
	fr.buf = slices.Grow(fr.buf[:0], keep)[:keep]
	read, err := io.ReadFull(fr.r, fr.buf)
	if err == nil {
		var skipped int
		skipped, err = fr.r.Discard(n - keep)
		read += skipped
	}
	fr.offset += int64(read)
	f.msg, f.size = fr.buf[:min(read, keep)], int64(read)
	f.cut = fmt.Errorf("message of %d bytes is longer than the maximum of %d; its first %d bytes are kept", n, fr.max, len(f.msg))
	if err != nil {
		fr.fail(err)
		f.cut = fmt.Errorf("message of %d bytes, longer than the maximum of %d, cut short after %d bytes: %s; its first %d bytes are kept",
			n, fr.max, read, ended(err), len(f.msg))
	}
	return f
}

// line reads a frame of non-transparent framing.
func (fr *frameReader) line() frame {
	f := frame{offset: fr.offset}
	fr.buf = fr.buf[:0]
	long := false
	for {
		b, found, err := fr.untilTerminator()
		f.size += int64(len(b))
		switch {
		case long:
		case len(fr.buf)+len(b) <= fr.max+1: // +1 for a CR before the LF
			fr.buf = append(fr.buf, b...)
		default:
			long = true
			keep := min(frameSample, fr.max)
			fr.buf = append(fr.buf, b[:max(0, min(len(b), keep-len(fr.buf)))]...)
			fr.buf = fr.buf[:min(len(fr.buf), keep)]
		}
		if found {
			break
		}
		if err != nil {
			fr.fail(err)
			if errors.Is(err, io.EOF) {
				break // the last message of a stream needs no LF
			}
			f.msg = fr.buf
			f.cut = fmt.Errorf("message cut short after %d bytes: %s", f.size, ended(err))
			if long {
				f.cut = fmt.Errorf("message longer than the maximum of %d bytes, cut short after %d bytes: %s; its first %d bytes are kept",
					fr.max, f.size, ended(err), len(f.msg))
			}
			return f
		}
	}
	if !long {
		fr.buf = bytes.TrimSuffix(fr.buf, []byte("\r"))
		if len(fr.buf) > fr.max {
			long = true
			fr.buf = fr.buf[:min(frameSample, fr.max)]
		}
	}
	f.msg = fr.buf
	if long {
		f.cut = fmt.Errorf("message of %d bytes is longer than the maximum of %d; its first %d bytes are kept", f.size, fr.max, len(f.msg))
	}
	return f
}

// untilTerminator consumes the buffered bytes up to the next LF or NUL,
// and that terminator, reading more only when none are buffered. It
// returns those bytes, valid until the next read, and whether it found
// the terminator.
func (fr *frameReader) untilTerminator() (b []byte, found bool, err error) {
	if fr.r.Buffered() == 0 {
		if _, err := fr.r.Peek(1); err != nil {
			return nil, false, err
		}
	}
	buf, _ := fr.r.Peek(fr.r.Buffered())
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		i = len(buf)
	}
	if j := bytes.IndexByte(buf[:i], 0); j >= 0 {
		i = j
	}
	n := i
	if i < len(buf) {
		n, found = i+1, true
	}
	fr.r.Discard(n)
	fr.offset += int64(n)
	return buf[:i], found, nil
}

// fail ends the stream with err, which reads as the stream's end when it
// ended inside a message.
func (fr *frameReader) fail(err error) {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	fr.err = err
}

// framingError describes a frame at start whose octet count, now in
// fr.buf, is malformed, with a sample of the stream from there.
func (fr *frameReader) framingError(start int64, reason string) *framingError {
	sample := bytes.Clone(fr.buf)
	more, _ := fr.r.Peek(min(fr.r.Buffered(), frameSample-len(sample)))
	if i := bytes.IndexByte(more, '\n'); i >= 0 {
		more = more[:i]
	}
	return &framingError{reason: reason, offset: start, sample: append(sample, more...)}
}

// ended says how a stream ended inside a message.
func ended(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the stream ended"
	}
	return err.Error()
}
