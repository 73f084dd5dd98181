package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

// coverageEvent is an event of TestCoverage: received at a time, its
// own time delay before, in a ledger.
type coverageEvent struct {
	ledger                          uint16
	tenant, env, source, acct, host string
	received                        time.Time
	delay                           time.Duration
	skewed                          bool
}

// coverageLine writes a source's coverage on one line, its last receipt
// to the nanosecond, so that a difference reads at a glance.
func coverageLine(c store.SourceCoverage) string {
	return fmt.Sprintf("%s|%s|%s|%s events=%d skewed=%d last=%s delay=%s p95=%s",
		c.Tenant, c.Environment, c.Source, c.From, c.Events, c.Skewed, c.LastSeen.UTC().Format(time.RFC3339Nano), c.Delay, c.DelayP95)
}

func coverageLines(cs []store.SourceCoverage) string {
	lines := make([]string, len(cs))
	for i, c := range cs {
		lines[i] = coverageLine(c)
	}
	return strings.Join(lines, "\n")
}

// TestCoverage: on a cluster of two shards, the coverage counts each
// event once (a retried batch included), of the tenants in scope alone,
// received in the window, vigil's own records left out, grouped and
// ordered as the DuckDB store's; its delays are DuckDB's, interpolated
// and truncated to the millisecond alike. The expectations are written
// out, and the embedded store, given the same events, answers each case
// the same.
func TestCoverage(t *testing.T) {
	ctx := context.Background()
	shards := chtest.Start(t, 2)
	ch := open(t, shards)
	// Merges would collapse the retried batch on their own, and the test
	// would not show that the reads do.
	for i := range shards {
		if _, err := ch.exec(ctx, i, "SYSTEM STOP MERGES vigil.events_local", nil); err != nil {
			t.Fatal(err)
		}
	}
	db := oracle(t)

	t0 := time.Date(2024, 7, 31, 12, 0, 0, 0, time.UTC)
	h, s, ms := time.Hour, time.Second, time.Millisecond
	const prod, trail = "prod", "aws.cloudtrail"
	evs := []coverageEvent{
		// team-a's trail of account 1: an even count, whose median is
		// interpolated (quantileExact would pick 4s). The host is not the
		// account's. The last receipt is off the millisecond.
		{tenant: "team-a", env: prod, source: trail, acct: "111111111111", host: "ip-10-0-0-1", received: t0.Add(1 * h), delay: 1 * s},
		{tenant: "team-a", env: prod, source: trail, acct: "111111111111", host: "ip-10-0-0-1", received: t0.Add(2 * h), delay: 2 * s},
		{tenant: "team-a", env: prod, source: trail, acct: "111111111111", received: t0.Add(3 * h), delay: 4 * s},
		{tenant: "team-a", env: prod, source: trail, acct: "111111111111", received: t0.Add(4*h + 250), delay: 4 * s},
		// The same, received a nanosecond before the window and at its
		// end, which is not in it.
		{tenant: "team-a", env: prod, source: trail, acct: "111111111111", received: t0.Add(-1), delay: 6 * s},
		{tenant: "team-a", env: prod, source: trail, acct: "111111111111", received: t0.Add(24 * h), delay: 5 * s},
		// Account 2: at the window's start, and the same seq in another
		// ledger, which is another event.
		{tenant: "team-a", env: prod, source: trail, acct: "222222222222", received: t0, delay: 10 * s},
		{ledger: 1, tenant: "team-a", env: prod, source: trail, acct: "222222222222", received: t0.Add(30 * time.Minute), delay: 10 * s},
		// Host logs of no environment; one dated an hour after its
		// receipt.
		{tenant: "team-a", source: "syslog", host: "web-1", received: t0.Add(5 * h), delay: -1 * h, skewed: true},
		{tenant: "team-a", source: "syslog", host: "web-1", received: t0.Add(6 * h), delay: 1500 * ms},
		{tenant: "team-a", source: "syslog", host: "web-1", received: t0.Add(7 * h), delay: 1500 * ms},
		// Half a millisecond off: DuckDB subtracts whole milliseconds
		// (epoch_ms), 1501, not 1500.5 truncated.
		{tenant: "team-a", env: prod, source: "gcp.audit", acct: "proj-1", received: t0.Add(8 * h), delay: 1500*ms + 500*time.Microsecond},
		// Neither account nor host; a p95 between two values far apart.
		{tenant: "team-a", env: prod, source: "okta", received: t0.Add(9 * h), delay: 1 * s},
		{tenant: "team-a", env: prod, source: "okta", received: t0.Add(10 * h), delay: 2 * s},
		{tenant: "team-a", env: prod, source: "okta", received: t0.Add(11 * h), delay: 3 * s},
		{tenant: "team-a", env: prod, source: "okta", received: t0.Add(12 * h), delay: 4 * s},
		{tenant: "team-a", env: prod, source: "okta", received: t0.Add(13 * h), delay: 100 * s, skewed: true},
		// vigil's own records.
		{tenant: "team-a", env: prod, source: "vigil.audit", received: t0.Add(1 * h), delay: 1 * s},
		{tenant: "team-b", source: "vigil.response", received: t0.Add(2 * h), delay: 1 * s},
		// team-b's trail of the account team-a has too.
		{tenant: "team-b", env: prod, source: trail, acct: "111111111111", received: t0.Add(2 * h), delay: 7 * s, skewed: true},
		{tenant: "team-b", env: prod, source: trail, acct: "111111111111", received: t0.Add(3 * h), delay: 7 * s},
		{tenant: "team-b", env: prod, source: trail, acct: "111111111111", received: t0.Add(20 * h), delay: 7 * s},
		{tenant: "team-b", env: "staging", source: "linux.auditd", host: "db-1", received: t0.Add(1 * h), delay: 100 * ms},
		{tenant: "team-b", env: "staging", source: "linux.auditd", host: "db-1", received: t0.Add(2 * h), delay: 300 * ms},
		{tenant: "team-b", env: "staging", source: "linux.auditd", host: "db-1", received: t0.Add(3 * h), delay: 300 * ms},
		// The system's.
		{tenant: query.SystemTenant, env: prod, source: trail, acct: "999999999999", received: t0.Add(1 * h), delay: 1 * s},
	}
	byLedger := map[uint16][]*event.Event{}
	var all []*event.Event
	for i, c := range evs {
		e := &event.Event{
			Seq: uint64(i + 1), Time: c.received.Add(-c.delay), Received: c.received, Skewed: c.skewed,
			Tenant: c.tenant, Source: c.source, Class: event.ClassAPIActivity, Environment: c.env, Host: c.host,
			Cloud: event.Cloud{Account: c.acct}, Raw: []byte(`{}`),
		}
		if c.ledger == 1 {
			// The seq of the event of account 2 in ledger 0.
			e.Seq = 7
		}
		byLedger[c.ledger] = append(byLedger[c.ledger], e)
		all = append(all, e)
	}
	for ledger, evs := range byLedger {
		if err := ch.Append(ctx, ledger, evs); err != nil {
			t.Fatal(err)
		}
	}
	// A retried batch: the first event again, as it was.
	if err := ch.Append(ctx, 0, byLedger[0][:1]); err != nil {
		t.Fatal(err)
	}
	if err := db.Append(ctx, all); err != nil {
		t.Fatal(err)
	}
	// The copy is there, uncollapsed: only reading with FINAL counts it
	// once.
	stored := 0
	for i := range shards {
		out, err := ch.exec(ctx, i, "SELECT count() FROM vigil.events_local", nil)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		stored += n
	}
	if stored != len(all)+1 {
		t.Fatalf("the shards hold %d rows, want %d: the retried event's copy is not there to collapse", stored, len(all)+1)
	}

	// The sources over the whole window.
	a1 := store.SourceCoverage{Tenant: "team-a", Environment: prod, Source: trail, From: "111111111111",
		Events: 4, LastSeen: t0.Add(4*h + 250), Delay: 3 * s, DelayP95: 4 * s}
	a2 := store.SourceCoverage{Tenant: "team-a", Environment: prod, Source: trail, From: "222222222222",
		Events: 2, LastSeen: t0.Add(30 * time.Minute), Delay: 10 * s, DelayP95: 10 * s}
	aSyslog := store.SourceCoverage{Tenant: "team-a", Source: "syslog", From: "web-1",
		Events: 3, Skewed: 1, LastSeen: t0.Add(7 * h), Delay: 1500 * ms, DelayP95: 1500 * ms}
	aGCP := store.SourceCoverage{Tenant: "team-a", Environment: prod, Source: "gcp.audit", From: "proj-1",
		Events: 1, LastSeen: t0.Add(8 * h), Delay: 1501 * ms, DelayP95: 1501 * ms}
	// 4s + 0.8 of the 96s to 100s; in floats 0.8 is 0.7999…, and the
	// milliseconds are truncated: 80799.
	aOkta := store.SourceCoverage{Tenant: "team-a", Environment: prod, Source: "okta", From: "",
		Events: 5, Skewed: 1, LastSeen: t0.Add(13 * h), Delay: 3 * s, DelayP95: 80799 * ms}
	b1 := store.SourceCoverage{Tenant: "team-b", Environment: prod, Source: trail, From: "111111111111",
		Events: 3, Skewed: 1, LastSeen: t0.Add(20 * h), Delay: 7 * s, DelayP95: 7 * s}
	bAuditd := store.SourceCoverage{Tenant: "team-b", Environment: "staging", Source: "linux.auditd", From: "db-1",
		Events: 3, LastSeen: t0.Add(3 * h), Delay: 300 * ms, DelayP95: 300 * ms}
	sys := store.SourceCoverage{Tenant: query.SystemTenant, Environment: prod, Source: trail, From: "999999999999",
		Events: 1, LastSeen: t0.Add(1 * h), Delay: 1 * s, DelayP95: 1 * s}
	teamA := []store.SourceCoverage{aSyslog, a1, a2, aGCP, aOkta}
	teamB := []store.SourceCoverage{b1, bAuditd}

	// team-a's sources at any time.
	wide := []store.SourceCoverage{
		aSyslog,
		// 1, 2, 4, 4, 5, 6s.
		{Tenant: "team-a", Environment: prod, Source: trail, From: "111111111111", Events: 6, LastSeen: t0.Add(24 * h), Delay: 4 * s, DelayP95: 5750 * ms},
		a2, aGCP, aOkta,
	}

	allScope := query.Scope{All: true}
	scopeA := query.Scope{Tenants: []string{"team-a"}}
	from, to := t0, t0.Add(24*h)
	for _, tt := range []struct {
		name     string
		scope    query.Scope
		from, to time.Time
		want     []store.SourceCoverage
		noOracle bool
	}{
		{name: "all", scope: allScope, from: from, to: to, want: append(append([]store.SourceCoverage{}, teamA...), teamB...)},
		{name: "all and the system", scope: query.Scope{All: true, Tenants: []string{query.SystemTenant}}, from: from, to: to,
			want: append(append([]store.SourceCoverage{sys}, teamA...), teamB...)},
		{name: "the system", scope: query.Scope{Tenants: []string{query.SystemTenant}}, from: from, to: to, want: []store.SourceCoverage{sys}},
		{name: "team-a", scope: scopeA, from: from, to: to, want: teamA},
		{name: "team-b", scope: query.Scope{Tenants: []string{"team-b"}}, from: from, to: to, want: teamB},
		{name: "both named", scope: query.Scope{Tenants: []string{"team-b", "team-a"}}, from: from, to: to,
			want: append(append([]store.SourceCoverage{}, teamA...), teamB...)},
		{name: "empty scope", scope: query.Scope{}, from: from, to: to},
		{name: "a tenant of none", scope: query.Scope{Tenants: []string{"team-c"}}, from: from, to: to},
		{name: "a hostile tenant", scope: query.Scope{Tenants: []string{`team-a' OR '1'='1`, `\`}}, from: from, to: to},
		{name: "a grant is not coverage", scope: query.Scope{Shares: []query.Share{{Grant: "g1", Tenant: "team-b"}}}, from: from, to: to},
		{name: "team-a and a grant of team-b", scope: query.Scope{Tenants: []string{"team-a"}, Shares: []query.Share{{Grant: "g1", Tenant: "team-b"}}},
			from: from, to: to, want: teamA},
		{name: "a narrower window", scope: scopeA, from: t0.Add(2 * h), to: t0.Add(4 * h), want: []store.SourceCoverage{
			{Tenant: "team-a", Environment: prod, Source: trail, From: "111111111111", Events: 2, LastSeen: t0.Add(3 * h), Delay: 3 * s, DelayP95: 3900 * ms},
		}},
		{name: "the first nanosecond", scope: allScope, from: t0, to: t0.Add(1), want: []store.SourceCoverage{
			{Tenant: "team-a", Environment: prod, Source: trail, From: "222222222222", Events: 1, LastSeen: t0, Delay: 10 * s, DelayP95: 10 * s},
		}},
		{name: "the nanosecond before", scope: allScope, from: t0.Add(-h), to: t0, want: []store.SourceCoverage{
			{Tenant: "team-a", Environment: prod, Source: trail, From: "111111111111", Events: 1, LastSeen: t0.Add(-1), Delay: 6 * s, DelayP95: 6 * s},
		}},
		{name: "the window's end", scope: allScope, from: to, to: to.Add(24 * h), want: []store.SourceCoverage{
			{Tenant: "team-a", Environment: prod, Source: trail, From: "111111111111", Events: 1, LastSeen: to, Delay: 5 * s, DelayP95: 5 * s},
		}},
		{name: "a wide window", scope: scopeA, from: time.Unix(0, 0), to: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), want: wide},
		// Bounds no Int64 of nanoseconds holds bound nothing; DuckDB
		// takes no such time to compare.
		{name: "no window", scope: scopeA, from: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), to: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
			want: wide, noOracle: true},
		{name: "zero bounds", scope: scopeA, to: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), want: wide, noOracle: true},
		{name: "an empty window", scope: allScope, from: to, to: from},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ch.Coverage(ctx, tt.scope, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := coverageLines(got), coverageLines(tt.want); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
			for _, c := range got {
				if c.LastSeen.Location() != time.UTC {
					t.Errorf("%s: last seen in %s, want UTC", coverageLine(c), c.LastSeen.Location())
				}
			}
			if tt.noOracle {
				return
			}
			want, err := db.Coverage(ctx, tt.scope, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := coverageLines(got), coverageLines(want); g != w || (got == nil) != (want == nil) {
				t.Errorf("not as DuckDB: got\n%s\nDuckDB\n%s", g, w)
			}
		})
	}
}
