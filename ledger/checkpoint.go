package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A Checkpoint is a signed statement of the ledger's tree at one size.
// Its note text is
//
//	vigil ledger <name>
//	<tree size>
//	<root hash, base64>
//	<time, RFC 3339 in UTC with nanoseconds>
//
// A later checkpoint's tree must contain an earlier one's
// (tlog.ProveTree and tlog.CheckTree show it); any pair that does not is
// proof the ledger was rewritten.
type Checkpoint struct {
	Name string
	Size int64
	Hash tlog.Hash
	Time time.Time
}

const (
	checkpointOrigin = "vigil ledger "
	checkpointTime   = "2006-01-02T15:04:05.000000000Z"
	checkpointDir    = "checkpoints"
	latestName       = "latest"
)

func formatCheckpoint(c Checkpoint) []byte {
	return fmt.Appendf(nil, "%s%s\n%d\n%s\n%s\n", checkpointOrigin, c.Name, c.Size, c.Hash, c.Time.UTC().Format(checkpointTime))
}

// parseCheckpointText parses the text of a checkpoint note, accepting
// only what formatCheckpoint writes.
func parseCheckpointText(text []byte) (Checkpoint, error) {
	bad := func(why string) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("ledger: malformed checkpoint: %s", why)
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) != 5 || lines[4] != "" {
		return bad("want 4 lines")
	}
	name, ok := strings.CutPrefix(lines[0], checkpointOrigin)
	if !ok || !validName(name) {
		return bad("bad origin line")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return bad("bad tree size")
	}
	hash, err := tlog.ParseHash(lines[2])
	if err != nil || hash.String() != lines[2] {
		return bad("bad root hash")
	}
	t, err := time.Parse(checkpointTime, lines[3])
	if err != nil || t.Format(checkpointTime) != lines[3] {
		return bad("bad time")
	}
	return Checkpoint{Name: name, Size: size, Hash: hash, Time: t}, nil
}

// validName reports whether name can be a key name and a checkpoint's
// origin: what note accepts for key names.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// ParseCheckpoint checks a signed checkpoint note against v and parses it.
func ParseCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	if v == nil {
		return Checkpoint{}, errors.New("ledger: parse checkpoint: no verifier key")
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint signature: %w", err)
	}
	return parseCheckpointText([]byte(n.Text))
}

// parseUnverified parses a checkpoint without checking its signatures.
func parseUnverified(signed []byte) (Checkpoint, error) {
	_, err := note.Open(signed, nil)
	var un *note.UnverifiedNoteError
	if !errors.As(err, &un) {
		return Checkpoint{}, fmt.Errorf("ledger: malformed checkpoint note: %w", err)
	}
	return parseCheckpointText([]byte(un.Note.Text))
}

// SplitCheckpoints splits a witness file, or any concatenation of
// checkpoint notes with blank lines between them, into notes.
func SplitCheckpoints(data []byte) [][]byte {
	var notes [][]byte
	start := -1
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += off + 1
		}
		if bytes.HasPrefix(data[off:end], []byte(checkpointOrigin)) {
			if start >= 0 {
				notes = append(notes, bytes.TrimRight(data[start:off], "\n"))
			}
			start = off
		}
		off = end
	}
	if start >= 0 {
		notes = append(notes, bytes.TrimRight(data[start:], "\n"))
	}
	for i := range notes {
		notes[i] = append(notes[i], '\n')
	}
	return notes
}

// LoadOrCreateKey loads the ed25519 signing key in path, creating it
// (mode 0600) on first use. It returns the signer, its verifier and the
// verifier key string, which is what others need to check checkpoints
// and what `vigil key` prints. An existing key must have the given name.
func LoadOrCreateKey(path, name string) (note.Signer, note.Verifier, string, error) {
	skey, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s, _, gerr := note.GenerateKey(rand.Reader, name)
		if gerr != nil {
			return nil, nil, "", fmt.Errorf("ledger: generate key %q: %w", name, gerr)
		}
		// If another process created the key first, use theirs.
		if werr := writeNewFile(path, []byte(s+"\n")); werr != nil && !errors.Is(werr, os.ErrExist) {
			return nil, nil, "", werr
		}
		skey, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("ledger: read key: %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, nil, "", fmt.Errorf("ledger: key %s: %w", path, err)
	}
	if signer.Name() != name {
		return nil, nil, "", fmt.Errorf("ledger: key %s is named %q, not %q", path, signer.Name(), name)
	}
	vkey, err := verifierKey(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, nil, "", fmt.Errorf("ledger: key %s: %w", path, err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("ledger: key %s: %w", path, err)
	}
	return signer, verifier, vkey, nil
}

// verifierKey derives the verifier key from a note signer key, which
// holds the ed25519 seed; note.NewSigner has checked its form.
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", errors.New("malformed signer key")
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("not an ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// writeNewFile creates path with data, durably, failing if it exists.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("ledger: write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeAtomic replaces path with data: readers see the old file or the
// new one, and after a crash so does Open.
func writeAtomic(path string, data []byte) error {
	tmp := path + tmpSuffix
	os.Remove(tmp)
	if err := writeNewFile(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ledger: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// Checkpoint signs the current tree, stores the checkpoint in the
// ledger directory (checkpoints/<size>-<unixnano>.note and
// checkpoints/latest) and sends it to the witnesses. A witness that fails
// does not undo the checkpoint: Checkpoint then returns the signed note
// together with an error naming the witnesses that failed.
func (l *Ledger) Checkpoint(ctx context.Context) ([]byte, error) {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	return l.checkpoint(ctx)
}

func (l *Ledger) checkpoint(ctx context.Context) ([]byte, error) {
	if l.opts.Signer == nil {
		return nil, errors.New("ledger: checkpoint: no signing key configured")
	}
	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	size := l.Size()
	root, err := l.RootHash(size)
	if err != nil {
		return nil, err
	}
	c := Checkpoint{Name: l.opts.Name, Size: size, Hash: root, Time: l.opts.Now().UTC()}
	signed, err := note.Sign(&note.Note{Text: string(formatCheckpoint(c))}, l.opts.Signer)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign checkpoint: %w", err)
	}
	dir := filepath.Join(l.dir, checkpointDir)
	name := fmt.Sprintf("%020d-%d.note", size, c.Time.UnixNano())
	if err := writeAtomic(filepath.Join(dir, name), signed); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, latestName), signed); err != nil {
		return nil, err
	}
	l.ckSize = size
	var errs []error
	for i, w := range l.opts.Witnesses {
		if err := w.Witness(ctx, signed); err != nil {
			l.log.Warn("witness failed", "witness", i, "size", size, "err", err)
			errs = append(errs, fmt.Errorf("ledger: witness %d: %w", i, err))
		}
	}
	return signed, errors.Join(errs...)
}

// checkpointLoop writes a checkpoint every CheckpointEvery while the tree
// grows.
func (l *Ledger) checkpointLoop() {
	defer close(l.loopDone)
	t := time.NewTicker(l.opts.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stopLoop:
			return
		case <-t.C:
		}
		l.ckMu.Lock()
		grew := l.ckSize != l.Size()
		l.ckMu.Unlock()
		if !grew {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.CheckpointEvery)
		if _, err := l.checkpoint(ctx); err != nil {
			l.log.Error("checkpoint", "err", err)
		}
		cancel()
	}
}

// closeWitnessTimeout bounds how long Close waits for witnesses.
const closeWitnessTimeout = 10 * time.Second

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// readLatest returns the latest checkpoint in dir, signed and parsed but
// unverified, or nil when there is none: Open uses it only to refuse to
// cut records it covers, and to check the tree against it.
func readLatest(dir string) ([]byte, Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointDir, latestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, Checkpoint{}, nil
	}
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("ledger: %w", err)
	}
	c, err := parseUnverified(b)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("ledger: %s: %w (%w)", filepath.Join(checkpointDir, latestName), err, ErrCorrupt)
	}
	return b, c, nil
}
