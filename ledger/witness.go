package ledger

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// A Witness keeps a copy of each checkpoint outside the ledger's
// directory, so that rolling the directory back to an older copy, or
// rewriting it and its checkpoints together, can be caught by verifying
// against the witness's copy.
type Witness interface {
	Witness(ctx context.Context, signed []byte) error
}

// A FileWitness appends checkpoints to a file, separated by blank lines
// (SplitCheckpoints reads them back). Path should be on another disk or
// a mount the ledger's host cannot rewrite.
type FileWitness struct {
	Path string
}

// Witness appends the checkpoint and fsyncs the file.
func (w FileWitness) Witness(_ context.Context, signed []byte) error {
	f, err := os.OpenFile(w.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("file witness: %w", err)
	}
	_, err = f.Write(append(bytes.TrimRight(signed, "\n"), "\n\n"...))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("file witness %s: %w", w.Path, err)
	}
	return nil
}

// An HTTPWitness POSTs each checkpoint, as text/plain, to URL; any status
// other than 2xx is a failure.
type HTTPWitness struct {
	URL    string
	Client *http.Client // nil means http.DefaultClient
}

// Witness sends the checkpoint.
func (w HTTPWitness) Witness(ctx context.Context, signed []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(signed))
	if err != nil {
		return fmt.Errorf("http witness: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("http witness: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(body))
		if msg == "" {
			return fmt.Errorf("http witness %s: %s", w.URL, resp.Status)
		}
		return fmt.Errorf("http witness %s: %s: %s", w.URL, resp.Status, msg)
	}
	return nil
}
