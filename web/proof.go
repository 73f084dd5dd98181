package web

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
)

// A Prover proves that events are in the ledger (ledger.Ledger).
type Prover interface {
	Read(index int64) (ledger.Record, error)
	CheckpointCovering(ctx context.Context, index int64) ([]byte, ledger.Checkpoint, error)
	InclusionProof(index, treeSize int64) (tlog.RecordProof, error)
}

// A Proof is the answer of GET /api/v1/events/{seq}/proof: what a third
// party needs to check that the event is in the ledger, with nothing but
// the ledger's public key: SHA-256(content) is content_hash, the leaf
// hash is tlog.RecordHash(content_hash), and the proof links that leaf to
// root_hash in the tree of tree_size records that the signed checkpoint
// names.
type Proof struct {
	Seq uint64 `json:"seq"`
	// Index is the record's index in the ledger the checkpoint names,
	// the one to check the proof at: seq itself on one node; in a
	// scale-out, seq's low 40 bits, in the ledger of partition seq>>40.
	Index       int64    `json:"index"`
	Kind        string   `json:"kind"`                // event, or redacted
	Content     string   `json:"content,omitempty"`   // base64 of the ledger record (absent when redacted)
	ContentHash string   `json:"content_hash"`        // hex SHA-256 of the content
	LeafHash    string   `json:"leaf_hash"`           // base64, as tlog writes hashes
	TreeSize    int64    `json:"tree_size"`           // of the checkpoint
	RootHash    string   `json:"root_hash"`           // base64
	Proof       []string `json:"proof"`               // base64 hashes of tlog.RecordProof
	Checkpoint  string   `json:"checkpoint"`          // the signed note
	Key         string   `json:"key,omitempty"`       // the note verifier key of the checkpoints
	Redaction   string   `json:"redaction,omitempty"` // the recorded reason, when redacted
}

// proof serves the inclusion proof of one event. The event is looked up
// through the store first, with the caller's scope, so that nobody learns
// even the hash of an event of a tenant they may not see.
func (a *api) proof(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 63)
	if err != nil {
		writeError(w, http.StatusBadRequest, errors.New("seq: want a number"))
		return
	}
	q, err := query.Parse(fmt.Sprintf("seq:%d", seq))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	res, err := a.opts.Store.Search(r.Context(), query.Request{Query: q, Scope: id.Scope, Limit: 1})
	if err != nil {
		a.opts.Logger.Error("proof: looking up the event", "seq", seq, "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("looking up the event failed"))
		return
	}
	rec, err := a.opts.Ledger.Read(int64(seq))
	if len(res.Rows) == 0 && (err != nil || rec.Kind != ledger.KindRedacted || !id.Scope.All) {
		// A redacted event is gone from the store; only an
		// administrator of every tenant may ask for its proof.
		writeError(w, http.StatusNotFound, fmt.Errorf("no event %d", seq))
		return
	}
	if err != nil {
		a.opts.Logger.Error("proof: reading the ledger", "seq", seq, "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("reading the ledger failed"))
		return
	}
	p, err := a.proofOf(r.Context(), seq, rec)
	if err != nil {
		a.opts.Logger.Error("proof", "seq", seq, "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("proving the event failed"))
		return
	}
	if rec.Kind != ledger.KindRedacted {
		p.Content = base64.StdEncoding.EncodeToString(rec.Content)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(p)
}

// eventProof proves that the event at seq is in the ledger, for a caller
// that has looked the event up in its scope first.
func (a *api) eventProof(ctx context.Context, seq uint64) (Proof, error) {
	rec, err := a.opts.Ledger.Read(int64(seq))
	if err != nil {
		return Proof{}, fmt.Errorf("reading the ledger: %w", err)
	}
	return a.proofOf(ctx, seq, rec)
}

// proofOf is the proof that rec is the ledger's record seq, against a
// checkpoint covering it, without the record's content.
func (a *api) proofOf(ctx context.Context, seq uint64, rec ledger.Record) (Proof, error) {
	signed, cp, err := a.opts.Ledger.CheckpointCovering(ctx, int64(seq))
	if err != nil {
		return Proof{}, fmt.Errorf("signing a checkpoint: %w", err)
	}
	hashes, err := a.opts.Ledger.InclusionProof(int64(seq), cp.Size)
	if err != nil {
		return Proof{}, fmt.Errorf("computing the proof: %w", err)
	}
	p := Proof{
		Seq:         seq,
		Index:       rec.Index,
		Kind:        "event",
		ContentHash: hex.EncodeToString(rec.ContentHash[:]),
		TreeSize:    cp.Size,
		RootHash:    cp.Hash.String(),
		Checkpoint:  string(signed),
		Key:         a.opts.LedgerKey,
		Proof:       make([]string, len(hashes)),
	}
	leaf := rec.LeafHash()
	p.LeafHash = leaf.String()
	for i, h := range hashes {
		p.Proof[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	if rec.Kind == ledger.KindRedacted {
		p.Kind = "redacted"
		if red, err := rec.Redaction(); err == nil {
			p.Redaction = red.Reason
		}
	}
	return p, nil
}
