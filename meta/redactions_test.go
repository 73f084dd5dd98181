package meta_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/meta/metatest"
)

// TestRedactions: a redaction is pending for each of its partitions
// until that partition applies it; a failure is recorded and keeps it
// pending; a partition applied keeps its first record; it is done when
// every partition has applied it; and bad requests are refused.
func TestRedactions(t *testing.T) {
	metatest.Each(t, func(t *testing.T, db *meta.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
		pending := func(part int) []string {
			t.Helper()
			rs, err := db.PendingRedactions(ctx, part)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range rs {
				ids = append(ids, r.ID)
			}
			return ids
		}

		for _, bad := range []meta.Redaction{
			{Reason: "gdpr", Partitions: 2},
			{Query: "actor:alice", Partitions: 2},
			{Query: "actor:alice", Reason: "gdpr"},
			{Query: "actor:\xff", Reason: "gdpr", Partitions: 2},
		} {
			if _, err := db.RequestRedaction(ctx, bad); err == nil {
				t.Errorf("RequestRedaction(%+v) succeeded", bad)
			}
		}

		a, err := db.RequestRedaction(ctx, meta.Redaction{Query: "actor:alice", Reason: "gdpr", Requested: at, RequestedBy: "ann", Partitions: 2})
		if err != nil {
			t.Fatal(err)
		}
		b, err := db.RequestRedaction(ctx, meta.Redaction{Query: "AKIA", Reason: "a key logged", Requested: at.Add(time.Minute), Partitions: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got := pending(0); len(got) != 2 || got[0] != a.ID || got[1] != b.ID {
			t.Fatalf("pending on partition 0: %v, want [%s %s]", got, a.ID, b.ID)
		}
		// A partition the deployment does not have has nothing to do.
		if got := pending(2); len(got) != 0 {
			t.Errorf("pending on partition 2 of 2: %v", got)
		}

		if err := db.RedactionFailed(ctx, a.ID, 0, "clickhouse: connection refused", at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := pending(0); len(got) != 2 {
			t.Errorf("a failed redaction is no longer pending: %v", got)
		}
		if err := db.RedactionApplied(ctx, a.ID, 0, 3, at.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		// Applied again (a node that took the partition over), or failed
		// after: the first record stays.
		if err := db.RedactionApplied(ctx, a.ID, 0, 0, at.Add(3*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := db.RedactionFailed(ctx, a.ID, 0, "late", at.Add(4*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := pending(0); len(got) != 1 || got[0] != b.ID {
			t.Errorf("pending on partition 0 after applying %s: %v", a.ID, got)
		}
		if got := pending(1); len(got) != 2 {
			t.Errorf("pending on partition 1: %v", got)
		}

		r, err := db.Redaction(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Query != "actor:alice" || r.Reason != "gdpr" || r.RequestedBy != "ann" || !r.Requested.Equal(at) || r.Partitions != 2 {
			t.Errorf("Redaction = %+v", r)
		}
		if len(r.Parts) != 1 || r.Parts[0].Erased != 3 || !r.Parts[0].Applied.Equal(at.Add(2*time.Second)) || r.Parts[0].Error != "" {
			t.Errorf("parts %+v, want partition 0 applied with 3 erased", r.Parts)
		}
		if n, done := r.Done(); done || n != 3 {
			t.Errorf("Done() = %d, %v with one of two partitions applied", n, done)
		}
		if err := db.RedactionFailed(ctx, a.ID, 1, "bad \x00 byte \xff", at); err != nil {
			t.Fatal(err)
		}
		if r, _ := db.Redaction(ctx, a.ID); len(r.Parts) != 2 || r.Parts[1].Error == "" || !r.Parts[1].Applied.IsZero() {
			t.Errorf("parts %+v, want partition 1 failed", r.Parts)
		}
		if err := db.RedactionApplied(ctx, a.ID, 1, 4, at); err != nil {
			t.Fatal(err)
		}
		r, _ = db.Redaction(ctx, a.ID)
		if n, done := r.Done(); !done || n != 7 || r.Parts[1].Error != "" {
			t.Errorf("Done() = %d, %v, parts %+v; want 7 erased, done", n, done, r.Parts)
		}

		if _, err := db.Redaction(ctx, "nope"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("a missing redaction: %v", err)
		}
		if err := db.RedactionApplied(ctx, "nope", 0, 1, at); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("applying a missing redaction: %v", err)
		}
	})
}
