package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
)

// memSink keeps what it is given.
type memSink struct {
	mu          sync.Mutex
	events      []*event.Event
	quarantined []store.Quarantined
}

func (s *memSink) Append(_ context.Context, evs []*event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	return nil
}

func (s *memSink) Quarantine(_ context.Context, qs []store.Quarantined) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quarantined = append(s.quarantined, qs...)
	return nil
}

const record = `{"eventTime":"2024-07-31T13:06:24Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","recipientAccountId":"111122223333"}`

func gz(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.Bytes()
}

func TestImport(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		path := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Repeat(record+"\n", 100)
	write("a/plain.json", []byte(lines))
	// Varied records, so that half the compressed stream holds many.
	var varied strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&varied, `{"eventTime":"2024-07-31T13:%02d:%02dZ","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"%d"}`+"\n", i/60%60, i%60, i*7919)
	}
	write("a/b/delivered.json.gz", gz(t, `{"Records":[`+record+`,`+record+`]}`))
	full := gz(t, varied.String())
	write("truncated.json.gz", full[:len(full)/2])
	write("README.md", []byte("# notes\n"))
	write(".git/config", []byte(record))

	sink := &memSink{}
	var last Progress
	im := NewImporter(sink, ImportOptions{Parse: parse.Options{Tenant: "t", Received: time.Now()}, Batch: 7,
		Progress: func(p Progress) { last = p }})
	sum, err := im.Import(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 3 || len(sum.Skipped) != 1 || !strings.HasSuffix(sum.Skipped[0].Path, "README.md") {
		t.Errorf("files %d, skipped %v; want 3 read and README.md skipped (.git not walked)", sum.Files, sum.Skipped)
	}
	// The truncated file yields what could be read, and a quarantined
	// record saying the rest was lost.
	var truncated int
	for _, e := range sink.events {
		if strings.Contains(e.Origin, "truncated") {
			truncated++
		}
		if e.Tenant != "t" || e.Source != "aws.cloudtrail" {
			t.Fatalf("event %+v", e)
		}
	}
	if truncated == 0 || truncated >= 2000 {
		t.Errorf("%d events from the truncated file, want some but not all", truncated)
	}
	if len(sink.quarantined) != 1 || !strings.Contains(sink.quarantined[0].Reason, "unexpected EOF") {
		t.Fatalf("quarantined = %+v, want one record about the truncated gzip", sink.quarantined)
	}
	if want := int64(102 + truncated); sum.Events != want || int64(len(sink.events)) != want || sum.Quarantined != 1 {
		t.Errorf("summary %d events / %d quarantined, sink %d; want %d / 1", sum.Events, sum.Quarantined, len(sink.events), want)
	}
	if last.FilesDone != 4 || last.Events != sum.Events || last.BytesDone != last.Bytes {
		t.Errorf("final progress %+v", last)
	}
}

func TestImportMissingPath(t *testing.T) {
	_, err := NewImporter(&memSink{}, ImportOptions{}).Import(context.Background(), []string{"/nonexistent/x"})
	if err == nil {
		t.Fatal("no error for a missing path")
	}
}

// bulkSink is a memSink with a store.Loader, which keeps what it is given
// until it is closed.
type bulkSink struct {
	memSink
	mu              sync.Mutex
	loaders, closed int
	onAppend        func() // called after each append
}

func (s *bulkSink) NewLoader(context.Context) (store.Loader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaders++
	return &memLoader{sink: s}, nil
}

type memLoader struct {
	sink    *bulkSink
	pending []*event.Event
}

func (l *memLoader) Append(_ context.Context, evs []*event.Event) error {
	l.pending = append(l.pending, evs...)
	if l.sink.onAppend != nil {
		l.sink.onAppend()
	}
	return nil
}

func (l *memLoader) Close(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	l.sink.mu.Lock()
	l.sink.closed++
	l.sink.mu.Unlock()
	return l.sink.memSink.Append(ctx, l.pending)
}

// TestImportBulk checks that a store with loaders gets the events of an
// import through them, one per worker, committed at the end even when the
// import is interrupted.
func TestImportBulk(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.json", i)), []byte(strings.Repeat(record+"\n", 10)), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(record+"\n{\n"), 0o644)

	sink := &bulkSink{}
	sum, err := NewImporter(sink, ImportOptions{Parse: parse.Options{Received: time.Now()}, Workers: 3}).Import(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if sink.loaders != 3 || sink.closed != 3 {
		t.Errorf("%d loaders, %d closed; want one per worker", sink.loaders, sink.closed)
	}
	if sum.Events != 51 || len(sink.events) != 51 || sum.Quarantined != 1 || len(sink.quarantined) != 1 {
		t.Errorf("summary %d events / %d quarantined, sink %d / %d; want 51 / 1", sum.Events, sum.Quarantined, len(sink.events), len(sink.quarantined))
	}

	ctx, cancel := context.WithCancel(context.Background())
	sink = &bulkSink{onAppend: cancel} // interrupted after the first file
	sum, err = NewImporter(sink, ImportOptions{Parse: parse.Options{Received: time.Now()}, Workers: 1}).Import(ctx, []string{dir})
	if err == nil {
		t.Error("interrupted import: no error")
	}
	if sink.closed != 1 || sum.Events == 0 || int64(len(sink.events)) != sum.Events {
		t.Errorf("interrupted import: loader closed %d times, %d events stored, %d reported; want what was read kept", sink.closed, len(sink.events), sum.Events)
	}
}

// TestImportOrdersByTime: an import reads files in the order of the
// times their names give, whatever folders they are in, so that
// detection sees events roughly in event time.
func TestImportOrdersByTime(t *testing.T) {
	paths := []string{
		"README.md",
		"AWSLogs/111111111111/CloudTrail/us-east-1/2024/07/11/111111111111_CloudTrail_us-east-1_20240711T0005Z_a.json.gz",
		"AWSLogs/111111111111/CloudTrail/us-east-1/2024/07/12/111111111111_CloudTrail_us-east-1_20240712T2355Z_b.json.gz",
		"AWSLogs/222222222222/CloudTrail/eu-west-1/2024/07/10/222222222222_CloudTrail_eu-west-1_20240710T1200Z_c.json.gz",
		"AWSLogs/222222222222/CloudTrail/eu-west-1/2024/07/11/222222222222_CloudTrail_eu-west-1_20240711T2300Z_d.json.gz",
		"insights-activity-logs/resourceId=/SUBSCRIPTIONS/X/y=2024/m=07/d=11/h=12/m=00/PT1H.json",
		"cloudaudit.googleapis.com/activity/2024/07/11/06:00:00_06:59:59_S0.json",
		"notes.txt",
	}
	var files []file
	for _, p := range paths {
		files = append(files, file{path: p})
	}
	byTime(files)
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f.path))
	}
	want := []string{
		"222222222222_CloudTrail_eu-west-1_20240710T1200Z_c.json.gz",
		"111111111111_CloudTrail_us-east-1_20240711T0005Z_a.json.gz",
		"06:00:00_06:59:59_S0.json",
		"PT1H.json",
		"222222222222_CloudTrail_eu-west-1_20240711T2300Z_d.json.gz",
		"111111111111_CloudTrail_us-east-1_20240712T2355Z_b.json.gz",
		"README.md",
		"notes.txt",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
