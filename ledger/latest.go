package ledger

import (
	"context"
	"fmt"
)

// CheckpointCovering returns a signed checkpoint whose tree holds the
// record at index, with its parsed form: the latest one when it does, or
// else a new one (sent to the witnesses like any other). A proof for the
// record is then checked against it.
func (l *Ledger) CheckpointCovering(ctx context.Context, index int64) ([]byte, Checkpoint, error) {
	if index < 0 || index >= l.Size() {
		return nil, Checkpoint{}, fmt.Errorf("ledger: no record %d (the ledger has %d)", index, l.Size())
	}
	if signed, c, err := readLatest(l.dir); err == nil && signed != nil && c.Size > index {
		return signed, c, nil
	}
	signed, err := l.Checkpoint(ctx)
	if signed == nil {
		return nil, Checkpoint{}, err
	}
	// A witness that failed does not make the checkpoint less valid.
	c, perr := parseUnverified(signed)
	if perr != nil {
		return nil, Checkpoint{}, perr
	}
	return signed, c, nil
}
