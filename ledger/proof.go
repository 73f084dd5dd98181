package ledger

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// reader returns a tlog.HashReader for the tree of the given size, which
// must not exceed Size: its hashes are written before Size counts them.
func (l *Ledger) reader(size int64) (tlog.HashReader, error) {
	if n := l.Size(); size < 0 || size > n {
		return nil, fmt.Errorf("ledger: tree size %d outside 0..%d", size, n)
	}
	return fileHashes{r: l.hashes.f, max: tlog.StoredHashCount(size)}, nil
}

// RootHash returns the root hash of the tree of the first size records.
func (l *Ledger) RootHash(size int64) (tlog.Hash, error) {
	r, err := l.reader(size)
	if err != nil {
		return tlog.Hash{}, err
	}
	h, err := tlog.TreeHash(size, r)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("ledger: root hash of size %d: %w", size, err)
	}
	return h, nil
}

// InclusionProof returns the proof that record index is in the tree of
// size treeSize, to be checked with tlog.CheckRecord against that tree's
// root hash and the record's LeafHash.
func (l *Ledger) InclusionProof(index, treeSize int64) (tlog.RecordProof, error) {
	if index < 0 || index >= treeSize {
		return nil, fmt.Errorf("ledger: inclusion proof: record %d is not in a tree of size %d", index, treeSize)
	}
	r, err := l.reader(treeSize)
	if err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(treeSize, index, r)
	if err != nil {
		return nil, fmt.Errorf("ledger: inclusion proof of %d in %d: %w", index, treeSize, err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of size n is a prefix
// of the tree of size m, to be checked with tlog.CheckTree.
func (l *Ledger) ConsistencyProof(n, m int64) (tlog.TreeProof, error) {
	if n < 1 || n > m {
		return nil, fmt.Errorf("ledger: consistency proof: want 1 <= %d <= %d", n, m)
	}
	r, err := l.reader(m)
	if err != nil {
		return nil, err
	}
	p, err := tlog.ProveTree(m, n, r)
	if err != nil {
		return nil, fmt.Errorf("ledger: consistency proof of %d in %d: %w", n, m, err)
	}
	return p, nil
}
