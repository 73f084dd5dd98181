package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// syslogSeeds returns streams of real syslog: lines of the shared test
// logs, newline-framed and octet-counted. Missing logs give no seeds.
func syslogSeeds() [][]byte {
	const shared = "../../shared/testdata/"
	paths, _ := filepath.Glob(shared + "plaso-log-format-fixtures/test_data/syslog/*")
	paths = append(paths, shared+"loghub-openssh-linux/OpenSSH/OpenSSH_2k.log", shared+"loghub-openssh-linux/Linux/Linux_2k.log")
	var seeds [][]byte
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := bytes.SplitAfter(b, []byte("\n"))
		lines = lines[:min(len(lines), 50)]
		var octets []byte
		for _, l := range lines {
			l = bytes.TrimSuffix(l, []byte("\n"))
			octets = fmt.Appendf(octets, "%d %s", len(l), l)
		}
		seeds = append(seeds, bytes.Join(lines, nil), octets)
	}
	return seeds
}

// FuzzSyslogFrameReader checks what the frame reader promises of any
// stream: it ends, each message is the stream's bytes where it says, no
// message exceeds the maximum, and the stream ends in io.EOF or in a
// framing error.
func FuzzSyslogFrameReader(f *testing.F) {
	for _, s := range syslogSeeds() {
		f.Add(s, uint16(len(s)))
	}
	for _, s := range []string{
		"5 hello<13>x\r\n\n3 a\nb\x00tail",
		"12x garbage\n",
		"1234567890 x",
		"999999999 short",
		"4 abcdefgh\n",
	} {
		f.Add([]byte(s), uint16(4))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxMsg uint16) {
		maxLen := 1 + int(maxMsg)%(2*frameSample)
		fr := newFrameReader(bytes.NewReader(data), maxLen)
		last := int64(-1)
		for range len(data) + 1 {
			fm, err := fr.next()
			if err != nil {
				var fe *framingError
				switch {
				case errors.As(err, &fe):
					end := fe.offset + int64(len(fe.sample))
					if fe.offset <= last || end > int64(len(data)) || !bytes.Equal(data[fe.offset:end], fe.sample) {
						t.Fatalf("framing error sample %q is not the stream at %d", fe.sample, fe.offset)
					}
				case err != io.EOF:
					t.Fatalf("error %v reading a bytes.Reader", err)
				}
				if _, again := fr.next(); again != err {
					t.Fatalf("error %v, then %v", err, again)
				}
				return
			}
			end := fm.offset + int64(len(fm.msg))
			if fm.offset <= last || end > int64(len(data)) || !bytes.Equal(data[fm.offset:end], fm.msg) {
				t.Fatalf("message %q is not the stream at %d", fm.msg, fm.offset)
			}
			// A count cut short is kept whole, though longer than a tiny maximum.
			if len(fm.msg) > max(maxLen, maxOctetDigits) || fm.size < int64(len(fm.msg)) || len(fm.msg) == 0 && fm.cut == nil {
				t.Fatalf("message %q (size %d, cut %v) with a maximum of %d", fm.msg, fm.size, fm.cut, maxLen)
			}
			last = fm.offset
		}
		t.Fatal("more messages than bytes")
	})
}

// FuzzSyslogFrameRoundTrip frames messages, some octet-counted and some
// by newline, and checks that the frame reader gives them back.
func FuzzSyslogFrameRoundTrip(f *testing.F) {
	for _, s := range syslogSeeds() {
		f.Add(bytes.ReplaceAll(s, []byte("\n"), []byte{0xff}))
	}
	f.Add([]byte("<13>a\nb\xff1 starts with a digit\xff\xff<14>\r\xff\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var stream []byte
		var want [][]byte
		for i, msg := range bytes.Split(data, []byte{0xff}) {
			if len(msg) == 0 {
				continue // holds no message, in either framing
			}
			want = append(want, msg)
			// The newline framing holds only messages without its
			// terminators, that do not end in CR, and that do not start
			// like an octet count.
			if i%2 == 1 && !bytes.ContainsAny(msg, "\n\x00") && msg[len(msg)-1] != '\r' && (msg[0] < '1' || msg[0] > '9') {
				stream = append(append(stream, msg...), '\n')
			} else {
				stream = fmt.Appendf(stream, "%d %s", len(msg), msg)
			}
		}
		fr := newFrameReader(bytes.NewReader(stream), 1<<20)
		for i, w := range want {
			fm, err := fr.next()
			if err != nil || fm.cut != nil || !bytes.Equal(fm.msg, w) {
				t.Fatalf("message %d: %q (cut %v, err %v), want %q", i, fm.msg, fm.cut, err, w)
			}
		}
		if fm, err := fr.next(); err != io.EOF {
			t.Fatalf("after the messages: %q, %v", fm.msg, err)
		}
	})
}
