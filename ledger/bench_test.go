package ledger

import (
	"context"
	"fmt"
	"testing"

	"github.com/vigilsec/vigil/event"
)

// BenchmarkAppend measures group commit: each of N concurrent appenders
// appends one event at a time and waits for its fsync, as an ingest
// handler acknowledging single events would.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			l := openTest(b, b.TempDir(), Options{})
			ev := testEvent(1)
			b.SetBytes(int64(len(EncodeEvent(ev))))
			b.ResetTimer()
			sem := make(chan struct{}, appenders)
			done := make(chan error, b.N)
			for range b.N {
				sem <- struct{}{}
				go func() {
					_, err := l.Append(context.Background(), []*event.Event{{Raw: ev.Raw, Time: ev.Time}})
					<-sem
					done <- err
				}()
			}
			for range b.N {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchLedger is a ledger of n events of about 600 bytes.
func benchLedger(b *testing.B, n int) (*Ledger, string) {
	dir := b.TempDir()
	l := openTest(b, dir, Options{SegmentBytes: 4 << 20})
	fill(b, l, n, 1000)
	return l, dir
}

func BenchmarkScan(b *testing.B) {
	l, _ := benchLedger(b, 20000)
	var bytes int64
	l.Scan(0, l.Size(), func(r Record) error { bytes += int64(len(r.Content)) + frameOverhead; return nil })
	b.SetBytes(bytes)
	b.ResetTimer()
	for b.Loop() {
		if err := l.Scan(0, l.Size(), func(Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	l, dir := benchLedger(b, 20000)
	var bytes int64
	l.Scan(0, l.Size(), func(r Record) error { bytes += int64(len(r.Content)) + frameOverhead; return nil })
	l.Close()
	b.SetBytes(bytes)
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(context.Background(), dir, VerifyOptions{})
		if err != nil || !rep.OK() {
			b.Fatal(err, rep.Problems)
		}
	}
}
