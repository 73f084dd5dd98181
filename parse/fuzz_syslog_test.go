package parse

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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
