package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/ingest"
)

// isTerminal reports whether w is a terminal, where progress is shown.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// progressBar draws an import's progress on one terminal line.
type progressBar struct {
	w     io.Writer
	start time.Time
	mu    sync.Mutex
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, start: time.Now()}
}

func (b *progressBar) update(p ingest.Progress) {
	b.draw(p.BytesDone, p.Bytes, fmt.Sprintf("%d/%d files  %s  %d events  %d quarantined",
		p.FilesDone, p.Files, humanBytes(p.BytesDone), p.Events, p.Quarantined))
}

// draw draws the bar at done of total, followed by what.
func (b *progressBar) draw(done, total int64, what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	frac = min(max(frac, 0), 1)
	const width = 30
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	fmt.Fprintf(b.w, "\r[%s] %3.0f%%  %s  %s ", bar, frac*100, what, time.Since(b.start).Round(time.Second))
	b.drawn = true
}

// done clears the bar, so the summary starts on a clean line.
func (b *progressBar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
