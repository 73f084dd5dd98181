package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/exp/api/remote"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// bearer adds a token to each request a client sends.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMetricsServed: Prometheus' remote-write client and the
// OpenTelemetry SDK's OTLP exporter write into a running vigil with an
// ingest token of tenant acme; the series are read back through the
// API, by acme's analyst and by the administrator, and not by globex's;
// a token that may only read cannot write.
func TestMetricsServed(t *testing.T) {
	data := t.TempDir()
	// The tokens made once it serves: in the metadata it serves from,
	// a scale-out's included.
	srv := serve(t, data)
	ingestToken := createToken(t, "--data", data, "--tenant", "acme", "--role", "ingest")
	acme := createToken(t, "--data", data, "--tenant", "acme", "--role", "analyst")
	globex := createToken(t, "--data", data, "--tenant", "globex", "--role", "analyst")

	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond).UTC()
	req := &writev2.Request{
		Symbols: []string{"", "__name__", "network_out_bytes", "instance", "i-web"},
		Timeseries: []*writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []*writev2.Sample{
			{Value: 1e6, Timestamp: t0.UnixMilli()}, {Value: 2e8, Timestamp: t0.Add(time.Minute).UnixMilli()}}}},
	}
	write := func(token string) error {
		api, err := remote.NewAPI(srv.base, remote.WithAPIPath("/api/v1/write"),
			remote.WithAPIHTTPClient(&http.Client{Transport: bearer{token}}), remote.WithAPINoRetryOnRateLimit(),
			remote.WithAPIBackoff(remote.BackoffConfig{Min: time.Millisecond, Max: time.Millisecond, MaxRetries: 1}))
		if err != nil {
			return err
		}
		_, err = api.Write(context.Background(), remote.WriteV2MessageType, req)
		return err
	}
	if err := write(ingestToken); err != nil {
		t.Fatal(err)
	}
	if err := write(acme); err == nil {
		t.Error("an analyst's token wrote metrics")
	}
	// And by OTLP, from the OpenTelemetry SDK.
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.base+"/api/v1/otlp/v1/metrics"),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + ingestToken}))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	gauge, _ := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test").Float64Gauge("network_out_bytes")
	gauge.Record(ctx, 5e8, otelmetric.WithAttributes(attribute.String("instance", "i-web")))
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, &rm); err != nil {
		t.Fatal(err)
	}

	type series struct {
		Metric  string            `json:"metric"`
		Labels  map[string]string `json:"labels"`
		Samples []struct {
			Time  time.Time `json:"time"`
			Value float64   `json:"value"`
		} `json:"samples"`
	}
	read := func(token string) []series {
		t.Helper()
		q := url.Values{"metric": {"network_out_bytes"}, "match": {"instance=i-web"}, "from": {t0.Add(-time.Minute).Format(time.RFC3339)}}
		r, _ := http.NewRequest(http.MethodGet, srv.base+"/api/v1/series?"+q.Encode(), nil)
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/series: %s", resp.Status)
		}
		var out []series
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for name, token := range map[string]string{"acme's analyst": acme, "the administrator": srv.token} {
		got := read(token)
		if len(got) != 2 || got[0].Labels["tenant"] != "acme" || got[1].Labels["tenant"] != "acme" {
			t.Errorf("%s reads %+v, want the remote-write series and the OTLP one", name, got)
			continue
		}
		for _, s := range got {
			switch {
			case len(s.Samples) == 2 && s.Samples[1].Value == 2e8 && s.Samples[0].Time.Equal(t0):
			case len(s.Samples) == 1 && s.Samples[0].Value == 5e8:
			default:
				t.Errorf("%s reads %+v", name, s)
			}
		}
	}
	if got := read(globex); len(got) != 0 {
		t.Errorf("globex's analyst reads acme's series: %+v", got)
	}
}

// TestCostImport: vigil cost import reads a Cost and Usage Report, plain
// and gzip-compressed, into daily cost series that the API gives back;
// a file that is not a cost export is named with why.
func TestCostImport(t *testing.T) {
	data := t.TempDir()
	scaleEngines.join(t, data) // on a scale-out, the costs go to ClickHouse
	cur := "../../monitor/testdata/cost/cur.csv"
	gz := filepath.Join(t.TempDir(), "cur2.csv.gz")
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("line_item_usage_account_id,line_item_usage_start_date,line_item_product_code,line_item_unblended_cost\n111122223333,2026-01-07T00:00:00Z,AmazonEC2,30\n"))
	zw.Close()
	if err := os.WriteFile(gz, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	notCost := filepath.Join(t.TempDir(), "flows.csv")
	if err := os.WriteFile(notCost, []byte("srcaddr,dstaddr\n1.2.3.4,5.6.7.8\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A CUR 2.0 export in Parquet, as Data Exports delivers it, made here
	// with DuckDB from the CSV sample.
	parquet := filepath.Join(t.TempDir(), "cur2.parquet")
	conv, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = conv.Exec(fmt.Sprintf("COPY (SELECT * FROM read_csv(%q, header = true, all_varchar = true)) TO %q (FORMAT parquet)",
		"../../monitor/testdata/cost/cur2.csv", parquet))
	conv.Close()
	if err != nil {
		t.Fatal(err)
	}

	code, out, errOut := vigil(t, "cost", "import", "--data", data, "--tenant", "acme", cur, gz, notCost, parquet)
	if code != 0 || !strings.Contains(out, "cur.csv: 10 rows, 3 skipped: daily cost of 3 account and service pairs, 2026-01-05 to 2026-01-06") ||
		!strings.Contains(errOut, "skipped "+notCost+": cost export: no account, start, cost column") ||
		!strings.Contains(out, "cur2.parquet: 2 rows, 0 skipped: daily cost of 1 account and service pairs, 2026-01-05 to 2026-01-05") {
		t.Errorf("vigil cost import: exit %d\n%s%s", code, out, errOut)
	}
	// The report restated: its days replace what was stored of them, and
	// the days it does not give stay.
	mustVigil(t, "cost", "import", "--data", data, "--tenant", "acme", cur)
	srv := serve(t, data)
	var got []struct {
		Labels  map[string]string `json:"labels"`
		Samples []struct {
			Time  time.Time `json:"time"`
			Value float64   `json:"value"`
		} `json:"samples"`
	}
	q := url.Values{"metric": {"cost"}, "match": {"account=111122223333", "service=AmazonEC2"}, "from": {"2026-01-01"}, "to": {"2026-01-10"}}
	if err := json.Unmarshal(srv.call("GET", "/api/v1/series?"+q.Encode(), nil), &got); err != nil {
		t.Fatal(err)
	}
	// 2026-01-05 was the CUR's 0.192 and the Parquet's 2, summed (the
	// same account and service, in two files of one import), then the
	// CUR's alone, restated; 2026-01-07 stays the gzip's.
	if len(got) != 1 || got[0].Labels["tenant"] != "acme" || got[0].Labels["provider"] != "aws" || len(got[0].Samples) != 3 ||
		math.Abs(got[0].Samples[0].Value-0.192) > 1e-9 || got[0].Samples[1].Value != 24.48 || got[0].Samples[2].Value != 30 {
		t.Errorf("the cost series: %+v", got)
	}
}

// TestProbesServed: a probe of a loopback server, configured for vigil
// serve, records its checks as samples, and the server going down and
// coming back as availability events, searchable.
func TestProbesServed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	up := func() *http.Server {
		t.Helper()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })}
		go s.Serve(ln)
		return s
	}
	web := up()
	data := t.TempDir()
	conf := fmt.Sprintf("monitor:\n  probes:\n    - {name: web, target: \"http://%s/\", every: 1s, timeout: 500ms, labels: {environment: prod}}\n", addr)
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, data)
	count := func(q string) string {
		rows := ndjson(t, mustVigil(t, "search", "--data", data, "--format", "ndjson", q+" | stats count()"))
		return fmt.Sprint(rows[0]["count"])
	}
	// The probe's samples: how many checks found the server up, down.
	checks := func() (ups, downs int) {
		var got []struct {
			Samples []struct {
				Value float64 `json:"value"`
			} `json:"samples"`
		}
		q := url.Values{"metric": {"probe_up"}, "match": {"probe=web"}, "from": {"-1h"}}
		if err := json.Unmarshal(srv.call("GET", "/api/v1/series?"+q.Encode(), nil), &got); err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			for _, x := range s.Samples {
				if x.Value == 1 {
					ups++
				} else {
					downs++
				}
			}
		}
		return ups, downs
	}
	srv.wait("a check finding the server up", func() bool { ups, _ := checks(); return ups > 0 })
	web.Close()
	srv.wait("the probe_down event", func() bool { return count("source:vigil.probe action:probe_down environment:prod") == "1" })
	web = up()
	defer web.Close()
	srv.wait("the probe_up event", func() bool { return count("source:vigil.probe action:probe_up") == "1" })
	ups, downs := checks()
	if ups < 2 || downs < 1 {
		t.Errorf("probe_up samples: %d up, %d down", ups, downs)
	}
	// Its availability over the last hour: the share of checks up.
	var probes []struct {
		Probe  string             `json:"probe"`
		Up     bool               `json:"up"`
		Shares map[string]float64 `json:"availability"`
		Checks map[string]int     `json:"checks"`
	}
	if err := json.Unmarshal(srv.call("GET", "/api/v1/probes", nil), &probes); err != nil {
		t.Fatal(err)
	}
	if len(probes) != 1 || probes[0].Probe != "web" || probes[0].Checks["1h"] < ups+downs ||
		probes[0].Shares["1h"] <= 0 || probes[0].Shares["1h"] >= 1 {
		t.Errorf("probes %+v (checks seen: %d up, %d down)", probes, ups, downs)
	}
}

// TestSilentSource: the Stratus "cloudtrail-stop" detonation reaches a
// running vigil, and then the account's trail sends nothing more; past
// the bound the config gives it, an alert says the source went silent,
// and its event names the StopLogging call, by its event id.
func TestSilentSource(t *testing.T) {
	needFixtures(t)
	every := silenceEvery
	silenceEvery = 100 * time.Millisecond
	t.Cleanup(func() { silenceEvery = every })
	data := t.TempDir()
	conf := "monitor:\n  sources:\n    - {tenant: default, source: aws.cloudtrail, from: \"143434273843\", max_gap: 2s}\n"
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, data)
	stop, err := os.ReadFile(filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv.call("POST", "/api/v1/ingest?format=aws.cloudtrail", stop)

	silent, ev := srv.waitAlert(data, "Log Source Went Silent")
	if silent.Tenant != "default" {
		t.Fatalf("alert %+v", silent)
	}
	msg := fmt.Sprint(ev["message"])
	if ev["account"] != "143434273843" || !strings.Contains(msg, "aws.cloudtrail from 143434273843 has sent nothing since") ||
		!strings.Contains(msg, "before it went quiet: StopLogging") || !strings.Contains(msg, "10163ed2-2253-469d-a5ee-cbc6651f8934") {
		t.Errorf("the alert's event: %v", ev)
	}
}

// TestCostAnomalyServed: five weeks of an account's daily EC2 cost, the
// last two days five times the usual, imported as a Cost and Usage
// Report; vigil serve's default rule raises an alert for the jump, in
// the account's tenant, whose event says what was expected.
func TestCostAnomalyServed(t *testing.T) {
	every := evaluateEvery
	evaluateEvery = 100 * time.Millisecond
	t.Cleanup(func() { evaluateEvery = every })
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var csv strings.Builder
	csv.WriteString("lineItem/UsageAccountId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/ProductCode,lineItem/CurrencyCode,lineItem/UnblendedCost\n")
	for d := 35; d >= 0; d-- {
		day := today.AddDate(0, 0, -d)
		cost := 120.0
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			cost = 60
		}
		cost += float64(d%5) - 2 // a little noise
		if d <= 1 {
			cost *= 5
		}
		fmt.Fprintf(&csv, "111122223333,Usage,%s,AmazonEC2,USD,%.2f\n", day.Format(time.RFC3339), cost)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "cur.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	scaleEngines.join(t, data) // on a scale-out, the costs go to ClickHouse
	mustVigil(t, "cost", "import", "--data", data, "--tenant", "acme", file)
	srv := serve(t, data)
	found, ev := srv.waitAlert(data, "KPI anomaly: cost-jump")
	if found.Tenant != "acme" || found.Severity != "high" {
		t.Fatalf("alert %+v", found)
	}
	if msg := fmt.Sprint(ev["message"]); ev["account"] != "111122223333" || ev["tenant"] != "acme" ||
		!strings.Contains(msg, `cost{account="111122223333"`) || !strings.Contains(msg, "expected") {
		t.Errorf("the anomaly's event: %v", ev)
	}
}

// TestFlowRollupImported: importing AWS's documented flow-log examples
// stores the network use they give, which the API reads back.
func TestFlowRollupImported(t *testing.T) {
	needFixtures(t)
	every := flowsEvery
	flowsEvery = 50 * time.Millisecond // served: stored once quiet that long
	t.Cleanup(func() { flowsEvery = every })
	data := t.TempDir()
	importData(t, data, "--tenant", "acme", "../../../shared/testdata/aws-docs-examples/vpc-flow/default_v2_examples.log")
	srv := serve(t, data)
	var got []struct {
		Labels  map[string]string `json:"labels"`
		Samples []struct {
			Value float64 `json:"value"`
		} `json:"samples"`
	}
	q := url.Values{"metric": {"network_in_bytes"}, "from": {"2015-05-29"}, "to": {"2015-05-30"}}
	// A scale-out's process nodes store it once the flow log is quiet.
	srv.wait("the network use", func() bool {
		if err := json.Unmarshal(srv.call("GET", "/api/v1/series?"+q.Encode(), nil), &got); err != nil {
			t.Fatal(err)
		}
		return len(got) > 0
	})
	if len(got) != 1 || got[0].Labels["interface"] != "eni-1235b8ca123456789" || got[0].Labels["tenant"] != "acme" ||
		len(got[0].Samples) != 1 || got[0].Samples[0].Value != 336 {
		t.Errorf("network_in_bytes: %+v", got)
	}
}

// TestCoverage: after CloudTrail and flow logs are imported, vigil
// coverage names both sources with their counts and accounts, and the
// rules for GCP and Azure as without data; the API says the same, and
// for another tenant's caller, nothing of acme's.
func TestCoverage(t *testing.T) {
	needFixtures(t)
	data := t.TempDir()
	importData(t, data, "--tenant", "acme", filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"),
		"../../../shared/testdata/aws-docs-examples/vpc-flow/default_v2_examples.log")
	type report struct {
		Sources []struct {
			Tenant, Source, From string
			Events               int64
		} `json:"sources"`
		Blind []struct {
			ID, Title, Reason string
		} `json:"rules_without_data"`
	}
	check := func(how string, r report) {
		t.Helper()
		got := map[string]int64{}
		for _, s := range r.Sources {
			got[s.Tenant+" "+s.Source+" "+s.From] = s.Events
		}
		if got["acme aws.cloudtrail 143434273843"] != 1 || got["acme aws.vpcflow 123456789010"] != 7 || len(got) != 2 {
			t.Errorf("%s: sources %v", how, got)
		}
		blind := map[string]string{}
		for _, b := range r.Blind {
			blind[b.Title] = b.Reason
		}
		if !strings.Contains(blind["GCP Logging Sink, Bucket or Log Deleted or Changed"], "nothing from gcp.audit") ||
			!strings.Contains(blind["Azure Diagnostic Setting or Log Profile Deleted"], "nothing from azure.activity") {
			t.Errorf("%s: rules without data %v", how, blind)
		}
		for title := range blind {
			if title == "CloudTrail Logging Stopped, Deleted or Weakened" {
				t.Errorf("%s: a CloudTrail rule is listed without data", how)
			}
		}
	}
	var r report
	if err := json.Unmarshal([]byte(mustVigil(t, "coverage", "--data", data, "--format", "json")), &r); err != nil {
		t.Fatal(err)
	}
	check("vigil coverage", r)
	if out := mustVigil(t, "coverage", "--data", data); !strings.Contains(out, "aws.cloudtrail  143434273843") || !strings.Contains(out, "rules without data") {
		t.Errorf("vigil coverage:\n%s", out)
	}

	globex := createToken(t, "--data", data, "--tenant", "globex", "--role", "analyst")
	srv := serve(t, data)
	var viaAPI report
	if err := json.Unmarshal(srv.call("GET", "/api/v1/coverage?days=30", nil), &viaAPI); err != nil {
		t.Fatal(err)
	}
	check("the API", viaAPI)
	req, _ := http.NewRequest("GET", srv.base+"/api/v1/coverage", nil)
	req.Header.Set("Authorization", "Bearer "+globex)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var other report
	if err := json.NewDecoder(resp.Body).Decode(&other); err != nil || len(other.Sources) != 0 {
		t.Errorf("globex's analyst sees %+v (%v)", other.Sources, err)
	}
}

// servedAlert is what the tests read of an alert.
type servedAlert struct {
	Title, Tenant, Severity string
	Seqs                    []uint64
}

// waitAlert waits for an alert with a title, and for its one event to
// be searchable in data, and returns both.
func (s *served) waitAlert(data, title string) (servedAlert, map[string]any) {
	s.t.Helper()
	var found servedAlert
	s.wait("the alert "+title, func() bool {
		var alerts []servedAlert
		json.Unmarshal(s.call("GET", "/api/v1/alerts", nil), &alerts)
		for _, a := range alerts {
			if a.Title == title {
				found = a
				return true
			}
		}
		return false
	})
	if len(found.Seqs) != 1 {
		s.t.Fatalf("alert %+v: want one event", found)
	}
	var rows []map[string]any
	s.wait("the alert's event in the store", func() bool {
		rows = ndjson(s.t, mustVigil(s.t, "search", "--data", data, "--format", "ndjson", fmt.Sprintf("seq:%d", found.Seqs[0])))
		return len(rows) == 1
	})
	return found, rows[0]
}

// TestScrapeServed: vigil serve reads a Prometheus endpoint the config
// names, and its metrics are read back through the API.
func TestScrapeServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "queue_depth"})
	reg.MustRegister(g)
	g.Set(42)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	data := t.TempDir()
	conf := fmt.Sprintf("monitor:\n  scrape:\n    - {name: app, url: %q, every: 1s, labels: {environment: prod}}\n", target.URL+"/metrics")
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, data)
	srv.wait("the scraped gauge", func() bool {
		var got []struct {
			Labels  map[string]string `json:"labels"`
			Samples []struct {
				Value float64 `json:"value"`
			} `json:"samples"`
		}
		q := url.Values{"metric": {"queue_depth"}, "match": {"scrape=app"}}
		json.Unmarshal(srv.call("GET", "/api/v1/series?"+q.Encode(), nil), &got)
		return len(got) == 1 && got[0].Labels["environment"] == "prod" && len(got[0].Samples) > 0 && got[0].Samples[0].Value == 42
	})
}
