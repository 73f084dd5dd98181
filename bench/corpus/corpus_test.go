package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const fixtures = "../../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs"

// files returns the corpus files under dir, by path relative to it.
func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(filepath.Join(dir, "AWSLogs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuild(t *testing.T) {
	opts := Options{Fixtures: fixtures, Events: 12000, Seed: 7, NeedleEvery: 500}
	dir := t.TempDir()
	m, err := Build(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if m.Templates != 310 || m.Events != 12000 {
		t.Errorf("manifest %+v", m)
	}
	got := files(t, dir)
	if len(got) != m.Files || m.Files < 3 || m.Files > 12 {
		t.Errorf("%d files, manifest says %d; want 12000 events in files of 1000 to 5000", len(got), m.Files)
	}

	// Every file is a CloudTrail delivery: records of one account and
	// region, in time order, within the corpus' span.
	events, names, needles := 0, map[string]int{}, 0
	ids := map[string]bool{}
	for path, b := range got {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Records []struct {
				EventID, EventName, EventTime, SourceIPAddress, AWSRegion, RecipientAccountID string
			}
		}
		if err := json.Unmarshal(doc, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		parts := strings.Split(path, string(filepath.Separator))
		var last time.Time
		for _, r := range f.Records {
			events++
			names[r.EventName]++
			ids[r.EventID] = true
			if r.RecipientAccountID != parts[1] || r.AWSRegion != parts[3] {
				t.Fatalf("%s: record of account %s, region %s", path, r.RecipientAccountID, r.AWSRegion)
			}
			ts, err := time.Parse(time.RFC3339, r.EventTime)
			if err != nil || ts.Before(last) || ts.Before(m.Start) || !ts.Before(m.End) {
				t.Fatalf("%s: eventTime %q after %v (%v)", path, r.EventTime, last, err)
			}
			last = ts
			if strings.HasPrefix(r.SourceIPAddress, "203.0.113.") {
				needles++
			}
		}
	}
	if events != 12000 || len(ids) != 12000 {
		t.Errorf("%d events, %d distinct ids; want 12000", events, len(ids))
	}
	total := 0
	for _, n := range m.Needles {
		total += n
	}
	if needles != total || needles == 0 {
		t.Errorf("%d needle addresses found, manifest says %d", needles, total)
	}
	for name, n := range names {
		if m.EventNames[name] != n {
			t.Errorf("%s: %d events, manifest says %d", name, n, m.EventNames[name])
		}
	}

	// The same options give the same bytes; Ensure finds the corpus.
	again := t.TempDir()
	if _, err := Build(again, opts); err != nil {
		t.Fatal(err)
	}
	other := files(t, again)
	for path, b := range got {
		if !bytes.Equal(other[path], b) {
			t.Fatalf("%s differs between two builds", path)
		}
	}
	if _, built, err := Ensure(dir, opts); err != nil || built {
		t.Errorf("Ensure rebuilt a complete corpus (%v)", err)
	}
}
