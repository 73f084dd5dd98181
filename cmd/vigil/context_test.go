package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/inventory"
)

// writeCityDB writes a GeoLite2-City database placing one network.
func writeCityDB(t *testing.T, path, cidr, country, city string) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 28})
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := net.ParseCIDR(cidr)
	if err := tree.Insert(n, mmdbtype.Map{
		"country": mmdbtype.Map{"iso_code": mmdbtype.String(country)},
		"city":    mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(city)}},
	}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
}

// TestEnrichImport: vigil import with a context section stores each
// event with what the lookups say of it, searchable; --enrich=false
// stores the same events without.
func TestEnrichImport(t *testing.T) {
	needFixtures(t)
	dir := t.TempDir()
	writeCityDB(t, filepath.Join(dir, "city.mmdb"), "18.236.0.0/15", "US", "Boardman")
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("ip-ranges.json", `{"syncToken":"1","createDate":"2024-08-01-00-00-00","prefixes":[
		{"ip_prefix":"18.236.0.0/15","region":"us-west-2","service":"EC2","network_border_group":"us-west-2"}],"ipv6_prefixes":[]}`)
	// A folder of lists.
	if err := os.Mkdir(filepath.Join(dir, "feeds"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("feeds/scanners.txt", "# lab scanners\n18.236.252.0/22\n")
	conf := write("vigil.yaml", fmt.Sprintf(`context:
  geoip: {city: %q}
  cloud_ranges: [%q]
  intel:
    - %q
`, filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "ip-ranges.json"), filepath.Join(dir, "feeds")))

	steal := filepath.Join(stratus, "aws.credential-access.ec2-steal-instance-credentials.json")
	data := t.TempDir()
	mustVigil(t, "import", "--data", data, "--config", conf, steal)
	count := func(data, q string) string {
		rows := ndjson(t, mustVigil(t, "search", "--data", data, "--config", conf, "--format", "ndjson", q+" | stats count()"))
		return fmt.Sprint(rows[0]["count"])
	}
	for q, want := range map[string]string{
		"*":                                  "45",
		"intel:scanners":                     "45",
		"intel_indicator:18.236.253.47":      "45",
		`src_country:US src_city:Boardman`:   "45",
		`src_cloud:"aws/EC2/us-west-2"`:      "45",
		`origin_actor:* OR session_origin:*`: "0", // no issue of the stolen key in this trail
	} {
		if got := count(data, q); got != want {
			t.Errorf("%s: %s events, want %s", q, got, want)
		}
	}

	plain := t.TempDir()
	mustVigil(t, "import", "--data", plain, "--config", conf, "--enrich=false", steal)
	if got := count(plain, "intel:* OR src_country:*"); got != "0" {
		t.Errorf("--enrich=false: %s events enriched", got)
	}
	if got := count(plain, "*"); got != "45" {
		t.Errorf("--enrich=false: %s events", got)
	}

	// A configured file that is not there stops the import, by name.
	bad := write("bad.yaml", "context: {cloud_ranges: [/nonexistent/ip-ranges.json]}\n")
	code, _, errOut := vigil(t, "import", "--data", t.TempDir(), "--config", bad, steal)
	if code == 0 || !strings.Contains(errOut, "context.cloud_ranges") || !strings.Contains(errOut, "/nonexistent/ip-ranges.json") {
		t.Errorf("missing ranges file: exit %d, %s", code, errOut)
	}
}

// TestEnrichInventory: an asset snapshot and the owners map name the
// asset behind an event's address and the teams that answer for it and
// for its account; vigil inventory shows the snapshot's asset.
func TestEnrichInventory(t *testing.T) {
	needFixtures(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The address the Stratus detonation ran from, as a CMDB would list
	// the lab machine that had it.
	write("cmdb.csv", "kind,id,account,region,public_ip,tag:team,from\n"+
		"instance,i-0a1b2c3d4e5f60718,017622104382,us-west-2,18.236.253.47,red-team,2024-08-01T00:00:00Z\n")
	write("owners.yaml", "rules:\n"+
		"  - account: \"017622104382\"\n    team: cloud-platform\n    contact: platform@example.com\n    environment: sandbox\n"+
		"  - tag: team=red-team\n    team: offensive-security\n    contact: redteam@example.com\n")
	conf := write("vigil.yaml", fmt.Sprintf("context:\n  inventory: [%q]\n  owners: %q\n", filepath.Join(dir, "cmdb.csv"), filepath.Join(dir, "owners.yaml")))

	data := t.TempDir()
	mustVigil(t, "import", "--data", data, "--config", conf, filepath.Join(stratus, "aws.credential-access.ec2-steal-instance-credentials.json"))
	rows := ndjson(t, mustVigil(t, "search", "--data", data, "--config", conf, "--format", "ndjson",
		"* | stats count() by src_asset, src_owner, team, environment"))
	if len(rows) != 1 || rows[0]["src_asset"] != "i-0a1b2c3d4e5f60718" || rows[0]["src_owner"] != "offensive-security" ||
		rows[0]["team"] != "cloud-platform" || rows[0]["environment"] != "sandbox" || fmt.Sprint(rows[0]["count"]) != "45" {
		t.Errorf("enriched events: %v", rows)
	}
	out := mustVigil(t, "inventory", "--data", data, "--config", conf, "18.236.253.47")
	if !strings.Contains(out, "instance i-0a1b2c3d4e5f60718") || !strings.Contains(out, "cmdb.csv") {
		t.Errorf("vigil inventory of the snapshot's address:\n%s", out)
	}
	if out := mustVigil(t, "inventory", "--data", data, "--config", conf, "--tenant", "someone-else", "18.236.253.47"); strings.Contains(out, "i-0a1b2c3d4e5f60718") {
		t.Errorf("another tenant sees the snapshot's asset:\n%s", out)
	}
}

// TestIntelReload: the lists are read again when a file changes, and a
// change that breaks them keeps the lists loaded before in use.
func TestIntelReload(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "watch.txt")
	write := func(text string, mtime time.Time) {
		if err := os.WriteFile(list, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		// Set the time, as a second write within the clock's tick may
		// keep the first one's.
		if err := os.Chtimes(list, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)
	write("198.51.100.7\n", t0)
	cfg := &contextConfig{Intel: []intelConfig{{Path: list}}}
	if err := cfg.check("default"); err != nil {
		t.Fatal(err)
	}
	e := &enrichment{Enricher: inventory.NewEnricher(nil), cfg: cfg, logger: slog.New(slog.DiscardHandler)}
	hits := func(addr string) int {
		ev := &event.Event{Time: t0, SrcIP: netip.MustParseAddr(addr), Raw: []byte(`{}`)}
		e.Enrich([]*event.Event{ev})
		return len(ev.Context.Intel)
	}
	reload := func(want bool) {
		t.Helper()
		if got, err := e.reloadIntel(false); err != nil || got != want {
			t.Fatalf("reloadIntel = %v, %v; want %v", got, err, want)
		}
	}
	reload(true)
	reload(false)
	if hits("198.51.100.7") != 1 || hits("198.51.100.8") != 0 {
		t.Fatal("first list not in use")
	}
	write("198.51.100.8\n", t0.Add(time.Minute))
	reload(true)
	if hits("198.51.100.7") != 0 || hits("198.51.100.8") != 1 {
		t.Error("changed list not in use")
	}
	write("not an indicator\n", t0.Add(2*time.Minute))
	if _, err := e.reloadIntel(false); err == nil || !strings.Contains(err.Error(), list) {
		t.Errorf("a list of nothing readable: %v", err)
	}
	if hits("198.51.100.8") != 1 {
		t.Error("a broken reload dropped the lists in use")
	}
	os.Remove(list)
	if _, err := e.reloadIntel(false); err == nil {
		t.Error("a list that is gone: no error")
	}
	if hits("198.51.100.8") != 1 {
		t.Error("a missing file dropped the lists in use")
	}
}

// TestWatch: the owners map and the cloud ranges, two files of them, are
// read again when a file changes, by the loop vigil serve runs; a change
// that cannot be read keeps what was in use, and says so.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)
	write := func(name, text string, mtime time.Time) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	owners := func(team string) string {
		return "rules:\n  - account: \"111111111111\"\n    team: " + team + "\n"
	}
	ranges := func(prefix, service string) string {
		return `{"prefixes":[{"ip_prefix":"` + prefix + `","region":"cn-north-1","service":"` + service + `","network_border_group":"cn-north-1"}]}`
	}
	cfg := &contextConfig{
		Owners:      write("owners.yaml", owners("payments"), t0),
		CloudRanges: []string{write("cn.json", ranges("52.80.0.0/16", "EC2"), t0), write("gov.json", ranges("15.200.0.0/16", "S3"), t0)},
		IntelReload: "20ms",
	}
	if err := cfg.check("default"); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	e := &enrichment{Enricher: inventory.NewEnricher(nil), cfg: cfg, logger: slog.New(slog.NewTextHandler(&log, nil))}
	if err := e.load(); err != nil {
		t.Fatal(err)
	}
	enriched := func() string {
		ev := &event.Event{Time: t0, Cloud: event.Cloud{Account: "111111111111"}, SrcIP: netip.MustParseAddr("52.80.1.1"),
			DstIP: netip.MustParseAddr("15.200.0.9"), Raw: []byte(`{}`)}
		e.Enrich([]*event.Event{ev})
		return ev.Context.Team + " " + ev.Context.Src.Cloud + " " + ev.Context.Dst.Cloud
	}
	if got := enriched(); got != "payments aws/EC2/cn-north-1 aws/S3/cn-north-1" {
		t.Fatalf("at start: %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: never; log:\n%s", what, log.String())
			}
		}
	}
	write("owners.yaml", owners("identity"), t0.Add(time.Minute))
	write("cn.json", ranges("52.80.0.0/16", "DYNAMODB"), t0.Add(time.Minute))
	waitFor("the changed files in use", func() bool { return enriched() == "identity aws/DYNAMODB/cn-north-1 aws/S3/cn-north-1" })

	write("owners.yaml", "rules: [", t0.Add(2*time.Minute))
	write("gov.json", "{", t0.Add(2*time.Minute))
	waitFor("the broken files reported", func() bool {
		return strings.Contains(log.String(), "the map loaded before stays in use") && strings.Contains(log.String(), "the ranges loaded before stay in use")
	})
	if got := enriched(); got != "identity aws/DYNAMODB/cn-north-1 aws/S3/cn-north-1" {
		t.Errorf("after broken changes: %q", got)
	}
}

func TestContextConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, wantErr string }{
		{"context: {intel_reload: 30s, intel: [a.txt, {path: b.csv, name: feodo, format: csv}]}", ""},
		{"context: {intel_reload: -1s}", `context.intel_reload: "-1s" is not a positive duration`},
		{"context: {intel: [{path: b.csv, format: xml}]}", `b.csv: format "xml" is not auto, text, csv or stix`},
		{"context: {intel: [{name: x}]}", "entry 1 has no path"},
		{"context: {geoip: {country: x}}", "field country not found"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, configFile), []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := (&dataFlags{dir: dir}).loadConfig()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.wantErr)
		}
	}
}

// stolenHalves splits the OTRF story's trail into the uses of the stolen
// instance credential and the instance profile's AssumeRole that issued
// it, each a file in dir.
func stolenHalves(t *testing.T, dir string) (usesFile, issuesFile string, uses, issues []byte) {
	t.Helper()
	raw, err := os.ReadFile("../../../shared/testdata/otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if strings.Contains(line, `"eventName":"AssumeRole"`) {
			issues = append(issues, line...)
		} else {
			uses = append(uses, line...)
		}
	}
	if len(issues) == 0 {
		t.Fatal("no AssumeRole in the fixture")
	}
	usesFile, issuesFile = filepath.Join(dir, "uses.json"), filepath.Join(dir, "issues.json")
	if os.WriteFile(usesFile, uses, 0o644) != nil || os.WriteFile(issuesFile, issues, 0o644) != nil {
		t.Fatal("writing the halves")
	}
	return usesFile, issuesFile, uses, issues
}

// instanceOrigin counts the events of data whose origin is the OTRF
// story's instance.
func instanceOrigin(t *testing.T, data string) string {
	t.Helper()
	const instance = `session_origin:"instance/i-0317f6c6b66ae9c40" | stats count()`
	return fmt.Sprint(ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", instance))[0]["count"])
}

// TestBackfillOrigins: the uses of the stolen instance credential of the
// OTRF story are imported before the instance profile's AssumeRole that
// issued it, and the other way round. Either way the uses get the
// instance as their origin once the issue is stored; the store, which
// differs from the ledger in those origins, still verifies against it,
// and a rebuild keeps them.
func TestBackfillOrigins(t *testing.T) {
	needFixtures(t)
	dir := t.TempDir()
	usesFile, issuesFile, _, _ := stolenHalves(t, dir)
	count := func(data string) string { t.Helper(); return instanceOrigin(t, data) }

	data := filepath.Join(dir, "imported")
	mustVigil(t, "import", "--data", data, usesFile)
	if n := count(data); n != "0" {
		t.Fatalf("%s uses have an origin before their issue is imported", n)
	}
	code, _, errOut := vigil(t, "import", "--data", data, issuesFile)
	if code != 0 || !strings.Contains(errOut, "gave 11 events the origin of their credential") {
		t.Errorf("vigil import of the issue: exit %d\n%s", code, errOut)
	}
	if n := count(data); n != "11" {
		t.Errorf("after the issue's import, %s uses have the instance as origin, want 11", n)
	}
	if code, out := verifyData(t, data); code != 0 {
		t.Errorf("vigil verify after a backfill:\n%s", out)
	}
	if out := mustVigil(t, "rebuild", "--data", data); !strings.Contains(out, "carried over 11 origins") {
		t.Errorf("vigil rebuild:\n%s", out)
	}
	if n := count(data); n != "11" {
		t.Errorf("after a rebuild, %s uses have the instance as origin, want 11", n)
	}
	if code, out := verifyData(t, data); code != 0 {
		t.Errorf("vigil verify after a rebuild:\n%s", out)
	}

	// The other way round: the uses of the second import get the origin
	// of the credential issued in the first.
	data = filepath.Join(dir, "reversed")
	mustVigil(t, "import", "--data", data, issuesFile)
	if code, _, errOut := vigil(t, "import", "--data", data, usesFile); code != 0 || !strings.Contains(errOut, "gave 11 events") {
		t.Errorf("vigil import of the uses after the issue: exit %d\n%s", code, errOut)
	}
	if n := count(data); n != "11" {
		t.Errorf("imported after their issue, %s uses have the instance as origin, want 11", n)
	}

}

// TestBackfillOriginsServed: the uses of the stolen instance credential
// of the OTRF story reach a running server before the AssumeRole that
// issued it; the uses get the instance as their origin once the issue
// is stored.
func TestBackfillOriginsServed(t *testing.T) {
	needFixtures(t)
	every, lag := backfillEvery, storeLag
	backfillEvery, storeLag = 50*time.Millisecond, 2*time.Second // a scale-out's margin for storing
	t.Cleanup(func() { backfillEvery, storeLag = every, lag })
	dir := t.TempDir()
	_, _, uses, issues := stolenHalves(t, dir)
	data := filepath.Join(dir, "served")
	srv := serve(t, data)
	srv.call("POST", "/api/v1/ingest?format=aws.cloudtrail", uses)
	srv.waitStored(strings.Count(string(uses), "\n")) // on a scale-out, as the partitions store them
	if n := instanceOrigin(t, data); n != "0" {
		t.Fatalf("%s uses have an origin before their issue arrived", n)
	}
	srv.call("POST", "/api/v1/ingest?format=aws.cloudtrail", issues)
	srv.wait("the uses' origin", func() bool { return instanceOrigin(t, data) == "11" })
	// It says so once the store has them.
	srv.wait("the server saying it gave events their origin", func() bool {
		return strings.Contains(srv.log.String(), "gave events the origin of their credential")
	})
}

// TestReloadWaitsForFilesToSettle: the watch leaves a file changed
// within the last second alone, as a tool writing it in place may have
// only truncated it yet: an empty owners map is a valid one, and was
// once read so (TestWatch failed in CI with the team gone). A reload
// at start does not wait.
func TestReloadWaitsForFilesToSettle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "owners.yaml")
	old := time.Now().Add(-time.Hour)
	write := func(text string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write("rules:\n  - account: \"111111111111\"\n    team: payments\n", old)
	e := &enrichment{Enricher: inventory.NewEnricher(nil), cfg: &contextConfig{Owners: path}, logger: slog.New(slog.DiscardHandler)}
	team := func() string {
		ev := &event.Event{Cloud: event.Cloud{Account: "111111111111"}, Raw: []byte(`{}`)}
		e.Enrich([]*event.Event{ev})
		return ev.Context.Team
	}
	if _, err := e.reloadOwners(true); err != nil || team() != "payments" {
		t.Fatalf("a settled file: team %q, %v", team(), err)
	}
	write("", time.Now()) // truncated, the rest not written yet
	if loaded, err := e.reloadOwners(true); err != nil || loaded || team() != "payments" {
		t.Errorf("a file changed just now: loaded %v (%v), team %q", loaded, err, team())
	}
	write("rules:\n  - account: \"111111111111\"\n    team: identity\n", old.Add(time.Minute))
	if loaded, err := e.reloadOwners(true); err != nil || !loaded || team() != "identity" {
		t.Errorf("the file written: loaded %v (%v), team %q", loaded, err, team())
	}
	write("", time.Now())
	if loaded, err := e.reloadOwners(false); err != nil || !loaded || team() != "" {
		t.Errorf("at start, a file changed just now: loaded %v (%v), team %q", loaded, err, team())
	}
}
