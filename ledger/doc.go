// Package ledger is vigil's system of record: an append-only,
// tamper-evident log of every accepted event, from which the query store
// is derived and can be rebuilt. A record's index in the ledger is its
// event's Seq.
//
// The ledger is a Merkle tree in the manner of Certificate Transparency
// and Go's checksum database (golang.org/x/mod/sumdb/tlog): any record
// can be proved to be in a tree of a given size, any tree to extend an
// earlier one, and checkpoints (tree size, root hash, time) are signed
// with ed25519 as golang.org/x/mod/sumdb/note notes and sent to
// witnesses outside the data directory.
//
// # Guarantees
//
//   - Durability: Append returns only after its records are fsynced;
//     an index it returned survives any crash. Concurrent appends share
//     one write and fsync (group commit).
//   - Crash safety: an append is whole or absent after a crash. A crash
//     at any byte leaves at most the frames of one unacknowledged
//     append at the end of the last segment (an append never spans
//     segments), which Open cuts off and reports. AppendBatch records an
//     idempotency key in the same append as its events, so a batch sent
//     again after a crash can be recognised.
//     Damage a crash cannot cause is never repaired silently: Open
//     refuses with ErrCorrupt, and Verify says what happened.
//   - Tamper evidence: changing, removing, inserting or reordering
//     records, deleting a segment or rolling the directory back is
//     detected by Verify, which names the records concerned. Against an
//     attacker who can also rewrite the checkpoints, it needs a trusted
//     checkpoint from a witness.
//   - Erasure without breaking proofs: a leaf commits to the SHA-256 of
//     its content, so Redact can erase content and RemoveBefore can
//     delete old segments while the tree, every proof and every
//     checkpoint stay valid; both leave a record of what was done and
//     why, which Verify reports as such rather than as tampering.
//
// # On disk
//
// A ledger directory holds:
//
//	seg-<first index, 20 digits>.log   records, one frame each (see Kind)
//	hashes                             stored tree hashes, derived (tlog.StoredHashIndex order)
//	checkpoints/<size>-<unixnano>.note signed checkpoints
//	checkpoints/latest                 a copy of the newest
//	lock                               held by the process that has it open
//
// A frame is magic(2) kind(1) index(8) contentHash(32) length(4)
// content crc32c(4): self-describing, so a damaged or displaced frame is
// named by index. The kind byte's high bit marks the last frame of an
// append.
package ledger
