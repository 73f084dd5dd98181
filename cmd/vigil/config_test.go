package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestConfigRetention(t *testing.T) {
	tests := []struct {
		yaml    string
		wantErr string
		check   func(*config) bool
	}{
		{"", "", func(c *config) bool { return !c.Retention.configured() && c.Ledger.checkpointEvery == time.Minute }},
		{"retention: {default: 90d, tenants: {acme: 720h, keep: 0}}", "", func(c *config) bool {
			p := c.Retention.policy
			return c.Retention.configured() && p.Default == 90*24*time.Hour && p.Tenants["acme"] == 30*24*time.Hour && p.Tenants["keep"] == 0
		}},
		{"retention: {legal_holds: [{tenant: acme, from: 2024-07-01, to: '2024-08-01T12:00:00Z', reason: case 42}]}", "", func(c *config) bool {
			h := c.Retention.policy.Holds
			return len(h) == 1 && h[0].Tenant == "acme" && h[0].From.Equal(time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)) &&
				h[0].To.Equal(time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)) && !c.Retention.configured()
		}},
		{"ledger: {checkpoint_every: 10s, segment_bytes: 1000000, witnesses: [/mnt/witness/vigil.notes]}", "", func(c *config) bool {
			return c.Ledger.checkpointEvery == 10*time.Second && c.Ledger.SegmentBytes == 1000000 && len(c.Ledger.Witnesses) == 1
		}},
		{"retention: {default: ninety}", `retention.default: "ninety" is not a duration`, nil},
		{"retention: {default: -5d}", `is not a number of days`, nil},
		{"retention: {tenants: {acme: 1y}}", `retention.tenants.acme`, nil},
		{"retention: {tenants: {_system: 30d}}", `retention.tenants._system: the audit trail is kept at least 365 days`, nil},
		{"retention: {tenants: {_system: 400d}}", "", func(c *config) bool { return c.Retention.policy.Tenants["_system"] == 400*24*time.Hour }},
		{"retention: {legal_holds: [{tenant: acme}]}", `a hold needs a reason`, nil},
		{"retention: {legal_holds: [{from: yesterday, reason: r}]}", `"yesterday" is not an RFC 3339 time or a date`, nil},
		{"ledger: {checkpoint_every: 0s}", `ledger.checkpoint_every: "0s" is not a positive duration`, nil},
		{"retention: {days: 3}", `field days not found`, nil},
		// The scale-out's engines, checked before anything connects.
		{scaleYAML, "", func(c *config) bool {
			sc := c.Scale
			return sc.configured() && sc.Partitions == 16 && sc.Replicas == 3 && sc.Name == "vigil" && len(sc.NATS) == 2 && sc.ClickHouse.Cluster == "vigil"
		}},
		{"scale: {nats: [nats://n:4222], clickhouse: {shards: [http://c:8123], cluster: vigil}}", "meta.url: a scale-out shares its metadata", nil},
		{scaleYAML + "  partitions: 5000\n", "scale.partitions: 5000: between 1 and 1024", nil},
		{scaleYAML + "  replicas: 7\n", "scale.replicas: 7", nil},
		{scaleYAML + "  name: \"vigil prod\"\n", `scale.name: "vigil prod"`, nil},
		{"meta: {url: postgres://db/vigil}\nscale: {nats: [http://n:4222], clickhouse: {shards: [http://c:8123], cluster: vigil}}", "scale.nats[0]", nil},
		{"meta: {url: postgres://db/vigil}\nscale: {nats: [nats://n:4222], clickhouse: {shards: [http://c:8123]}}", "scale.clickhouse.cluster", nil},
		{"meta: {url: postgres://db/vigil}\nscale: {clickhouse: {shards: [http://c:8123], cluster: vigil}}", "scale.nats: name the NATS servers", nil},
		// What one node runs, the scale-out runs too.
		{scaleYAML + "playbooks: {dir: /etc/vigil/playbooks}\nmonitor: {scrape: [{name: node, url: \"http://127.0.0.1:9100/metrics\", every: 1m}]}\n", "", func(c *config) bool {
			return c.Scale.configured() && c.Playbooks.Dir == "/etc/vigil/playbooks" && len(c.Monitor.Scrape) == 1
		}},
		{scaleYAML + "retention: {default: 90d}\n", "", func(c *config) bool { return c.Retention.configured() }},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, configFile), []byte(tt.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		d := &dataFlags{dir: dir}
		c, err := d.loadConfig()
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tt.yaml, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.yaml, err)
		case !tt.check(c):
			t.Errorf("%s: config %+v", tt.yaml, c)
		}
	}
}

// TestReadmeConfig checks that the configuration the README,
// docs/integrity.md and docs/sources.md show is one vigil accepts, and
// that it shows what each document is about.
func TestReadmeConfig(t *testing.T) {
	for doc, shows := range map[string]func(*config) bool{
		"../../README.md": func(c *config) bool {
			return c.Retention.configured() && len(c.Ledger.Witnesses) > 0 && len(c.Ingest.S3) > 0 && c.Ingest.Syslog.TCP != "" &&
				len(c.Notify.Channels) > 0 && c.alerts.Window > 0
		},
		"../../docs/integrity.md": func(c *config) bool { return c.Retention.configured() && len(c.Ledger.Witnesses) > 0 },
		"../../docs/context.md": func(c *config) bool {
			return len(c.Context.Inventory) == 2 && c.Context.Inventory[1].Tenant == "acme" && c.Context.Inventory[0].Tenant == "default" && c.Context.Owners != ""
		},
		"../../docs/sources.md": func(c *config) bool {
			return c.Ingest.Syslog.TLS != "" && len(c.Ingest.Syslog.ClientTenants) > 0 && len(c.Ingest.S3) > 0 && len(c.Ingest.Dirs) > 0 && c.Ingest.maxBody > 0
		},
	} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(b), "```yaml\n")
		block, _, ok2 := strings.Cut(rest, "```")
		if !ok || !ok2 {
			t.Fatalf("%s: no yaml block", doc)
		}
		dir := t.TempDir()
		// Secrets named as env:NAME and file:PATH get stand-ins.
		for _, m := range regexp.MustCompile(`env:([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(block, -1) {
			t.Setenv(m[1], "stand-in")
		}
		block = regexp.MustCompile(`file:[^\s,}\]]+`).ReplaceAllStringFunc(block, func(string) string {
			f := filepath.Join(dir, "secret")
			os.WriteFile(f, []byte("stand-in\n"), 0o600)
			return "file:" + f
		})
		if err := os.WriteFile(filepath.Join(dir, configFile), []byte(block), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := (&dataFlags{dir: dir}).loadConfig()
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		if !shows(c) {
			t.Errorf("%s: the example lacks what the document is about: %+v", doc, c)
		}
	}
}

// scaleYAML is a scale-out's config: its section is last, open to more
// settings.
const scaleYAML = "meta: {url: postgres://db/vigil}\nscale:\n  nats: [nats://n1:4222, nats://n2:4222]\n  clickhouse: {shards: [http://c:8123], cluster: vigil}\n"

// TestConfigErrorLines checks that a bad setting is named with its line.
func TestConfigErrorLines(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"tenant: acme\nledger:\n  witnesses: []\n  checkpoint_every: soon\n", ":4: ledger.checkpoint_every"},
		{"retention:\n  legal_holds:\n    - tenant: a\n      reason: r\n    - tenant: b\n", ":5: retention.legal_holds[1].reason: a hold needs a reason"},
		{"retention:\n  tenants:\n    acme: 30d\n    beta: forever\n", ":4: retention.tenants.beta"},
		{"max_skew: 1 day\n", ":1: max_skew"},
		{"tenant: acme\nretention: {days: 3}\n", "line 2: field days not found"},
		{"ingest:\n  s3:\n    - prefix: AWSLogs/\n", ":3: ingest.s3[0].bucket: missing"},
		{"ingest:\n  http:\n    max_body: lots\n", `:3: ingest.http.max_body: "lots" is not a size`},
		{"ingest:\n  syslog:\n    tls: :6514\n", ":3: ingest.syslog.tls: a TLS listener needs cert and key"},
		{"ingest:\n  dirs:\n    - path: /x\n      format: nope\n", `:4: ingest.dirs[0].format: unknown format "nope"`},
		{"ingest:\n  s3:\n    - bucket: b\n      access_key_id: AKIA\n", "ingest.s3[0].access_key_id: give both"},
		{"alerts:\n  window: 0s\n", `:2: alerts.window: "0s" is not a positive duration`},
		{"meta:\n  url: mysql://db/vigil\n", `:2: meta.url: not a postgres:// URL`},
		{"notify:\n  channels:\n    - name: a\n      type: slack\n      url: u\n      title: \"{{.Title\"\n", `:6: notify.channels[0].title: template:`},
		{"alerts:\n  rules:\n    r-1:\n      severity: dire\n", `:4: alerts.rules.r-1.severity: "dire" is not a severity`},
		{"alerts:\n  group_by: vigil.actor\n", "line 2: cannot unmarshal"},
		{"notify:\n  channels:\n    - {name: a, type: fax}\n", `:3: notify.channels[0].type: "fax" is not a channel type`},
		{"notify:\n  channels:\n    - name: a\n      type: slack\n", ":3: notify.channels[0].url: missing"},
		{"notify:\n  channels:\n    - {name: a, type: pagerduty, routing_key: env:VIGIL_NO_SUCH_VARIABLE}\n", "notify.channels[0].routing_key: environment variable VIGIL_NO_SUCH_VARIABLE is not set"},
		{"notify:\n  channels:\n    - {name: a, type: slack, url: https://hooks.slack.com/x}\n  routes:\n    - {channels: [b]}\n", `:5: notify.routes[0]: no channel named "b"`},
		{"notify:\n  channels:\n    - {name: a, type: slack, url: u}\n    - {name: a, type: teams, url: u}\n", `notify.channels[1].name: "a" is the name of another channel`},
		{"notify:\n  channels:\n    - {name: a, type: slack, url: u}\n  routes:\n    - channels: [a]\n      quiet_hours: {from: \"22:00\", to: 7am}\n", `:6: notify.routes[0].quiet_hours.to: "7am" is not a time of day`},
		{"notify:\n  channels:\n    - {name: a, type: slack, url: u}\n  routes:\n    - channels: [a]\n      quiet_hours: {from: \"22:00\", to: \"07:00\", time_zone: Mars/Olympus}\n", `notify.routes[0].quiet_hours.time_zone: unknown time zone`},
		{"notify:\n  channels:\n    - {name: a, type: slack, url: u}\n  routes:\n    - channels: [a]\n      escalate: {after: 15m, channels: [b]}\n", `notify.routes[0]: no channel named "b"`},
		{"notify:\n  channels:\n    - {name: a, type: slack, url: u}\n  routes:\n    - channels: [a]\n      escalate: {after: soon, channels: [a]}\n", `notify.routes[0].escalate.after: "soon" is not a positive duration`},
		{"playbooks:\n  approval_expires: soon\n", `:2: playbooks.approval_expires: "soon" is not a positive duration`},
		{"playbooks:\n  deny: [ok, \"[\"]\n", `playbooks.deny[1]: "[": syntax error in pattern`},
		{"playbooks:\n  graph:\n    tenant_id: t\n    client_id: c\n", `:2: playbooks.graph: tenant_id, client_id and client_secret are all needed`},
		{"playbooks:\n  gcp:\n    credentials: file:/no/such/key.json\n", `:3: playbooks.gcp.credentials: open /no/such/key.json`},
		{"playbooks:\n  http:\n    secrets: {jira: env:VIGIL_NO_SUCH_VARIABLE}\n", `playbooks.http.secrets.jira: environment variable VIGIL_NO_SUCH_VARIABLE is not set`},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, configFile), []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := (&dataFlags{dir: dir}).loadConfig()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.yaml, err, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "65536": 65536, "64KiB": 64 << 10, "16 MiB": 16 << 20, "1GB": 1e9, "512B": 512} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "1.5MiB", "lots", "1TB", "99999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}
