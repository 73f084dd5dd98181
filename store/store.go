// Package store keeps normalized events where they can be searched and
// aggregated: the columnar engine behind search, hunts and the console.
//
// The store is derived data: the ledger is the system of record and the
// store can be rebuilt from it. Engines live in subpackages (store/duckdb,
// later store/clickhouse); this package holds what callers share.
package store

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// Store is what the rest of vigil needs of an engine.
type Store interface {
	// Append stores events. Events with Seq 0 are given the next
	// sequence numbers.
	Append(ctx context.Context, evs []*event.Event) error
	// Quarantine stores records that could not be parsed.
	Quarantine(ctx context.Context, qs []Quarantined) error
	// Search runs a query.
	Search(ctx context.Context, req query.Request) (*Result, error)
	Close() error
}

// A BulkLoader is a Store with a faster way in for imports: a Loader,
// which commits in few large transactions instead of one per Append.
type BulkLoader interface {
	NewLoader(ctx context.Context) (Loader, error)
}

// A Loader appends the events of an import. What it appends is stored,
// and visible, once committed: from time to time, and at Close.
type Loader interface {
	Append(ctx context.Context, evs []*event.Event) error
	// Close commits what was appended and releases the Loader; after a
	// failed Append, it discards what was not yet committed.
	Close(ctx context.Context) error
}

// Quarantined is an input record that could not be parsed, kept with the
// reason so that it can be found, fixed and replayed.
type Quarantined struct {
	Received time.Time
	Tenant   string
	Format   string // the format that was tried
	Origin   string // the file or listener
	Line     int64  // 1-based line or record number; 0 if unknown
	Offset   int64  // byte offset in the decompressed input
	Reason   string
	Raw      []byte
}

// Result is the answer to a search: named columns and rows of values.
// Values are strings, int64, uint64, float64, bool, time.Time, []any or
// nil, so that every output format can render them.
type Result struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	// Events says the rows are events (a plain search) rather than a
	// table computed by stats, timechart or fields.
	Events bool `json:"events"`
}

// A SourceCoverage is what one source sent in a span of receipt time: a
// tenant's log format from an account (or host), in an environment.
type SourceCoverage struct {
	Tenant      string    `json:"tenant"`
	Environment string    `json:"environment,omitempty"`
	Source      string    `json:"source"`
	From        string    `json:"from"` // the account, or for host logs the host
	Events      int64     `json:"events"`
	Skewed      int64     `json:"skewed"`    // events whose time was far from their receipt
	LastSeen    time.Time `json:"last_seen"` // the latest receipt
	// Delay is the median of how long after their time events arrived,
	// and DelayP95 its 95th percentile.
	Delay    time.Duration `json:"delay"`
	DelayP95 time.Duration `json:"delay_p95"`
}
