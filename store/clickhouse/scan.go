package clickhouse

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// scanWindow bounds the events one statement of Scan sorts: a day's,
// as the table's partitions are.
const scanWindow = 24 * time.Hour

// maxRow bounds one row of a scan's answer: an event, its raw document
// and its document's fields.
const maxRow = 512 << 20

// Scan calls fn with each event the request selects (its query, scope
// and time range), oldest first and each once, as the embedded store's
// Scan does: for hunts and backtests. The events stream from the server
// a day at a time, never held all at once, and only the days that hold
// events are asked for. A head in the query bounds each day's events.
func (s *Store) Scan(ctx context.Context, req query.Request, fn func(*event.Event) error) error {
	req, err := s.restrict(ctx, req)
	if err != nil {
		return err
	}
	days, err := s.days(ctx, req.From, req.To)
	if err != nil {
		return err
	}
	for _, day := range days {
		sub := req
		sub.From, sub.To = day, day.Add(scanWindow)
		if !req.From.IsZero() && sub.From.Before(req.From) {
			sub.From = req.From
		}
		if !req.To.IsZero() && sub.To.After(req.To) {
			sub.To = req.To
		}
		if err := s.scanWindow(ctx, sub, fn); err != nil {
			return err
		}
	}
	return nil
}

// days returns the days (UTC) that hold events in [from, to), either
// end open when zero, oldest first.
func (s *Store) days(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	var where []string
	if !from.IsZero() {
		where = append(where, fmt.Sprintf("time >= %d", from.UnixNano()))
	}
	if !to.IsZero() {
		where = append(where, fmt.Sprintf("time < %d", to.UnixNano()))
	}
	stmt := "SELECT DISTINCT day FROM events"
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := s.query(ctx, 0, stmt+" ORDER BY day FORMAT TSV")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: reading the days that hold events: %w", err)
	}
	var days []time.Time
	for _, line := range strings.Fields(string(out)) {
		d, err := time.Parse(time.DateOnly, line)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: reading the days that hold events: %w", err)
		}
		days = append(days, d)
	}
	return days, nil
}

// scanWindow calls fn with the events of req, the window of a Scan,
// oldest first and each once.
//
// It reads without FINAL (query.ClickHouseCopies), which would merge
// every part of the window in memory: the copies of an event that a
// retried insert left come side by side instead, since the statement
// orders by time and then seq, which copies share, and streamEvents
// keeps the first. The copies are alike but for an origin SetOrigins
// set before the insert was retried (see SetOrigins), and either may be
// the one kept until a merge collapses them.
func (s *Store) scanWindow(ctx context.Context, req query.Request, fn func(*event.Event) error) error {
	compiled, err := query.Compile(req.OldestFirst(), query.ClickHouseCopies)
	if err != nil {
		return err
	}
	if compiled.Kind != query.Events {
		return fmt.Errorf("the query must select events, not make a table")
	}
	if headed, none, err := s.pickHeads(ctx, req); err != nil || none {
		return err
	} else if headed != nil {
		req = *headed
		if compiled, err = query.Compile(req.OldestFirst(), query.ClickHouseCopies); err != nil {
			return err
		}
	}
	text, err := inline(compiled.Text, compiled.Args)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	redacts := req.Scope.Redacts()
	return s.streamEvents(ctx, "scanning events", text, func(e *event.Event) error {
		if redacts {
			store.RedactEvent(e, req.Scope.Redaction(e.Tenant))
		}
		return fn(e)
	})
}

// eventOf is the event a row holds: rowOf's inverse.
func eventOf(r *row) (*event.Event, error) {
	v := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	e := &event.Event{
		Seq: r.Seq, Time: time.Unix(0, r.Time).UTC(), Received: time.Unix(0, r.Received).UTC(), Skewed: r.Skewed != 0,
		Tenant: r.Tenant, Source: r.Source, Class: r.Class, ID: v(r.EventID),
		Cloud:       event.Cloud{Provider: v(r.Provider), Account: v(r.Account), Region: v(r.Region)},
		Environment: v(r.Environment),
		Actor:       event.Actor{ID: v(r.ActorID), Type: v(r.ActorType), Name: v(r.Actor)},
		Session:     event.Session{ID: v(r.SessionID), Origin: v(r.Origin)},
		Host:        v(r.Host), UserAgent: v(r.UserAgent), Service: v(r.Service), Action: v(r.Action),
		Outcome: event.Outcome{Result: v(r.Outcome), Code: v(r.ErrorCode)},
		Message: v(r.Message), Origin: v(r.From), Raw: []byte(r.Raw),
	}
	if r.SrcIP != nil {
		e.SrcIP, _ = netip.ParseAddr(*r.SrcIP)
	}
	if r.DstIP != nil {
		e.DstIP, _ = netip.ParseAddr(*r.DstIP)
	}
	if r.SrcPort != nil {
		e.SrcPort = *r.SrcPort
	}
	if r.DstPort != nil {
		e.DstPort = *r.DstPort
	}
	if len(r.Resources) > 0 {
		e.Resources = r.Resources
	}
	if r.RawBin != nil {
		b, err := base64.StdEncoding.DecodeString(*r.RawBin)
		if err != nil {
			return nil, fmt.Errorf("raw_bin: %w", err)
		}
		e.Raw = b
	}
	if r.Doc != nil {
		e.Doc = []byte(*r.Doc)
	}
	place := func(asset, owner, country, city *string, asn *uint32, asOrg, cloud *string) event.Place {
		p := event.Place{Asset: v(asset), Owner: v(owner), Country: v(country), City: v(city), ASOrg: v(asOrg), Cloud: v(cloud)}
		if asn != nil {
			p.ASN = *asn
		}
		return p
	}
	e.Context.Src = place(r.SrcAsset, r.SrcOwner, r.SrcCountry, r.SrcCity, r.SrcASN, r.SrcASOrg, r.SrcCloud)
	e.Context.Dst = place(r.DstAsset, r.DstOwner, r.DstCountry, r.DstCity, r.DstASN, r.DstASOrg, r.DstCloud)
	e.Context.Team = v(r.Team)
	if len(r.IntelInd) == len(r.Intel) && len(r.IntelType) == len(r.Intel) {
		for i := range r.Intel {
			e.Context.Intel = append(e.Context.Intel, event.IntelHit{List: r.Intel[i], Indicator: r.IntelInd[i], Type: r.IntelType[i]})
		}
	}
	return e, nil
}
