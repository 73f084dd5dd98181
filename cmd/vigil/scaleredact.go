package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/clickhouse"
)

// A scale-out's redaction is filed in the metadata database and applied
// by the process nodes, each to the partitions it holds, since only the
// node holding a partition may write its ledger (ingest.Redaction).

// The process nodes delete redacted events through the ClickHouse store.
var _ ingest.RedactingStore = (*clickhouse.Store)(nil)

// redactions are the metadata database's redactions as a process node
// asks for them.
type redactions struct{ db *meta.DB }

func (r redactions) Pending(ctx context.Context, part int) ([]ingest.Redaction, error) {
	rs, err := r.db.PendingRedactions(ctx, part)
	out := make([]ingest.Redaction, len(rs))
	for i, red := range rs {
		out[i] = ingest.Redaction{ID: red.ID, Query: red.Query, Reason: red.Reason, Requested: red.Requested}
	}
	return out, err
}

func (r redactions) Applied(ctx context.Context, id string, part int, erased int64) error {
	return r.db.RedactionApplied(ctx, id, part, erased, time.Now())
}

func (r redactions) Failed(ctx context.Context, id string, part int, reason string) error {
	return r.db.RedactionFailed(ctx, id, part, reason, time.Now())
}

// redactPoll is how often vigil redact looks at a scale-out's progress,
// and redactQuiet how long it waits without news before it says what it
// waits for.
const (
	redactPoll  = 500 * time.Millisecond
	redactQuiet = 30 * time.Second
)

// scaleRedact is vigil redact on a scale-out: it files the redaction of
// the events text selects and waits until every partition has applied
// it, saying what each partition did. The nodes serve on meanwhile; a
// wait cut short leaves the redaction filed, for them to finish.
func scaleRedact(ctx context.Context, cfg *config, text, reason string, dryRun bool, stdout, stderr io.Writer) error {
	q, err := ingest.ParseRedaction(text)
	if err != nil {
		return err
	}
	sc := &cfg.Scale
	ch, err := sc.openClickHouse(ctx, "")
	if err != nil {
		return err
	}
	seqs, err := ch.Seqs(ctx, query.Request{Query: q, Scope: query.Scope{All: true}})
	if err != nil {
		return err
	}
	if dryRun || len(seqs) == 0 {
		fmt.Fprintf(stdout, "%d events match; nothing erased\n", len(seqs))
		return nil
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := meta.Open(ctx, cfg.metaURL, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := db.RequestRedaction(ctx, meta.Redaction{Query: text, Reason: reason, RequestedBy: requester(), Partitions: sc.Partitions})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "filed redaction %s: %d events match now; the process nodes erase them, and any sent before now still on the bus, partition by partition\n", r.ID, len(seqs))
	told := map[int]meta.RedactionPart{}
	quiet := time.Now() // since the last news
	for {
		r, err = db.Redaction(ctx, r.ID)
		if err != nil {
			return err
		}
		for _, p := range r.Parts {
			if told[p.Part] == p {
				continue
			}
			told[p.Part], quiet = p, time.Now()
			if !p.Applied.IsZero() {
				fmt.Fprintf(stderr, "partition %d: erased %d events\n", p.Part, p.Erased)
			} else {
				fmt.Fprintf(stderr, "partition %d: not applied yet, tried again: %s\n", p.Part, p.Error)
			}
		}
		if erased, done := r.Done(); done {
			fmt.Fprintf(stdout, "erased %d events in %d partitions (redaction %s); their hashes stay in the partitions' ledgers\n", erased, r.Partitions, r.ID)
			return nil
		}
		if time.Since(quiet) >= redactQuiet {
			quiet = time.Now()
			fmt.Fprintf(stderr, "waiting for partitions %s: a process node applies the redaction to each it holds once it has read what was on the bus before it (is one running?)\n", partitionsLeft(r))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting: redaction %s stays filed, and the process nodes apply it (partitions left: %s)", r.ID, partitionsLeft(r))
		case <-time.After(redactPoll):
		}
	}
}

// partitionsLeft lists the partitions that have yet to apply r.
func partitionsLeft(r meta.Redaction) string {
	var left []string
	for p := range r.Partitions {
		if !slices.ContainsFunc(r.Parts, func(rp meta.RedactionPart) bool { return rp.Part == p && !rp.Applied.IsZero() }) {
			left = append(left, fmt.Sprint(p))
		}
	}
	return strings.Join(left, ", ")
}

// requester names who runs vigil: user@host, as the redaction's record
// keeps it.
func requester() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}
