package store

import "fmt"

// A Mismatch is a range of seqs where a store disagrees with the ledger
// it is derived from, as vigil verify reports it.
type Mismatch struct {
	First, Last uint64
	Kind        string // MismatchMissing, MismatchChanged, …
	Detail      string
}

// Kinds of Mismatch.
const (
	MismatchMissing  = "missing"  // the ledger has the event, the store does not
	MismatchChanged  = "changed"  // the store's event differs from the ledger's
	MismatchAdded    = "added"    // the store has an event the ledger does not
	MismatchRedacted = "redacted" // the ledger erased the event, the store still has it
)

func (m Mismatch) String() string {
	r := fmt.Sprintf("seq %d", m.First)
	if m.Last != m.First {
		r = fmt.Sprintf("seq %d-%d", m.First, m.Last)
	}
	return fmt.Sprintf("store %s: %s: %s", r, m.Kind, m.Detail)
}

// Mismatches collects a comparison's findings, merging each with the
// last when it continues it.
type Mismatches []Mismatch

// Add records that seq is a mismatch of kind.
func (ms *Mismatches) Add(seq uint64, kind, detail string) {
	if n := len(*ms); n > 0 {
		last := &(*ms)[n-1]
		if last.Kind == kind && last.Detail == detail && last.Last+1 == seq {
			last.Last = seq
			return
		}
	}
	*ms = append(*ms, Mismatch{First: seq, Last: seq, Kind: kind, Detail: detail})
}
