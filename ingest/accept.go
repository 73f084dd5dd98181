package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store"
)

// A Batch is what a source hands to the pipeline at once.
type Batch struct {
	// Source names where the batch came from, as `vigil sources` and the
	// metrics show it: "http/<token name>", "syslog/udp", "syslog/tls/<peer>",
	// "s3/<bucket>/<prefix>", "dir/<path>".
	Source string
	// ID, when set, makes the batch idempotent: a batch whose ID was
	// already accepted is acknowledged again without storing anything.
	// Sources that may send a batch twice (a client retrying after a
	// lost answer, a pull source re-reading after a crash) set it.
	ID          string
	Events      []*event.Event
	Quarantined []store.Quarantined
}

// An Acceptor takes batches from sources.
//
// Accept returns nil once the batch's events are on stable storage in the
// ledger (acknowledged) and its quarantined records are stored. It
// returns ErrBusy, at once and having stored nothing, when the pipeline
// is too far behind to take more; a source then pushes back (HTTP answers
// 429, TCP syslog stops reading) or, if it cannot (UDP), drops the batch
// and counts it.
type Acceptor interface {
	Accept(ctx context.Context, b Batch) error
}

// ErrBusy is returned by Accept when the pipeline is behind.
var ErrBusy = errors.New("ingest: the pipeline is behind; retry later")

// AcceptWait hands b to a, waiting while a is busy: for sources that push
// back by not reading, such as TCP syslog and the pull sources.
func AcceptWait(ctx context.Context, a Acceptor, b Batch) error {
	wait := 10 * time.Millisecond
	for {
		err := a.Accept(ctx, b)
		if !errors.Is(err, ErrBusy) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// A CursorStore remembers how far a pull source has read, so that it
// resumes there after a restart.
type CursorStore interface {
	// Cursor returns the source's cursor, or "" if it has none.
	Cursor(ctx context.Context, source string) (string, error)
	SetCursor(ctx context.Context, source, cursor string) error
}
