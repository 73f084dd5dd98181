package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/web"
	"golang.org/x/mod/sumdb/note"
)

// exportsDir holds the evidence bundles exported through the API, until
// their exports are revoked.
const exportsDir = "exports"

// bundles writes and opens the evidence bundles of a running server's
// exports, in dir: the data directory's, or a scale-out's shared volume,
// where every query node finds what another wrote.
type bundles struct {
	write evidenceWriter
	dir   string
}

// An evidenceWriter writes to out the evidence of the events req
// selects, with the custody record given, and says how many records it
// holds and the SHA-256 of the file; errNoEvents when none matches.
type evidenceWriter func(ctx context.Context, req query.Request, custody ledger.Custody, out string) (records int, sum [32]byte, err error)

// ledgerEvidence is the evidenceWriter of one node's data: a bundle of
// its ledger.
func ledgerEvidence(dd *data, keyPath string) evidenceWriter {
	return func(ctx context.Context, req query.Request, custody ledger.Custody, out string) (int, [32]byte, error) {
		sum, _, err := writeEvidence(ctx, dd, keyPath, req, custody, out)
		if err != nil {
			return 0, [32]byte{}, err
		}
		return sum.Events + sum.Redacted, sum.SHA256, nil
	}
}

// exportName is what an export id looks like (access.NewExportID): it
// names a file, so nothing else is taken.
var exportName = regexp.MustCompile(`^x-[0-9a-f]{32}$`)

func (b *bundles) path(id string) (string, error) {
	if !exportName.MatchString(id) {
		return "", fmt.Errorf("export id %q is not one", id)
	}
	return filepath.Join(b.dir, id+".zip"), nil
}

func (b *bundles) WriteBundle(ctx context.Context, id string, req query.Request, custody ledger.Custody) (int, [32]byte, error) {
	out, err := b.path(id)
	if err != nil {
		return 0, [32]byte{}, err
	}
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return 0, [32]byte{}, fmt.Errorf("creating the exports directory: %w", err)
	}
	host, _ := os.Hostname()
	custody.Tool, custody.Host = "vigil "+version, host
	n, sum, err := b.write(ctx, req, custody, out)
	if errors.Is(err, errNoEvents) {
		return 0, [32]byte{}, web.ErrNoEvents
	}
	return n, sum, err
}

func (b *bundles) OpenBundle(id string) (io.ReadSeekCloser, error) {
	p, err := b.path(id)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (b *bundles) RemoveBundle(id string) error {
	p, err := b.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// exportRequest is the body of POST /api/v1/exports.
type exportRequest struct {
	Query  string `json:"query"`
	From   string `json:"from"`
	To     string `json:"to,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	Reason string `json:"reason"`
	Hours  int    `json:"hours,omitempty"`
}

// serverExport has the server write the bundle of the events the
// caller reads, downloads it to out through the link it answers with,
// checks the download against the SHA-256 the server recorded, and
// prints the link to hand on.
func serverExport(ctx context.Context, c *client, req exportRequest, out string, stdout io.Writer) error {
	if strings.TrimSpace(req.Reason) == "" {
		return errors.New("--reason: an export through a server needs a reason (a case or ticket), which its chain of custody records")
	}
	var x struct {
		ID      string    `json:"id"`
		Events  int       `json:"events"`
		SHA256  string    `json:"sha256"`
		Expires time.Time `json:"expires"`
		Link    string    `json:"link"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/exports", req, &x); err != nil {
		return err
	}
	link := c.base + x.Link
	// The link is the credential: the download carries no token.
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return fmt.Errorf("the server's link: %w", err)
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return fmt.Errorf("downloading export %s: %w", x.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading export %s: %w", x.ID, c.answerError(resp))
	}
	tmp := out + ".part"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if got := hex.EncodeToString(h.Sum(nil)); err == nil && got != x.SHA256 {
		err = fmt.Errorf("the download's SHA-256 is %s, the server recorded %s", got, x.SHA256)
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("downloading export %s: %w", x.ID, err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d events, sha256 %s (export %s)\nlink, until %s: %s\nverify it with: vigil verify-bundle --key KEY %s (KEY: 'vigil key' on the server)\n",
		out, x.Events, x.SHA256, x.ID, x.Expires.UTC().Format(time.RFC3339), link, out)
	return nil
}

// partitionEvidence is the evidenceWriter of a scale-out: its events are
// in one ledger per partition, so an export is a set of bundles, one per
// partition holding some of them (ledger.WriteBundleSet), each against
// its ledger's latest signed checkpoint, which a query node reads on the
// shared volume without a lock. An event the checkpoint does not cover
// yet is waited for, up to wait (the process nodes sign one every
// ledger.checkpoint_every).
func partitionEvidence(st interface {
	Seqs(context.Context, query.Request) ([]uint64, error)
}, ledgers string, signer note.Signer, vkey string, wait time.Duration) evidenceWriter {
	return func(ctx context.Context, req query.Request, custody ledger.Custody, out string) (int, [32]byte, error) {
		req.Limit = math.MaxInt32
		seqs, err := st.Seqs(ctx, req)
		if err != nil {
			return 0, [32]byte{}, err
		}
		if len(seqs) == 0 {
			return 0, [32]byte{}, errNoEvents
		}
		byPart := map[int][]int64{}
		for _, seq := range seqs {
			p, index := ingest.SeqPartition(seq)
			byPart[p] = append(byPart[p], index)
		}
		parts := slices.Sorted(maps.Keys(byPart))
		custody.Set = strings.TrimSuffix(filepath.Base(out), ".zip")
		custody.Parts = len(parts)
		h := sha256.New()
		var records int
		err = writeBeside(out, func(w io.Writer) error {
			var err error
			records, err = writeSet(ctx, ledger.NewBundleSetWriter(io.MultiWriter(w, h)), byPart, parts, custody, ledgers, signer, vkey, wait)
			return err
		})
		if err != nil {
			return 0, [32]byte{}, err
		}
		var sum [32]byte
		h.Sum(sum[:0])
		return records, sum, nil
	}
}

// writeSet writes the bundle of each partition's indexes into the set,
// and says how many records they hold.
func writeSet(ctx context.Context, sw *ledger.BundleSetWriter, byPart map[int][]int64, parts []int, custody ledger.Custody,
	ledgers string, signer note.Signer, vkey string, wait time.Duration) (int, error) {
	records := 0
	for i, p := range parts {
		v, err := ledger.OpenView(ingest.PartitionLedger(ledgers, p))
		if err != nil {
			return 0, err
		}
		indexes := byPart[p]
		if err := awaitCheckpoint(ctx, v, slices.Max(indexes), wait); err != nil {
			return 0, fmt.Errorf("partition %d: %w", p, err)
		}
		w, err := sw.Part(fmt.Sprintf("%s-p%d.zip", ledgerName, p))
		if err != nil {
			return 0, err
		}
		c := custody
		c.Part = i + 1
		sum, err := v.WriteBundle(ctx, w, indexes, c, signer, vkey)
		if err != nil {
			return 0, fmt.Errorf("partition %d: %w", p, err)
		}
		records += sum.Events + sum.Redacted
	}
	return records, sw.Close()
}

// awaitCheckpoint waits, up to wait, for a signed checkpoint of the
// View's ledger that covers index.
func awaitCheckpoint(ctx context.Context, v *ledger.View, index int64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		_, _, err := v.CheckpointCovering(ctx, index)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
