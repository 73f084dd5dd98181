package clickhouse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/store"
)

// A Comparison checks the events of one ledger (a partition) in
// ClickHouse against the ledger, one record at a time, so that it can
// ride along the ledger's own verification (the Record hook of
// ledger.VerifyOptions), as the embedded store's does. It compares what
// makes an event evidence: that it is there, its tenant and its raw
// bytes (by their SHA-256, computed by the server, so that only digests
// cross the network); the normalized columns are derived from the raw
// bytes, and a search shows the raw ones.
//
// The events come from one statement, ordered by seq and streamed while
// the ledger is read, so that a partition of any size is compared in
// one pass over each.
type Comparison struct {
	// base is the seq of the ledger's record 0; stored the seq below
	// which every event of the ledger should be in ClickHouse (the
	// partition's mark): an event past it may still be on its way.
	base, stored uint64

	rows   chan digest
	cancel context.CancelFunc
	done   chan error // the stream's end
	cur    *digest    // the next row not yet matched
	ended  bool       // the stream ended, with err
	err    error

	out      store.Mismatches
	unstored int64
}

// A digest is what the comparison reads of one event in ClickHouse.
type digest struct {
	seq    uint64
	tenant string
	raw    [sha256.Size]byte
	copies bool // a copy of the event differs from the first
}

// Compare starts a comparison of the events of ledger in ClickHouse with
// the ledger, whose record 0 has seq base; the events below the seq
// stored should all be in ClickHouse. Close ends it early.
func (s *Store) Compare(ctx context.Context, ledger uint16, base, stored uint64) *Comparison {
	ctx, cancel := context.WithCancel(ctx)
	c := &Comparison{base: base, stored: stored, rows: make(chan digest, 1024), cancel: cancel, done: make(chan error, 1)}
	// The exact bytes of an event whose raw is not UTF-8 are raw_bin's
	// (Append), which come as they are, in base64, to be hashed here.
	stmt := fmt.Sprintf("SELECT seq, hex(tenant), hex(SHA256(raw)), ifNull(raw_bin, '') FROM events WHERE ledger = %d ORDER BY seq FORMAT TabSeparated", ledger)
	go func() {
		defer close(c.rows)
		var last *digest
		err := s.stream(ctx, fmt.Sprintf("reading the events of ledger %d", ledger), stmt, func(line []byte) error {
			d, err := parseDigest(line)
			if err != nil {
				return fmt.Errorf("clickhouse: reading the events of ledger %d: %.200q: %w", ledger, line, err)
			}
			if last != nil && last.seq == d.seq {
				// A retried insert's copy, collapsed at the next merge.
				if d.tenant != last.tenant || d.raw != last.raw {
					last.copies = true
				}
				return nil
			}
			if last != nil {
				select {
				case c.rows <- *last:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			last = &d
			return nil
		})
		if err == nil && last != nil {
			select {
			case c.rows <- *last:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		c.done <- err
	}()
	return c
}

func parseDigest(line []byte) (digest, error) {
	f := bytes.Split(line, []byte("\t"))
	if len(f) != 4 {
		return digest{}, fmt.Errorf("%d fields, want 4", len(f))
	}
	var d digest
	var err error
	if d.seq, err = strconv.ParseUint(string(f[0]), 10, 64); err != nil {
		return digest{}, err
	}
	tenant, err := hex.DecodeString(string(f[1]))
	if err != nil {
		return digest{}, fmt.Errorf("tenant: %w", err)
	}
	d.tenant = string(tenant)
	if len(f[3]) > 0 {
		raw, err := base64.StdEncoding.DecodeString(string(f[3]))
		if err != nil {
			return digest{}, fmt.Errorf("raw_bin: %w", err)
		}
		d.raw = sha256.Sum256(raw)
		return d, nil
	}
	if len(f[2]) != hex.EncodedLen(sha256.Size) {
		return digest{}, fmt.Errorf("the digest %.100q", f[2])
	}
	if _, err := hex.Decode(d.raw[:], f[2]); err != nil {
		return digest{}, fmt.Errorf("the digest %.100q: %w", f[2], err)
	}
	return d, nil
}

// next returns the next event of ClickHouse not yet matched, or nil at
// the end.
func (c *Comparison) next() *digest {
	if c.cur == nil {
		if c.ended {
			return nil
		}
		d, ok := <-c.rows
		if !ok {
			c.ended, c.err = true, <-c.done
			return nil
		}
		c.cur = &d
	}
	return c.cur
}

// Record compares one ledger record with ClickHouse. Records must come
// in index order, as ledger.Verify gives them.
func (c *Comparison) Record(rec ledger.Record) error {
	seq := c.base + uint64(rec.Index)
	// ClickHouse's events before this record's: the ledger has no
	// intact record of them (a record the verification could not read,
	// or a segment removed).
	for d := c.next(); d != nil && d.seq < seq; d = c.next() {
		c.out.Add(d.seq, store.MismatchAdded, "the store has an event for which the ledger has no intact record")
		c.cur = nil
	}
	if c.err != nil {
		return c.err
	}
	var row *digest
	if d := c.next(); d != nil && d.seq == seq {
		row, c.cur = d, nil
	}
	switch rec.Kind {
	case ledger.KindEvent:
		if row == nil {
			if seq < c.stored {
				c.out.Add(seq, store.MismatchMissing, "the ledger has this event, the store does not")
			} else {
				c.unstored++
			}
			return nil
		}
		want, err := ledger.DecodeEvent(rec.Content)
		if err != nil {
			return fmt.Errorf("ledger record %d: %w", rec.Index, err)
		}
		var diff []string
		if row.tenant != want.Tenant {
			diff = append(diff, "tenant")
		}
		if row.raw != sha256.Sum256(want.Raw) {
			diff = append(diff, "raw")
		}
		if row.copies {
			diff = append(diff, "a copy")
		}
		if len(diff) > 0 {
			c.out.Add(seq, store.MismatchChanged, "differs from the ledger in "+strings.Join(diff, ", "))
		}
	case ledger.KindRedacted:
		if row != nil {
			c.out.Add(seq, store.MismatchRedacted, "the ledger erased this event, the store still has it")
		}
	default:
		if row != nil {
			c.out.Add(seq, store.MismatchAdded, "the ledger has a "+rec.Kind.String()+" record here, not an event")
		}
	}
	return nil
}

// Finish reports what the comparison found, with the events of
// ClickHouse past the ledger's end, and how many of the ledger's events
// past the stored mark ClickHouse does not have yet (not mismatches:
// their process node stores them in batches). The ledger has size
// records.
func (c *Comparison) Finish(size int64) (mismatches []store.Mismatch, unstored int64, err error) {
	defer c.Close()
	end := c.base + uint64(size)
	for d := c.next(); d != nil; d = c.next() {
		detail := "the store has an event past the end of the ledger"
		if d.seq < end {
			detail = "the store has an event for which the ledger has no intact record"
		}
		c.out.Add(d.seq, store.MismatchAdded, detail)
		c.cur = nil
	}
	if c.err != nil {
		return nil, 0, c.err
	}
	return c.out, c.unstored, nil
}

// Close stops the comparison's stream, if it still runs.
func (c *Comparison) Close() {
	c.cancel()
	for range c.rows {
	}
}
