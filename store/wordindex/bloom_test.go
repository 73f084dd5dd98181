package wordindex

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func TestBloom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 10, 1000, 100000} {
		b := newBloom(n)
		added := make([]uint64, n)
		for i := range added {
			added[i] = r.Uint64()
			b.add(added[i])
		}
		for _, h := range added {
			if !b.Has(h) {
				t.Fatalf("n=%d: %x added but not found", n, h)
			}
		}
		if !b.HasAll(added) || b.HasAll(nil) != true {
			t.Errorf("n=%d: hasAll", n)
		}
		if b.Size() != len(b.Marshal()) {
			t.Errorf("n=%d: Size %d, Marshal %d bytes", n, b.Size(), len(b.Marshal()))
		}
		c, err := Unmarshal(b.K(), b.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if c.k != b.k || !slices.Equal(c.words, b.words) {
			t.Errorf("n=%d: marshal and unmarshal change the filter", n)
		}
	}
	for _, bad := range []struct {
		k    int
		data []byte
	}{{6, nil}, {6, make([]byte, 63)}, {6, make([]byte, 65)}, {0, make([]byte, 64)}, {33, make([]byte, 64)}} {
		if _, err := Unmarshal(bad.k, bad.data); err == nil {
			t.Errorf("Unmarshal(%d, %d bytes) succeeded", bad.k, len(bad.data))
		}
	}
}

// The rate of false positives at the size newBloom picks is about 1%.
func TestBloomFalsePositives(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n, tries = 50000, 1000000
	b := newBloom(n)
	for range n {
		b.add(r.Uint64())
	}
	fp := 0
	for range tries {
		if b.Has(r.Uint64()) {
			fp++
		}
	}
	if rate := float64(fp) / tries; rate > 0.015 {
		t.Errorf("false positive rate %.2f%%, want about 1%%", 100*rate)
	}
	// And on the items of real words, whose hashes are not random.
	words := newBloom(10000)
	for i := range 10000 {
		words.add(itemsOf("word" + strconv.Itoa(i))[0])
	}
	fp = 0
	for i := range 100000 {
		if words.Has(itemsOf("other" + strconv.Itoa(i))[0]) {
			fp++
		}
	}
	if rate := float64(fp) / 100000; rate > 0.015 {
		t.Errorf("false positive rate on words %.2f%%, want about 1%%", 100*rate)
	}
}

func TestCountDistinct(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var bitmap []uint64
	if n, _ := countDistinct(nil, nil); n != 0 {
		t.Errorf("countDistinct(nil) = %d", n)
	}
	for _, tt := range []struct{ distinct, repeats int }{{1, 1}, {100, 1}, {1000, 3}, {50000, 1}, {50000, 4}, {300000, 2}} {
		var hs []uint64
		for range tt.distinct {
			h := r.Uint64()
			for range tt.repeats {
				hs = append(hs, h)
			}
		}
		r.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
		var n int
		n, bitmap = countDistinct(hs, bitmap)
		if d := float64(n-tt.distinct) / float64(tt.distinct); d < -0.05 || d > 0.05 {
			t.Errorf("%d distinct among %d: estimated %d", tt.distinct, len(hs), n)
		}
	}
}
