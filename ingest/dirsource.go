package ingest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/parse"
)

// DirOptions configure a DirSource.
type DirOptions struct {
	// Dir is the directory to watch. Its subdirectories are not, and
	// names that begin with a dot are skipped, so that a tool can write
	// a file under such a name and rename it into place when complete.
	Dir string
	// Glob, if set, is a pattern (filepath.Match) the names of the files
	// to read must match, such as "*.log". It must not match the
	// compressed copies that rotation makes (app.log.2.gz): what they
	// hold was read from app.log already.
	Glob string

	Tenant string
	// Format is a parse format name, or parse.Auto (the default), which
	// detects a tailed file's format in its first lines and keeps it.
	Format string
	Parse  parse.Options // Tenant, Origin and Received are set per read
	Batch  int           // records per batch; zero means 5000

	// Poll is the time between scans of the directory; zero means a
	// second.
	Poll time.Duration
	// Settle is how long a file must stay unchanged to count as
	// complete: a compressed file is read only then, and a rotated
	// file's last line, which has no newline, is taken as whole only
	// then. Zero means ten seconds.
	Settle time.Duration
	Now    func() time.Time
}

// A DirSource reads the files another program writes into a directory.
//
// A compressed file (.gz) is read whole, once, when it is complete: when
// its size and modification time have not changed for Settle. Any other
// file is tailed: whole lines are read as they are written, and a last
// line without its newline waits for it. Each event's Origin names the
// file and the offset its chunk begins at, "path@offset:line", with the
// line counted from there. Tailed files must hold one record per line
// (syslog, JSON lines); a format with a header line (CSV) is not for
// tailing.
//
// A file is known by its device and inode, not its name, so rotation is
// followed. When app.log is renamed to app.log.1 and a new app.log
// created, the old file is read to its end, its last line taken as whole
// once the file has settled, and the new file is read from its start.
// When a file shrinks below what was read, or its first bytes change
// (copytruncate rotation), it is read again from its start. A file that
// is deleted while it is being read is read to its end through the
// descriptor held open. The cursor holds an offset for each file in the
// directory, and forgets the files that are gone.
type DirSource struct {
	opts    DirOptions
	dir     string // absolute
	name    string // the batches' Source and the cursor's key
	send    pullSender
	cursors CursorStore
	logger  *slog.Logger
	metrics *pullMetrics

	files map[dirFileID]*dirFile // nil until the cursor is read
	dirty bool                   // files hold more than cursors has
}

// dirChunk is how much of a tailed file is read at once, unless a line
// is longer.
const dirChunk = 1 << 20

// dirHeadSize is how much of a file's start the cursor keeps a checksum
// of, to tell when the file was replaced.
const dirHeadSize = 1 << 10

var dirCRC = crc64.MakeTable(crc64.ECMA)

// NewDirSource returns a source that reads the files written to opts.Dir
// into a.
func NewDirSource(opts DirOptions, a Acceptor, cursors CursorStore, logger *slog.Logger, reg prometheus.Registerer) (*DirSource, error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("dir source: %w", err)
	}
	if info, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("dir source: %w", err)
	} else if !info.IsDir() {
		return nil, fmt.Errorf("dir source: %s is not a directory", dir)
	}
	if _, err := filepath.Match(opts.Glob, ""); err != nil {
		return nil, fmt.Errorf("dir source: glob %q: %w", opts.Glob, err)
	}
	opts.Format = cmp.Or(opts.Format, parse.Auto)
	opts.Batch = cmp.Or(opts.Batch, 5000)
	opts.Poll = cmp.Or(opts.Poll, time.Second)
	opts.Settle = cmp.Or(opts.Settle, 10*time.Second)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := "dir/" + strings.TrimPrefix(filepath.ToSlash(dir), "/")
	m, err := newPullMetrics(reg, name, false)
	if err != nil {
		return nil, err
	}
	return &DirSource{
		opts:    opts,
		dir:     dir,
		name:    name,
		send:    pullSender{source: name, acceptor: a, batch: opts.Batch, metrics: m},
		cursors: cursors,
		logger:  logger.With("source", name),
		metrics: m,
	}, nil
}

// Run scans the directory until ctx is done. Failures are logged,
// counted and retried with growing pauses; Run returns early only if the
// stored cursor cannot be read.
func (d *DirSource) Run(ctx context.Context) error {
	defer d.close()
	return pullRun(ctx, d.opts.Poll, d.logger, func(ctx context.Context) (bool, error) {
		return false, d.Poll(ctx)
	})
}

// Poll scans the directory once and reads what is new. Run calls it every
// Options.Poll; it must not be called while Run runs. A file that cannot
// be read is logged and tried again at the next poll; Poll fails when the
// directory cannot be listed, or the pipeline or the cursor store fails.
func (d *DirSource) Poll(ctx context.Context) error {
	if err := d.load(ctx); err != nil {
		d.metrics.errors.Inc()
		return err
	}
	now := d.opts.Now()
	names, err := d.scan(now)
	if err != nil {
		d.metrics.errors.Inc()
		return err
	}
	files := slices.SortedFunc(maps.Values(d.files), func(a, b *dirFile) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.id.ino, b.id.ino))
	})
	for _, f := range files {
		var err error
		if f.Whole {
			err = d.readWhole(ctx, f, now)
		} else {
			err = d.tail(ctx, f, names[f.Name] != f.id, now)
		}
		var inputErr *pullInputError
		switch {
		case errors.As(err, &inputErr):
			d.metrics.errors.Inc()
			if msg := err.Error(); msg != f.lastErr {
				d.logger.Warn("cannot read file; trying again at the next poll", "path", f.path, "err", err)
				f.lastErr = msg
			}
		case err != nil:
			if ctx.Err() == nil {
				d.metrics.errors.Inc()
			}
			return err
		default:
			f.lastErr = ""
		}
	}
	forgot := false
	for id, f := range d.files {
		if f.seen || f.f != nil {
			continue
		}
		if !f.Whole && f.Off < f.size {
			d.logger.Warn("file removed before it was read to its end", "path", f.path, "unread_bytes", f.size-f.Off)
		}
		delete(d.files, id)
		forgot = true
	}
	if forgot {
		return d.save(ctx)
	}
	return nil
}

// A dirFileID identifies a file whatever its name.
type dirFileID struct{ dev, ino uint64 }

func (id dirFileID) String() string { return fmt.Sprintf("%d:%d", id.dev, id.ino) }

func parseDirFileID(s string) (dirFileID, error) {
	dev, ino, ok := strings.Cut(s, ":")
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return dirFileID{}, fmt.Errorf("file id %q is not device:inode", s)
	}
	return dirFileID{d, i}, nil
}

// dirFileIdentity returns a file's device and inode numbers. On unix
// they are in a *syscall.Stat_t whose field types differ from system to
// system, and which other systems lack; reading the fields by name keeps
// this file free of build tags. Where there are none (Windows) the name
// stands in, so a renamed file is taken for a new one.
func dirFileIdentity(info fs.FileInfo) dirFileID {
	if v := reflect.Indirect(reflect.ValueOf(info.Sys())); v.Kind() == reflect.Struct {
		dev, ino := v.FieldByName("Dev"), v.FieldByName("Ino")
		if dev.IsValid() && ino.IsValid() {
			return dirFileID{asUint64(dev), asUint64(ino)}
		}
	}
	h := fnv.New64a()
	h.Write([]byte(info.Name()))
	return dirFileID{ino: h.Sum64()}
}

func asUint64(v reflect.Value) uint64 {
	if v.CanUint() {
		return v.Uint()
	}
	if v.CanInt() {
		return uint64(v.Int())
	}
	return 0
}

// A dirFile is a file a DirSource reads. Its exported fields are its
// cursor.
type dirFile struct {
	// Name is the name the file had when first seen. When that name
	// leads to another file or to none, the file was rotated.
	Name string `json:"name"`
	// Format is the format detected in the file's first chunk, kept for
	// the rest, which may be too short to tell.
	Format string `json:"format,omitempty"`
	// Off is how far the file has been handed to the pipeline. End, when
	// set, is the end of the chunk being handed over: after a crash the
	// same chunk is read again, so that it makes the same batches, under
	// the same IDs.
	Off int64 `json:"off"`
	End int64 `json:"end,omitempty"`
	// HeadSum is the CRC-32 of the file's first HeadLen bytes. When they
	// change, the file was truncated and written again past Off, or its
	// inode was reused, and it is read again from its start.
	HeadLen int64  `json:"head_len,omitempty"`
	HeadSum uint32 `json:"head_sum,omitempty"`
	// Whole marks a compressed file, read whole once complete; Done, that
	// it was, when it was Off bytes long.
	Whole bool `json:"whole,omitempty"`
	Done  bool `json:"done,omitempty"`

	id      dirFileID
	path    string   // where it is now
	f       *os.File // open while there is more to read
	size    int64
	mtime   time.Time
	since   time.Time // when size or mtime last changed
	seen    bool      // found by the last scan
	lastErr string    // logged already
}

// observe notes a file's size and modification time, and when they last
// changed.
func (f *dirFile) observe(size int64, mtime time.Time, now time.Time) {
	if f.since.IsZero() || size != f.size || !mtime.Equal(f.mtime) {
		f.size, f.mtime, f.since = size, mtime, now
	}
}

// scan lists the directory, adding the new files that match and noting
// where each known file is. It returns the file each name leads to.
func (d *DirSource) scan(now time.Time) (map[string]dirFileID, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", d.dir, err)
	}
	for _, f := range d.files {
		f.seen = false
	}
	names := make(map[string]dirFileID, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		id := dirFileIdentity(info)
		names[name] = id
		f := d.files[id]
		if f == nil {
			if ok, _ := filepath.Match(d.opts.Glob, name); d.opts.Glob != "" && !ok {
				continue
			}
			f = &dirFile{Name: name, Whole: strings.HasSuffix(name, ".gz"), id: id}
			d.files[id] = f
		}
		f.seen = true
		f.path = filepath.Join(d.dir, name)
		if f.f == nil { // else the descriptor tells, even after a rename
			f.observe(info.Size(), info.ModTime(), now)
		}
	}
	return names, nil
}

// open opens f by its path and checks that it is still the same file.
func (d *DirSource) open(f *dirFile) (*os.File, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, &pullInputError{err}
	}
	info, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, &pullInputError{err}
	}
	if dirFileIdentity(info) != f.id {
		fh.Close()
		return nil, &pullInputError{fmt.Errorf("%s was replaced while being opened", f.path)}
	}
	return fh, nil
}

// readWhole reads a compressed file once it has settled.
func (d *DirSource) readWhole(ctx context.Context, f *dirFile, now time.Time) error {
	if !f.seen || now.Sub(f.since) < d.opts.Settle || (f.Done && f.size == f.Off) {
		return nil
	}
	if f.Done {
		d.logger.Warn("compressed file changed after it was read; reading it again", "path", f.path)
	}
	fh, err := d.open(f)
	if err != nil {
		return err
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return &pullInputError{err}
	}
	size := info.Size()
	// The size and modification time tell this content from what a
	// reused inode may hold later.
	id := fmt.Sprintf("%s:%d:%d", f.id, size, info.ModTime().UnixNano())
	if _, err := d.send.send(ctx, io.NewSectionReader(fh, 0, size), d.opts.Format, d.parseOptions(f.path), id); err != nil {
		return err
	}
	f.Done, f.Off = true, size
	d.metrics.objects.Inc()
	return d.save(ctx)
}

// tail reads the whole lines written to f since the last poll, and, once
// a rotated file has settled, its last line without a newline.
func (d *DirSource) tail(ctx context.Context, f *dirFile, rotated bool, now time.Time) error {
	if f.f == nil {
		if !f.seen || (f.size == f.Off && f.End == 0) {
			return nil
		}
		fh, err := d.open(f)
		if err != nil {
			return err
		}
		f.f = fh
	}
	info, err := f.f.Stat()
	if err != nil {
		return &pullInputError{err}
	}
	f.observe(info.Size(), info.ModTime(), now)
	if err := d.checkHead(f); err != nil {
		return err
	}
	final := rotated && now.Sub(f.since) >= d.opts.Settle
	for {
		chunk, err := d.chunk(f, final)
		if err != nil {
			return err
		}
		if chunk == nil {
			break
		}
		if err := d.hand(ctx, f, chunk); err != nil {
			return err
		}
	}
	if f.Off == f.size && now.Sub(f.since) >= d.opts.Settle {
		// Idle: let the descriptor go, to be opened again by name when
		// the file grows. A file removed now loses nothing.
		f.f.Close()
		f.f = nil
	}
	return nil
}

// checkHead starts f again from its beginning when it was truncated
// (copytruncate rotation) or its first bytes changed.
func (d *DirSource) checkHead(f *dirFile) error {
	replaced := f.size < max(f.Off, f.End)
	if !replaced && f.HeadLen > 0 {
		sum, err := checksumHead(f.f, f.HeadLen)
		if err != nil {
			return &pullInputError{fmt.Errorf("reading %s: %w", f.path, err)}
		}
		replaced = sum != f.HeadSum
	}
	if replaced {
		d.logger.Warn("file truncated or replaced; reading it again from its start", "path", f.path, "offset", f.Off, "size", f.size)
		*f = dirFile{Name: f.Name, id: f.id, path: f.path, f: f.f, size: f.size, mtime: f.mtime, since: f.since, seen: f.seen}
	}
	return nil
}

func checksumHead(r io.ReaderAt, n int64) (uint32, error) {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, 0); err != nil {
		return 0, err
	}
	return crc32.ChecksumIEEE(b), nil
}

// chunk returns the next bytes of f to hand over: the chunk that was
// being handed over when the source stopped, else the whole lines after
// f.Off, about dirChunk of them, or, if final, all that is left. It
// returns nil when there is nothing to hand over yet.
func (d *DirSource) chunk(f *dirFile, final bool) ([]byte, error) {
	if f.End > f.Off {
		return readAt(f, f.Off, f.End-f.Off)
	}
	left := f.size - f.Off
	if left <= 0 {
		return nil, nil
	}
	maxLine := int64(cmp.Or(d.opts.Parse.MaxLine, parse.DefaultMaxLine))
	for n := min(left, dirChunk); ; n = min(2*n, left, maxLine) {
		b, err := readAt(f, f.Off, n)
		if err != nil {
			return nil, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return b[:i+1], nil
		}
		if final || n >= maxLine {
			// The parser quarantines a line longer than maxLine.
			return b, nil
		}
		if n == left {
			return nil, nil // a line still being written
		}
	}
}

func readAt(f *dirFile, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := f.f.ReadAt(b, off); err != nil {
		// Short: the file shrank since its size was taken. The next
		// poll sees the truncation.
		return nil, &pullInputError{fmt.Errorf("reading %s at %d: %w", f.path, off, err)}
	}
	return b, nil
}

// hand hands a chunk of f, which starts at f.Off, to the pipeline.
func (d *DirSource) hand(ctx context.Context, f *dirFile, chunk []byte) error {
	start, end := f.Off, f.Off+int64(len(chunk))
	if f.End != end {
		f.End = end
		if err := d.save(ctx); err != nil {
			return err
		}
	}
	// Read before the chunk goes out, so that a failure here does not
	// leave an acknowledged chunk out of the cursor.
	headLen, headSum := f.HeadLen, f.HeadSum
	if headLen < dirHeadSize {
		headLen = min(end, dirHeadSize)
		var err error
		if headSum, err = checksumHead(f.f, headLen); err != nil {
			return &pullInputError{fmt.Errorf("reading %s: %w", f.path, err)}
		}
	}
	// The checksum tells this chunk from one at the same place in a file
	// that later reuses the inode.
	id := fmt.Sprintf("%s@%d-%d.%016x", f.id, start, end, crc64.Checksum(chunk, dirCRC))
	opts := d.parseOptions(fmt.Sprintf("%s@%d", f.path, start))
	format, err := d.send.send(ctx, bytes.NewReader(chunk), cmp.Or(f.Format, d.opts.Format), opts, id)
	if err != nil {
		return err
	}
	if f.Format == "" && d.opts.Format == parse.Auto {
		f.Format = format
	}
	if start == 0 {
		d.metrics.objects.Inc()
	}
	f.Off, f.End, f.HeadLen, f.HeadSum = end, 0, headLen, headSum
	return d.save(ctx)
}

func (d *DirSource) parseOptions(origin string) parse.Options {
	opts := d.opts.Parse
	opts.Tenant, opts.Origin, opts.Received = d.opts.Tenant, origin, d.opts.Now()
	return opts
}

// close closes the files held open.
func (d *DirSource) close() {
	for _, f := range d.files {
		if f.f != nil {
			f.f.Close()
			f.f = nil
		}
	}
}

const dirCursorVersion = 1

type dirCursor struct {
	V     int                 `json:"v"`
	Files map[string]*dirFile `json:"files"` // by dirFileID
}

// load reads the cursor on the first poll, and on later ones stores it
// again if the last attempt failed.
func (d *DirSource) load(ctx context.Context) error {
	if d.files != nil {
		if d.dirty {
			return d.save(ctx)
		}
		return nil
	}
	raw, err := d.cursors.Cursor(ctx, d.name)
	if err != nil {
		return fmt.Errorf("reading the cursor of %s: %w", d.name, err)
	}
	c := dirCursor{V: dirCursorVersion}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return fmt.Errorf("%w of %s: %w", errBadCursor, d.name, err)
		}
		if c.V != dirCursorVersion {
			return fmt.Errorf("%w of %s: version %d, want %d", errBadCursor, d.name, c.V, dirCursorVersion)
		}
	}
	files := make(map[dirFileID]*dirFile, len(c.Files))
	for key, f := range c.Files {
		id, err := parseDirFileID(key)
		if err != nil {
			return fmt.Errorf("%w of %s: %w", errBadCursor, d.name, err)
		}
		f.id = id
		files[id] = f
	}
	d.files = files
	return nil
}

func (d *DirSource) save(ctx context.Context) error {
	c := dirCursor{V: dirCursorVersion, Files: make(map[string]*dirFile, len(d.files))}
	for id, f := range d.files {
		c.Files[id.String()] = f
	}
	b, err := json.Marshal(c)
	if err == nil {
		err = d.cursors.SetCursor(ctx, d.name, string(b))
	}
	// As for S3Source: what was acknowledged stays acknowledged here, and
	// is sent again, under the same IDs, only after a restart.
	d.dirty = err != nil
	if err != nil {
		return fmt.Errorf("saving the cursor of %s: %w", d.name, err)
	}
	return nil
}
