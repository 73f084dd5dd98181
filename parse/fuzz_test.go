package parse

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// checkResults asserts what every parse must guarantee whatever the
// input: each result is an event or a reason, never both or neither, and
// an event is normalized.
func checkResults(t *testing.T, rs []Result) {
	t.Helper()
	for _, r := range rs {
		if (r.Event == nil) == (r.Err == nil) {
			t.Fatalf("result with event %v and error %v", r.Event, r.Err)
		}
		if r.Event != nil {
			e := r.Event
			if e.Time.IsZero() || e.Time.Location() != e.Received.Location() || e.Source == "" || e.Class == "" || e.Outcome.Result == "" {
				t.Fatalf("event not normalized: %+v", e)
			}
			if len(e.Raw) == 0 {
				t.Fatalf("event without raw bytes: %+v", e)
			}
		}
		if r.Err != nil && !utf8.ValidString(r.Err.Error()) && !bytes.Contains(r.Raw, []byte(r.Err.Error())) {
			t.Fatalf("reason is not valid UTF-8: %q", r.Err)
		}
	}
}

// fuzzSeeds adds the first lines of fixtures as seeds, with extra
// arguments after them.
func fuzzSeeds(f *testing.F, glob string, maxLines int, extra ...any) {
	files, _ := filepath.Glob(glob)
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := bytes.SplitAfter(b, []byte("\n"))
		if len(lines) > maxLines {
			lines = lines[:maxLines]
		}
		f.Add(append([]any{bytes.Join(lines, nil)}, extra...)...)
	}
}

func FuzzCloudTrail(f *testing.F) {
	fuzzSeeds(f, shared+"stratus-red-team-detonation-logs/detonation-logs/aws.defense-evasion.*.json", 80)
	fuzzSeeds(f, shared+"plaso-log-format-fixtures/test_data/jsonl/aws_cloudtrail.jsonl", 2)
	f.Add([]byte(`{"Records":[{"eventTime":"2024-07-31T13:06:24Z","eventSource":"s","eventName":"n"}]}`))
	f.Add([]byte(`{"detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"s","eventName":"n"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, format := range []string{"aws.cloudtrail", Auto} {
			var rs []Result
			_, err := Parse(bytes.NewReader(in), format, Options{Received: testReceived, MaxLine: 1 << 16}, func(r Result) error {
				rs = append(rs, r)
				return nil
			})
			if err != nil && err != ErrUnknownFormat && format != Auto {
				t.Fatalf("Parse(%s): %v", format, err)
			}
			checkResults(t, rs)
		}
	})
}

func FuzzJSON(f *testing.F) {
	fuzzSeeds(f, shared+"panther-analysis-rule-tests/aws_guardduty_rule_tests.jsonl", 2, "")
	f.Add([]byte(`{"ts": 1722431184, "user": "a", "src_ip": "10.0.0.1"}`), "ts")
	f.Add([]byte(`[{"time": "2024-07-31"}, {"time": 5}]`), "")
	f.Add([]byte(`{"a": {"b.c": "2024-07-31T00:00:00Z"}}`), "a.b.c")
	f.Fuzz(func(t *testing.T, in []byte, timeField string) {
		var rs []Result
		if _, err := Parse(bytes.NewReader(in), "json", Options{Received: testReceived, TimeField: timeField, MaxLine: 1 << 16}, func(r Result) error {
			rs = append(rs, r)
			return nil
		}); err != nil {
			t.Fatalf("Parse: %v", err)
		}
		checkResults(t, rs)
	})
}

// FuzzGzip feeds damaged compressed input: a broken stream must end the
// parse with an error, keeping what was read, and never panic.
func FuzzGzip(f *testing.F) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"eventTime":"2024-07-31T13:06:24Z","eventSource":"s","eventName":"n"}` + "\n"))
	zw.Close()
	f.Add(buf.Bytes(), 10)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		if cut >= 0 && cut < len(in) {
			in = in[:cut]
		}
		var rs []Result
		Parse(bytes.NewReader(in), Auto, Options{Received: testReceived}, func(r Result) error {
			rs = append(rs, r)
			return nil
		})
		checkResults(t, rs)
	})
}

// FuzzText runs the text formats of this file's authors (aws.elb, csv)
// and auto-detection over arbitrary text.
func FuzzText(f *testing.F) {
	fuzzSeeds(f, shared+"plaso-log-format-fixtures/test_data/aws_elb_access.log", 3, "aws.elb")
	fuzzSeeds(f, shared+"otrf-security-datasets-aws/AWS_S3_HoneyBucketLogs.csv", 4, "csv")
	f.Add([]byte("a,b,c\n\"x\ny\",2,3\n"), "csv")
	f.Fuzz(func(t *testing.T, in []byte, format string) {
		if _, ok := Lookup(format); !ok {
			format = Auto
		}
		var rs []Result
		_, err := Parse(bytes.NewReader(in), format, Options{Received: testReceived, MaxLine: 1 << 12}, func(r Result) error {
			rs = append(rs, r)
			return nil
		})
		if err != nil && err != ErrUnknownFormat {
			t.Fatalf("Parse(%s): %v", format, err)
		}
		checkResults(t, rs)
	})
}
