package wordindex

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// A Bloom is a blocked bloom filter of 64-bit item hashes: each item sets
// bloomHashes bits within one 512-bit line, a cache line, so adding or
// testing an item touches one line of memory. At bitsPerItem bits per
// item it answers "maybe" for about 1% of the items it was not given
// (TestBloomFalsePositives), and never "no" for one it was.
//
// The line comes from the low 32 bits of the hash, the bits within it
// from the high 32 (the layout of RocksDB's FastLocalBloom). The layout
// is part of the index format (Algo).
type Bloom struct {
	k     int      // bits set per item
	words []uint64 // lineWords per line
}

const (
	lineWords   = 8 // 512 bits
	bloomHashes = 6
	bitsPerItem = 10
)

// newBloom returns an empty bloom filter sized for items distinct items.
func newBloom(items int) *Bloom {
	lines := (max(items, 1)*bitsPerItem + 511) / 512
	return &Bloom{k: bloomHashes, words: make([]uint64, lines*lineWords)}
}

// line returns the words of the line for h.
func (b *Bloom) line(h uint64) []uint64 {
	// Lemire's multiply-shift maps the 32 bits onto the lines without a
	// division.
	l := int(uint64(uint32(h)) * uint64(len(b.words)/lineWords) >> 32)
	return b.words[l*lineWords : (l+1)*lineWords : (l+1)*lineWords]
}

func (b *Bloom) add(h uint64) {
	line := b.line(h)
	h2 := uint32(h >> 32)
	for range b.k {
		bit := h2 >> 23 // the top 9 bits: a bit of the line
		line[bit>>6] |= 1 << (bit & 63)
		h2 *= 0x9e3779b9
	}
}

// Has reports whether h may have been added.
func (b *Bloom) Has(h uint64) bool {
	line := b.line(h)
	h2 := uint32(h >> 32)
	for range b.k {
		bit := h2 >> 23
		if line[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
		h2 *= 0x9e3779b9
	}
	return true
}

// HasAll reports whether every one of hs may have been added.
func (b *Bloom) HasAll(hs []uint64) bool {
	for _, h := range hs {
		if !b.Has(h) {
			return false
		}
	}
	return true
}

// K returns the number of bits the filter sets per item. It is not in
// what Marshal returns: a store keeps it beside the bits, for Unmarshal.
func (b *Bloom) K() int { return b.k }

// Size returns the length of what Marshal returns, so that a store can
// account for a filter's size without marshalling it.
func (b *Bloom) Size() int { return 8 * len(b.words) }

// Marshal returns the filter's bits, each word little-endian.
func (b *Bloom) Marshal() []byte {
	out := make([]byte, 8*len(b.words))
	for i, w := range b.words {
		binary.LittleEndian.PutUint64(out[8*i:], w)
	}
	return out
}

// Unmarshal reads what Marshal wrote, for a filter setting k bits per
// item.
func Unmarshal(k int, data []byte) (*Bloom, error) {
	if len(data) == 0 || len(data)%(8*lineWords) != 0 {
		return nil, fmt.Errorf("bloom filter of %d bytes, not a whole number of %d-byte lines", len(data), 8*lineWords)
	}
	if k < 1 || k > 32 {
		return nil, fmt.Errorf("bloom filter setting %d bits per item", k)
	}
	b := &Bloom{k: k, words: make([]uint64, len(data)/8)}
	for i := range b.words {
		b.words[i] = binary.LittleEndian.Uint64(data[8*i:])
	}
	return b, nil
}

// countDistinct returns the number of distinct values in hs, which it
// may reorder: exactly for a few thousand, estimated by linear counting
// (Whang et al., 1990) beyond: the share of bits left zero in a bitmap
// four times as large as len(hs) gives the count within a few percent.
// bitmap is scratch space, returned for reuse.
func countDistinct(hs []uint64, bitmap []uint64) (int, []uint64) {
	if len(hs) <= 8192 {
		slices.Sort(hs)
		n := 0
		for i, h := range hs {
			if i == 0 || h != hs[i-1] {
				n++
			}
		}
		return n, bitmap
	}
	m := 64
	for m < 4*len(hs) {
		m *= 2
	}
	bitmap = append(bitmap[:0], make([]uint64, m/64)...)
	mask := uint64(m - 1)
	for _, h := range hs {
		// Rotated so that the low bits of the index are not the bits that
		// pick the bloom's line and the builder's cache slot.
		i := bits.RotateLeft64(h, 24) & mask
		bitmap[i/64] |= 1 << (i % 64)
	}
	zeros := 0
	for _, w := range bitmap {
		zeros += 64 - bits.OnesCount64(w)
	}
	n := float64(m) * math.Log(float64(m)/float64(zeros))
	return min(len(hs), int(math.Ceil(n))), bitmap
}
