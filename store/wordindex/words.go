package wordindex

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/vigilsec/vigil/query"
)

// Words are what the index records of each event: the words of its raw
// text as the query language defines them (query.IsWordRune),
// case-folded, each reduced to a 64-bit hash. An item of the index is the
// hash of a word, or of a pair of adjacent short words.
//
// Pairs are there for the values analysts search most, IP addresses:
// 203.0.113.66 is four words, 203, 0, 113 and 66, each of which some
// other address in almost every block holds, so the words alone rule out
// nothing. Pairs of adjacent words (203 0, 0 113, 113 66) are rare. Only
// pairs of short words are recorded: pairs of long words, such as the
// parts of request ids, would double the size of the index for no gain,
// since a long word alone is selective. On CloudTrail records, blocks of
// 4096 events hold about 8.6 distinct words per event and 2.6 distinct
// short pairs; all adjacent pairs would add 15.7.
//
// A search looks up the items of its needle, split the same way (Items):
// the words of a needle that matches an event are words of that event,
// and its adjacent words are adjacent there too, so a block whose filter
// lacks one of the needle's items holds no match.

// maxPairLen is the longest word, in bytes of its folded form, that goes
// into pairs: IPv4 octets and short words.
const maxPairLen = 3

// foldASCII maps an ASCII byte to its folded form (lower case) when it
// is part of a word, to 0 when it separates words.
var foldASCII = func() (t [utf8.RuneSelf]byte) {
	for c := range utf8.RuneSelf {
		if query.IsWordRune(rune(c)) {
			t[c] = byte(unicode.ToLower(rune(c)))
		}
	}
	return t
}()

// foldRune maps r to one member of its case-folding orbit (r and the
// runes unicode.SimpleFold cycles through from it), the same for every
// member: the lower-case ASCII letter when the orbit has one, so that the
// Kelvin sign folds like k, and the least rune otherwise. RE2, which
// checks the matches, ignores case by the same orbits.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	if least < utf8.RuneSelf {
		return rune(foldASCII[least])
	}
	return least
}

// AppendItems appends the items of text to dst: the hash of each word, in
// order, each followed by the hash of its pair with the word before it
// when both are short. Invalid UTF-8 separates words, as the U+FFFD the
// store keeps in its place does.
func AppendItems(dst []uint64, text []byte) []uint64 {
	// The state lives in locals, not in a struct or a closure, so that it
	// stays in registers: this loop is most of the index's cost.
	var (
		h         = uint64(hashSeed) // hash state of the word
		w         uint64             // bytes of the word not yet mixed into h
		nw        uint               // bytes in w
		n         int                // bytes in the word so far; 0 between words
		prev      uint64             // hash of the previous word
		prevShort bool               // the previous word is short enough for a pair
		utf       [utf8.UTFMax]byte
	)
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c < utf8.RuneSelf {
			f := foldASCII[c]
			if f == 0 {
				if n > 0 {
					dst, prev, prevShort = endWord(dst, h, w, nw, n, prev, prevShort)
					h, w, nw, n = hashSeed, 0, 0, 0
				}
				continue
			}
			if n == 0 {
				// The fast path, for a word all ASCII, as most are: find
				// its end, then hash it eight bytes at a time.
				j := i + 1
				for j < len(text) && text[j] < utf8.RuneSelf && foldASCII[text[j]] != 0 {
					j++
				}
				if j == len(text) || text[j] < utf8.RuneSelf {
					h, w, nw = hashASCII(text, i, j)
					dst, prev, prevShort = endWord(dst, h, w, nw, j-i, prev, prevShort)
					h, w, nw = hashSeed, 0, 0
					i = j - 1
					continue
				}
			}
			w |= uint64(f) << (8 * nw)
			n++
			if nw++; nw == 8 {
				h, w, nw = mixWord(h, w), 0, 0
			}
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		i += size - 1
		if !query.IsWordRune(r) {
			if n > 0 {
				dst, prev, prevShort = endWord(dst, h, w, nw, n, prev, prevShort)
				h, w, nw, n = hashSeed, 0, 0, 0
			}
			continue
		}
		for _, b := range utf8.AppendRune(utf[:0], foldRune(r)) {
			w |= uint64(b) << (8 * nw)
			n++
			if nw++; nw == 8 {
				h, w, nw = mixWord(h, w), 0, 0
			}
		}
	}
	if n > 0 {
		dst, _, _ = endWord(dst, h, w, nw, n, prev, prevShort)
	}
	return dst
}

// Items returns the items of needles, sorted and without repeats: what a
// search for them looks up in the filters. It returns nil when they have
// none, being only separators: such a search can rule nothing out.
func Items(needles []string) []uint64 {
	var items []uint64
	for _, s := range needles {
		items = AppendItems(items, []byte(s))
	}
	if len(items) == 0 {
		return nil
	}
	slices.Sort(items)
	return slices.Compact(items)
}

// hashASCII returns the hash state of the word text[i:j], made of ASCII
// word bytes: the state AppendItems reaches adding its folded bytes one by
// one, with the last nw bytes in w. It loads and folds eight bytes at a
// time.
func hashASCII(text []byte, i, j int) (h, w uint64, nw uint) {
	h = hashSeed
	for ; i+8 <= j; i += 8 {
		h = mixWord(h, lower8(binary.LittleEndian.Uint64(text[i:])))
	}
	if i == j {
		return h, 0, 0
	}
	nw = uint(j - i)
	if i+8 <= len(text) {
		w = binary.LittleEndian.Uint64(text[i:]) & (1<<(8*nw) - 1)
	} else {
		for k := range nw {
			w |= uint64(text[i+int(k)]) << (8 * k)
		}
	}
	return h, lower8(w), nw
}

// lower8 lowers the case of the ASCII letters among the eight bytes of
// x, each of which must be below 0x80.
func lower8(x uint64) uint64 {
	const ones = 0x0101010101010101
	// The high bit of a byte of ge is set when the byte is at least 'A',
	// of gt when it is above 'Z': adding cannot carry into the next byte.
	ge := x + (0x80-'A')*ones
	gt := x + (0x80-'Z'-1)*ones
	upper := ge &^ gt & (0x80 * ones)
	return x | upper>>2
}

// endWord finishes the hash of a word of n bytes from the state h and
// its last nw bytes w, and appends it to dst, followed by the hash of
// its pair with the previous word when both are short. It returns the
// new previous word.
func endWord(dst []uint64, h, w uint64, nw uint, n int, prev uint64, prevShort bool) ([]uint64, uint64, bool) {
	if nw > 0 {
		h = mixWord(h, w)
	}
	th := fmix(h ^ uint64(n))
	dst = append(dst, th)
	short := n <= maxPairLen
	if short && prevShort {
		dst = append(dst, fmix(prev*0x9e3779b97f4a7c15^th))
	}
	return dst, th, short
}

// The hash of a word is MurmurHash3's x64 block mixing over its folded
// bytes read as little-endian 64-bit words, then its finalizer over the
// state and the length. It is part of the index format (Algo): the
// same word must hash the same in every process, on every machine.
const hashSeed = 0x9747b28c

func mixWord(h, w uint64) uint64 {
	w *= 0x87c37b91114253d5
	w = bits.RotateLeft64(w, 31)
	w *= 0x4cf5ad432745937f
	h ^= w
	return bits.RotateLeft64(h, 27)*5 + 0x52dce729
}

// fmix is MurmurHash3's fmix64, except that it never returns 0, which
// the builder's cache (blockBuilder) uses for an empty slot.
func fmix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	if h == 0 {
		return 1
	}
	return h
}
