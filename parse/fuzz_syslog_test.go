package parse

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vigilsec/vigil/event"
)

// addFixtureSeeds seeds f with each file whole, and with each line alone.
func addFixtureSeeds(f *testing.F, paths ...string) {
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		for i, l := range bytes.SplitAfter(b, []byte("\n")) {
			if i < 200 && len(l) > 0 {
				f.Add(l, i%2 == 0)
			}
		}
	}
}

// fuzzParse parses data and checks what every format promises: no panic,
// no error but the reader's, each Result an Event or an Err with its Raw.
// When exact is set, Raw must also be the input's bytes at Offset, and
// records must come in input order.
func fuzzParse(t *testing.T, data []byte, format string, small, exact bool) {
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		return // gzip: its errors are the reader's
	}
	opts := Options{Received: testReceived}
	if small {
		opts.MaxLine = 64
	}
	var last int64 = -1
	_, err := Parse(bytes.NewReader(data), format, opts, func(r Result) error {
		if (r.Event == nil) == (r.Err == nil) {
			t.Fatalf("result with both or neither of Event and Err: %+v", r)
		}
		if len(r.Raw) == 0 {
			t.Fatalf("result without Raw: %+v", r)
		}
		if r.Event != nil {
			e := r.Event
			if !bytes.Equal(e.Raw, r.Raw) {
				t.Fatalf("Event.Raw %q differs from Result.Raw %q", e.Raw, r.Raw)
			}
			if e.Time.IsZero() || e.Class == "" || e.Outcome.Result == "" {
				t.Fatalf("event without time, class or outcome: %+v", e)
			}
			if e.Doc != nil && !json.Valid(e.Doc) {
				t.Fatalf("invalid Doc %q", e.Doc)
			}
		}
		if exact {
			end := r.Offset + int64(len(r.Raw))
			if r.Offset < 0 || end > int64(len(data)) || !bytes.Equal(data[r.Offset:end], r.Raw) {
				t.Fatalf("Raw %q is not the input at offset %d", r.Raw, r.Offset)
			}
			if r.Offset <= last {
				t.Fatalf("record at offset %d after one at %d", r.Offset, last)
			}
			last = r.Offset
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func FuzzSyslog(f *testing.F) {
	files, _ := filepath.Glob(plasoSyslog + "*")
	addFixtureSeeds(f, files...)
	addFixtureSeeds(f, openSSH2k, linux2k)
	for _, s := range []string{
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed",
		`<165>1 2003-10-11T22:14:15.003Z h evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\"x\]"][p class="high"] msg`,
		"<13>1 - - - - - -",
		"<13>hello",
		"\xef\xbb\xbfMar  6 04:07:28 hostname log_tag this is debug\r\n continued\r\n",
		"junk<14>2021-03-06T04:07:33.196352+00:00 hostname log_tag this is info",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, small bool) {
		fuzzParse(t, data, "syslog", small, true)
	})
}

// syslogMessages are framed messages and what SyslogMessage makes of
// them: the seeds of FuzzSyslogMessage, and its expectations.
var syslogMessages = []struct {
	in      string
	message string // the event's Message, or a part of the quarantine reason
	class   string // "" when the message is quarantined
}{
	{"<13>1 2024-05-01T10:00:00Z web01 app 42 - - first line\nsecond line\n", "first line\nsecond line", event.ClassSystemLog},
	{"<38>May  1 10:00:00 bastion sshd[4242]: Failed password for root from 203.0.113.7 port 52311 ssh2\r\n", "Failed password for root from 203.0.113.7 port 52311 ssh2", event.ClassAuthentication},
	{"<13>May  1 10:00:00 host app: tab\tand\r\nCRLF continuation\x00", "tab\tand\r\nCRLF continuation", event.ClassSystemLog},
	{"<13>hello\nworld", "hello\nworld", event.ClassSystemLog},
	{"<13>1 2024-05-01T10:00:00Z host app - - - \xff\xfe Latin-1 \xe9t\xe9", "\uFFFD Latin-1 \uFFFDt\uFFFD", event.ClassSystemLog},
	{"\xff\xfe\x00\x01garbage", "invalid UTF-8 (byte 0xff at column 1)", ""},
	{"\x01\x02\x03\x04", "binary data (byte 0x01 at column 1)", ""},
	{"<13>\x01\x02", "after the priority, binary data", ""},
	{"hello, world", "starts with neither <PRI> nor a timestamp", ""},
	{"\r\n", "empty syslog message", ""},
	{"<999>1 - - - - - - x", "invalid syslog priority", ""},
	{"<13>1 2024-05-01T10:00:00Z\nhost app - - - split header", "RFC 5424 header: missing HOSTNAME", ""},
}

func TestSyslogMessage(t *testing.T) {
	for _, tc := range syslogMessages {
		r := SyslogMessage([]byte(tc.in), Options{Tenant: "t", Origin: "syslog/test", Received: testReceived})
		if !bytes.Equal(r.Raw, []byte(tc.in)) {
			t.Errorf("%q: Raw = %q, want the message as given", tc.in, r.Raw)
		}
		if tc.class == "" {
			if r.Err == nil || !strings.Contains(r.Err.Error(), tc.message) {
				t.Errorf("%q: err = %v, want one saying %q", tc.in, r.Err, tc.message)
			}
			continue
		}
		if r.Err != nil {
			t.Errorf("%q: %v", tc.in, r.Err)
			continue
		}
		e := r.Event
		if e.Message != tc.message || e.Class != tc.class || e.Tenant != "t" || e.Origin != "syslog/test" || !e.Received.Equal(testReceived) {
			t.Errorf("%q: got message %q, class %q, tenant %q, origin %q, received %v", tc.in, e.Message, e.Class, e.Tenant, e.Origin, e.Received)
		}
	}
	r := SyslogMessage([]byte("<13>"+strings.Repeat("x", 100)), Options{MaxLine: 64})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "longer than 64 bytes") {
		t.Errorf("over-long message: err = %v", r.Err)
	}
}

// FuzzSyslogMessage checks what SyslogMessage promises for any message:
// an Event or an Err, never a panic, and Raw the message as given.
func FuzzSyslogMessage(f *testing.F) {
	for _, tc := range syslogMessages {
		f.Add([]byte(tc.in))
	}
	for _, path := range []string{openSSH2k, linux2k, plasoSyslog + "syslog_rsyslog_SyslogProtocol23Format"} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for i, l := range bytes.SplitAfter(b, []byte("\n")) {
			if i < 100 && len(l) > 0 {
				f.Add(l)
			}
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r := SyslogMessage(msg, Options{Received: testReceived, MaxLine: 1 << 10})
		if (r.Event == nil) == (r.Err == nil) {
			t.Fatalf("result with both or neither of Event and Err: %+v", r)
		}
		if len(msg) <= 1<<10 && !bytes.Equal(r.Raw, msg) {
			t.Fatalf("Raw %q is not the message %q", r.Raw, msg)
		}
		if e := r.Event; e != nil {
			if !bytes.Equal(e.Raw, r.Raw) {
				t.Fatalf("Event.Raw %q differs from Result.Raw %q", e.Raw, r.Raw)
			}
			if e.Time.IsZero() || e.Class == "" || !utf8.ValidString(e.Message) || !json.Valid(e.Doc) {
				t.Fatalf("event without time or class, or with invalid text: %+v", e)
			}
		}
	})
}
