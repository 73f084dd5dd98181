package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// A Kind says what a record's content is.
type Kind uint8

const (
	// KindEvent records hold an event encoded by EncodeEvent.
	KindEvent Kind = 1
	// KindRedacted records held an event whose content was erased by
	// Redact; they keep the original content's hash and hold the
	// redaction's reason and time instead.
	KindRedacted Kind = 2
	// KindMeta records are the ledger's own statements about itself,
	// such as a retention removal, in JSON.
	KindMeta Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindRedacted:
		return "redacted"
	case KindMeta:
		return "meta"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k Kind) valid() bool { return k >= KindEvent && k <= KindMeta }

// A frame on disk is
//
//	magic(2) | kind(1) | index(8) | contentHash(32) | length(4) | content | crc32c(4)
//
// with integers big-endian and the CRC over everything before it. The
// kind byte's high bit (lastFlag) marks the last frame of an append:
// recovery after a crash keeps an append whole or not at all. The
// index and content hash make every frame self-describing, so a frame
// that is moved, dropped or duplicated is named by index rather than
// noticed only as a different root hash.
const (
	frameHeader   = 2 + 1 + 8 + sha256.Size + 4
	frameTrailer  = 4
	frameOverhead = frameHeader + frameTrailer

	// MaxContent bounds a record's content. It keeps a corrupted length
	// field from asking for gigabytes and keeps records sane to handle.
	MaxContent = 64 << 20
)

// lastFlag is set in the kind byte of the last frame of each append.
const lastFlag = 0x80

// frameMagic starts every frame. Its first byte is not ASCII, so it is
// rare in event content and resynchronising after damage seldom stops at
// a false start (and a false start still has to pass the CRC).
var frameMagic = [2]byte{0xB7, 0x1E}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// A Record is one entry of the ledger.
type Record struct {
	Index       int64
	Kind        Kind
	ContentHash [32]byte // SHA-256 of the original content; kept by redaction
	Content     []byte

	last bool // the last record of its append
}

// LeafHash returns the record's Merkle leaf hash.
func (r Record) LeafHash() tlog.Hash { return LeafHashOf(r.ContentHash) }

// LeafHash returns the Merkle tree leaf hash of a record with the given
// content.
//
// A leaf commits to the SHA-256 of the content rather than to the content
// itself, so the content can later be erased (Redact) while the hash is
// kept and the tree, its proofs and every signed checkpoint stay valid.
func LeafHash(content []byte) tlog.Hash {
	return LeafHashOf(sha256.Sum256(content))
}

// LeafHashOf returns the leaf hash of a record whose content has the
// given SHA-256.
func LeafHashOf(contentHash [32]byte) tlog.Hash {
	return tlog.RecordHash(contentHash[:])
}

// sealFrame writes the index of the frame f, whose other fields are set,
// and its CRC.
func sealFrame(f []byte, index int64) {
	binary.BigEndian.PutUint64(f[3:11], uint64(index))
	body := f[:len(f)-frameTrailer]
	binary.BigEndian.PutUint32(f[len(body):], crc32.Checksum(body, castagnoli))
}

// appendFrame appends the frame of one record to b; last marks the last
// record of an append.
func appendFrame(b []byte, kind Kind, last bool, index int64, contentHash [32]byte, content []byte) []byte {
	start := len(b)
	k := byte(kind)
	if last {
		k |= lastFlag
	}
	b = append(b, frameMagic[0], frameMagic[1], k)
	b = binary.BigEndian.AppendUint64(b, uint64(index))
	b = append(b, contentHash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(content)))
	b = append(b, content...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// errFrameTorn reports a frame that runs past the end of its file: what a
// crash in the middle of a write leaves behind.
var errFrameTorn = errors.New("frame runs past the end of the file")

// A frameError says why the bytes at Offset are not a valid frame.
type frameError struct {
	Offset int64
	Index  int64 // the index the frame claims, or -1 if its header is unreadable
	Reason string
}

func (e *frameError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("bad frame at offset %d: %s", e.Offset, e.Reason)
	}
	return fmt.Sprintf("bad frame at offset %d (claims index %d): %s", e.Offset, e.Index, e.Reason)
}

// segReader reads frames from a file through a window of up to a few
// megabytes, so scanning costs one read system call per window, and it
// can move back to any offset, which resynchronising after damage needs.
type segReader struct {
	r      io.ReaderAt
	size   int64 // bytes of the file to read; frames past it are torn
	window int   // bytes to read at once
	win    []byte
	off    int64 // file offset of win[0]
}

const (
	readWindow = 4 << 20
	// pointWindow serves Read, which reads at most markEvery frames.
	pointWindow = 64 << 10
)

// windows recycles scan windows: allocating (and zeroing) 4 MiB per
// segment costs more than the scan itself.
var windows = sync.Pool{New: func() any { return new([readWindow]byte) }}

func newSegReader(r io.ReaderAt, size int64) *segReader {
	return &segReader{r: r, size: size, window: readWindow}
}

// release returns the reader's window to the pool; the reader must not
// be used again.
func (s *segReader) release() {
	if cap(s.win) == readWindow {
		windows.Put((*[readWindow]byte)(s.win[:readWindow]))
	}
	s.win = nil
}

// view returns n bytes at off, or errFrameTorn if the file ends first.
// The slice is valid until the next call.
func (s *segReader) view(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > s.size {
		return nil, errFrameTorn
	}
	if off >= s.off && off+int64(n) <= s.off+int64(len(s.win)) {
		return s.win[off-s.off : off-s.off+int64(n)], nil
	}
	want := max(n, s.window)
	if rest := s.size - off; int64(want) > rest {
		want = int(rest)
	}
	if cap(s.win) < want {
		s.release()
		if want <= readWindow && s.window == readWindow {
			s.win = windows.Get().(*[readWindow]byte)[:]
		} else {
			s.win = make([]byte, want)
		}
	}
	s.win = s.win[:want]
	m, err := s.r.ReadAt(s.win, off)
	s.win, s.off = s.win[:m], off
	if m < n {
		if err == nil || err == io.EOF {
			return nil, errFrameTorn
		}
		return nil, err
	}
	return s.win[:n], nil
}

// frame reads the frame at off and returns its record, whose Content
// aliases the window, and the offset just past it. Without checkHash it
// trusts the CRC for the content; with it, it also recomputes the
// content's SHA-256 (except for redacted records, whose content hash is
// the original's).
func (s *segReader) frame(off int64, checkHash bool) (Record, int64, error) {
	h, err := s.view(off, frameHeader)
	if err != nil {
		return Record{}, off, err
	}
	if h[0] != frameMagic[0] || h[1] != frameMagic[1] {
		return Record{}, off, &frameError{off, -1, "bad magic"}
	}
	rec := Record{Kind: Kind(h[2] &^ lastFlag), Index: int64(binary.BigEndian.Uint64(h[3:])), last: h[2]&lastFlag != 0}
	copy(rec.ContentHash[:], h[11:])
	n := binary.BigEndian.Uint32(h[43:])
	if n > MaxContent {
		return Record{}, off, &frameError{off, rec.Index, fmt.Sprintf("content length %d exceeds the maximum", n)}
	}
	full, err := s.view(off, frameOverhead+int(n))
	if err != nil {
		return Record{}, off, err
	}
	body := full[:frameHeader+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(full[len(body):]) {
		return Record{}, off, &frameError{off, rec.Index, "checksum mismatch"}
	}
	if !rec.Kind.valid() {
		return Record{}, off, &frameError{off, rec.Index, fmt.Sprintf("unknown kind %d", rec.Kind)}
	}
	if rec.Index < 0 {
		return Record{}, off, &frameError{off, rec.Index, "negative index"}
	}
	rec.Content = body[frameHeader:]
	if checkHash && rec.Kind != KindRedacted && sha256.Sum256(rec.Content) != rec.ContentHash {
		return Record{}, off, &frameError{off, rec.Index, "content does not match its hash"}
	}
	return rec, off + int64(len(full)), nil
}

// resync returns the offset of the first valid frame after off, or -1.
func (s *segReader) resync(off int64, checkHash bool) int64 {
	for o := off + 1; o+frameOverhead <= s.size; {
		w, err := s.view(o, int(min(s.size-o, readWindow)))
		if err != nil {
			return -1
		}
		i := indexMagic(w)
		if i < 0 {
			// Keep the last byte: it may be the first half of a magic.
			o += int64(len(w)) - 1
			continue
		}
		o += int64(i)
		if _, _, err := s.frame(o, checkHash); err == nil {
			return o
		}
		o++
	}
	return -1
}

func indexMagic(w []byte) int {
	for i := 0; i+1 < len(w); i++ {
		j := bytes.IndexByte(w[i:], frameMagic[0])
		if j < 0 {
			return -1
		}
		i += j
		if i+1 < len(w) && w[i+1] == frameMagic[1] {
			return i
		}
	}
	return -1
}
