package inventory

// This file gives events the origin their chain has once the call that
// issued their credential is known, when it arrived after them: logs of
// one account reach vigil before another's, an import reads a day's
// files out of order, a role assumed in an account whose trail is
// onboarded later. The ledger keeps what was known at ingest; the store's
// origin is corrected, and the store records each correction beside the
// ledger's value.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

// An OriginStore is a Store whose events' origins can be corrected. It
// applies the caller's tenants, as Store does.
type OriginStore interface {
	Store
	// Sessions calls fn with each event the search q matches in
	// [from, to), holding at least its seq, time, actor and session.
	Sessions(ctx context.Context, q string, from, to time.Time, fn func(*event.Event) error) error
	// SetOrigins sets the origin (Session.Origin) of the events with the
	// seqs given.
	SetOrigins(ctx context.Context, origins map[uint64]string) error
}

// UnresolvedQuery selects the events made with a temporary credential
// whose chain was not known to its end when they were stored: those
// without an origin, and those whose origin is itself an STS session.
const UnresolvedQuery = `(session:ASIA* OR actor_type:AssumedRole OR actor_type:FederatedUser) (NOT session_origin:* OR session_origin:"arn:*:sts::*")`

// Follow adds the credentials issued by the events of st that q (a
// search narrowing IssuingQuery) matches in [from, to), for events that
// used them to find their origin: the issues of the last days when vigil
// serve starts, those an earlier import stored when an import ends. It
// returns how many events it read.
func (ids *Identities) Follow(ctx context.Context, st Store, q string, from, to time.Time) (int, error) {
	n := 0
	err := st.Find(ctx, q, from, to, 0, func(ev *event.Event) error {
		ids.Observe([]*event.Event{ev})
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("inventory: reading the credentials issued: %w", err)
	}
	return n, nil
}

// BackfillLate gives their origin the events Enrich saw without it
// whose credential's issue arrived after them, before the wall-clock
// time before: a time by which the store holds every event enriched
// until then. vigil serve calls it every little while.
func (ids *Identities) BackfillLate(ctx context.Context, st OriginStore, before time.Time) (int, error) {
	ids.mu.Lock()
	var ready []useSpan
	ids.late = slices.DeleteFunc(ids.late, func(l lateSpan) bool {
		if !l.at.Before(before) {
			return false
		}
		ready = append(ready, l.useSpan)
		return true
	})
	ids.mu.Unlock()

	n := 0
	spans := merge(ready)
	for i, s := range spans {
		// Skew between sources: a use may be logged a little before its
		// issue.
		m, err := ids.Backfill(ctx, st, s.first.Add(-5*time.Minute), s.last.Add(time.Nanosecond))
		n += m
		if err != nil {
			// Tried again at the next call.
			ids.mu.Lock()
			for _, s := range spans[i:] {
				ids.late = append(ids.late, lateSpan{s, before.Add(-time.Nanosecond)})
			}
			ids.mu.Unlock()
			return n, err
		}
	}
	return n, nil
}

// Backfill gives the events of st in [from, to) made with a temporary
// credential the origin their chain has from the credentials ids holds,
// and notes those still without one, so that BackfillLate gives it to
// them when their issue arrives. vigil serve runs it over the last days
// when it starts, so that the events stored before it stopped wait for
// their issues again; an import, over the span of event time it read
// and a day and a half beyond (the longest a temporary credential
// lives), as the events of an earlier import may be the uses of the
// credentials it issued, or the reverse.
func (ids *Identities) Backfill(ctx context.Context, st OriginStore, from, to time.Time) (int, error) {
	origins := map[uint64]string{}
	err := st.Sessions(ctx, UnresolvedQuery, from, to, func(ev *event.Event) error {
		ids.mu.Lock()
		chain := ids.g.Chain(Principal{Key: ev.Session.ID, ARN: ev.Actor.ID}, ev.Time)
		ids.await(Origin(chain), ev.Time)
		ids.mu.Unlock()
		if origin, ok := further(chain, ev.Session.Origin); ok {
			origins[ev.Seq] = origin
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("inventory: reading the events to give an origin: %w", err)
	}
	if err := st.SetOrigins(ctx, origins); err != nil {
		return 0, fmt.Errorf("inventory: setting origins: %w", err)
	}
	return len(origins), nil
}

// further returns the origin of chain if it leads further back than an
// event's origin was: the event had none, or the chain passes through
// it. A chain that does not (its issues pruned, or read over a shorter
// span than the one that gave the event its origin) changes nothing.
func further(chain []Link, was string) (string, bool) {
	if len(chain) < 2 {
		return "", false
	}
	origin := Origin(chain).ID()
	if was == "" {
		return origin, true
	}
	for _, l := range chain[:len(chain)-1] {
		if l.As.ID() == was {
			return origin, origin != was
		}
	}
	return "", false
}

// A useSpan is a span of event time, both ends included.
type useSpan struct{ first, last time.Time }

// A lateSpan is the span of the uses of a credential whose issue arrived
// after them, at the wall-clock time at.
type lateSpan struct {
	useSpan
	at time.Time
}

// awaitingHorizon is how long in event time a credential's uses wait for
// its issue, and maxAwaiting how many credentials at most: past either,
// only Backfill over their span gives them an origin.
const (
	awaitingHorizon = 7 * 24 * time.Hour
	maxAwaiting     = 100_000
)

// await notes that an event at t used a credential p whose issue is not
// known, or whose chain ended at p, if p is a temporary credential: an
// STS session or a temporary key. The caller holds ids.mu.
func (ids *Identities) await(p Principal, t time.Time) {
	if strings.HasPrefix(p.Key, "ASIA") {
		ids.awaitKey(p.Key, t)
	}
	if strings.Contains(p.ARN, ":sts::") {
		ids.awaitKey(strings.ToLower(p.ARN), t)
	}
}

func (ids *Identities) awaitKey(k string, t time.Time) {
	if s := ids.awaiting[k]; s != nil {
		if t.Before(s.first) {
			s.first = t
		}
		if t.After(s.last) {
			s.last = t
		}
		return
	}
	if len(ids.awaiting) >= maxAwaiting {
		ids.pruneAwaiting(t.Add(-awaitingHorizon))
		if len(ids.awaiting) >= maxAwaiting {
			return
		}
	}
	ids.awaiting[k] = &useSpan{t, t}
}

// arrived moves the uses awaiting a credential's issue to late. The
// caller holds ids.mu.
func (ids *Identities) arrived(is Issue) {
	for _, k := range [...]string{is.Key, strings.ToLower(is.Session)} {
		if s := ids.awaiting[k]; k != "" && s != nil {
			ids.late = append(ids.late, lateSpan{*s, time.Now()})
			delete(ids.awaiting, k)
		}
	}
	if len(ids.late) >= 1024 {
		// Nothing is taking them (an import backfills its whole span
		// instead): keep few.
		spans := make([]useSpan, len(ids.late))
		for i, l := range ids.late {
			spans[i] = l.useSpan
		}
		ids.late = ids.late[:0]
		for _, s := range merge(spans) {
			ids.late = append(ids.late, lateSpan{s, time.Now()})
		}
	}
}

// pruneAwaiting forgets the credentials last used before t.
func (ids *Identities) pruneAwaiting(t time.Time) {
	for k, s := range ids.awaiting {
		if s.last.Before(t) {
			delete(ids.awaiting, k)
		}
	}
}

// merge sorts spans and joins those that overlap or lie within an hour
// of each other, so that a burst of issues is one pass over the store.
func merge(spans []useSpan) []useSpan {
	slices.SortFunc(spans, func(a, b useSpan) int { return cmp.Compare(a.first.UnixNano(), b.first.UnixNano()) })
	var out []useSpan
	for _, s := range spans {
		if n := len(out); n > 0 && !s.first.After(out[n-1].last.Add(time.Hour)) {
			if s.last.After(out[n-1].last) {
				out[n-1].last = s.last
			}
			continue
		}
		out = append(out, s)
	}
	return out
}
