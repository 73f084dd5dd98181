package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/web"
)

// exportsDir holds the evidence bundles exported through the API, until
// their exports are revoked.
const exportsDir = "exports"

// bundles writes and opens the evidence bundles of a running server's
// exports, in the data directory.
type bundles struct {
	dd      *data
	keyPath string
	dir     string
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
	sum, _, err := writeEvidence(ctx, b.dd, b.keyPath, req, custody, out)
	if errors.Is(err, errNoEvents) {
		return 0, [32]byte{}, web.ErrNoEvents
	}
	if err != nil {
		return 0, [32]byte{}, err
	}
	return sum.Events + sum.Redacted, sum.SHA256, nil
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
