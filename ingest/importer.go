// Package ingest brings logs into vigil: file and directory imports now,
// and (later) the HTTP and syslog listeners and pull sources. It parses,
// batches and hands events to the store; records that cannot be parsed go
// to quarantine with their reason, and never stop the flow.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
)

// A Sink receives parsed events and quarantined records, from several
// import workers at once. A Sink that is also a store.BulkLoader gets an
// import's events through loaders instead, one per worker.
type Sink interface {
	Append(ctx context.Context, evs []*event.Event) error
	Quarantine(ctx context.Context, qs []store.Quarantined) error
}

// ImportOptions configure an Importer.
type ImportOptions struct {
	Format  string        // a parse format name, or parse.Auto
	Parse   parse.Options // Origin is set per file
	Workers int           // files parsed and written at once; 0 means GOMAXPROCS
	Batch   int           // events per append; 0 means 20000
	// Progress, if set, is called from time to time and once at the end.
	Progress func(Progress)
	Logger   *slog.Logger
}

// Progress reports how far an import has got.
type Progress struct {
	Files, FilesDone int
	Bytes, BytesDone int64 // on disk, so compressed for .gz files
	Events           int64
	Quarantined      int64
}

// Summary is the outcome of an import.
type Summary struct {
	Files       int // files read
	Skipped     []Skipped
	Events      int64
	Quarantined int64
	Elapsed     time.Duration
}

// Skipped is a file that was not imported, and why.
type Skipped struct {
	Path   string
	Reason string
}

// An Importer imports files and directories.
type Importer struct {
	sink Sink
	opts ImportOptions
}

// NewImporter returns an importer writing to sink.
func NewImporter(sink Sink, opts ImportOptions) *Importer {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Batch <= 0 {
		opts.Batch = 20000
	}
	if opts.Format == "" {
		opts.Format = parse.Auto
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Importer{sink: sink, opts: opts}
}

type file struct {
	path string // as shown in Origin
	size int64
	open func() (io.ReadCloser, error)
}

func osFile(path string, size int64) file {
	return file{path, size, func() (io.ReadCloser, error) { return os.Open(path) }}
}

// Import reads every file under paths (directories recursively). It
// returns an error only when the store fails, the context ends, or a path
// cannot be read at all; unparseable records are quarantined and
// unrecognized files are reported in the summary.
func (im *Importer) Import(ctx context.Context, paths []string) (Summary, error) {
	files, err := collect(paths)
	if err != nil {
		return Summary{}, err
	}
	return im.run(ctx, files)
}

// ImportFS imports every file of fsys, naming them prefix/path in Origin.
func (im *Importer) ImportFS(ctx context.Context, fsys fs.FS, prefix string) (Summary, error) {
	var files []file
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, file{prefix + "/" + path, info.Size(), func() (io.ReadCloser, error) { return fsys.Open(path) }})
		return nil
	})
	if err != nil {
		return Summary{}, fmt.Errorf("import: %w", err)
	}
	return im.run(ctx, files)
}

func (im *Importer) run(ctx context.Context, files []file) (Summary, error) {
	start := time.Now()
	byTime(files)
	var (
		sum      Summary
		mu       sync.Mutex
		progress = Progress{Files: len(files)}
		events   atomic.Int64
		quar     atomic.Int64
		bytes    atomic.Int64
		done     atomic.Int64
	)
	for _, f := range files {
		progress.Bytes += f.size
	}
	report := func() {
		if im.opts.Progress == nil {
			return
		}
		p := progress
		p.FilesDone, p.BytesDone = int(done.Load()), bytes.Load()
		p.Events, p.Quarantined = events.Load(), quar.Load()
		im.opts.Progress(p)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Workers parse files in parallel, and each writes what it parses, in
	// batches, so that the store sees few large appends, and a store that
	// takes appends in parallel (through loaders, on connections of their
	// own) compresses and writes on every core.
	var (
		writeMu  sync.Mutex
		writeErr error
	)
	fail := func(err error) {
		writeMu.Lock()
		if writeErr == nil {
			writeErr = err
		}
		writeMu.Unlock()
		cancel(err)
	}
	work := make(chan file)
	var wg sync.WaitGroup
	for range im.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := im.newWriter(ctx)
			if err != nil {
				fail(err)
				return
			}
			// A write waits for the ledger's fsync: the worker parses
			// its next batch meanwhile, so that the cores are not idle
			// while the disk works.
			batches := make(chan batch, 1)
			written := make(chan struct{})
			go func() {
				defer close(written)
				for b := range batches {
					if ctx.Err() != nil {
						continue // failed or interrupted: drain
					}
					if err := w.write(ctx, b); err != nil {
						fail(err)
						continue
					}
					events.Add(int64(len(b.events)))
					quar.Add(int64(len(b.quarantined)))
				}
			}()
			write := func(b batch) error {
				select {
				case batches <- b:
					return nil
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			for f := range work {
				ok, reason := im.importFile(ctx, f, write, &bytes)
				done.Add(1)
				mu.Lock()
				if ok {
					sum.Files++
				} else {
					sum.Skipped = append(sum.Skipped, Skipped{f.path, reason})
				}
				mu.Unlock()
			}
			close(batches)
			<-written
			// What was read is kept, even when the import is
			// interrupted: commit it whatever the context says.
			if err := w.close(context.WithoutCancel(ctx)); err != nil {
				fail(err)
			}
		}()
	}

	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	tick := make(chan struct{})
	go func() {
		for {
			select {
			case <-ticker.C:
				report()
			case <-tick:
				return
			}
		}
	}()

feed:
	for _, f := range files {
		select {
		case work <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(tick)

	sum.Events, sum.Quarantined = events.Load(), quar.Load()
	sum.Elapsed = time.Since(start)
	sort.Slice(sum.Skipped, func(i, j int) bool { return sum.Skipped[i].Path < sum.Skipped[j].Path })
	report()
	if writeErr != nil {
		return sum, writeErr
	}
	if err := context.Cause(ctx); err != nil {
		return sum, err
	}
	return sum, nil
}

type batch struct {
	events      []*event.Event
	quarantined []store.Quarantined
}

// A writer stores the batches of an import: the events through a
// store.Loader when the sink has one, so that a store that commits every
// Append is not made to commit for every file.
type writer struct {
	sink   Sink
	loader store.Loader // nil: the sink's Append
}

func (im *Importer) newWriter(ctx context.Context) (*writer, error) {
	w := &writer{sink: im.sink}
	if bl, ok := im.sink.(store.BulkLoader); ok {
		l, err := bl.NewLoader(ctx)
		if err != nil {
			return nil, fmt.Errorf("storing events: %w", err)
		}
		w.loader = l
	}
	return w, nil
}

func (w *writer) write(ctx context.Context, b batch) error {
	var err error
	if w.loader != nil {
		err = w.loader.Append(ctx, b.events)
	} else {
		err = w.sink.Append(ctx, b.events)
	}
	if err != nil {
		return fmt.Errorf("storing events: %w", err)
	}
	if err := w.sink.Quarantine(ctx, b.quarantined); err != nil {
		return fmt.Errorf("storing quarantined records: %w", err)
	}
	return nil
}

// close commits what the loader holds.
func (w *writer) close(ctx context.Context) error {
	if w.loader == nil {
		return nil
	}
	if err := w.loader.Close(ctx); err != nil {
		return fmt.Errorf("storing events: %w", err)
	}
	return nil
}

// importFile parses one file into batches, which it passes to write. It
// reports whether the file was read, or why not.
func (im *Importer) importFile(ctx context.Context, f file, write func(batch) error, read *atomic.Int64) (bool, string) {
	fh, err := f.open()
	if err != nil {
		im.opts.Logger.Warn("cannot open file", "path", f.path, "err", err)
		return false, err.Error()
	}
	defer fh.Close()
	opts := im.opts.Parse
	opts.Origin = f.path
	var b batch
	flush := func() error {
		if len(b.events) == 0 && len(b.quarantined) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if err := write(b); err != nil {
			return err
		}
		b = batch{}
		return nil
	}
	cr := &countingReader{r: fh, n: read}
	format, err := parse.Parse(cr, im.opts.Format, opts, func(r parse.Result) error {
		if r.Err != nil {
			b.quarantined = append(b.quarantined, quarantined(r, opts))
		} else {
			b.events = append(b.events, r.Event)
		}
		if len(b.events)+len(b.quarantined) >= im.opts.Batch {
			return flush()
		}
		return nil
	})
	switch {
	case errors.Is(err, parse.ErrUnknownFormat):
		im.opts.Logger.Warn("skipping file: format not recognized; name one with --format", "path", f.path)
		return false, "format not recognized (name one with --format)"
	case err != nil && ctx.Err() != nil:
		return true, ""
	case err != nil:
		// The input broke part-way (a truncated gzip stream, an I/O
		// error): what was read is kept, and the loss is recorded where
		// an analyst will see it, in quarantine.
		im.opts.Logger.Warn("file read only in part", "path", f.path, "format", format, "err", err)
		b.quarantined = append(b.quarantined, store.Quarantined{
			Received: opts.Received, Tenant: opts.Tenant, Format: format, Origin: f.path,
			Reason: fmt.Sprintf("%v (after %d bytes of the file)", err, cr.off),
		})
	}
	if err := flush(); err != nil {
		return true, ""
	}
	return true, ""
}

// Files lists the regular files under paths (directories recursively,
// skipping hidden ones), in the order an import reads them (see byTime),
// with their sizes.
func Files(paths []string) (names []string, sizes []int64, err error) {
	files, err := collect(paths)
	byTime(files)
	for _, f := range files {
		names = append(names, f.path)
		sizes = append(sizes, f.size)
	}
	return names, sizes, err
}

// collect lists the regular files under paths, in a stable order.
func collect(paths []string) ([]file, error) {
	var files []file
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if !info.IsDir() {
			files = append(files, osFile(p, info.Size()))
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			if d.IsDir() {
				if path != p && len(d.Name()) > 1 && d.Name()[0] == '.' {
					return filepath.SkipDir // .git and the like
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			files = append(files, osFile(path, info.Size()))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// byTime orders files by the time their names say their logs begin, so
// that an import feeds detection roughly in event time: correlation
// windows are in event time, and a trail's files are laid out by account
// first, which would otherwise bring one account's month before the
// next's. Files whose names say no time keep their order, after the
// others.
func byTime(files []file) {
	type hinted struct {
		f  file
		t  string
		ok bool
	}
	hs := make([]hinted, len(files))
	for i, f := range files {
		t, ok := timeHint(f.path)
		hs[i] = hinted{f, t, ok}
	}
	slices.SortStableFunc(hs, func(a, b hinted) int {
		switch {
		case a.ok != b.ok:
			if a.ok {
				return -1
			}
			return 1
		case a.ok:
			return strings.Compare(a.t, b.t)
		}
		return 0
	})
	for i := range hs {
		files[i] = hs[i].f
	}
}

// timeHints find when a log file begins in the names the clouds give
// their files: CloudTrail's …_20240710T1205Z_….json.gz, Azure's
// …/y=2024/m=07/d=10/h=12/m=00/PT1H.json, GCP's
// …/2024/07/10/12:00:00_12:59:59_S0.json, and date folders.
var timeHints = []*regexp.Regexp{
	regexp.MustCompile(`_(\d{8})T(\d{4})Z`),
	regexp.MustCompile(`y=(\d{4})/m=(\d{2})/d=(\d{2})/h=(\d{2})/m=(\d{2})`),
	regexp.MustCompile(`(\d{4})/(\d{2})/(\d{2})/(\d{2}):(\d{2})`),
	regexp.MustCompile(`(\d{4})/(\d{2})/(\d{2})(?:/|$)`),
}

// timeHint returns the time a file's name says it begins, as digits
// that sort in time order (yyyymmddhhmm).
func timeHint(path string) (string, bool) {
	path = filepath.ToSlash(path)
	for _, re := range timeHints {
		if m := re.FindStringSubmatch(path); m != nil {
			t := strings.Join(m[1:], "")
			return (t + "000000000000")[:12], true
		}
	}
	return "", false
}

// countingReader counts the bytes read from a file, for progress.
type countingReader struct {
	r   io.Reader
	n   *atomic.Int64
	off int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	c.off += int64(n)
	return n, err
}

// quarantined is the quarantine record of a result that failed to parse
// under opts.
func quarantined(r parse.Result, opts parse.Options) store.Quarantined {
	return store.Quarantined{
		Received: opts.Received, Tenant: opts.Tenant, Format: r.Format, Origin: opts.Origin,
		Line: r.Line, Offset: r.Offset, Reason: r.Err.Error(), Raw: r.Raw,
	}
}
