package ledger

import (
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"time"
)

// Bundles are written by this small zip writer rather than by
// archive/zip's so that every byte of a bundle is a function of the
// entries' names, payloads and the checkpoint time, fixed here and not
// by whichever Go release built the binary. VerifyBundle re-emits the
// zip from what it read and compares byte for byte: that is what makes
// a change to a header, a gap, a comment or trailing bytes, which no
// hash inside the bundle covers, fail verification.
//
// The canonical form of a bundle zip is, for each entry in order:
//
//	local file header: signature, version 2.0, flags 0x0008 (sizes in
//	  a data descriptor), method, DOS time and date, zero CRC and
//	  sizes, name, no extra field
//	payload: deflate or stored
//	data descriptor: signature, CRC-32, compressed and uncompressed size
//
// then one central directory header per entry (made by Unix 2.0, mode
// 0644, no extra field or comment) and an end of central directory
// record without comment. There is no zip64: every size and offset must
// fit in 32 bits, which caps a bundle at 4 GiB.
//
// Deflated payloads are not re-compressed to check them: compressors
// differ between releases, and a deflate stream has bits (padding,
// block boundaries) that decompress the same either way. The manifest
// pins them instead, with their SHA-256.

const (
	zipLocalSig      = 0x04034b50
	zipDescriptorSig = 0x08074b50
	zipCentralSig    = 0x02014b50
	zipEndSig        = 0x06054b50

	zipVersion  = 20        // 2.0: deflate and data descriptors
	zipMadeBy   = 3<<8 | 20 // Unix, 2.0: so unzip applies zipFileMode
	zipFlags    = 0x0008    // CRC and sizes follow the data, in a descriptor
	zipFileMode = 0o100644  // regular file, rw-r--r--
	zipMax      = 1<<32 - 1 // sizes and offsets from here on need zip64
	zipMaxFiles = 1<<16 - 1 // entries an end record without zip64 counts

	zipStore   uint16 = 0
	zipDeflate uint16 = 8
)

var errTooBig = errors.New("zip: bundle exceeds 4 GiB; export a narrower range")

// A zipEntry is what the central directory says about one entry.
type zipEntry struct {
	name         string
	method       uint16
	crc          uint32
	csize, usize int64
	offset       int64
}

// A zipWriter writes a bundle's zip in canonical form. Its first error
// sticks: later calls do nothing and close returns it.
type zipWriter struct {
	w       io.Writer
	off     int64
	time    uint16 // DOS time and date of every entry
	date    uint16
	entries []zipEntry
	fw      *flate.Writer // reused from entry to entry
	buf     leBuf
	err     error
}

// newZipWriter returns a writer whose entries all carry time t, in UTC,
// clamped to what a DOS date can hold.
func newZipWriter(w io.Writer, t time.Time) *zipWriter {
	z := &zipWriter{w: w}
	z.time, z.date = dosTime(t)
	return z
}

func dosTime(t time.Time) (tm, date uint16) {
	const first, last = 1980, 1980 + 127
	t = t.UTC()
	switch {
	case t.Year() < first:
		t = time.Date(first, 1, 1, 0, 0, 0, 0, time.UTC)
	case t.Year() > last:
		t = time.Date(last, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16((t.Year()-first)<<9 | int(t.Month())<<5 | t.Day())
	tm = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return tm, date
}

// leBuf builds little-endian zip headers.
type leBuf []byte

func (b *leBuf) u16(v uint16) { *b = binary.LittleEndian.AppendUint16(*b, v) }
func (b *leBuf) u32(v uint32) { *b = binary.LittleEndian.AppendUint32(*b, v) }
func (b *leBuf) str(s string) { *b = append(*b, s...) }

func (z *zipWriter) write(p []byte) {
	if z.err != nil {
		return
	}
	n, err := z.w.Write(p)
	z.off += int64(n)
	z.err = err
}

// begin writes the local header of a new entry.
func (z *zipWriter) begin(name string, method uint16) {
	switch {
	case z.err != nil:
		return
	case len(z.entries) >= zipMaxFiles || len(name) > 1<<16-1:
		z.err = errors.New("zip: too many entries or name too long")
		return
	case z.off >= zipMax:
		z.err = errTooBig
		return
	}
	z.entries = append(z.entries, zipEntry{name: name, method: method, offset: z.off})
	b := z.buf[:0]
	b.u32(zipLocalSig)
	b.u16(zipVersion)
	b.u16(zipFlags)
	b.u16(method)
	b.u16(z.time)
	b.u16(z.date)
	b.u32(0) // CRC-32 and sizes: in the data descriptor
	b.u32(0)
	b.u32(0)
	b.u16(uint16(len(name)))
	b.u16(0) // extra field length
	b.str(name)
	z.buf = b
	z.write(b)
}

// end writes the data descriptor of the current entry.
func (z *zipWriter) end(crc uint32, csize, usize int64) {
	if z.err != nil {
		return
	}
	if csize >= zipMax || usize >= zipMax {
		z.err = errTooBig
		return
	}
	e := &z.entries[len(z.entries)-1]
	e.crc, e.csize, e.usize = crc, csize, usize
	b := z.buf[:0]
	b.u32(zipDescriptorSig)
	b.u32(crc)
	b.u32(uint32(csize))
	b.u32(uint32(usize))
	z.buf = b
	z.write(b)
}

// close writes the central directory and the end record.
func (z *zipWriter) close() error {
	start := z.off
	for _, e := range z.entries {
		b := z.buf[:0]
		b.u32(zipCentralSig)
		b.u16(zipMadeBy)
		b.u16(zipVersion)
		b.u16(zipFlags)
		b.u16(e.method)
		b.u16(z.time)
		b.u16(z.date)
		b.u32(e.crc)
		b.u32(uint32(e.csize))
		b.u32(uint32(e.usize))
		b.u16(uint16(len(e.name)))
		b.u16(0) // extra field length
		b.u16(0) // comment length
		b.u16(0) // disk number
		b.u16(0) // internal attributes
		b.u32(zipFileMode << 16)
		b.u32(uint32(e.offset))
		b.str(e.name)
		z.buf = b
		z.write(b)
	}
	if z.err == nil && z.off >= zipMax {
		z.err = errTooBig
	}
	b := z.buf[:0]
	b.u32(zipEndSig)
	b.u16(0) // this disk
	b.u16(0) // the central directory's disk
	b.u16(uint16(len(z.entries)))
	b.u16(uint16(len(z.entries)))
	b.u32(uint32(z.off - start))
	b.u32(uint32(start))
	b.u16(0) // comment length
	z.buf = b
	z.write(b)
	return z.err
}

// A fileSum is what a bundle's manifest says about one file.
type fileSum struct {
	Name string `json:"name"`
	// Size and SHA256 are of the file's content, what unzip gives.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// DeflatedSize and DeflatedSHA256 are of the bytes stored in the
	// zip. They pin the compressed stream, whose padding bits a
	// decompressor ignores.
	DeflatedSize   int64  `json:"deflated_size"`
	DeflatedSHA256 string `json:"deflated_sha256"`
}

// A zipFile is an entry being written: Write takes its content. It
// keeps the SHA-256 of both the content and the payload (the bytes in
// the zip) for the manifest.
type zipFile struct {
	z            *zipWriter
	name         string
	fw           *flate.Writer // nil when stored
	crc          hash.Hash32
	sum, csum    hash.Hash
	usize, csize int64
}

// create starts an entry; method is zipStore or zipDeflate.
func (z *zipWriter) create(name string, method uint16) *zipFile {
	z.begin(name, method)
	f := &zipFile{z: z, name: name, crc: crc32.NewIEEE(), sum: sha256.New(), csum: sha256.New()}
	if method == zipDeflate {
		if z.fw == nil {
			// The default level: for 10,000 CloudTrail events it makes
			// the bundle 20% smaller than BestSpeed (7.8 MB, not 9.8)
			// for 25% more time (1.0 s, not 0.8); bundles are sent
			// around more often than they are made.
			z.fw, _ = flate.NewWriter(payloadWriter{f}, flate.DefaultCompression)
		} else {
			z.fw.Reset(payloadWriter{f})
		}
		f.fw = z.fw
	}
	return f
}

// payloadWriter is where a zipFile's payload goes: into the zip,
// counted and hashed.
type payloadWriter struct{ f *zipFile }

func (p payloadWriter) Write(b []byte) (int, error) {
	p.f.csum.Write(b)
	p.f.csize += int64(len(b))
	p.f.z.write(b)
	if p.f.z.err != nil {
		return 0, p.f.z.err
	}
	return len(b), nil
}

func (f *zipFile) Write(b []byte) (int, error) {
	if f.z.err != nil {
		return 0, f.z.err
	}
	f.crc.Write(b)
	f.sum.Write(b)
	f.usize += int64(len(b))
	if f.fw == nil {
		return payloadWriter{f}.Write(b)
	}
	return f.fw.Write(b)
}

// close finishes the entry and returns its sums.
func (f *zipFile) close() (fileSum, error) {
	if f.fw != nil && f.z.err == nil {
		if err := f.fw.Close(); err != nil && f.z.err == nil {
			f.z.err = err
		}
	}
	f.z.end(f.crc.Sum32(), f.csize, f.usize)
	return fileSum{
		Name:           f.name,
		Size:           f.usize,
		SHA256:         hex.EncodeToString(f.sum.Sum(nil)),
		DeflatedSize:   f.csize,
		DeflatedSHA256: hex.EncodeToString(f.csum.Sum(nil)),
	}, f.z.err
}

// raw adds an entry whose payload is copied as it is. VerifyBundle uses
// it to re-emit a bundle from the payloads it read.
func (z *zipWriter) raw(name string, method uint16, crc uint32, usize int64, payload io.Reader, buf []byte) {
	z.begin(name, method)
	if z.err != nil {
		return
	}
	start := z.off
	if _, err := io.CopyBuffer(rawWriter{z}, payload, buf); err != nil && z.err == nil {
		z.err = err
	}
	z.end(crc, z.off-start, usize)
}

type rawWriter struct{ z *zipWriter }

func (r rawWriter) Write(b []byte) (int, error) {
	r.z.write(b)
	if r.z.err != nil {
		return 0, r.z.err
	}
	return len(b), nil
}
