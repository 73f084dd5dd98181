package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/duckdb"
)

// realEvents parses the Stratus Red Team detonation logs (real CloudTrail).
func realEvents(t *testing.T) []*event.Event {
	t.Helper()
	root := "../../shared/testdata/stratus-red-team-detonation-logs"
	var evs []*event.Event
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = parse.Parse(f, parse.Auto, parse.Options{Tenant: "team-a", Origin: path, Received: time.Now()}, func(r parse.Result) error {
			if r.Event != nil {
				evs = append(evs, r.Event)
			}
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 100 {
		t.Fatalf("only %d events in %s", len(evs), root)
	}
	return evs
}

// runIntake starts in.Run and returns a function that stops it and
// returns its error.
func runIntake(t *testing.T, in *Intake) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- in.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestIntake sends real events in batches from several goroutines, some
// twice with the same key, and checks that every event is stored once,
// that the store agrees with the ledger, and what the sources report.
func TestIntake(t *testing.T) {
	// With batches of 40 the store is always behind by a batch, so it is
	// fed through loaders; by default, through appends of its own.
	for _, storeBatch := range []int{0, 40} {
		t.Run(fmt.Sprintf("StoreBatch=%d", storeBatch), func(t *testing.T) { testIntake(t, storeBatch) })
	}
}

func testIntake(t *testing.T, storeBatch int) {
	ctx := context.Background()
	dir := t.TempDir()
	p := openPipeline(t, dir)
	// Detection is given each event once, in ledger order.
	var detected []uint64
	p.Detect = func(evs []*event.Event) {
		for _, e := range evs {
			detected = append(detected, e.Seq)
		}
	}
	reg := prometheus.NewRegistry()
	in, err := NewIntake(p, IntakeOptions{StoreDelay: 50 * time.Millisecond, StoreBatch: storeBatch, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	stop := runIntake(t, in)

	evs := realEvents(t)
	const size = 50
	var batches []Batch
	for i := 0; i < len(evs); i += size {
		batches = append(batches, Batch{Source: "http/ci", ID: "b" + string(rune('A'+i/size%26)) + string(rune('a'+i/size/26)), Events: evs[i:min(i+size, len(evs))]})
	}
	batches = append(batches, Batch{Source: "syslog/udp", Quarantined: nil, Events: nil})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Worker 0 and 1 both send every even batch: a client that
			// retries. Worker 2 sends the odd ones.
			for i, b := range batches {
				if (w < 2) == (i%2 == 0) {
					cp := b
					cp.Events = cloneEvents(b.Events)
					if err := AcceptWait(ctx, in, cp); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	keyed := 0
	for _, b := range batches {
		if b.ID != "" {
			keyed++
		}
	}
	if got, want := p.Ledger.Size(), int64(len(evs)+keyed); got != want {
		t.Fatalf("ledger holds %d records, want %d events and %d batch keys", got, len(evs), keyed)
	}
	if got := len(storedSeqs(t, p)); got != len(evs) {
		t.Fatalf("store holds %d events, want %d", got, len(evs))
	}
	if !slices.IsSorted(detected) || len(slices.Compact(slices.Clone(detected))) != len(evs) || len(detected) != len(evs) {
		t.Errorf("detection was given %d events (in order: %v), want each of the %d once, in order", len(detected), slices.IsSorted(detected), len(evs))
	}
	if d := testutil.ToFloat64(in.m.duplicates); d == 0 {
		t.Error("no duplicate batch counted, though half the batches were sent twice")
	}
	// The store agrees with the ledger, and knows the batch keys are not
	// events: nothing is missing.
	db := p.Store.(*duckdb.DB)
	if missing, err := db.Missing(ctx, uint64(p.Ledger.Size())); err != nil || len(missing) > 0 {
		t.Fatalf("Missing = %v, %v; want nothing", missing, err)
	}
	cmp := db.Compare(ctx)
	if err := p.Ledger.Scan(0, p.Ledger.Size(), cmp.Record); err != nil {
		t.Fatal(err)
	}
	if ms, err := cmp.Finish(uint64(p.Ledger.Size())); err != nil || len(ms) > 0 {
		t.Errorf("store against ledger: %v, %v", ms, err)
	}
	srcs := in.Sources()
	if len(srcs) != 2 || srcs[0].Name != "http/ci" || srcs[0].Events != int64(len(evs)) || srcs[0].Batches != int64(keyed) {
		t.Fatalf("sources: %+v", srcs)
	}
	// The fixtures are years old: their skew is their age.
	if srcs[0].Skew < 365*24*time.Hour || srcs[0].LastEvent.IsZero() || srcs[0].Rate <= 0 {
		t.Errorf("http/ci: skew %v, last event %v, rate %v", srcs[0].Skew, srcs[0].LastEvent, srcs[0].Rate)
	}

	// After a restart the keys are found in the ledger: a batch retried
	// then is not stored again.
	in2, err := NewIntake(p, IntakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := p.Ledger.Size()
	b := batches[3]
	b.Events = cloneEvents(b.Events)
	if err := in2.Accept(ctx, b); err != nil {
		t.Fatal(err)
	}
	if p.Ledger.Size() != before {
		t.Errorf("a batch retried after a restart was appended again")
	}
}

func cloneEvents(evs []*event.Event) []*event.Event {
	out := make([]*event.Event, len(evs))
	for i, e := range evs {
		c := *e
		out[i] = &c
	}
	return out
}

// failingStore fails every Append and NewLoader while fail is set.
type failingStore struct {
	Store
	mu   sync.Mutex
	fail bool
}

func (f *failingStore) NewLoader(ctx context.Context) (store.Loader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("disk full")
	}
	return f.Store.NewLoader(ctx)
}

func (f *failingStore) Append(ctx context.Context, evs []*event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("disk full")
	}
	return f.Store.Append(ctx, evs)
}

// TestIntakeBusy: while the store fails, events are still acknowledged
// until the lag bound, then Accept answers ErrBusy; once the store
// recovers, everything acknowledged is stored.
func TestIntakeBusy(t *testing.T) {
	// With a store batch of 30, events wait for the store in bounded
	// memory and the rest is left to the ledger.
	for _, storeBatch := range []int{0, 30} {
		t.Run(fmt.Sprintf("StoreBatch=%d", storeBatch), func(t *testing.T) { testIntakeBusy(t, storeBatch) })
	}
}

func testIntakeBusy(t *testing.T, storeBatch int) {
	ctx := context.Background()
	p := openPipeline(t, t.TempDir())
	fs := &failingStore{Store: p.Store, fail: true}
	p.Store = fs
	// Detection does not wait for the store: events are detected while
	// it fails, and once each, however often the store retries them.
	var (
		dmu      sync.Mutex
		detected []uint64
	)
	p.Detect = func(evs []*event.Event) {
		dmu.Lock()
		defer dmu.Unlock()
		for _, e := range evs {
			detected = append(detected, e.Seq)
		}
	}
	detectedNow := func() []uint64 {
		dmu.Lock()
		defer dmu.Unlock()
		return slices.Clone(detected)
	}
	in, err := NewIntake(p, IntakeOptions{MaxLag: 120, StoreDelay: 20 * time.Millisecond, StoreBatch: storeBatch})
	if err != nil {
		t.Fatal(err)
	}
	stop := runIntake(t, in)
	evs := realEvents(t)
	acked := 0
	for i := 0; ; i += 40 {
		if i >= len(evs) {
			t.Fatal("never busy")
		}
		err := in.Accept(ctx, Batch{Source: "test", Events: evs[i:min(i+40, len(evs))]})
		if errors.Is(err, ErrBusy) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		acked += len(evs[i:min(i+40, len(evs))])
	}
	if acked < 120 || acked > 160 {
		t.Errorf("acknowledged %d events before busy, want the lag bound 120 plus at most a batch", acked)
	}
	// Detection follows the ledger, not the store: it has every event
	// acknowledged while the store fails.
	for deadline := time.Now().Add(10 * time.Second); len(detectedNow()) < acked; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d acknowledged events detected while the store failed", len(detectedNow()), acked)
		}
	}
	time.Sleep(100 * time.Millisecond) // the store retries meanwhile
	fs.mu.Lock()
	fs.fail = false
	fs.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for in.storedUpTo() < p.Ledger.Size() {
		if time.Now().After(deadline) {
			t.Fatalf("store at %d of %d after it recovered", in.storedUpTo(), p.Ledger.Size())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	p.Store = fs.Store
	if got := len(storedSeqs(t, p)); got != acked {
		t.Fatalf("store holds %d events, want the %d acknowledged", got, acked)
	}
	if d := detectedNow(); len(d) != acked || !slices.IsSorted(d) || len(slices.Compact(d)) != acked {
		t.Errorf("detection was given %d events, want each of the %d once, in order", len(d), acked)
	}
}

// countingStore counts the store's appends of their own (each a commit).
type countingStore struct {
	Store
	appends int
}

func (c *countingStore) Append(ctx context.Context, evs []*event.Event) error {
	c.appends++
	return c.Store.Append(ctx, evs)
}

// TestIntakeCatchesUpThroughLoader: a store far behind the ledger is fed
// through a loader, handoffs of ten events and all, and not by commits
// of their own, which rewrite the table's last row group every time. (A
// store that fell behind under load caught up at a third of its speed so
// when handoffs cut its reads from the ledger short; that interleaving
// depends on timing, which this test does not control.)
func TestIntakeCatchesUpThroughLoader(t *testing.T) {
	ctx := context.Background()
	p := openPipeline(t, t.TempDir())
	cs := &countingStore{Store: p.Store}
	p.Store = cs
	in, err := NewIntake(p, IntakeOptions{StoreBatch: 40, StoreDelay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Accepted before Run starts: the store is behind by every event,
	// and the handoffs wait, ten events each.
	evs := realEvents(t)
	for i := 0; i < len(evs); i += 10 {
		if err := in.Accept(ctx, Batch{Source: "test", Events: evs[i:min(i+10, len(evs))]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := runIntake(t, in)(); err != nil {
		t.Fatal(err)
	}
	p.Store = cs.Store
	if got := len(storedSeqs(t, p)); got != len(evs) {
		t.Fatalf("store holds %d events, want %d", got, len(evs))
	}
	if cs.appends > 0 {
		t.Errorf("a store %d events behind got %d commits of their own, want every event through a loader", len(evs), cs.appends)
	}
}
