package wordindex

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestCandidates(t *testing.T) {
	bl := func(lo, hi uint64, words string, trusted bool) *Block {
		hs := itemsOf(words)
		b := newBloom(len(hs))
		for _, h := range hs {
			b.add(h)
		}
		return &Block{Lo: lo, Hi: hi, Rows: int(hi - lo + 1), Trusted: trusted, Bloom: b}
	}
	top := uint64(math.MaxUint64)
	blocks := []*Block{
		bl(1, 10, "x y", true),
		bl(11, 20, "y", true),
		bl(31, 40, "z", false), // untrusted: always searched
		bl(41, 50, "y", true),
	}
	tests := []struct {
		needle string
		want   [][2]uint64
	}{
		// The gap below the first block, the one between 20 and 31, and
		// the seqs above the last are always searched.
		{"x", [][2]uint64{{0, 10}, {21, 40}, {51, top}}},
		{"absent", [][2]uint64{{0, 0}, {21, 40}, {51, top}}},
		{"y", nil}, // every block: no restriction
		{"x y", [][2]uint64{{0, 10}, {21, 40}, {51, top}}},
	}
	for _, tt := range tests {
		if got := Candidates(blocks, itemsOf(tt.needle)); !slices.Equal(got, tt.want) {
			t.Errorf("Candidates(%q) = %v, want %v", tt.needle, got, tt.want)
		}
	}
	if got := Candidates(nil, itemsOf("x")); got != nil {
		t.Errorf("no blocks: %v, want nil", got)
	}
	// Blocks that overlap, as two appends of one seq make.
	overlap := []*Block{bl(1, 10, "x", true), bl(5, 8, "y", true), bl(11, 11, "y", true)}
	if got, want := Candidates(overlap, itemsOf("y")), [][2]uint64{{0, 0}, {5, 8}, {11, top}}; !slices.Equal(got, want) {
		t.Errorf("overlapping blocks: %v, want %v", got, want)
	}
	// The last block reaches the top of the seqs.
	if got, want := Candidates([]*Block{bl(1, top, "x", true)}, itemsOf("y")), [][2]uint64{{0, 0}}; !slices.Equal(got, want) {
		t.Errorf("block up to the top: %v, want %v", got, want)
	}
}

func TestCoarsen(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 500 {
		var rs [][2]uint64
		next := uint64(r.IntN(5))
		for range 1 + r.IntN(60) {
			lo := next + uint64(r.IntN(4)) // gaps of 0 to 3, many equal
			hi := lo + uint64(r.IntN(3))
			rs = append(rs, [2]uint64{lo, hi})
			next = hi + 2
		}
		n := 1 + r.IntN(40)
		got := coarsen(slices.Clone(rs), n)
		if len(got) > n || (len(rs) >= n && len(got) != n) {
			t.Fatalf("coarsen(%v, %d) = %d ranges", rs, n, len(got))
		}
		// Every number in rs is in got, and the gaps kept are the
		// largest.
		for _, x := range rs {
			if !slices.ContainsFunc(got, func(g [2]uint64) bool { return g[0] <= x[0] && x[1] <= g[1] }) {
				t.Fatalf("coarsen(%v, %d) = %v lost %v", rs, n, got, x)
			}
		}
		var gaps, kept []uint64
		for i := 1; i < len(rs); i++ {
			gaps = append(gaps, rs[i][0]-rs[i-1][1])
		}
		for i := 1; i < len(got); i++ {
			kept = append(kept, got[i][0]-got[i-1][1])
		}
		slices.Sort(gaps)
		slices.Sort(kept)
		if !slices.Equal(kept, gaps[len(gaps)-len(kept):]) {
			t.Fatalf("coarsen(%v, %d) keeps gaps %v of %v", rs, n, kept, gaps)
		}
	}
}

func TestIntersect(t *testing.T) {
	got := Intersect([][2]uint64{{1, 5}, {20, 30}, {8, 8}}, [][2]uint64{{0, 2}, {4, 9}, {25, 100}})
	want := [][2]uint64{{1, 2}, {4, 5}, {25, 30}, {8, 8}}
	if !slices.Equal(got, want) {
		t.Errorf("Intersect = %v, want %v", got, want)
	}
	if got := Intersect([][2]uint64{{1, 5}}, [][2]uint64{{6, 9}}); got == nil || len(got) != 0 {
		t.Errorf("disjoint: %v, want an empty, non-nil list", got)
	}
}

func TestBlocks(t *testing.T) {
	if got := Blocks([]Row{}); got != nil {
		t.Errorf("no rows: %v, want nil", got)
	}
	rows := func(n int) []Row {
		rs := make([]Row, n)
		for i := range rs {
			seq := uint64(100 + i)
			rs[i] = Row{seq, fmt.Appendf(nil, "event %d from 10.0.%d.%d", seq, seq/256, seq%256)}
		}
		return rs
	}
	type cut struct {
		lo, hi uint64
		rows   int
	}
	r := rand.New(rand.NewPCG(17, 18))
	shuffled := rows(BlockRows + 1)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, tt := range []struct {
		name string
		rows []Row
		want []cut
	}{
		{"one", rows(1), []cut{{100, 100, 1}}},
		{"full", rows(BlockRows), []cut{{100, 100 + BlockRows - 1, BlockRows}}},
		// Equal halves, not a full block and a remainder of one.
		{"one over", rows(BlockRows + 1), []cut{{100, 2147, 2048}, {2148, 4196, 2049}}},
		{"unsorted", shuffled, []cut{{100, 2147, 2048}, {2148, 4196, 2049}}},
	} {
		blocks := Blocks(tt.rows)
		var got []cut
		for _, b := range blocks {
			got = append(got, cut{b.Lo, b.Hi, b.Rows})
			if !b.Trusted {
				t.Errorf("%s: block %d-%d untrusted", tt.name, b.Lo, b.Hi)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: blocks %v, want %v", tt.name, got, tt.want)
			continue
		}
		if !slices.IsSortedFunc(tt.rows, bySeq) {
			t.Errorf("%s: rows left unsorted", tt.name)
		}
		for _, row := range tt.rows {
			i := slices.IndexFunc(blocks, func(b *Block) bool { return b.Lo <= row.Seq && row.Seq <= b.Hi })
			for _, h := range itemsOf(string(row.Raw)) {
				if !blocks[i].Bloom.Has(h) {
					t.Fatalf("%s: the filter of %d-%d lacks item %x of %q", tt.name, blocks[i].Lo, blocks[i].Hi, h, row.Raw)
				}
			}
		}
	}
}
