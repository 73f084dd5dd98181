package parse

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// shared is the project's shared test data, beside the repository.
const shared = "../../shared/testdata/"

// testReceived is the receipt time stamped on events in tests, so that
// golden files do not change from run to run.
var testReceived = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// parseFile parses a file (the test data's own path) and returns every
// result, failing the test if the parse itself fails.
func parseFile(t testing.TB, path, format string, opts Options) (string, []Result) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if opts.Received.IsZero() {
		opts.Received = testReceived
	}
	if opts.Tenant == "" {
		opts.Tenant = "default"
	}
	var rs []Result
	used, err := Parse(f, format, opts, func(r Result) error {
		rs = append(rs, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return used, rs
}

// parseString parses in-memory input.
func parseString(t testing.TB, in, format string, opts Options) []Result {
	t.Helper()
	if opts.Received.IsZero() {
		opts.Received = testReceived
	}
	var rs []Result
	if _, err := Parse(bytes.NewReader([]byte(in)), format, opts, func(r Result) error {
		rs = append(rs, r)
		return nil
	}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return rs
}

// events returns the events of rs, failing the test on any quarantined
// record.
func events(t testing.TB, rs []Result) []*event.Event {
	t.Helper()
	var evs []*event.Event
	for _, r := range rs {
		if r.Err != nil {
			t.Errorf("line %d (offset %d) quarantined as %s: %v\n%s", r.Line, r.Offset, r.Format, r.Err, truncate(string(r.Raw), 300))
			continue
		}
		evs = append(evs, r.Event)
	}
	return evs
}

// goldenEvent is the form of an event pinned in golden files: every
// normalized field, and the raw bytes as text.
type goldenEvent struct {
	Time        string   `json:"time"`
	Skewed      bool     `json:"skewed,omitempty"`
	Source      string   `json:"source"`
	Class       string   `json:"class"`
	ID          string   `json:"id,omitempty"`
	Provider    string   `json:"provider,omitempty"`
	Account     string   `json:"account,omitempty"`
	Region      string   `json:"region,omitempty"`
	Environment string   `json:"environment,omitempty"`
	ActorID     string   `json:"actor_id,omitempty"`
	ActorType   string   `json:"actor_type,omitempty"`
	ActorName   string   `json:"actor,omitempty"`
	Session     string   `json:"session,omitempty"`
	SrcIP       string   `json:"src_ip,omitempty"`
	DstIP       string   `json:"dst_ip,omitempty"`
	SrcPort     uint16   `json:"src_port,omitempty"`
	DstPort     uint16   `json:"dst_port,omitempty"`
	Host        string   `json:"host,omitempty"`
	UserAgent   string   `json:"user_agent,omitempty"`
	Service     string   `json:"service,omitempty"`
	Action      string   `json:"action,omitempty"`
	Resources   []string `json:"resources,omitempty"`
	Outcome     string   `json:"outcome"`
	ErrorCode   string   `json:"error_code,omitempty"`
	Message     string   `json:"message,omitempty"`
	Origin      string   `json:"origin,omitempty"`
	Doc         any      `json:"doc,omitempty"`
	Raw         string   `json:"raw"`
}

func toGolden(e *event.Event) goldenEvent {
	g := goldenEvent{
		Time: e.Time.Format(time.RFC3339Nano), Skewed: e.Skewed, Source: e.Source, Class: e.Class, ID: e.ID,
		Provider: e.Cloud.Provider, Account: e.Cloud.Account, Region: e.Cloud.Region, Environment: e.Environment,
		ActorID: e.Actor.ID, ActorType: e.Actor.Type, ActorName: e.Actor.Name, Session: e.Session.ID,
		SrcPort: e.SrcPort, DstPort: e.DstPort, Host: e.Host, UserAgent: e.UserAgent,
		Service: e.Service, Action: e.Action, Resources: e.Resources, Outcome: e.Outcome.Result,
		ErrorCode: e.Outcome.Code, Message: e.Message, Origin: e.Origin, Raw: string(e.Raw),
	}
	if e.SrcIP.IsValid() {
		g.SrcIP = e.SrcIP.String()
	}
	if e.DstIP.IsValid() {
		g.DstIP = e.DstIP.String()
	}
	if e.Doc != nil {
		var v any
		if err := json.Unmarshal(e.Doc, &v); err != nil {
			g.Doc = "INVALID JSON: " + err.Error()
		} else {
			g.Doc = v
		}
	}
	return g
}

// checkGolden compares events with testdata/golden/NAME.json, or rewrites
// it under -update.
func checkGolden(t *testing.T, name string, evs []*event.Event) {
	t.Helper()
	gs := make([]goldenEvent, len(evs))
	for i, e := range evs {
		gs[i] = toGolden(e)
	}
	got, err := json.MarshalIndent(gs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: normalized events differ from the golden file; run go test ./parse -update and review the diff\n%s", path, firstDiff(got, want))
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(a, b []byte) string {
	al, bl := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(al) && i < len(bl); i++ {
		if !bytes.Equal(al[i], bl[i]) {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + string(al[i]) + "\nwant: " + string(bl[i])
		}
	}
	return "lengths differ"
}
