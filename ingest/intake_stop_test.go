package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store"
)

// recStore records what a store is given, and notes an event stored
// twice.
type recStore struct {
	Store
	mu   sync.Mutex
	seen map[uint64]string
	dups []string
}

func (r *recStore) note(path string, evs []*event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	r.dups = append(r.dups, fmt.Sprintf("op %s %d..%d", path, evs[0].Seq, evs[len(evs)-1].Seq))
	for _, e := range evs {
		if p, ok := r.seen[e.Seq]; ok {
			r.dups = append(r.dups, fmt.Sprintf("seq %d: %s then %s (batch %d..%d)", e.Seq, p, path, evs[0].Seq, evs[len(evs)-1].Seq))
			break
		}
		r.seen[e.Seq] = path + fmt.Sprintf("(batch %d..%d)", evs[0].Seq, evs[len(evs)-1].Seq)
	}
}

func (r *recStore) Append(ctx context.Context, evs []*event.Event) error {
	err := r.Store.Append(ctx, evs)
	if err == nil {
		r.note("append", evs)
	} else {
		r.note("FAILED append "+err.Error(), nil)
	}
	return err
}

type recLoader struct {
	store.Loader
	r *recStore
}

func (l recLoader) Append(ctx context.Context, evs []*event.Event) error {
	err := l.Loader.Append(ctx, evs)
	if err == nil {
		l.r.note("loader", evs)
	} else {
		l.r.mu.Lock()
		l.r.dups = append(l.r.dups, "loader append failed: "+err.Error())
		l.r.mu.Unlock()
	}
	return err
}

func (l recLoader) Close(ctx context.Context) error {
	err := l.Loader.Close(ctx)
	if err != nil {
		l.r.mu.Lock()
		l.r.dups = append(l.r.dups, "loader close failed: "+err.Error())
		l.r.mu.Unlock()
	}
	return err
}

func (r *recStore) NewLoader(ctx context.Context) (store.Loader, error) {
	l, err := r.Store.NewLoader(ctx)
	if err != nil {
		return nil, err
	}
	return recLoader{l, r}, nil
}

// TestIntakeStopStoresOnce stops an intake again and again while its
// store is fed through loaders, and checks that no event is stored twice.
// (A load whose commit was cut short by the stop could commit anyway,
// and its events were then read from the ledger and stored again; it
// happened about one stop in ten.)
func TestIntakeStopStoresOnce(t *testing.T) {
	evs := realEvents(t)
	for i := range 50 {
		ctx := context.Background()
		p := openPipeline(t, t.TempDir())
		rs := &recStore{Store: p.Store, seen: map[uint64]string{}}
		p.Store = rs
		in, err := NewIntake(p, IntakeOptions{StoreDelay: 50 * time.Millisecond, StoreBatch: 40})
		if err != nil {
			t.Fatal(err)
		}
		stop := runIntake(t, in)
		const size = 50
		var batches []Batch
		for i := 0; i < len(evs); i += size {
			batches = append(batches, Batch{Source: "http/ci", ID: fmt.Sprint("b", i), Events: evs[i:min(i+size, len(evs))]})
		}
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, b := range batches {
					if (w < 2) == (i%2 == 0) {
						cp := b
						cp.Events = cloneEvents(b.Events)
						AcceptWait(ctx, in, cp)
					}
				}
			}()
		}
		wg.Wait()
		stop()
		hasDup := false
		for _, d := range rs.dups {
			if strings.HasPrefix(d, "seq") {
				hasDup = true
			}
		}
		if hasDup {
			t.Fatalf("stop %d: an event stored twice; what the store was given:\n%s", i, strings.Join(rs.dups, "\n"))
		}
	}
}
