package clickhouse

import (
	"context"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
	"github.com/vigilsec/vigil/store/duckdb"
)

// sampleStore is the samples API of the embedded store, which the
// cluster's must have, with its meaning.
type sampleStore interface {
	AppendSamples(ctx context.Context, tenant string, series []metric.Series) error
	Samples(ctx context.Context, scope query.Scope, name string, match map[string]string, from, to time.Time) ([]metric.Series, error)
	Downsample(ctx context.Context, before time.Time) (int64, error)
	ReplaceSamples(ctx context.Context, tenant string, series []metric.Series) error
}

var (
	_ sampleStore = (*Store)(nil)
	_ sampleStore = (*duckdb.DB)(nil)
)

// sampleStores opens a cluster of two shards with the sample tables, and
// an embedded store, the oracle.
func sampleStores(t *testing.T) (*Store, *duckdb.DB, []*chtest.Shard) {
	t.Helper()
	shards := chtest.Start(t, 2)
	ch := open(t, shards)
	makeSampleTables(t, ch)
	db := oracle(t)
	return ch, db, shards
}

// makeSampleTables makes the sample tables on every shard, as Open does
// once schema() lists them; made twice, they are left as they are.
func makeSampleTables(t *testing.T, s *Store) {
	t.Helper()
	for range 2 {
		for i := range s.opts.Shards {
			for _, stmt := range s.samplesSchema() {
				if _, err := s.exec(context.Background(), i, stmt, nil); err != nil {
					t.Fatalf("shard %d: %s: %v", i+1, stmt, err)
				}
			}
		}
	}
}

// copySeries is a deep copy of series: each store sorts the labels of
// what it is given, and neither is to see the other's.
func copySeries(series []metric.Series) []metric.Series {
	out := make([]metric.Series, len(series))
	for i, s := range series {
		out[i] = metric.Series{Metric: s.Metric, Labels: slices.Clone(s.Labels), Samples: slices.Clone(s.Samples)}
	}
	return out
}

// appendBoth stores a tenant's series in both stores.
func appendBoth(t *testing.T, ch, db sampleStore, tenant string, series ...metric.Series) {
	t.Helper()
	for _, st := range []sampleStore{ch, db} {
		if err := st.AppendSamples(context.Background(), tenant, copySeries(series)); err != nil {
			t.Fatalf("%T: %v", st, err)
		}
	}
}

// seriesLines writes series a line each, their samples oldest first and,
// at one time, by value: either store gives the samples of one time in
// the order it finds them. Values are written exactly.
func seriesLines(ss []metric.Series) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%s%s:", s.Metric, s.Labels)
		xs := slices.Clone(s.Samples)
		slices.SortStableFunc(xs, func(a, b metric.Sample) int {
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			return strings.Compare(strconv.FormatFloat(a.Value, 'g', -1, 64), strconv.FormatFloat(b.Value, 'g', -1, 64))
		})
		for _, x := range xs {
			loc := ""
			if x.Time.Location() != time.UTC {
				loc = "(" + x.Time.Location().String() + ")"
			}
			fmt.Fprintf(&b, " %s%s=%s", x.Time.Format(time.RFC3339Nano), loc, strconv.FormatFloat(x.Value, 'g', -1, 64))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// samplesRead is a call of Samples.
type samplesRead struct {
	name     string
	scope    query.Scope
	metric   string
	match    map[string]string
	from, to time.Time
	series   int // how many series the answer has: the oracle is no oracle of an empty answer
}

// sameSamples reads in both stores and fails the test where the cluster
// answers otherwise than the embedded store or than r.series says. It
// returns the cluster's answer.
func sameSamples(t *testing.T, ch, db sampleStore, r samplesRead) []metric.Series {
	t.Helper()
	ctx := context.Background()
	got, err := ch.Samples(ctx, r.scope, r.metric, r.match, r.from, r.to)
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	want, err := db.Samples(ctx, r.scope, r.metric, r.match, r.from, r.to)
	if err != nil {
		t.Fatalf("%s: DuckDB: %v", r.name, err)
	}
	if g, w := seriesLines(got), seriesLines(want); g != w || (got == nil) != (want == nil) {
		t.Errorf("%s: not as DuckDB: got\n%sDuckDB\n%s", r.name, g, w)
	}
	if len(got) != r.series {
		t.Errorf("%s: %d series, want %d:\n%s", r.name, len(got), r.series, seriesLines(got))
	}
	return got
}

// minutely is a series whose samples are a minute apart from start.
func minutely(name string, labels map[string]string, start time.Time, values ...float64) metric.Series {
	s := metric.Series{Metric: name, Labels: metric.NewLabels(labels)}
	for i, v := range values {
		s.Samples = append(s.Samples, metric.Sample{Time: start.Add(time.Duration(i) * time.Minute), Value: v})
	}
	return s
}

// localRows counts the rows a table holds on each shard, copies
// included, that match where.
func localRows(t *testing.T, s *Store, table, where string) []int {
	t.Helper()
	n := make([]int, len(s.opts.Shards))
	for i := range s.opts.Shards {
		out, err := s.exec(context.Background(), i, "SELECT count() FROM vigil."+table+" WHERE "+where, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n[i], err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
	}
	return n
}

// allShards adds up what localRows counts.
func allShards(ns []int) int {
	total := 0
	for _, n := range ns {
		total += n
	}
	return total
}

// TestSamplesAsDuckDB: the series of a metric come back from a cluster
// of two shards as from the embedded store: the same series and labels,
// the tenant a label, in the same order, each sample exactly, none that
// is not a number, narrowed alike by scope (which no match widens),
// labels and time.
func TestSamplesAsDuckDB(t *testing.T) {
	ch, db, _ := sampleStores(t)
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	const bytesOut = "network_out_bytes"
	web := map[string]string{"account": "111122223333", "instance": "i-web", `odd"name`: "x"}
	db1 := map[string]string{"account": "111122223333", "instance": "i-db"}
	// Written newest first, then one at t0 again: two samples of a time.
	newestFirst := metric.Series{Metric: bytesOut, Labels: metric.NewLabels(web)}
	for i, v := range []float64{3, 2, 1} {
		newestFirst.Samples = append(newestFirst.Samples, metric.Sample{Time: t0.Add(time.Duration(2-i) * time.Minute), Value: v})
	}
	appendBoth(t, ch, db, "acme", newestFirst)
	appendBoth(t, ch, db, "acme", minutely(bytesOut, web, t0, 4))
	appendBoth(t, ch, db, "acme",
		minutely(bytesOut, db1, t0, 10, 11),
		// Not numbers, and values a decimal would not carry exactly.
		minutely(bytesOut, map[string]string{"instance": "i-nan"}, t0, math.NaN()),
		minutely(bytesOut, map[string]string{"instance": "i-mixed"}, t0, 1, math.NaN(), math.Inf(1), math.Inf(-1), 2),
		minutely(bytesOut, map[string]string{"instance": "i-exact"}, t0, 0.1, 1.0/3, 5e-324, math.MaxFloat64, -1e-300, 6.3722346899986316e81),
		// An empty label value; a label of the name tenant, which the
		// tenant's replaces; a label that is not UTF-8.
		minutely(bytesOut, map[string]string{"instance": "i-zone", "zone": ""}, t0, 5),
		minutely(bytesOut, map[string]string{"instance": "i-spoof", "tenant": "globex"}, t0, 6),
		minutely(bytesOut, map[string]string{"instance": "caf\xe9"}, t0, 7),
		// Another metric, and another day.
		minutely("cpu", web, t0, 50),
		minutely(bytesOut, map[string]string{"instance": "i-late"}, t0.Add(24*time.Hour-time.Minute), 8, 9, 10),
	)
	// Enough series to fill both shards.
	var many []metric.Series
	for i := range 20 {
		many = append(many, minutely(bytesOut, map[string]string{"instance": fmt.Sprintf("i-%02d", i)}, t0.Add(time.Duration(i)*time.Second), float64(i), float64(i)/4))
	}
	appendBoth(t, ch, db, "acme", many...)
	appendBoth(t, ch, db, "globex", minutely(bytesOut, web, t0, 99))
	appendBoth(t, ch, db, query.SystemTenant, minutely(bytesOut, web, t0, 42))
	appendBoth(t, ch, db, hostileTenant, minutely(bytesOut, web, t0, 13))

	acme := query.Scope{Tenants: []string{"acme"}}
	hour, day := t0.Add(time.Hour), t0.Add(48*time.Hour)
	// acme's series of the metric with a sample on the first day: web,
	// db1, mixed, exact, zone, spoof, café, late and the twenty.
	const acmeSeries = 8 + 20
	for _, r := range []samplesRead{
		{name: "acme's i-web", scope: acme, match: map[string]string{"instance": "i-web"}, from: t0, to: hour, series: 1},
		{name: "acme's first hour", scope: acme, from: t0, to: hour, series: acmeSeries - 1},
		{name: "acme's two days", scope: acme, from: t0, to: day, series: acmeSeries},
		{name: "every tenant", scope: query.Scope{All: true}, from: t0, to: day, series: acmeSeries + 2},
		{name: "every tenant and the system", scope: query.Scope{All: true, Tenants: []string{query.SystemTenant}}, from: t0, to: day, series: acmeSeries + 3},
		{name: "the system", scope: query.Scope{Tenants: []string{query.SystemTenant}}, from: t0, to: day, series: 1},
		{name: "the tenant label", scope: query.Scope{All: true}, match: map[string]string{"tenant": "globex"}, from: t0, to: day, series: 1},
		{name: "globex naming acme", scope: query.Scope{Tenants: []string{"globex"}}, match: map[string]string{"tenant": "acme"}, from: t0, to: day},
		{name: "a label named tenant", scope: acme, match: map[string]string{"instance": "i-spoof"}, from: t0, to: day, series: 1},
		{name: "a label named tenant is no tenant", scope: query.Scope{All: true}, match: map[string]string{"tenant": "globex", "instance": "i-spoof"}, from: t0, to: day},
		{name: "an empty scope", scope: query.Scope{}, from: t0, to: day},
		{name: "a grant is no scope", scope: query.Scope{Shares: []query.Share{{Grant: "g1", Tenant: "acme"}}}, from: t0, to: day},
		{name: "two tenants, one account", scope: query.Scope{Tenants: []string{"globex", "acme"}}, match: map[string]string{"account": "111122223333"}, from: t0, to: day, series: 3},
		{name: "an empty value is a value", scope: acme, match: map[string]string{"zone": ""}, from: t0, to: day, series: 1},
		{name: "a quoted label name", scope: query.Scope{All: true}, match: map[string]string{`odd"name`: "x"}, from: t0, to: day, series: 3},
		{name: "two labels", scope: acme, match: map[string]string{"account": "111122223333", "instance": "i-db"}, from: t0, to: day, series: 1},
		{name: "a label of none", scope: acme, match: map[string]string{"nothing": "x"}, from: t0, to: day},
		{name: "a hostile value", scope: acme, match: map[string]string{"instance": `i-web' OR '1'='1`}, from: t0, to: day},
		{name: "a hostile tenant", scope: query.Scope{Tenants: []string{hostileTenant}}, from: t0, to: day, series: 1},
		{name: "a hostile tenant's neighbour", scope: query.Scope{Tenants: []string{`team-'a`, `acme' OR '1'='1`}}, from: t0, to: day},
		{name: "another metric", scope: acme, metric: "cpu", from: t0, to: day, series: 1},
		{name: "a metric of none", scope: acme, metric: "nothing", from: t0, to: day},
		{name: "the second minute", scope: acme, match: map[string]string{"instance": "i-web"}, from: t0.Add(time.Minute), to: t0.Add(2 * time.Minute), series: 1},
		{name: "to is not in", scope: acme, match: map[string]string{"instance": "i-db"}, from: t0.Add(-time.Hour), to: t0.Add(time.Minute), series: 1},
		{name: "across midnight", scope: acme, from: t0.Add(24*time.Hour - time.Second), to: t0.Add(25 * time.Hour), series: 1},
		{name: "the next day", scope: acme, from: t0.Add(24 * time.Hour), to: day, series: 1},
		{name: "an empty range", scope: acme, from: hour, to: hour},
		{name: "a backward range", scope: acme, from: hour, to: t0},
		{name: "nanoseconds off", scope: acme, match: map[string]string{"instance": "i-web"}, from: t0.Add(1), to: t0.Add(time.Minute + 1), series: 1},
	} {
		if r.metric == "" {
			r.metric = bytesOut
		}
		got := sameSamples(t, ch, db, r)
		for _, s := range got {
			// Tenant isolation holds whatever the oracle says.
			if tenant := s.Labels.Get("tenant"); !r.scope.All && !slices.Contains(r.scope.Tenants, tenant) ||
				r.scope.All && tenant == query.SystemTenant && !slices.Contains(r.scope.Tenants, tenant) {
				t.Errorf("%s: a series of %q", r.name, tenant)
			}
			for _, x := range s.Samples {
				if math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
					t.Errorf("%s: %s%s has %v", r.name, s.Metric, s.Labels, x.Value)
				}
			}
		}
	}

	// The cases' expectations, written out for a few.
	got, err := ch.Samples(context.Background(), acme, bytesOut, map[string]string{"instance": "i-web"}, t0, hour)
	if err != nil {
		t.Fatal(err)
	}
	if s := seriesLines(got); s != `network_out_bytes{account="111122223333", instance="i-web", odd"name="x", tenant="acme"}: 2026-01-05T00:00:00Z=1 2026-01-05T00:00:00Z=4 2026-01-05T00:01:00Z=2 2026-01-05T00:02:00Z=3`+"\n" {
		t.Errorf("i-web:\n%s", s)
	}
	got, err = ch.Samples(context.Background(), acme, bytesOut, nil, t0, hour)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, s := range got {
		lines[s.Labels.Get("instance")] = seriesLines([]metric.Series{s})
	}
	if _, ok := lines["i-nan"]; ok {
		t.Errorf("a series of NaN alone: %s", lines["i-nan"])
	}
	if !strings.HasSuffix(lines["i-mixed"], ": 2026-01-05T00:00:00Z=1 2026-01-05T00:04:00Z=2\n") {
		t.Errorf("i-mixed: %s", lines["i-mixed"])
	}
	if !strings.HasSuffix(lines["i-exact"], "=0.1 2026-01-05T00:01:00Z=0.3333333333333333 2026-01-05T00:02:00Z=5e-324 2026-01-05T00:03:00Z=1.7976931348623157e+308 2026-01-05T00:04:00Z=-1e-300 2026-01-05T00:05:00Z=6.3722346899986316e+81\n") {
		t.Errorf("i-exact: %s", lines["i-exact"])
	}
	if !strings.Contains(lines["i-spoof"], `tenant="acme"`) {
		t.Errorf("i-spoof: %s", lines["i-spoof"])
	}
	if _, ok := lines["caf\uFFFD"]; !ok {
		t.Errorf("the label that is not UTF-8 reads back as one of %q", slices.Sorted(maps.Keys(lines)))
	}
}

// TestSamplesShards: a series' samples are on one shard, the one the
// Distributed table's sharding key picks, and the series spread over
// both.
func TestSamplesShards(t *testing.T) {
	ctx := context.Background()
	ch, db, _ := sampleStores(t)
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	var series []metric.Series
	for i := range 40 {
		series = append(series, minutely("up", map[string]string{"target": fmt.Sprintf("host-%d", i)}, t0, 1, 1, 1))
	}
	appendBoth(t, ch, db, "acme", series...)
	for i := range ch.opts.Shards {
		out, err := ch.exec(ctx, i, fmt.Sprintf("SELECT countIf(intHash64(series) %% 2 != %d), uniqExact(series) FROM vigil.samples_local FORMAT TabSeparated", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(out))
		if len(f) != 2 || f[0] != "0" || f[1] == "0" {
			t.Errorf("shard %d: %s rows the sharding key sends elsewhere, of %s series", i+1, f[0], f[1])
		}
	}
	// The Go twin of intHash64 is the server's.
	for _, x := range []uint64{0, 1, 12345678901234567890, math.MaxUint64} {
		out, err := ch.exec(ctx, 0, fmt.Sprintf("SELECT intHash64(toUInt64(%d))", x), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != strconv.FormatUint(intHash64(x), 10) {
			t.Errorf("intHash64(%d) = %s on the server, %d here", x, got, intHash64(x))
		}
	}
	sameSamples(t, ch, db, samplesRead{name: "up", scope: query.Scope{All: true}, metric: "up", from: t0, to: t0.Add(time.Hour), series: 40})
}

// TestSamplesRetriedAppend: a batch stored again after a failure is
// read once, rolled up once and counted once, though the shards hold it
// twice until a merge; a batch that is not the same keeps its samples
// of a time beside the first's, as in the embedded store. A batch with
// a shard down fails, naming it.
func TestSamplesRetriedAppend(t *testing.T) {
	ctx := context.Background()
	ch, db, shards := sampleStores(t)
	// Merges would collapse the copies on their own, and the test would
	// not show that the reads do.
	setSampleMerges(t, ch, false)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	var batch []metric.Series
	for i := range 10 {
		batch = append(batch, minutely("cpu", map[string]string{"host": fmt.Sprintf("web-%d", i)}, t0, 1, 2, math.NaN(), 4))
	}
	for range 3 {
		if err := ch.AppendSamples(ctx, "acme", copySeries(batch)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AppendSamples(ctx, "acme", copySeries(batch)); err != nil {
		t.Fatal(err)
	}
	if n := allShards(localRows(t, ch, "samples_local", "1")); n != 3*10*3 {
		t.Fatalf("the shards hold %d rows, want %d: the copies are not there to read once", n, 3*10*3)
	}
	// Another batch, with a sample at a time the first has: two samples.
	again := []metric.Series{minutely("cpu", map[string]string{"host": "web-0"}, t0, 7)}
	appendBoth(t, ch, db, "acme", again...)
	// The same batch again from another writer (another node's equal part
	// of a flow-log bucket) is another batch; from this one, a retry.
	same := []metric.Series{minutely("cpu", map[string]string{"host": "web-1"}, t0, 7)}
	appendBoth(t, ch, db, "acme", same...)
	other := *ch
	other.opts.Writer = "node-2"
	appendBoth(t, &other, db, "acme", same...)
	if err := ch.AppendSamples(ctx, "acme", copySeries(same)); err != nil {
		t.Fatal(err)
	}
	all := samplesRead{name: "cpu", scope: query.Scope{All: true}, metric: "cpu", from: t0, to: t0.Add(time.Hour), series: 10}
	for _, s := range sameSamples(t, ch, db, all) {
		want := 3
		switch s.Labels.Get("host") {
		case "web-0":
			want = 4
		case "web-1":
			want = 5
		}
		if len(s.Samples) != want {
			t.Errorf("%s has %d samples, want %d", s.Labels, len(s.Samples), want)
		}
	}

	setSampleMerges(t, ch, true) // the mutations run with the merges
	want, err := db.Downsample(ctx, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	n, err := ch.Downsample(ctx, t0.Add(time.Hour))
	if err != nil || n != want || n != 10*3+3 {
		t.Errorf("downsampled %d samples (%v), DuckDB %d, want %d", n, err, want, 10*3+3)
	}
	all.name = "cpu downsampled"
	sameSamples(t, ch, db, all)

	// With shard 2 down, a batch fails, and shard 1 keeps its part; sent
	// again once shard 2 is back, it is stored whole, and read once.
	var later []metric.Series
	for i := range 10 {
		later = append(later, minutely("cpu", map[string]string{"host": fmt.Sprintf("web-%d", i)}, t0.Add(2*time.Hour), 5, 6))
	}
	shards[1].Stop()
	err = ch.AppendSamples(ctx, "acme", copySeries(later))
	if err == nil || !strings.Contains(err.Error(), "shard 2") {
		t.Errorf("an append with shard 2 down: %v", err)
	}
	shards[1].Restart(t)
	if n := localRows(t, ch, "samples_local", fmt.Sprintf("time >= %d", t0.Add(2*time.Hour).UnixNano())); n[0] == 0 || n[1] != 0 {
		t.Fatalf("after the failure, the shards hold %v of the batch, want some on shard 1 alone", n)
	}
	appendBoth(t, ch, db, "acme", later...)
	all.name, all.to = "cpu retried", t0.Add(3*time.Hour)
	sameSamples(t, ch, db, all)
}

func setSampleMerges(t *testing.T, s *Store, on bool) {
	t.Helper()
	verb := "STOP"
	if on {
		verb = "START"
	}
	for i := range s.opts.Shards {
		for _, table := range []string{"samples_local", "samples_hourly_local"} {
			if _, err := s.exec(context.Background(), i, "SYSTEM "+verb+" MERGES vigil."+table, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSamplesDownsample: the samples older than the cut's hour become
// their hours' means, as in the embedded store, which Samples gives in
// their place; later ones stay as they came; samples that arrive for an
// hour rolled up make a second row of it; and the hours keep the least,
// greatest and count of their samples.
func TestSamplesDownsample(t *testing.T) {
	ctx := context.Background()
	ch, db, _ := sampleStores(t)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	var series []metric.Series
	for i := range 6 {
		values := make([]float64, 150) // 10:00 to 12:29, a minute apart
		for j := range values {
			values[j] = float64(j%60 + i)
		}
		series = append(series, minutely("cpu", map[string]string{"host": fmt.Sprintf("web-%d", i)}, t0, values...))
	}
	appendBoth(t, ch, db, "acme", series...)
	appendBoth(t, ch, db, "globex", series[0])
	// Before 1970, where rounding down is not truncating.
	appendBoth(t, ch, db, "globex", minutely("cpu", map[string]string{"host": "old"}, time.Date(1969, 12, 31, 22, 30, 0, 0, time.UTC), 1, 2, 3))
	// A flow rollup's bucket stored in two parts (two process nodes),
	// and the next bucket whole: the hour's mean is of the sums.
	flows := map[string]string{"interface": "eni-1"}
	appendBoth(t, ch, db, "acme", minutely("network_in_bytes", flows, t0.Add(5*time.Minute), 100))
	appendBoth(t, ch, db, "acme", minutely("network_in_bytes", flows, t0.Add(5*time.Minute), 236, 10))

	wide := samplesRead{scope: query.Scope{All: true}, metric: "cpu", from: t0.Add(-time.Hour), to: t0.Add(3 * time.Hour), series: 7}
	downsample := func(before time.Time, want int64) {
		t.Helper()
		n, err := ch.Downsample(ctx, before)
		if err != nil {
			t.Fatal(err)
		}
		m, err := db.Downsample(ctx, before)
		if err != nil {
			t.Fatal(err)
		}
		if n != m || n != want {
			t.Errorf("downsampled %d samples before %s, DuckDB %d, want %d", n, before.Format(time.TimeOnly), m, want)
		}
	}
	downsample(t0.Add(2*time.Hour+15*time.Minute), 7*120+3+3) // 10:00 and 11:00, the old, the flows
	downsample(t0.Add(2*time.Hour+15*time.Minute), 0)
	for _, r := range []samplesRead{
		wide,
		{name: "from within a rolled-up hour", scope: query.Scope{All: true}, metric: "cpu", from: t0.Add(30 * time.Minute), to: t0.Add(3 * time.Hour), series: 7},
		{name: "the rolled-up hours", scope: query.Scope{Tenants: []string{"acme"}}, metric: "cpu", match: map[string]string{"host": "web-1"}, from: t0, to: t0.Add(2 * time.Hour), series: 1},
		{name: "before 1970", scope: query.Scope{All: true}, metric: "cpu", match: map[string]string{"host": "old"}, from: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), to: t0, series: 1},
	} {
		if r.name == "" {
			r.name = "downsampled"
		}
		sameSamples(t, ch, db, r)
	}
	got, err := ch.Samples(ctx, query.Scope{All: true}, "cpu", map[string]string{"host": "web-0", "tenant": "acme"}, t0, t0.Add(3*time.Hour))
	if err != nil || len(got) != 1 || len(got[0].Samples) != 2+30 {
		t.Fatalf("web-0: %v %s", err, seriesLines(got))
	}
	for i, x := range got[0].Samples[:2] {
		if !x.Time.Equal(t0.Add(time.Duration(i)*time.Hour)) || x.Value != 29.5 {
			t.Errorf("hour %d: %+v, want the mean 29.5", i, x)
		}
	}
	net := samplesRead{name: "the flows' hour", scope: query.Scope{All: true}, metric: "network_in_bytes", from: t0, to: t0.Add(time.Hour), series: 1}
	if l := seriesLines(sameSamples(t, ch, db, net)); !strings.Contains(l, "2026-01-05T10:00:00Z=173") {
		t.Errorf("the flows' hour is not the mean of the buckets' sums, (100+236+10)/2: %s", l)
	}
	out, err := ch.exec(ctx, 0, "SELECT tenant, time, value, min, max, count FROM vigil.samples_hourly WHERE has(label_values, 'web-2') ORDER BY tenant, time FORMAT TabSeparated", nil)
	if err != nil {
		t.Fatal(err)
	}
	h0, h1 := t0.UnixNano(), t0.Add(time.Hour).UnixNano()
	if want := fmt.Sprintf("acme\t%d\t31.5\t2\t61\t60\nacme\t%d\t31.5\t2\t61\t60\n", h0, h1); string(out) != want {
		t.Errorf("web-2's hours:\n%s\nwant\n%s", out, want)
	}
	if n := localRows(t, ch, "samples_local", fmt.Sprintf("rollup != 0 OR time < %d", t0.Add(2*time.Hour).UnixNano())); allShards(n) != 0 {
		t.Errorf("%v samples are left claimed or before the cut", n)
	}

	// Late samples of the hours rolled up, and one of the hour after.
	late := []metric.Series{minutely("cpu", map[string]string{"host": "web-1"}, t0.Add(10*time.Minute), 1000), minutely("cpu", map[string]string{"host": "web-1"}, t0.Add(2*time.Hour+10*time.Minute), 2000)}
	appendBoth(t, ch, db, "acme", late...)
	wide.name = "late, not rolled up"
	sameSamples(t, ch, db, wide)
	downsample(t0.Add(3*time.Hour), 7*30+2)
	wide.name = "late, rolled up"
	got = sameSamples(t, ch, db, wide)
	for _, s := range got {
		if s.Labels.Get("host") == "web-1" && s.Labels.Get("tenant") == "acme" {
			if l := seriesLines([]metric.Series{s}); !strings.Contains(l, " 2026-01-05T10:00:00Z=1000 2026-01-05T10:00:00Z=30.5 ") {
				t.Errorf("web-1's first hour is not two: %s", l)
			}
		}
	}
}

// TestSamplesDownsampleInterrupted: a Downsample that stopped after it
// claimed samples, or after it also rolled some up, is finished by the
// next, each sample rolled up once, copies included; and a read between
// the steps reads each series as the embedded store reads it before the
// rollup, or after.
func TestSamplesDownsampleInterrupted(t *testing.T) {
	ctx := context.Background()
	ch, db, _ := sampleStores(t)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	var series []metric.Series
	for i := range 8 {
		series = append(series, minutely("mem", map[string]string{"host": fmt.Sprintf("db-%d", i)}, t0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	}
	appendBoth(t, ch, db, "acme", series...)
	read := samplesRead{name: "claimed", scope: query.Scope{All: true}, metric: "mem", from: t0, to: t0.Add(time.Hour), series: 8}
	before, err := db.Samples(ctx, read.scope, read.metric, nil, read.from, read.to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Downsample(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	after, err := db.Samples(ctx, read.scope, read.metric, nil, read.from, read.to)
	if err != nil {
		t.Fatal(err)
	}
	// asBeforeOrAfter fails the test unless each series reads as before
	// the rollup or as after it, and says how many did which.
	asBeforeOrAfter := func(when string) (asBefore, asAfter int) {
		t.Helper()
		got, err := ch.Samples(ctx, read.scope, read.metric, nil, read.from, read.to)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 8 {
			t.Fatalf("%s: %d series, want 8", when, len(got))
		}
		for i := range got {
			switch l := seriesLines(got[i : i+1]); l {
			case seriesLines(before[i : i+1]):
				asBefore++
			case seriesLines(after[i : i+1]):
				asAfter++
			default:
				t.Errorf("%s: %s", when, l)
			}
		}
		return asBefore, asAfter
	}

	// Claimed on both shards, as the first step does.
	const claim = 12345
	for i := range ch.opts.Shards {
		where := fmt.Sprintf("rollup = 0 AND time < %d", t0.Add(time.Hour).UnixNano())
		if _, err := ch.mutateIfAny(ctx, i, "samples_local", where, fmt.Sprintf("UPDATE rollup = %d WHERE %s", claim, where)); err != nil {
			t.Fatal(err)
		}
	}
	// With the merges stopped, copies of the claimed rows, as a retried
	// batch leaves them, stay copies until the end.
	setSampleMerges(t, ch, false)
	for i := range ch.opts.Shards {
		if _, err := ch.exec(ctx, i, fmt.Sprintf("INSERT INTO vigil.samples_local SELECT * FROM vigil.samples_local WHERE rollup = %d", claim), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := allShards(localRows(t, ch, "samples_local", "1")); n != 2*80 {
		t.Fatalf("%d rows, want 160: the copies are not there", n)
	}
	if b, a := asBeforeOrAfter("claimed"); b != 8 {
		t.Errorf("claimed, %d series as before the rollup and %d after, want 8 before", b, a)
	}

	// Rolled up on shard 1 alone, twice: the rolled-up read as their
	// hour, once, the others as they came.
	for range 2 {
		if err := ch.addHours(ctx, 0, claim); err != nil {
			t.Fatal(err)
		}
	}
	if b, a := asBeforeOrAfter("halfway"); b == 0 || a == 0 {
		t.Errorf("halfway, %d series as before the rollup and %d after, want some of each", b, a)
	}
	if err := ch.addHours(ctx, 1, claim); err != nil {
		t.Fatal(err)
	}
	if b, a := asBeforeOrAfter("rolled up"); a != 8 {
		t.Errorf("rolled up, %d series as before the rollup and %d after, want 8 after", b, a)
	}
	// Each hour counts each sample once, copies and all.
	if n := localRows(t, ch, "samples_hourly_local", "count != 10 OR value != 5.5 OR min != 1 OR max != 10"); allShards(n) != 0 {
		t.Errorf("%v hours are not of the ten samples", n)
	}

	// A rollup that ran while the claim's delete was under way saw fewer
	// samples: its hours are read as the whole claim's.
	for i := range ch.opts.Shards {
		if _, err := ch.exec(ctx, i, fmt.Sprintf("INSERT INTO vigil.samples_hourly_local SELECT day, tenant, metric, series, label_names, label_values,"+
			" time, 999, min, max, count - 5, rollup FROM vigil.samples_hourly_local WHERE rollup = %d", claim), nil); err != nil {
			t.Fatal(err)
		}
	}
	if b, a := asBeforeOrAfter("beside a partial rollup"); a != 8 {
		t.Errorf("beside a partial rollup, %d series as before the rollup and %d after, want 8 after", b, a)
	}
	// A sample stored since the claim, of an hour claimed: the claim's
	// delete leaves it.
	appendBoth(t, ch, db, "acme", minutely("mem", map[string]string{"host": "db-0"}, t0.Add(30*time.Minute), 100))

	// The next Downsample finishes the claim; it adds the hours again,
	// which are read once, and counts each sample once.
	setSampleMerges(t, ch, true)
	n, err := ch.Downsample(ctx, t0)
	if err != nil || n != 8*10 {
		t.Errorf("the next Downsample rolled up %d samples (%v), want %d", n, err, 8*10)
	}
	read.name = "finished"
	sameSamples(t, ch, db, read)
	if n := localRows(t, ch, "samples_local", "1"); allShards(n) != 1 {
		t.Errorf("%v samples left, want the one stored since the claim", n)
	}
}

// TestSamplesReadDuringDownsample: reads made while Downsample runs
// give each series as it was before the rollup or as after it, never a
// sample both as it came and in its hour, nor in neither. (The two
// halves of one read, raw and rolled up, were once two queries on a
// shard, a rollup's step apart now and then.)
func TestSamplesReadDuringDownsample(t *testing.T) {
	ctx := context.Background()
	ch, _, _ := sampleStores(t)
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	const hosts = 8
	var reads, before, after int
	for round := range 6 {
		hour := t0.Add(time.Duration(round) * time.Hour)
		var series []metric.Series
		for i := range hosts {
			series = append(series, minutely("mem", map[string]string{"host": fmt.Sprint("db-", i)}, hour, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
		}
		if err := ch.AppendSamples(ctx, "acme", series); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() {
			_, err := ch.Downsample(ctx, hour.Add(time.Hour))
			done <- err
		}()
		for running := true; running; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				running = false // and a read after it
			default:
			}
			got, err := ch.Samples(ctx, query.Scope{All: true}, "mem", nil, hour, hour.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			reads++
			if len(got) != hosts {
				t.Fatalf("round %d: %d series, want %d", round, len(got), hosts)
			}
			for _, s := range got {
				switch xs := s.Samples; {
				case len(xs) == 10 && xs[0].Value == 1 && xs[9].Value == 10:
					before++
				case len(xs) == 1 && xs[0].Value == 5.5 && xs[0].Time.Equal(hour):
					after++
				default:
					t.Errorf("round %d: neither as before the rollup nor as after: %s", round, seriesLines([]metric.Series{s}))
				}
			}
		}
	}
	t.Logf("%d reads: %d series as before the rollup, %d as after", reads, before, after)
}

// TestSamplesReplace: replacing samples deletes what the stores had of
// the series at the replacement's times, raw or rolled up, and nothing
// else (another tenant's, another series', another time's), as in the
// embedded store; a replacement that is not a number leaves nothing;
// replacing again is the same; a replacement of many times is done in
// pieces.
func TestSamplesReplace(t *testing.T) {
	ctx := context.Background()
	ch, db, _ := sampleStores(t)
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cost := func(service string, from int, values ...float64) metric.Series {
		s := metric.Series{Metric: "cost", Labels: metric.NewLabels(map[string]string{"service": service, "currency": "USD"})}
		for i, v := range values {
			s.Samples = append(s.Samples, metric.Sample{Time: d0.Add(time.Duration(from+i) * day), Value: v})
		}
		return s
	}
	appendBoth(t, ch, db, "acme", cost("ec2", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), cost("s3", 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1))
	appendBoth(t, ch, db, "acme", cost("ec2", 4, 50)) // a second sample of day 4
	appendBoth(t, ch, db, "globex", cost("ec2", 0, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100))
	// Minutes of a day, which a replacement of many times replaces.
	var busy []float64
	for i := range 12000 {
		busy = append(busy, float64(i))
	}
	appendBoth(t, ch, db, "acme", minutely("busy", nil, d0, busy...))

	// The first five days rolled up: their samples are hours now.
	for _, st := range []sampleStore{ch, db} {
		if _, err := st.Downsample(ctx, d0.Add(5*day)); err != nil {
			t.Fatal(err)
		}
	}
	all := samplesRead{name: "before", scope: query.Scope{All: true}, metric: "cost", from: d0, to: d0.Add(30 * day), series: 3}
	sameSamples(t, ch, db, all)

	// Days 3 to 11 restated: day 3 rolled up, day 4 twice, day 6 not a
	// number, day 11 new.
	restated := []metric.Series{cost("ec2", 3, 30, 40, 50, math.NaN(), 70, 80, 90, 100, 110)}
	for i := range 2 {
		for _, st := range []sampleStore{ch, db} {
			if err := st.ReplaceSamples(ctx, "acme", copySeries(restated)); err != nil {
				t.Fatalf("%T: %v", st, err)
			}
		}
		all.name = fmt.Sprintf("replaced %d", i+1)
		got := sameSamples(t, ch, db, all)
		for _, s := range got {
			if s.Labels.Get("tenant") == "acme" && s.Labels.Get("service") == "ec2" {
				if l := seriesLines([]metric.Series{s}); !strings.HasSuffix(l, ": 2026-01-01T00:00:00Z=1 2026-01-02T00:00:00Z=2 2026-01-03T00:00:00Z=3 2026-01-04T00:00:00Z=30 2026-01-05T00:00:00Z=40 2026-01-06T00:00:00Z=50 2026-01-08T00:00:00Z=70 2026-01-09T00:00:00Z=80 2026-01-10T00:00:00Z=90 2026-01-11T00:00:00Z=100 2026-01-12T00:00:00Z=110\n") {
					t.Errorf("acme's ec2: %s", l)
				}
			}
		}
	}

	// Every minute restated, every third with nothing: more times than
	// one mutation's condition holds.
	var every []metric.Sample
	for i := range busy {
		v := -float64(i)
		if i%3 == 1 {
			v = math.NaN()
		}
		every = append(every, metric.Sample{Time: d0.Add(time.Duration(i) * time.Minute), Value: v})
	}
	if n := len(replacedWhere("acme", []metric.Series{{Metric: "busy", Samples: every}})); n < 2 {
		t.Fatalf("the restatement is %d mutation, want more: the test does not cut it", n)
	}
	busySeries := []metric.Series{{Metric: "busy", Samples: every}}
	for _, st := range []sampleStore{ch, db} {
		if err := st.ReplaceSamples(ctx, "acme", copySeries(busySeries)); err != nil {
			t.Fatalf("%T: %v", st, err)
		}
	}
	// The hours of the first five days start at minutes restated, so none
	// is left.
	got := sameSamples(t, ch, db, samplesRead{name: "busy", scope: query.Scope{All: true}, metric: "busy", from: d0, to: d0.Add(30 * day), series: 1})
	if len(got) == 1 && len(got[0].Samples) != 8000 {
		t.Errorf("busy has %d samples, want 8000", len(got[0].Samples))
	}
}

// TestSamplesReplacedWhere: the conditions ReplaceSamples deletes by
// name exactly the tenant's series at the times given, series of the
// same times in one clause, each condition within what the server
// parses.
func TestSamplesReplacedWhere(t *testing.T) {
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(name string, days ...int) metric.Series {
		s := metric.Series{Metric: "cost", Labels: metric.Labels{{Name: "service", Value: name}}}
		for _, d := range days {
			s.Samples = append(s.Samples, metric.Sample{Time: d0.Add(time.Duration(d) * 24 * time.Hour), Value: 1})
		}
		return s
	}
	var many []int
	for i := range 25000 {
		many = append(many, i)
	}
	series := []metric.Series{at("ec2", 1, 2, 3), at("s3", 3, 2, 1, 1), at("rds", 4), at("none"), at("many", many...)}
	conds := replacedWhere(hostileTenant, series)
	want := map[string]bool{}
	for i := range series {
		id := series[i].ID(hostileTenant)
		for _, x := range series[i].Samples {
			want[fmt.Sprintf("%d@%d", id, x.Time.UnixNano())] = true
		}
	}
	clause := regexp.MustCompile(`\(series IN \(([0-9, ]+)\) AND time IN \(([0-9, ]+)\)\)`)
	got := map[string]bool{}
	shared := false
	prefix := "tenant = " + quote(hostileTenant) + " AND ("
	for _, c := range conds {
		if !strings.HasPrefix(c, prefix) || len(c) > maxCondition+len(prefix)+1 {
			t.Errorf("a condition of %d bytes: %.100s…", len(c), c)
		}
		for _, m := range clause.FindAllStringSubmatch(c, -1) {
			ids, times := strings.Split(m[1], ", "), strings.Split(m[2], ", ")
			shared = shared || len(ids) == 2
			for _, id := range ids {
				for _, tm := range times {
					got[id+"@"+tm] = true
				}
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("the conditions name %d samples, want %d", len(got), len(want))
	}
	if !shared {
		t.Errorf("ec2 and s3, of the same days, have no clause together")
	}
	if len(conds) < 2 {
		t.Errorf("%d conditions for 25,000 times", len(conds))
	}
	if c := replacedWhere("acme", []metric.Series{at("none")}); c != nil {
		t.Errorf("no times, and yet %q", c)
	}
}
