package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
)

// The store is derived from the ledger: an event's seq is its ledger
// index. What is here lets the owner of both keep them in step: find the
// seqs the store lacks after a crash (Missing, MarkOther), read events
// back in seq order (Events), and drop the rows of redacted events
// (Delete).

// Missing returns the seq ranges below size, inclusive and in order, that
// the store has no event for and MarkOther did not mark. After a crash
// these are the events the ledger acknowledged but the store did not
// commit.
func (s *DB) Missing(ctx context.Context, size uint64) ([][2]uint64, error) {
	if size == 0 {
		return nil, nil
	}
	// The seqs present: events, one each, and the ranges of other records.
	const present = `SELECT seq AS lo, seq AS hi FROM events WHERE seq < CAST($1 AS UBIGINT)
		UNION ALL SELECT first, least(last, CAST($1 AS UBIGINT) - 1) FROM ledger_other WHERE first < CAST($1 AS UBIGINT)`
	var n, lo, hi sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT sum(hi - lo + 1), min(lo), max(hi) FROM ("+present+")", size).Scan(&n, &lo, &hi)
	if err != nil {
		return nil, fmt.Errorf("reading the seqs in %s: %w", s.opts.Path, err)
	}
	if !n.Valid || n.Int64 == 0 {
		return [][2]uint64{{0, size - 1}}, nil
	}
	if uint64(n.Int64) == size {
		return nil, nil
	}
	var out [][2]uint64
	if lo.Int64 > 0 {
		out = append(out, [2]uint64{0, uint64(lo.Int64) - 1})
	}
	rows, err := s.db.QueryContext(ctx, `SELECT hi + 1, next - 1 FROM (
		SELECT hi, lead(lo) OVER (ORDER BY lo) AS next FROM (`+present+`)
	) WHERE next > hi + 1 ORDER BY hi`, size)
	if err != nil {
		return nil, fmt.Errorf("finding gaps in the seqs of %s: %w", s.opts.Path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r [2]uint64
		if err := rows.Scan(&r[0], &r[1]); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("finding gaps in the seqs of %s: %w", s.opts.Path, err)
	}
	if uint64(hi.Int64) < size-1 {
		out = append(out, [2]uint64{uint64(hi.Int64) + 1, size - 1})
	}
	return out, nil
}

// MarkOther records seq ranges whose ledger records are not events (the
// ledger's own records, redacted events), so that Missing counts them as
// present. Ranges must not overlap stored events or each other.
func (s *DB) MarkOther(ctx context.Context, ranges [][2]uint64) error {
	if len(ranges) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("marking ledger records in %s: %w", s.opts.Path, err)
	}
	defer tx.Rollback()
	for _, r := range ranges {
		if _, err := tx.ExecContext(ctx, "INSERT INTO ledger_other VALUES (CAST(? AS UBIGINT), CAST(? AS UBIGINT))", r[0], r[1]); err != nil {
			return fmt.Errorf("marking ledger records in %s: %w", s.opts.Path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("marking ledger records in %s: %w", s.opts.Path, err)
	}
	return nil
}

// Delete removes the events with the given seqs, for a redaction: the
// ledger keeps only their hashes, and the store must not keep more. The
// word filters of their blocks go too. DuckDB only marks deleted rows, and
// keeps their bytes in the file until it rewrites it: Compact does.
func (s *DB) Delete(ctx context.Context, seqs []uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rest := seqs; len(rest) > 0; {
		n := min(len(rest), 1000)
		args := make([]any, n)
		for i, q := range rest[:n] {
			args[i] = q
		}
		in := strings.TrimSuffix(strings.Repeat("CAST(? AS UBIGINT),", n), ",")
		for _, table := range []string{"events", "origin_backfills"} {
			if _, err := s.db.ExecContext(ctx, "DELETE FROM "+table+" WHERE seq IN ("+in+")", args...); err != nil {
				return fmt.Errorf("deleting events from %s: %w", s.opts.Path, err)
			}
		}
		rest = rest[n:]
	}
	return s.words.forget(ctx, seqs)
}

// Compact rewrites the store file at path into a new one that replaces
// it, so that the bytes of deleted events are gone from the file: DuckDB
// keeps them in row groups with deleted rows and in freed blocks until
// they happen to be reused. The file must not be open. The old file is
// unlinked, not overwritten, like the ledger's redacted segments.
func Compact(ctx context.Context, path string, logger *slog.Logger) error {
	tmp := path + ".compact"
	for _, p := range []string{tmp, tmp + ".wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	s, err := Open(Options{Path: path, Logger: logger})
	if err != nil {
		return err
	}
	err = func() error {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		var name string
		if err := conn.QueryRowContext(ctx, "SELECT current_database()").Scan(&name); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, "ATTACH "+quoteLiteral(tmp)+" AS compact_target"); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, "COPY FROM DATABASE "+quoteIdent(name)+" TO compact_target"); err != nil {
			return err
		}
		_, err = conn.ExecContext(ctx, "DETACH compact_target")
		return err
	}()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compacting %s: %w", path, err)
	}
	return nil
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Events calls fn with each event whose seq is in [from, to), in seq
// order, as the store holds it. It reads in chunks, so that a scan of the
// whole store holds little in memory.
func (s *DB) Events(ctx context.Context, from, to uint64, fn func(*event.Event) error) error {
	const chunk = 50_000
	cols := strings.Join(query.EventColumns(), ", ")
	for lo := from; lo < to; {
		hi := min(to, lo+chunk)
		if hi < lo { // overflow near the top of the range
			hi = to
		}
		rows, err := s.db.QueryContext(ctx, "SELECT "+cols+" FROM events WHERE seq >= CAST(? AS UBIGINT) AND seq < CAST(? AS UBIGINT) ORDER BY seq", lo, hi)
		if err != nil {
			return fmt.Errorf("reading events %d to %d of %s: %w", lo, hi, s.opts.Path, err)
		}
		for rows.Next() {
			e, err := scanEvent(rows)
			if err == nil {
				err = fn(e)
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading events %d to %d of %s: %w", lo, hi, s.opts.Path, err)
		}
		rows.Close()
		lo = hi
	}
	return nil
}

// EventsAt calls fn with each event of the seqs given (sorted), in seq
// order: the events a search found, read whole in a few queries rather
// than one a seq.
func (s *DB) EventsAt(ctx context.Context, seqs []uint64, fn func(*event.Event) error) error {
	const chunk = 1000
	cols := strings.Join(query.EventColumns(), ", ")
	for len(seqs) > 0 {
		n := min(len(seqs), chunk)
		args := make([]any, n)
		ph := make([]string, n)
		for i, seq := range seqs[:n] {
			args[i], ph[i] = seq, "CAST(? AS UBIGINT)"
		}
		seqs = seqs[n:]
		rows, err := s.db.QueryContext(ctx, "SELECT "+cols+" FROM events WHERE seq IN ("+strings.Join(ph, ", ")+") ORDER BY seq", args...)
		if err != nil {
			return fmt.Errorf("reading events of %s: %w", s.opts.Path, err)
		}
		for rows.Next() {
			e, err := scanEvent(rows)
			if err == nil {
				err = fn(e)
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("reading events of %s: %w", s.opts.Path, err)
		}
	}
	return nil
}

// scanEvent reads a row of query.EventColumns into an event.
func scanEvent(rows *sql.Rows) (*event.Event, error) {
	var (
		e                                               event.Event
		id, provider, account, region, env              sql.NullString
		actor, actorID, actorType, session, sessionOrig sql.NullString
		srcIP, dstIP                                    sql.NullString
		srcPort, dstPort                                sql.NullInt32
		host, ua, service, action                       sql.NullString
		resources                                       any
		outcome, code, message, origin                  sql.NullString
		raw                                             string
		rawBin                                          []byte
		doc                                             sql.NullString
		places                                          [2]placeCols
		team                                            sql.NullString
		intel, intelInd, intelType                      any
	)
	err := rows.Scan(&e.Seq, &e.Time, &e.Received, &e.Skewed, &e.Tenant, &e.Source, &e.Class, &id,
		&provider, &account, &region, &env, &actor, &actorID, &actorType,
		&session, &sessionOrig, &srcIP, &dstIP, &srcPort, &dstPort, &host,
		&ua, &service, &action, &resources, &outcome, &code, &message,
		&origin, &raw, &rawBin, &doc,
		&places[0].asset, &places[0].owner, &places[0].country, &places[0].city, &places[0].asn, &places[0].asOrg, &places[0].cloud,
		&places[1].asset, &places[1].owner, &places[1].country, &places[1].city, &places[1].asn, &places[1].asOrg, &places[1].cloud,
		&team, &intel, &intelInd, &intelType)
	if err != nil {
		return nil, fmt.Errorf("reading an event: %w", err)
	}
	e.Time, e.Received = e.Time.UTC(), e.Received.UTC()
	e.ID = id.String
	e.Cloud = event.Cloud{Provider: provider.String, Account: account.String, Region: region.String}
	e.Environment = env.String
	e.Actor = event.Actor{ID: actorID.String, Type: actorType.String, Name: actor.String}
	e.Session = event.Session{ID: session.String, Origin: sessionOrig.String}
	if srcIP.Valid {
		e.SrcIP, _ = netip.ParseAddr(srcIP.String)
	}
	if dstIP.Valid {
		e.DstIP, _ = netip.ParseAddr(dstIP.String)
	}
	e.SrcPort, e.DstPort = uint16(srcPort.Int32), uint16(dstPort.Int32)
	e.Host, e.UserAgent, e.Service, e.Action = host.String, ua.String, service.String, action.String
	if list, ok := resources.([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok {
				e.Resources = append(e.Resources, s)
			}
		}
	}
	e.Outcome = event.Outcome{Result: outcome.String, Code: code.String}
	e.Message, e.Origin = message.String, origin.String
	if rawBin != nil {
		e.Raw = rawBin
	} else {
		e.Raw = []byte(raw)
	}
	if doc.Valid {
		e.Doc = []byte(doc.String)
	}
	e.Context.Src, e.Context.Dst = places[0].place(), places[1].place()
	e.Context.Team = team.String
	lists, inds, types := stringList(intel), stringList(intelInd), stringList(intelType)
	if len(inds) == len(lists) && len(types) == len(lists) {
		for i := range lists {
			e.Context.Intel = append(e.Context.Intel, event.IntelHit{List: lists[i], Indicator: inds[i], Type: types[i]})
		}
	}
	return &e, nil
}

// placeCols are the columns of an event.Place.
type placeCols struct {
	asset, owner, country, city, asOrg, cloud sql.NullString
	asn                                       sql.NullInt64
}

func (p *placeCols) place() event.Place {
	return event.Place{
		Asset: p.asset.String, Owner: p.owner.String, Country: p.country.String, City: p.city.String,
		ASN: uint32(p.asn.Int64), ASOrg: p.asOrg.String, Cloud: p.cloud.String,
	}
}

// stringList reads a VARCHAR[] column; NULL elements read as "".
func stringList(v any) []string {
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, x := range list {
		out[i], _ = x.(string)
	}
	return out
}

// StoredForm returns e as the store keeps it, which Events gives back:
// text that is not UTF-8 made valid (except raw, kept exactly), addresses
// without their IPv4-in-IPv6 form, times in UTC. The store agrees with
// the ledger about an event when the event it holds equals the stored
// form of the ledger's.
func StoredForm(e *event.Event) *event.Event {
	c := *e
	valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	c.Time, c.Received = e.Time.UTC(), e.Received.UTC()
	c.Tenant, c.Source, c.Class, c.ID = valid(e.Tenant), valid(e.Source), valid(e.Class), valid(e.ID)
	c.Cloud = event.Cloud{Provider: valid(e.Cloud.Provider), Account: valid(e.Cloud.Account), Region: valid(e.Cloud.Region)}
	c.Environment = valid(e.Environment)
	c.Actor = event.Actor{ID: valid(e.Actor.ID), Type: valid(e.Actor.Type), Name: valid(e.Actor.Name)}
	c.Session = event.Session{ID: valid(e.Session.ID), Origin: valid(e.Session.Origin)}
	if e.SrcIP.IsValid() {
		c.SrcIP = e.SrcIP.Unmap()
	}
	if e.DstIP.IsValid() {
		c.DstIP = e.DstIP.Unmap()
	}
	c.Host, c.UserAgent, c.Service, c.Action = valid(e.Host), valid(e.UserAgent), valid(e.Service), valid(e.Action)
	c.Resources = nil
	for _, r := range e.Resources {
		c.Resources = append(c.Resources, valid(r))
	}
	c.Outcome = event.Outcome{Result: valid(e.Outcome.Result), Code: valid(e.Outcome.Code)}
	c.Message, c.Origin = valid(e.Message), valid(e.Origin)
	if e.Raw == nil {
		c.Raw = []byte{}
	}
	if e.Doc != nil {
		c.Doc = []byte(valid(string(e.Doc)))
	}
	ctx := &c.Context
	for _, p := range []*event.Place{&ctx.Src, &ctx.Dst} {
		p.Asset, p.Owner, p.Country, p.City = valid(p.Asset), valid(p.Owner), valid(p.Country), valid(p.City)
		p.ASOrg, p.Cloud = valid(p.ASOrg), valid(p.Cloud)
	}
	ctx.Team = valid(ctx.Team)
	ctx.Intel = nil
	for _, h := range e.Context.Intel {
		ctx.Intel = append(ctx.Intel, event.IntelHit{List: valid(h.List), Indicator: valid(h.Indicator), Type: valid(h.Type)})
	}
	return &c
}

// Seqs returns the seqs of the events req's query matches, all of them up
// to req.Limit, for commands that act on a search's events (redaction,
// export). The query must not end in a command that makes a table.
func (s *DB) Seqs(ctx context.Context, req query.Request) ([]uint64, error) {
	compiled, err := query.Compile(req, query.DuckDB)
	if err != nil {
		return nil, err
	}
	if compiled.Kind != query.Events {
		return nil, fmt.Errorf("the query must select events, not make a table")
	}
	// Only seq is read, not the events' raw text, which is most of a
	// row and slow to bring out of DuckDB.
	q := query.Query{}
	if req.Query != nil {
		q = *req.Query
	}
	q.Pipes = append(slices.Clip(q.Pipes), &query.Project{Fields: []query.FieldRef{{Name: "seq"}}})
	req.Query = &q
	res, err := s.Search(ctx, req)
	if err != nil {
		return nil, err
	}
	col := slices.Index(res.Columns, "seq")
	seqs := make([]uint64, 0, len(res.Rows))
	for _, r := range res.Rows {
		seq, ok := r[col].(uint64)
		if !ok {
			return nil, fmt.Errorf("reading seq: got %T", r[col])
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// CopyQuarantine copies the quarantined records of the store file at
// path, which must not be open, into s: when the store is rebuilt from
// the ledger, which does not hold them.
func (s *DB) CopyQuarantine(ctx context.Context, path string) (int64, error) {
	return s.fromOldStore(ctx, path, func(conn *sql.Conn) (int64, error) {
		res, err := conn.ExecContext(ctx, "INSERT INTO quarantine SELECT * FROM old_store.quarantine")
		if err != nil {
			return 0, fmt.Errorf("copying the quarantine of %s: %w", path, err)
		}
		return res.RowsAffected()
	})
}

// fromOldStore runs fn on a connection to s with the store file at path,
// which must not be open, attached read-only as old_store: for what a
// store rebuilt from the ledger carries over from the one it replaces.
func (s *DB) fromOldStore(ctx context.Context, path string, fn func(*sql.Conn) (int64, error)) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "ATTACH "+quoteLiteral(path)+" AS old_store (READ_ONLY)"); err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DETACH old_store")
	return fn(conn)
}

// quoteLiteral quotes s as an SQL string literal, for the statements that
// take no parameters (ATTACH).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Tenants returns the tenants that have events.
func (s *DB) Tenants(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT tenant FROM events ORDER BY tenant")
	if err != nil {
		return nil, fmt.Errorf("listing tenants in %s: %w", s.opts.Path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Expired returns the seqs of tenant's events that happened before
// before, except those in any of the time ranges of keep ([from, to);
// a zero bound is open): what retention erases, legal holds excepted.
func (s *DB) Expired(ctx context.Context, tenant string, before time.Time, keep [][2]time.Time) ([]uint64, error) {
	q := "SELECT seq FROM events WHERE tenant = ? AND time < make_timestamp_ns(?)"
	args := []any{tenant, before.UnixNano()}
	for _, k := range keep {
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if !k[0].IsZero() {
			lo = k[0].UnixNano()
		}
		if !k[1].IsZero() {
			hi = k[1].UnixNano()
		}
		q += " AND NOT (epoch_ns(time) >= ? AND epoch_ns(time) < ?)"
		args = append(args, lo, hi)
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY seq", args...)
	if err != nil {
		return nil, fmt.Errorf("finding expired events in %s: %w", s.opts.Path, err)
	}
	defer rows.Close()
	var seqs []uint64
	for rows.Next() {
		var seq uint64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	return seqs, rows.Err()
}

// Scan calls fn with each event req selects, oldest first (then by seq),
// as a retro-hunt reads history. The request's scope is applied by the
// query compiler, as for Search. It reads a day of event time at a time,
// so that DuckDB sorts a day's rows, not months of raw documents, and a
// scan of months holds little in memory.
func (s *DB) Scan(ctx context.Context, req query.Request, fn func(*event.Event) error) error {
	const window = 24 * time.Hour
	st, err := s.Stats(ctx)
	if err != nil || st.Events == 0 {
		return err
	}
	from, to := req.From, req.To
	if from.IsZero() || from.Before(st.First) {
		from = st.First.Truncate(window)
	}
	if to.IsZero() || to.After(st.Last) {
		to = st.Last.Add(time.Nanosecond)
	}
	for lo := from; lo.Before(to); lo = lo.Add(window) {
		sub := req
		sub.From, sub.To = lo, minTime(lo.Add(window), to)
		if err := s.scanWindow(ctx, sub, fn); err != nil {
			return err
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *DB) scanWindow(ctx context.Context, req query.Request, fn func(*event.Event) error) error {
	compiled, err := query.Compile(req.OldestFirst(), query.DuckDB)
	if err != nil {
		return err
	}
	if compiled.Kind != query.Events {
		return fmt.Errorf("the query must select events, not make a table")
	}
	rows, err := s.db.QueryContext(ctx, compiled.Text, compiled.Args...)
	if err != nil {
		return fmt.Errorf("scanning events: %w", err)
	}
	redacts := req.Scope.Redacts()
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("scanning events: %w", err)
		}
		if redacts {
			store.RedactEvent(e, req.Scope.Redaction(e.Tenant))
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scanning events: %w", err)
	}
	return nil
}
