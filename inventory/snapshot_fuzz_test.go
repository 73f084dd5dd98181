package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz targets read arbitrary bytes as a snapshot or an owners file,
// and check that the reader never panics, that its errors and skips name
// the file and a line within it, that what it read is well formed, and
// that importing it, twice, keeps the inventory's invariants.

// snapSeeds adds the snapshot fixtures whose names match to a corpus.
func snapSeeds(f *testing.F, pattern string) {
	paths, err := filepath.Glob(filepath.Join("testdata/snapshot", pattern))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds %s: %v", pattern, err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

var snapErrLine = regexp.MustCompile(`^fuzz(?::(\d+))?: `)

// FuzzReadSnapshotJSON: AWS Config items and JSON rows.
func FuzzReadSnapshotJSON(f *testing.F) {
	snapSeeds(f, "*.json")
	snapSeeds(f, "*.ndjson")
	for _, s := range []string{
		`{"configurationItems":[{"configurationItemCaptureTime":1709546400.5,"resourceType":"AWS::EC2::Instance","resourceId":"i-1","configuration":"{\"privateIpAddress\":\"10.0.0.1\"}"}]}`,
		`{"configurationItem":{"configurationItemCaptureTime":"2024-01-01T00:00:00Z","configurationItemStatus":"ResourceDeleted","resourceType":"AWS::S3::Bucket","resourceId":"b"}}`,
		"{\"id\":\"i-1\",\"private_ip\":\"10.0.0.1\"}\n{\"id\":\"i-1\",\"time\":\"2024-01-01\",\"status\":\"deleted\"}\n{\"id\":",
		`[{"asset":{"kind":"user","id":"u"},"attr":"private_ip","value":"::ffff:10.0.0.1","from":"2024-01-01T00:00:00Z","to":"2024-01-02T00:00:00Z"}]`,
		`{"baseConfigurationItems":[],"unprocessedResourceKeys":[]}`, "[]", "{}", "[[]]", `{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(fuzzSnapshot)
}

// FuzzReadSnapshotCSV: CSV rows.
func FuzzReadSnapshotCSV(f *testing.F) {
	snapSeeds(f, "*.csv")
	for _, s := range []string{
		"id,time,to,status,private_ip,public_ip,tags,tag:k\ni-1,2024-01-01,,,10.0.0.1,,a=b,v\ni-1,2024-01-02,,terminated,,,,\n",
		"\ufeffResource Type;Resource ID;Private IPs\nAWS::EC2::Instance;i-1;10.0.0.1 10.0.0.2\n",
		"kind\tid\tfrom\tto\nvm\tx\t1709546400\t1709546500\n",
		"id\n\"i-1\n", "id,\n", "# c\nid\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(fuzzSnapshot)
}

func fuzzSnapshot(t *testing.T, data []byte) {
	// A hang is reported as one: the fuzzer only says a worker stopped.
	done := make(chan bool)
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			panic(fmt.Sprintf("ReadSnapshot or Import hangs on %d bytes: %.200q", len(data), data))
		}
	}()
	at := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	lines := bytes.Count(data, []byte("\n")) + 1
	s, err := ReadSnapshot(bytes.NewReader(data), "fuzz", at)
	if err != nil {
		m := snapErrLine.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("error %q does not name the file", err)
		}
		if m[1] != "" {
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
				t.Fatalf("error at line %d of %d: %v", n, lines, err)
			}
		}
		return
	}
	st := s.Stats
	if st.Skipped < len(st.Skips) || len(st.Skips) > maxSnapshotSkips || len(st.Ignored) > maxSnapshotSkips {
		t.Fatalf("stats: %+v", st)
	}
	if st.Records == 0 && st.Skipped > 0 {
		t.Fatalf("nothing read, and no error: %+v", st)
	}
	for _, sk := range st.Skips {
		if sk.Line < 1 || sk.Line > lines || sk.Reason == "" {
			t.Fatalf("skip %+v, of %d lines", sk, lines)
		}
	}
	for i, f := range s.Facts {
		switch {
		case f.Asset.ID == "" || f.Asset.Kind == "" || f.Attr == "" || f.Value == "":
			t.Fatalf("fact %d incomplete: %+v", i, f)
		case f.From.IsZero() || (!f.To.IsZero() && !f.To.After(f.From)):
			t.Fatalf("fact %d holds over no interval: %+v", i, f)
		case i > 0 && f.From.Before(s.Facts[i-1].From):
			t.Fatalf("facts not ordered by From at %d", i)
		case f.Attr == "private_ip" || f.Attr == "public_ip":
			if ip, err := netip.ParseAddr(f.Value); err != nil || ip.String() != f.Value || ip.Is4In6() {
				t.Fatalf("fact %d: an address not in its canonical form: %q", i, f.Value)
			}
		}
	}
	if _, err := json.Marshal(s.Facts); err != nil {
		t.Fatalf("facts do not write out: %v", err)
	}
	inv := NewInventory()
	inv.Import(s)
	n := inv.Len()
	inv.Import(s)
	if inv.Len() != n {
		t.Fatalf("imported twice: %d facts, were %d", inv.Len(), n)
	}
	checked := map[Asset]bool{}
	for _, f := range s.Facts {
		if !checked[f.Asset] {
			checked[f.Asset] = true
			for _, g := range inv.Facts(f.Asset, time.Time{}) {
				if !g.To.IsZero() && g.To.Before(g.From) {
					t.Fatalf("a fact ends before it begins: %+v", g)
				}
			}
		}
		if (f.Attr != "private_ip" && f.Attr != "public_ip") || !f.To.IsZero() {
			continue
		}
		// An address the snapshot left open is held when it began: by
		// its asset, if by no other.
		a, ok := inv.AssetAt(netip.MustParseAddr(f.Value), f.From)
		var holders []Fact
		for _, g := range inv.Who(f.Value, f.From) {
			if g.Attr == "private_ip" || g.Attr == "public_ip" {
				holders = append(holders, g)
			}
		}
		if !ok || (len(holders) == 1 && a.key() != f.Asset.key()) {
			t.Fatalf("%s, open from %v, held by %v %v, want %v", f.Value, f.From, a, ok, f.Asset)
		}
	}
}

// FuzzLoadOwners: owners files.
func FuzzLoadOwners(f *testing.F) {
	data, err := os.ReadFile("testdata/snapshot/owners.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data, "123456789012", "team", "payments")
	f.Add([]byte("rules:\n  - tag: a=b=c\n    team: x\n  - account: A\n    environment: e\n"), "a", "a", "b=c")
	f.Add([]byte("rules: [{subscription: s, contact: x@y.z}]"), "S", "", "")
	f.Fuzz(func(t *testing.T, data []byte, account, key, value string) {
		o, err := LoadOwners(bytes.NewReader(data), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		w, ok := o.Of(account, func(k string) (string, bool) { return value, k == key })
		if !ok && w != (Owner{}) {
			t.Fatalf("no owner, but %+v", w)
		}
		// Accounts match without regard to ASCII case.
		if len(account) <= 64 {
			w1, ok1 := o.Of(account, nil)
			w2, ok2 := o.Of(asciiLower(account), nil)
			if w1 != w2 || ok1 != ok2 {
				t.Fatalf("Of(%q) = %+v %v, but Of(%q) = %+v %v", account, w1, ok1, asciiLower(account), w2, ok2)
			}
		}
	})
}
