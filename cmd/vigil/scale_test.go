package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vigilsec/vigil/bus/bustest"
	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/meta/metatest"
	"github.com/vigilsec/vigil/store/clickhouse"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
	"github.com/vigilsec/vigil/web"
	"golang.org/x/mod/sumdb/tlog"
)

// scaleOut is the engines of a scale-out on loopback: a three-node
// JetStream cluster in the test's process, two ClickHouse shards and a
// PostgreSQL database, and the config that names them.
type scaleOut struct {
	nats, shards string   // the servers' URLs, as a YAML list's items
	shardURLs    []string // ClickHouse's
	natsURL      string   // one of the NATS servers
	config       string   // a node's vigil.yaml
	ledgers      string
	joined       int // data directories joined to the engines

	// The nodes importData started, and the events it sent, by data
	// directory.
	running  map[string]*served
	imported map[string]int
}

func startScaleOut(t *testing.T) *scaleOut {
	t.Helper()
	shards := chtest.Start(t, 2)
	cluster := bustest.Start(t, 3)
	pg := metatest.Postgres(t)
	var urls []string
	for _, s := range shards {
		urls = append(urls, fmt.Sprintf("%q", s.URL))
	}
	var nats []string
	for _, n := range cluster.Nodes {
		nats = append(nats, fmt.Sprintf("%q", n.URL()))
	}
	so := &scaleOut{nats: strings.Join(nats, ", "), shards: strings.Join(urls, ", "), natsURL: cluster.Nodes[0].URL()}
	for _, sh := range shards {
		so.shardURLs = append(so.shardURLs, sh.URL)
	}
	so.ledgers = filepath.Join(t.TempDir(), "ledgers")
	so.config = fmt.Sprintf("meta:\n  url: %q\n%s", pg, so.section(so.ledgers, ""))
	return so
}

// section is the config's scale section; a name, if given, names the
// node, its streams on the bus and its ClickHouse database.
func (so *scaleOut) section(ledgers, name string) string {
	// The ledgers sign a checkpoint every second, so that proofs, which
	// a query node serves from the checkpoints the process nodes sign,
	// need not wait a minute.
	sec := fmt.Sprintf(`ledger:
  checkpoint_every: 1s
scale:
  nats: [%s]
  partitions: 4
  ledgers: %q
  clickhouse:
    shards: [%s]
    cluster: %s
`, so.nats, ledgers, so.shards, chtest.Cluster)
	if name != "" {
		sec += fmt.Sprintf("    database: %s\n  name: %s\n  node: %s\n", name, name, name)
	}
	return sec
}

// scaleEngines, when set, makes serve and serveWith run vigil as a node
// of a scale-out (--role all) on these engines, not embedded:
// TestEndToEndScaleOut runs end-to-end tests so.
var scaleEngines *scaleOut

// join makes the data directory's config a scale-out node's, unless it
// is one already (a server started again on it): its own PostgreSQL
// database, ClickHouse database and names on the bus, so that the tests
// sharing the engines see nothing of one another. Without engines (so
// is nil), it does nothing.
func (so *scaleOut) join(t *testing.T, data string) {
	t.Helper()
	if so == nil {
		return
	}
	path := filepath.Join(data, configFile)
	conf, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if strings.Contains(string(conf), "\nscale:") {
		return
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	so.joined++
	name := fmt.Sprint("e2e", so.joined)
	conf = fmt.Appendf(conf, "\nmeta:\n  url: %q\n%s", metatest.Postgres(t), so.section(filepath.Join(data, "ledgers"), name))
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
}

// importData runs vigil import on data with args, and returns what it
// printed. On a scale-out the import sends to the bus, and a node stores
// what it sent: the data directory joins the engines first, a node is
// started on it (which serve then returns rather than start another),
// and importData waits until the node has stored every event sent.
func importData(t *testing.T, data string, args ...string) string {
	t.Helper()
	so := scaleEngines
	if so == nil {
		return mustVigil(t, append([]string{"import", "--data", data}, args...)...)
	}
	so.join(t, data)
	out := mustVigil(t, append([]string{"import", "--data", data}, args...)...)
	var n int
	if _, err := fmt.Sscanf(out, "imported %d events", &n); err != nil {
		t.Fatalf("vigil import printed %q", out)
	}
	if so.imported == nil {
		so.imported, so.running = map[string]int{}, map[string]*served{}
	}
	so.imported[data] += n
	srv := so.running[data]
	if srv == nil {
		// Origins whose issue another partition held come late
		// (eventually): soon after the events are stored, here.
		every, lag := backfillEvery, storeLag
		backfillEvery, storeLag = 100*time.Millisecond, 2*time.Second
		t.Cleanup(func() { backfillEvery, storeLag = every, lag })
		srv = serveWith(t, data, "--listen", "127.0.0.1:0")
		so.running[data] = srv
		t.Cleanup(func() { delete(so.running, data) })
	}
	srv.waitStored(so.imported[data])
	return out
}

// served returns the node importData started on data, if any.
func (so *scaleOut) served(data string) *served {
	if so == nil {
		return nil
	}
	return so.running[data]
}

// busMessages is how many messages a stream of the bus holds.
func (so *scaleOut) busMessages(t *testing.T, stream string) uint64 {
	t.Helper()
	nc, err := nats.Connect(so.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// node starts vigil serve --role role as a node of the scale-out, on a
// data directory of its own.
func (so *scaleOut) node(t *testing.T, role, name string) *served {
	t.Helper()
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(so.config), 0o600); err != nil {
		t.Fatal(err)
	}
	return serveWith(t, data, "--listen", "127.0.0.1:0", "--role", role, "--node", name)
}

// TestServeScaleOut runs vigil serve as the nodes of a scale-out, each
// in its role: an ingest node takes CloudTrail logs over HTTP and a bad
// record; two process nodes share the partitions; a query node finds
// the events in ClickHouse, the detections and alerts in PostgreSQL,
// the bad record in the quarantine, and exports them as a set of the
// partitions' bundles that verifies offline. Each node answers for its
// role only.
func TestServeScaleOut(t *testing.T) {
	needFixtures(t)
	so := startScaleOut(t)
	in := so.node(t, roleIngest, "in")
	so.node(t, roleProcess, "p1")
	so.node(t, roleProcess, "p2")
	q := so.node(t, roleQuery, "q")

	trail, err := os.ReadFile(filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	if err != nil {
		t.Fatal(err)
	}
	var records []json.RawMessage
	if err := json.Unmarshal(trail, &records); err != nil {
		t.Fatal(err)
	}
	in.call("POST", "/api/v1/ingest?format=aws.cloudtrail&tenant=team-a", trail)
	in.call("POST", "/api/v1/ingest?format=json&tenant=team-a", []byte("{\"broken\": \n"))

	q.wait("the events in ClickHouse", func() bool {
		_, rows, _ := q.searchAs(q.token, "tenant:team-a | stats count() as n")
		return len(rows) == 1 && fmt.Sprint(rows[0]["n"]) == fmt.Sprint(len(records))
	})
	_, rows, body := q.searchAs(q.token, "action:StopLogging")
	if len(rows) == 0 || rows[0]["tenant"] != "team-a" {
		t.Fatalf("no StopLogging event of team-a: %s", body)
	}
	// The query node proves the event from its partition's ledger, as
	// the process node that holds it wrote and signed it.
	f, _ := rows[0]["seq"].(float64) // JSON's number; seqs stay below 2^53
	seq := uint64(f)
	var proof web.Proof
	q.wait("the event's proof", func() bool {
		code, out := q.apiAs(q.token, "GET", fmt.Sprintf("/api/v1/events/%d/proof", seq), nil)
		return code == http.StatusOK && json.Unmarshal(out, &proof) == nil
	})
	_, verifier, vkey, err := ledger.LoadOrCreateKey(filepath.Join(so.ledgers, keyFile), ledgerName)
	if err != nil {
		t.Fatal(err)
	}
	part, index := ingest.SeqPartition(seq)
	cp, err := ledger.ParseCheckpoint([]byte(proof.Checkpoint), verifier)
	if err != nil || cp.Name != fmt.Sprintf("%s-p%d", ledgerName, part) {
		t.Fatalf("the proof's checkpoint %q: %v", cp.Name, err)
	}
	var hashes tlog.RecordProof
	for _, h := range proof.Proof {
		var x tlog.Hash
		b, _ := base64.StdEncoding.DecodeString(h)
		copy(x[:], b)
		hashes = append(hashes, x)
	}
	leaf, _ := tlog.ParseHash(proof.LeafHash)
	if proof.Index != index || tlog.CheckRecord(hashes, cp.Size, cp.Hash, proof.Index, leaf) != nil {
		t.Errorf("the proof of seq %d (partition %d, index %d) does not check: %+v", seq, part, index, proof)
	}
	content, _ := base64.StdEncoding.DecodeString(proof.Content)
	if ledger.LeafHash(content) != leaf || !strings.Contains(string(content), "StopLogging") {
		t.Errorf("the proof's content is not the event's: %q", content)
	}

	q.wait("the StopLogging detection", func() bool {
		return strings.Contains(string(q.call("GET", "/api/v1/detections?tenant=team-a", nil)), "StopLogging")
	})
	q.wait("an alert", func() bool {
		var alerts []map[string]any
		json.Unmarshal(q.call("GET", "/api/v1/alerts?tenant=team-a", nil), &alerts)
		return len(alerts) > 0
	})
	q.wait("the broken record in quarantine", func() bool {
		return strings.Contains(string(q.call("GET", "/api/v1/search?quarantine=1&q=broken", nil)), "broken")
	})

	var cov coverageReport
	json.Unmarshal(q.call("GET", "/api/v1/coverage?days=1", nil), &cov)
	if len(cov.Sources) != 1 || cov.Sources[0].Source != "aws.cloudtrail" || cov.Sources[0].Events != int64(len(records)) {
		t.Errorf("coverage: %+v, want the %d CloudTrail events", cov.Sources, len(records))
	}

	// An export through the query node is a set of the partitions'
	// bundles, which verifies offline with the partitions' key.
	var x struct {
		Link   string
		Events int
	}
	code, out := q.apiAs(q.token, "POST", "/api/v1/exports", map[string]any{"query": "source:aws.cloudtrail", "from": "2000-01-01", "reason": "case 1"})
	if err := json.Unmarshal(out, &x); err != nil || code != http.StatusCreated || x.Events != len(records) {
		t.Fatalf("export: %d %s, want the %d CloudTrail events", code, out, len(records))
	}
	resp, err := http.Get(q.base + x.Link)
	if err != nil {
		t.Fatal(err)
	}
	zipped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	set := filepath.Join(t.TempDir(), "case-1.zip")
	if err := os.WriteFile(set, zipped, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustVigil(t, "verify-bundle", "--key", vkey, set); !strings.Contains(out, fmt.Sprintf("bundles, %d events", len(records))) {
		t.Errorf("verify-bundle of the export:\n%s", out)
	}

	// Each node serves its role: the ingest node searches nothing, the
	// query node takes no events; both answer on health.
	for _, tc := range []struct {
		node *served
		path string
		want int
	}{
		{in, "/api/v1/search?q=*", http.StatusNotFound},
		{q, "/api/v1/ingest?format=json", http.StatusNotFound},
		{in, "/healthz", http.StatusOK},
		{q, "/healthz", http.StatusOK},
	} {
		method := "GET"
		if strings.Contains(tc.path, "ingest") {
			method = "POST"
		}
		if code, out := tc.node.apiAs(tc.node.token, method, tc.path, nil); code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", method, tc.path, code, out, tc.want)
		}
	}

	// Each partition's ledger was written by the process nodes.
	for p := range 4 {
		if _, err := os.Stat(filepath.Join(so.ledgers, fmt.Sprint("p", p))); err != nil {
			t.Errorf("partition %d has no ledger: %v", p, err)
		}
	}

	// An operator imports with the deployment's config, no server of
	// their own: to the bus. The same file for two tenants is two
	// imports; for one tenant again (a retry) within the bus's window,
	// it is stored once.
	operator := t.TempDir()
	if err := os.WriteFile(filepath.Join(operator, configFile), []byte(so.config), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json")
	var onBus []uint64 // the events stream's messages after each import
	for _, tenant := range []string{"team-b", "team-c", "team-b"} {
		out := mustVigil(t, "import", "--data", operator, "--tenant", tenant, file)
		if !strings.Contains(out, fmt.Sprintf("imported %d events", len(records))) || !strings.Contains(out, "sent to the scale-out's bus") {
			t.Errorf("vigil import for %s:\n%s", tenant, out)
		}
		onBus = append(onBus, so.busMessages(t, "vigil-events"))
	}
	if onBus[0] == 0 || onBus[1] == onBus[0] || onBus[2] != onBus[1] {
		t.Errorf("the events stream held %v messages after each import: want more after each tenant's, none more after the second of one", onBus)
	}
	q.wait("the imports in ClickHouse", func() bool {
		_, rows, _ := q.searchAs(q.token, "tenant:team-b OR tenant:team-c | stats count() by tenant")
		return len(rows) == 2 && rows[0]["count"] == float64(len(records)) && rows[1]["count"] == float64(len(records))
	})
	if _, err := os.Stat(filepath.Join(operator, storeFile)); !os.IsNotExist(err) {
		t.Errorf("the import made an embedded store: %v", err)
	}

	// The operator redacts team-c's events while the nodes serve: the
	// process nodes erase them from the partitions' ledgers, then from
	// ClickHouse, and vigil redact returns once every partition has.
	// team-b's copies of the same records stay, and the ledgers verify,
	// listing the redaction.
	_, rows, _ = q.searchAs(q.token, "tenant:team-c")
	if len(rows) != len(records) {
		t.Fatalf("team-c has %d events before the redaction, want %d", len(rows), len(records))
	}
	f, _ = rows[0]["seq"].(float64)
	redacted := uint64(f)
	for _, tc := range []struct{ query, want string }{
		{"tenant:team-c", fmt.Sprintf("%d events match; nothing erased", len(records))},
		// The audit trail is no one's to erase.
		{"source:vigil.audit OR tenant:_system", "0 events match"},
	} {
		if out := mustVigil(t, "redact", "--data", operator, "--query", tc.query, "--reason", "gdpr request 7", "-n"); !strings.HasPrefix(out, tc.want) {
			t.Errorf("vigil redact -n %s: %q, want %q", tc.query, out, tc.want)
		}
	}
	if code, _, errOut := vigil(t, "redact", "--data", operator, "--query", "tenant:team-c | head 1", "--reason", "x"); code == 0 || !strings.Contains(errOut, "leave out the commands") {
		t.Errorf("vigil redact of a query with commands: exit %d, %s", code, errOut)
	}
	said := mustVigil(t, "redact", "--data", operator, "--query", "tenant:team-c", "--reason", "gdpr request 7")
	if want := fmt.Sprintf("erased %d events in 4 partitions", len(records)); !strings.HasPrefix(said, want) {
		t.Errorf("vigil redact: %q, want %q", said, want)
	}
	_, rows, _ = q.searchAs(q.token, "tenant:team-b OR tenant:team-c | stats count() by tenant")
	if len(rows) != 1 || rows[0]["tenant"] != "team-b" || rows[0]["count"] != float64(len(records)) {
		t.Errorf("after the redaction: %v, want team-b's %d events only", rows, len(records))
	}
	code, answer := q.apiAs(q.token, "GET", fmt.Sprintf("/api/v1/events/%d/proof", redacted), nil)
	var gone web.Proof
	if err := json.Unmarshal(answer, &gone); err != nil || code != http.StatusOK || gone.Kind != "redacted" || gone.Redaction != "gdpr request 7" || gone.Content != "" {
		t.Errorf("the proof of a redacted event: %d %s", code, answer)
	}
	said = mustVigil(t, "verify", "--data", operator)
	if !strings.Contains(said, "intact: ") || !strings.Contains(said, `redacted seq `) || !strings.Contains(said, `"gdpr request 7"`) {
		t.Errorf("vigil verify after the redaction:\n%s", said)
	}

	// verify compares ClickHouse with the ledgers: an event deleted
	// there behind the nodes' back is found.
	_, rows, _ = q.searchAs(q.token, "tenant:team-b")
	f, _ = rows[0]["seq"].(float64)
	ch, err := clickhouse.Open(t.Context(), clickhouse.Options{Shards: so.shardURLs, Cluster: chtest.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Delete(t.Context(), []uint64{uint64(f)}); err != nil {
		t.Fatal(err)
	}
	code, said, _ = vigil(t, "verify", "--data", operator)
	if want := fmt.Sprintf("store seq %d: missing", uint64(f)); code != 1 || !strings.Contains(said, want) || !strings.Contains(said, "NOT INTACT") {
		t.Errorf("vigil verify after an event was deleted from ClickHouse: exit %d, want 1 and %q:\n%s", code, want, said)
	}
}

// TestEndToEndScaleOut runs the server's end-to-end tests again, each
// server a node of a scale-out (--role all) on JetStream, ClickHouse and
// PostgreSQL rather than embedded; the imports of those that import go
// through the bus (importData). Left out: TestBackfillOrigins, whose
// imports give origins themselves and whose store is rebuilt from its
// ledger (the embedded store's; TestBackfillOriginsServed runs here).
func TestEndToEndScaleOut(t *testing.T) {
	scaleEngines = startScaleOut(t)
	defer func() { scaleEngines = nil }()
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"AccessMatrix", TestAccessMatrix},
		{"AccessReads", TestAccessReads},
		{"RemoteCLI", TestRemoteCLI},
		{"CrossTenantCorrelation", TestCrossTenantCorrelation},
		{"ServeNotifies", TestServeNotifies},
		{"FirstAdmin", TestFirstAdmin},
		{"ConsoleTenantsServed", TestConsoleTenantsServed},
		{"ConsoleAdminBrowser", TestConsoleAdminBrowser},
		{"ConsoleBrowserCase", TestConsoleBrowserCase},
		{"ConsoleBrowser", TestConsoleBrowser},
		{"ConsoleBrowserPayloads", TestConsoleBrowserPayloads},
		{"ConsoleKeyboard", TestConsoleKeyboard},
		{"ConsoleDarkTheme", TestConsoleDarkTheme},
		{"ConsoleNarrowScreen", TestConsoleNarrowScreen},
		{"ConsoleRulesBrowser", TestConsoleRulesBrowser},
		{"ConsoleEventEnrichment", TestConsoleEventEnrichment},
		{"ConsoleMonitorBrowser", TestConsoleMonitorBrowser},
		{"ConsoleBrowserApprove", TestConsoleBrowserApprove},
		{"OIDCBrowserLogin", TestOIDCBrowserLogin},
		{"ServePlaybooks", TestServePlaybooks},
		{"MetricsServed", TestMetricsServed},
		{"ProbesServed", TestProbesServed},
		{"ScrapeServed", TestScrapeServed},
		{"SilentSource", TestSilentSource},
		{"Who", TestWho},
		{"WhoSnapshot", TestWhoSnapshot},
		{"Coverage", TestCoverage},
		{"CostImport", TestCostImport},
		{"CostAnomalyServed", TestCostAnomalyServed},
		{"FlowRollupImported", TestFlowRollupImported},
		{"BackfillOriginsServed", TestBackfillOriginsServed},
	} {
		t.Run(tc.name, tc.test)
	}
}
