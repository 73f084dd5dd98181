package clickhouse

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/metric"
	"github.com/vigilsec/vigil/query"
)

// Metric samples are kept as the DuckDB store keeps them (its
// samples.go is the reference of what each method means), in two tables
// on each shard, each behind a Distributed table:
//
//   - samples_local, a row a sample as it came;
//   - samples_hourly_local, a row an hour of a series that Downsample
//     rolled up: the mean, least, greatest and count.
//
// A series' rows live on one shard (sampleShard), so that a shard rolls
// its series up alone, and both tables carry their labels, as the
// DuckDB store's do, for a series to read back whole from either. What
// 18.16 lacks shapes the rest:
//
//   - no DateTime64: times are Int64 nanoseconds, as the events' are,
//     beside a Date for the partitions;
//   - no JSONExtract: labels are parallel arrays of names and values,
//     which a match reads with indexOf (the DuckDB store's JSON object
//     would need a function this release has not);
//   - no insert dedup outside replicated tables: a batch that failed on
//     one shard is sent again whole, and the shards that had stored it
//     store it twice. Each row carries its batch's identity (a hash of
//     the batch) and its place in it, in the sorting key of a
//     ReplacingMergeTree: a merge collapses the copies, and until then
//     readers keep one of each themselves, as plain event searches do
//     (onePerSeq), rather than pay for FINAL;
//   - no exact text floats: 18.16 parses some decimals into a double an
//     ulp off (in a trial, one random double in thirteen), so rows go as
//     RowBinary, whose doubles are their bits;
//   - no transactions: Downsample claims the rows it rolls up with a
//     mutation before it adds their hours and deletes them, and readers
//     leave out a claimed row whose hour is already added (see
//     Downsample), reading each shard's two tables in one statement,
//     which takes both tables' parts as it starts (Samples).

// sampleColumns are samples_local's. batch and n are a sample's
// identity for collapsing the copies a retried batch leaves; rollup is 0
// until a Downsample claims the row.
const sampleColumns = `day Date,
	tenant String,
	metric String,
	series UInt64,
	label_names Array(String),
	label_values Array(String),
	time Int64,
	value Float64,
	batch UInt64,
	n UInt64,
	rollup UInt64`

// hourlyColumns are samples_hourly_local's: time is the hour's start,
// value its mean, and rollup the Downsample claim it came of.
const hourlyColumns = `day Date,
	tenant String,
	metric String,
	series UInt64,
	label_names Array(String),
	label_values Array(String),
	time Int64,
	value Float64,
	min Float64,
	max Float64,
	count UInt64,
	rollup UInt64`

// samplesSchema is the statements that make the sample tables of one
// shard, after its database: schema() appends them.
//
// samples_local is ordered by (tenant, metric, series, time), what a
// read narrows by, then by the sample's identity, which the merges
// collapse copies by. samples_hourly_local is ordered by the hour and
// the claim it came of: a claim rolled up twice (a Downsample that
// failed before deleting what it had rolled up, or two that ran at
// once) makes one row of each hour, the one of the greatest count (the
// version column), since a rollup that ran while a delete was under way
// saw fewer of the claim's samples, never more. Hours are partitioned
// by month: they are a sixtieth of the rows and are kept for long.
func (s *Store) samplesSchema() []string {
	db, cluster := s.opts.Database, s.opts.Cluster
	return []string{
		"CREATE TABLE IF NOT EXISTS " + db + ".samples_local (" + sampleColumns + ")" +
			" ENGINE = ReplacingMergeTree() PARTITION BY day ORDER BY (tenant, metric, series, time, batch, n)",
		// The sharding key is the shard AppendSamples picks (sampleShard),
		// for whoever inserts through the Distributed table.
		"CREATE TABLE IF NOT EXISTS " + db + ".samples AS " + db + ".samples_local" +
			" ENGINE = Distributed(" + cluster + ", " + db + ", samples_local, intHash64(series))",
		"CREATE TABLE IF NOT EXISTS " + db + ".samples_hourly_local (" + hourlyColumns + ")" +
			" ENGINE = ReplacingMergeTree(count) PARTITION BY toYYYYMM(day) ORDER BY (tenant, metric, series, time, rollup)",
		"CREATE TABLE IF NOT EXISTS " + db + ".samples_hourly AS " + db + ".samples_hourly_local" +
			" ENGINE = Distributed(" + cluster + ", " + db + ", samples_hourly_local, intHash64(series))",
	}
}

// sampleShard is the shard a series' samples go to: ClickHouse's
// intHash64 of the series id, which hashes the tenant with the metric
// and labels, modulo the shards. It is what the Distributed tables'
// sharding key computes, so a row inserted through them lands where
// AppendSamples would have sent it. (The id alone would not do: FNV's
// lowest bit is the parity of the lowest bits of the bytes hashed, so
// modulo 2, host-1 and host-3 would share a shard.)
func (s *Store) sampleShard(series uint64) int {
	return int(intHash64(series) % uint64(len(s.opts.Shards)))
}

// intHash64 is ClickHouse's function of the name: MurmurHash3's 64-bit
// finalizer of x, xored first with a constant.
func intHash64(x uint64) uint64 {
	x ^= 0x4cf2d2baae6da887
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// batchID is the identity of an AppendSamples call: a hash of its
// writer (Options.Writer) and all it stores, so that the same call sent
// again makes rows the merges collapse with the first try's. Two calls
// of one writer that store the same samples of the same series are one,
// which no reader can tell from a retry.
func batchID(writer, tenant string, ids []uint64, series []metric.Series) uint64 {
	h := fnv.New64a()
	// Each string after its length, for no two pairs to hash alike.
	var n [binary.MaxVarintLen64]byte
	h.Write(binary.AppendUvarint(n[:0], uint64(len(writer))))
	h.Write([]byte(writer))
	h.Write([]byte(tenant))
	var b [8]byte
	for i := range series {
		h.Write(binary.BigEndian.AppendUint64(b[:0], ids[i]))
		h.Write(binary.BigEndian.AppendUint64(b[:0], uint64(len(series[i].Samples))))
		for _, x := range series[i].Samples {
			h.Write(binary.BigEndian.AppendUint64(b[:0], uint64(nanos(x.Time))))
			h.Write(binary.BigEndian.AppendUint64(b[:0], math.Float64bits(x.Value)))
		}
	}
	return h.Sum64()
}

// AppendSamples stores the samples of a tenant's series, each series on
// its shard, one insert per shard. A sample that is not a number (NaN,
// ±Inf: a target's staleness marker) is not stored. An insert that
// fails fails the call, which the caller makes again: what the shards
// that succeeded stored the first time is read once (see samples_local).
func (s *Store) AppendSamples(ctx context.Context, tenant string, series []metric.Series) error {
	ids := make([]uint64, len(series))
	for i := range series {
		series[i].Labels.Sort()
		ids[i] = series[i].ID(tenant)
	}
	batch := batchID(s.opts.Writer, tenant, ids, series)
	bodies := make([]rowBinary, len(s.opts.Shards))
	counts := make([]int, len(s.opts.Shards))
	var n uint64 // the sample's place in the call, NaNs included, as a retry counts it
	var head rowBinary
	for i := range series {
		sr := &series[i]
		// What the series' rows share, written once.
		head.reset()
		head.str(tenant)
		head.str(sr.Metric)
		head.u64(ids[i])
		head.uvarint(uint64(len(sr.Labels)))
		for _, l := range sr.Labels {
			head.str(asJSONText(l.Name))
		}
		head.uvarint(uint64(len(sr.Labels)))
		for _, l := range sr.Labels {
			head.str(asJSONText(l.Value))
		}
		shard := s.sampleShard(ids[i])
		body := &bodies[shard]
		for _, x := range sr.Samples {
			n++
			if math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
				continue
			}
			body.u16(dayNumber(x.Time))
			body.b = append(body.b, head.b...)
			body.u64(uint64(nanos(x.Time)))
			body.u64(math.Float64bits(x.Value))
			body.u64(batch)
			body.u64(n)
			counts[shard]++
		}
	}
	stmt := "INSERT INTO " + s.opts.Database + ".samples_local" +
		" (day, tenant, metric, series, label_names, label_values, time, value, batch, n) FORMAT RowBinary"
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	for i := range bodies {
		if counts[i] == 0 {
			continue
		}
		wg.Go(func() {
			if _, err := s.exec(ctx, i, stmt, bytes.NewReader(bodies[i].b)); err != nil {
				errs[i] = fmt.Errorf("clickhouse: storing %d samples of %q on shard %d: %w", counts[i], tenant, i+1, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// asJSONText is a label as the DuckDB store reads it back from the JSON
// it keeps labels in: each byte that is not UTF-8 replaced by U+FFFD.
func asJSONText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// dayNumber is dayOf(t) as RowBinary writes a Date: days since 1970.
func dayNumber(t time.Time) uint16 {
	t = t.UTC()
	switch {
	case t.Year() < 1970:
		return 0
	case t.Year() > 2100:
		t = time.Date(2100, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	return uint16(t.Unix() / (24 * 60 * 60))
}

// rowBinary encodes rows in ClickHouse's RowBinary: numbers little
// endian, strings and arrays after their length as a uvarint.
type rowBinary struct{ b []byte }

func (w *rowBinary) reset()           { w.b = w.b[:0] }
func (w *rowBinary) u8(v uint8)       { w.b = append(w.b, v) }
func (w *rowBinary) u16(v uint16)     { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *rowBinary) u32(v uint32)     { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *rowBinary) u64(v uint64)     { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *rowBinary) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *rowBinary) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *rowBinary) bytes(b []byte)   { w.uvarint(uint64(len(b))); w.b = append(w.b, b...) }

// hourNanos is an hour in nanoseconds, as an Int64 literal: as a bare
// literal it is a UInt64, and an Int64 time modulo a UInt64 is not the
// time's remainder when the time is negative.
const hourNanos = "toInt64(3600000000000)"

// hourOf is the start of the hour of a time column, as the DuckDB
// store's date_trunc('hour', …) gives it: rounded down, before 1970
// too.
func hourOf(col string) string {
	return "(" + col + " - (" + col + " % " + hourNanos + " + " + hourNanos + ") % " + hourNanos + ")"
}

// Samples returns the series of a metric in scope with samples in
// [from, to), each with its samples oldest first: the samples as they
// came, and for the hours Downsample rolled up, their means. match
// narrows them to the series whose labels have the values it gives; a
// series' tenant is its label "tenant". The series come in the order of
// their ids, as the DuckDB store's do.
func (s *Store) Samples(ctx context.Context, scope query.Scope, name string, match map[string]string, from, to time.Time) ([]metric.Series, error) {
	// Scope is applied here, whatever the caller asks: a match on the
	// tenant label only narrows it.
	where := append(tenantScope(scope), "metric = "+quote(name))
	// A bound beyond what nanos holds bounds nothing, as in
	// SearchQuarantine.
	var hours []string // the rollups that may cover a claimed sample in range
	if lo := nanos(from); !from.IsZero() && lo != math.MinInt64 {
		where = append(where, fmt.Sprintf("time >= %d", lo), "day >= "+quote(dayOf(from)))
		h := from.UTC().Truncate(time.Hour)
		hours = append(hours, fmt.Sprintf("time >= %d", nanos(h)), "day >= "+quote(dayOf(h)))
	}
	if hi := nanos(to); !to.IsZero() && hi != math.MaxInt64 {
		where = append(where, fmt.Sprintf("time < %d", hi), "day <= "+quote(dayOf(to)))
		hours = append(hours, fmt.Sprintf("time < %d", hi), "day <= "+quote(dayOf(to)))
	}
	var labels []string
	for _, n := range slices.Sorted(maps.Keys(match)) {
		v := quote(match[n])
		if n == "tenant" {
			labels = append(labels, "tenant = "+v)
			continue
		}
		// has: a series without the label has no value for it, not "".
		labels = append(labels, fmt.Sprintf("has(label_names, %[1]s) AND label_values[indexOf(label_names, %[1]s)] = %[2]s", quote(n), v))
	}
	db := s.opts.Database
	// Each shard answers of its local tables in one statement, which
	// takes its parts of both tables at once as it starts: a Downsample
	// between the two reads of a UNION ALL over the Distributed tables,
	// each its own query on a shard, had a sample read raw and in its
	// hour both, or in neither. The hours are read from the start of
	// from's, as a claimed sample in range may be rolled up there.
	stmt := "SELECT series, tenant, label_names, label_values, time, value, src, id1, id2, rollup FROM (" +
		"SELECT series, tenant, label_names, label_values, time, value, toUInt8(0) AS src, batch AS id1, n AS id2, rollup FROM " + db + ".samples_local" +
		" WHERE " + strings.Join(slices.Concat(where, labels), " AND ") +
		" UNION ALL " +
		"SELECT series, tenant, label_names, label_values, time, value, toUInt8(1) AS src, rollup AS id1, count AS id2, rollup FROM " + db + ".samples_hourly_local" +
		" WHERE " + strings.Join(slices.Concat(tenantScope(scope), []string{"metric = " + quote(name)}, hours, labels), " AND ") +
		// The copies of a row come side by side, an hour's of the greatest
		// count first.
		") ORDER BY series, time, src, id1, id2 DESC FORMAT JSONEachRow"

	answers := make([][]sampleRow, len(s.opts.Shards))
	errs := make([]error, len(s.opts.Shards))
	var wg sync.WaitGroup
	for i := range s.opts.Shards {
		wg.Go(func() {
			errs[i] = s.streamOn(ctx, i, "reading samples of "+name, stmt, func(line []byte) error {
				var r sampleRow
				if err := json.Unmarshal(line, &r); err != nil {
					return fmt.Errorf("clickhouse: reading samples of %s on shard %d: %.200q: %w", name, i+1, line, err)
				}
				answers[i] = append(answers[i], r)
				return nil
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var rows []sampleRow
	for _, answer := range answers {
		rows = append(rows, shardSamples(answer, nanos(from), !from.IsZero())...)
	}
	// A series lives on one shard, unless the number of shards changed
	// since it was stored.
	slices.SortStableFunc(rows, func(a, b sampleRow) int {
		return cmp.Or(cmp.Compare(a.Series, b.Series), cmp.Compare(a.Time, b.Time), cmp.Compare(a.Src, b.Src),
			cmp.Compare(a.ID1, b.ID1), cmp.Compare(b.ID2, a.ID2))
	})

	var (
		out  []metric.Series
		prev sampleKey
	)
	for _, r := range rows {
		k := sampleKey{series: r.Series, time: r.Time, src: r.Src, id1: r.ID1, id2: r.ID2}
		if k.src == 1 {
			// An hour's copies are one by their claim, whatever their count.
			k.id2 = 0
		}
		if len(out) > 0 && k == prev {
			continue
		}
		if len(out) == 0 || k.series != prev.series {
			if len(r.Names) != len(r.Values) {
				return nil, fmt.Errorf("clickhouse: reading samples of %s: series %d has %d label names and %d values", name, r.Series, len(r.Names), len(r.Values))
			}
			// As the DuckDB store reads its JSON object: a name given twice
			// has its last value, and the tenant is the tenant's.
			m := make(map[string]string, len(r.Names)+1)
			for i, n := range r.Names {
				m[n] = r.Values[i]
			}
			m["tenant"] = r.Tenant
			out = append(out, metric.Series{Metric: name, Labels: metric.NewLabels(m)})
		}
		prev = k
		sr := &out[len(out)-1]
		sr.Samples = append(sr.Samples, metric.Sample{Time: time.Unix(0, r.Time).UTC(), Value: r.Value})
	}
	return out, nil
}

// shardSamples returns the rows of a shard's answer to Samples that are
// samples to give: a sample a Downsample has claimed and rolled up into
// its hour, but not yet deleted, is read as its hour alone, as if the
// delete were done; and an hour that starts before from (nanoseconds,
// if bounded), read for that, is not one.
func shardSamples(rows []sampleRow, from int64, bounded bool) []sampleRow {
	type hour struct {
		series uint64
		time   int64
		claim  uint64
	}
	rolled := map[hour]bool{}
	for _, r := range rows {
		if r.Src == 1 {
			rolled[hour{r.Series, r.Time, r.Rollup}] = true
		}
	}
	kept := rows[:0]
	for _, r := range rows {
		switch {
		case r.Src == 0 && r.Rollup != 0 && rolled[hour{r.Series, hourStart(r.Time), r.Rollup}]:
		case r.Src == 1 && bounded && r.Time < from:
		default:
			kept = append(kept, r)
		}
	}
	return kept
}

// hourStart is hourOf in Go: the start of the hour of t (nanoseconds),
// rounded down before 1970 too.
func hourStart(t int64) int64 {
	const h = int64(time.Hour)
	return t - ((t%h)+h)%h
}

// sampleRow is a row of Samples' answer. stream has the server write
// 64-bit integers as numbers, which decode exactly into these.
type sampleRow struct {
	Series uint64   `json:"series"`
	Tenant string   `json:"tenant"`
	Names  []string `json:"label_names"`
	Values []string `json:"label_values"`
	Time   int64    `json:"time"`
	Value  float64  `json:"value"`
	Src    uint8    `json:"src"`
	ID1    uint64   `json:"id1"`
	ID2    uint64   `json:"id2"`
	Rollup uint64   `json:"rollup"`
}

// sampleKey is what tells the copies of a row in Samples' answer apart
// from other rows: a raw sample's batch and place (src 0), an hour's
// claim (src 1).
type sampleKey struct {
	series   uint64
	time     int64
	src      uint8
	id1, id2 uint64
}

// Downsample rolls the samples older than before (its hour) up into an
// hour a series a row (their mean, least, greatest and count), and
// deletes them: what a baseline of weeks reads, in a sixtieth of the
// rows of minute samples. It returns how many samples it rolled up, each
// once however many copies retried appends left, on the shards that did
// beside the error of those that failed. Samples that arrive for an
// hour already rolled up make a second row of it, as they do in the
// DuckDB store.
//
// Each shard rolls its own series up, in three steps, none of which
// loses or doubles a sample if the call fails or its process ends
// between them, or if another Downsample runs at once:
//
//  1. claim: a mutation sets rollup of the rows older than the cut to a
//     claim of this call's. A mutation changes only the parts there
//     when it was made, so a sample stored while the rollup runs is not
//     deleted unrolled: it waits for the next Downsample. (Rolling up and
//     then deleting by time, as one DuckDB transaction does, would lose
//     it.)
//  2. roll up the claimed rows into hours marked with the claim; readers
//     read a claimed sample whose hour is there as that hour alone.
//  3. delete the claimed rows.
//
// Claims a call did not finish are finished by the next, once the
// mutations under way when it listed them are done: a claim is rolled
// up only whole. A mutation that never ends (on 18.16, one that failed)
// holds Downsample until ctx ends.
//
// One sample can be counted twice: one of an append that failed on
// another shard, claimed before the append is retried, whose copy then
// comes after the claim. Only samples older than the cut can be, which
// an import of old samples stores, not a live feed.
func (s *Store) Downsample(ctx context.Context, before time.Time) (int64, error) {
	cut := nanos(before.UTC().Truncate(time.Hour))
	counts := make([]int64, len(s.opts.Shards))
	errs := make([]error, len(s.opts.Shards))
	var wg sync.WaitGroup
	for i := range s.opts.Shards {
		wg.Go(func() {
			var err error
			if counts[i], err = s.downsampleOn(ctx, i, cut); err != nil {
				errs[i] = fmt.Errorf("clickhouse: downsampling samples on shard %d: %w", i+1, err)
			}
		})
	}
	wg.Wait()
	var n int64
	for _, c := range counts {
		n += c
	}
	return n, errors.Join(errs...)
}

// downsampleOn runs Downsample's steps on a shard for the rows before
// cut (nanoseconds).
func (s *Store) downsampleOn(ctx context.Context, shard int, cut int64) (int64, error) {
	claims, err := s.claims(ctx, shard)
	if err != nil {
		return 0, err
	}
	// A listed claim whose mutation is still running is not whole yet.
	if err := s.settleMutations(ctx, shard, "samples_local"); err != nil {
		return 0, err
	}
	claim := rand.Uint64() | 1 // never 0, the unclaimed
	where := fmt.Sprintf("rollup = 0 AND time < %d", cut)
	made, err := s.mutateIfAny(ctx, shard, "samples_local", where, fmt.Sprintf("UPDATE rollup = %d WHERE %s", claim, where))
	if err != nil {
		return 0, fmt.Errorf("claiming the samples before %s: %w", time.Unix(0, cut).UTC().Format(time.RFC3339), err)
	}
	if made {
		claims = append(claims, claim)
	}
	var n int64
	for _, c := range claims {
		k, err := s.rollUp(ctx, shard, c)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// claims returns the claims of a shard's samples that are not deleted
// yet: those a Downsample did not finish.
func (s *Store) claims(ctx context.Context, shard int) ([]uint64, error) {
	out, err := s.exec(ctx, shard, "SELECT DISTINCT rollup FROM "+s.opts.Database+".samples_local WHERE rollup != 0 FORMAT TabSeparated", nil)
	if err != nil {
		return nil, fmt.Errorf("listing the unfinished rollups: %w", err)
	}
	var claims []uint64
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		c, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("listing the unfinished rollups: %q: %w", line, err)
		}
		claims = append(claims, c)
	}
	return claims, nil
}

// rollUp rolls a claim's samples on a shard up into their hours and
// deletes them, returning how many it rolled up. Done again, it adds the
// same hours, which collapse with the first.
func (s *Store) rollUp(ctx context.Context, shard int, claim uint64) (int64, error) {
	if err := s.addHours(ctx, shard, claim); err != nil {
		return 0, err
	}
	out, err := s.exec(ctx, shard, "SELECT count() FROM ("+s.claimed(claim)+")", nil)
	if err != nil {
		return 0, fmt.Errorf("counting the samples of claim %d: %w", claim, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counting the samples of claim %d: %q: %w", claim, out, err)
	}
	where := fmt.Sprintf("rollup = %d", claim)
	if _, err := s.mutateIfAny(ctx, shard, "samples_local", where, "DELETE WHERE "+where); err != nil {
		return n, fmt.Errorf("deleting the samples of claim %d: %w", claim, err)
	}
	return n, nil
}

// claimed is a SELECT of the samples of a claim, each once whatever
// copies retried appends left, with the start of its hour (h).
func (s *Store) claimed(claim uint64) string {
	return fmt.Sprintf("SELECT any(day) AS d, tenant, metric, series, any(label_names) AS ln, any(label_values) AS lv, time AS t, %s AS h, any(value) AS v"+
		" FROM %s.samples_local WHERE rollup = %d GROUP BY tenant, metric, series, time, batch, n", hourOf("time"), s.opts.Database, claim)
}

// addHours adds the hours of a claim's samples on a shard to its
// samples_hourly_local. An hour lies in one day, its samples'. A series'
// samples at one time are summed before the hour's mean, as the rules'
// aggregation sums them: a flow rollup's bucket stored in parts (a
// series is on one shard) is one sum. Copies of a retried append are
// one sample (claimed).
func (s *Store) addHours(ctx context.Context, shard int, claim uint64) error {
	summed := fmt.Sprintf("SELECT any(d) AS d, tenant, metric, series, any(ln) AS ln, any(lv) AS lv, any(h) AS h, sum(v) AS v FROM (%s) GROUP BY tenant, metric, series, t",
		s.claimed(claim))
	insert := fmt.Sprintf("INSERT INTO %s.samples_hourly_local (day, tenant, metric, series, label_names, label_values, time, value, min, max, count, rollup)"+
		" SELECT any(d), tenant, metric, series, any(ln), any(lv), h, avg(v), min(v), max(v), count(), toUInt64(%d) FROM (%s) GROUP BY tenant, metric, series, h",
		s.opts.Database, claim, summed)
	if _, err := s.exec(ctx, shard, insert, nil); err != nil {
		return fmt.Errorf("rolling up claim %d: %w", claim, err)
	}
	return nil
}

// maxCondition bounds the text of a condition ReplaceSamples deletes
// by. Each is a mutation, which on 18.16 reads the columns of its
// condition in every part of the table (see mutations.go), so they are
// few and large; but the server parses a statement into at most 50,000
// nodes of syntax (max_ast_elements; a literal is one), which this
// leaves room within.
const maxCondition = 192 << 10

// ReplaceSamples stores a tenant's series in place of the samples the
// store has of them at the same times, raw or rolled up into an hour
// that starts then: for measures restated whole, as a cloud's cost
// export is each day for the month so far. A sample that is not a
// number replaces what was there with nothing.
//
// As in the DuckDB store, what it replaces is deleted first, here by
// mutations it waits for, and then the series are appended: a call that
// fails midway may leave samples deleted and not yet stored, and made
// again does the whole. A ReplacingMergeTree keyed by series and time
// would replace without a delete, but its merges would also collapse two
// samples appended at one time, which AppendSamples keeps, as the DuckDB
// store does; and until a merge, every read would have to pick the
// newest row itself. Restatements are rare (a cost export a day), and a
// mutation each is the cheaper price.
func (s *Store) ReplaceSamples(ctx context.Context, tenant string, series []metric.Series) error {
	conds := replacedWhere(tenant, series)
	// Every shard: a series lives on one, but which one changes with the
	// number of shards, and a shard without its rows costs a SELECT.
	errs := make([]error, len(s.opts.Shards))
	var wg sync.WaitGroup
	for i := range s.opts.Shards {
		wg.Go(func() {
			for _, table := range []string{"samples_local", "samples_hourly_local"} {
				for _, c := range conds {
					if _, err := s.mutateIfAny(ctx, i, table, c, "DELETE WHERE "+c); err != nil {
						errs[i] = fmt.Errorf("clickhouse: deleting the samples of %q replaced, from %s on shard %d: %w", tenant, table, i+1, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return s.AppendSamples(ctx, tenant, series)
}

// replacedWhere returns the conditions of the samples ReplaceSamples
// replaces with series: their tenant, series ids and times. Series
// restated over the same times (a cost export's days) share a clause,
// and a condition longer than maxCondition is cut in several.
func replacedWhere(tenant string, series []metric.Series) []string {
	byTimes := map[string][]uint64{}
	var keys []string // in the order of the series, for conditions the same each call
	for i := range series {
		sr := &series[i]
		sr.Labels.Sort()
		if len(sr.Samples) == 0 {
			continue
		}
		times := make([]int64, len(sr.Samples))
		for j, x := range sr.Samples {
			times[j] = nanos(x.Time)
		}
		slices.Sort(times)
		var key strings.Builder
		for j, t := range slices.Compact(times) {
			if j > 0 {
				key.WriteString(", ")
			}
			key.WriteString(strconv.FormatInt(t, 10))
		}
		k := key.String()
		if _, ok := byTimes[k]; !ok {
			keys = append(keys, k)
		}
		byTimes[k] = append(byTimes[k], sr.ID(tenant))
	}
	var (
		conds []string
		cur   strings.Builder
	)
	flush := func() {
		if cur.Len() > 0 {
			conds = append(conds, "tenant = "+quote(tenant)+" AND ("+cur.String()+")")
			cur.Reset()
		}
	}
	for _, times := range keys {
		ids := byTimes[times]
		for _, idList := range cutList(ids, maxCondition/4) {
			for _, timeList := range cutList(strings.Split(times, ", "), maxCondition/2) {
				c := "(series IN (" + idList + ") AND time IN (" + timeList + "))"
				if cur.Len() > 0 && cur.Len()+len(c) > maxCondition {
					flush()
				}
				if cur.Len() > 0 {
					cur.WriteString(" OR ")
				}
				cur.WriteString(c)
			}
		}
	}
	flush()
	return conds
}

// cutList writes items as SQL lists, each of about size bytes at most.
func cutList[T any](items []T, size int) []string {
	var (
		lists []string
		b     strings.Builder
	)
	for _, it := range items {
		v := fmt.Sprint(it)
		if b.Len() > 0 && b.Len()+len(v) > size {
			lists = append(lists, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v)
	}
	if b.Len() > 0 {
		lists = append(lists, b.String())
	}
	return lists
}
