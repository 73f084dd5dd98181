package wordindex

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store/wordindex/wordtest"
)

func itemsOf(s string) []uint64 { return AppendItems(nil, []byte(s)) }

func TestItems(t *testing.T) {
	got := Items([]string{"b a", "-", "A c", "b"})
	// a, b and c once each, and the pairs b a and a c.
	want := []uint64{itemsOf("a")[0], itemsOf("b")[0], itemsOf("c")[0], itemsOf("b a")[2], itemsOf("a c")[2]}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Items = %x, want %x", got, want)
	}
	for _, needles := range [][]string{nil, {}, {""}, {" -/ ", "."}} {
		if got := Items(needles); got != nil {
			t.Errorf("Items(%q) = %x, want nil", needles, got)
		}
	}
}

func TestAppendItems(t *testing.T) {
	word := func(s string) uint64 { return itemsOf(s)[0] }
	pair := func(a, b string) uint64 { return itemsOf(a + " " + b)[2] }
	tests := []struct {
		text string
		want []uint64
	}{
		{"", nil},
		{" ,.-/ ", nil},
		{"hello", []uint64{word("hello")}},
		{`{"Hello":"World!"}`, []uint64{word("hello"), word("world")}},
		// Pairs of adjacent short words only.
		{"86.245.153.234", []uint64{word("86"), word("245"), pair("86", "245"), word("153"), pair("245", "153"), word("234"), pair("153", "234")}},
		{"for christophe at 10", []uint64{word("for"), word("christophe"), word("at"), word("10"), pair("at", "10")}},
		{"a b", []uint64{word("a"), word("b"), pair("a", "b")}},
	}
	for _, tt := range tests {
		if got := itemsOf(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("itemsOf(%q) = %x, want %x", tt.text, got, tt.want)
		}
	}
	// Words longer than a hash word, and the boundary between them.
	if itemsOf("abcdefgh")[0] == itemsOf("abcdefghi")[0] || itemsOf("abcdefghijklmnop")[0] == itemsOf("abcdefghijklmnoq")[0] {
		t.Error("long words collide")
	}

	same := [][]string{
		{"Christophe", "CHRISTOPHE", "christophe", "  christophe  "},
		{"a-b", "a b", "A\tB", "a\u00a0b", "a\xffb", "a\ufffdb", "a😀b"},
		{"Élodie", "élodie", "ÉLODIE"},
		{"key", "\u212aEY"},          // the Kelvin sign folds like k
		{"ss", "ſs", "SS"},           // long s folds like s
		{"straße", "STRAẞE"},         // capital sharp s
		{"σας", "ΣΑΣ", "ςας"},        // final sigma
		{"cafe\u0301", "CAFE\u0301"}, // a combining mark is part of the word
	}
	for _, group := range same {
		for _, s := range group[1:] {
			if got, want := itemsOf(s), itemsOf(group[0]); !slices.Equal(got, want) {
				t.Errorf("itemsOf(%q) = %x, want those of %q, %x", s, got, group[0], want)
			}
		}
	}
	different := [][2]string{
		{"cafe\u0301", "cafe"},
		{"straße", "strasse"},
		{"a_b", "a b"},
		{"ab", "a b"},
		{"i", "ı"},
	}
	for _, d := range different {
		if slices.Equal(itemsOf(d[0]), itemsOf(d[1])) {
			t.Errorf("itemsOf(%q) = itemsOf(%q)", d[0], d[1])
		}
	}
}

// refItems is AppendItems written plainly: split into words, fold each
// rune, hash the bytes one at a time.
func refItems(text []byte) []uint64 {
	var out []uint64
	var prev uint64
	prevShort := false
	for _, word := range strings.FieldsFunc(string(text), func(r rune) bool { return !query.IsWordRune(r) }) {
		var folded []byte
		for _, r := range word {
			folded = utf8.AppendRune(folded, foldRune(r))
		}
		n := len(folded)
		h := uint64(hashSeed)
		for len(folded) > 0 {
			var w uint64
			for k := 0; k < 8 && k < len(folded); k++ {
				w |= uint64(folded[k]) << (8 * k)
			}
			h = mixWord(h, w)
			folded = folded[min(8, len(folded)):]
		}
		th := fmix(h ^ uint64(n))
		out = append(out, th)
		short := n <= maxPairLen
		if short && prevShort {
			out = append(out, fmix(prev*0x9e3779b97f4a7c15^th))
		}
		prev, prevShort = th, short
	}
	return out
}

// AppendItems's fast paths (ASCII words hashed eight bytes at a time,
// near the end of the text too) agree with the plain definition.
func TestAppendItemsReference(t *testing.T) {
	parts := []string{"a", "Z", "_", "0", "abcdefgh", "ABCDEFGHIJKLMNOPQ", "MiXeDcAsE_123", " ", ".", "\"", "é", "Ω", "\xff", "\u212a", "ſ"}
	r := rand.New(rand.NewPCG(15, 16))
	for range 20000 {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(parts[r.IntN(len(parts))])
		}
		text := []byte(b.String())
		if got, want := AppendItems(nil, text), refItems(text); !slices.Equal(got, want) {
			t.Fatalf("AppendItems(nil, %q) = %x, want %x", text, got, want)
		}
	}
	// The eight-byte loads must not read past a word into a neighbour.
	long := []byte("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_")
	for i := range long {
		for j := i + 1; j <= len(long); j++ {
			text := append(slices.Clone(long[i:j]), "-é"...)
			if got, want := AppendItems(nil, text), refItems(text); !slices.Equal(got, want) {
				t.Fatalf("AppendItems(nil, %q) = %x, want %x", text, got, want)
			}
			if got, want := AppendItems(nil, long[i:j]), refItems(long[i:j]); !slices.Equal(got, want) {
				t.Fatalf("AppendItems(nil, %q) = %x, want %x", long[i:j], got, want)
			}
		}
	}
}

// A word's case-folding orbit, which RE2 matches as one letter when it
// ignores case, is either all word runes or all separators, and folds to
// one rune: otherwise an event could match a needle without holding its
// words as the index records them.
func TestFoldOrbits(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if query.IsWordRune(f) != query.IsWordRune(r) {
				t.Errorf("%U and %U fold together, but only one is a word rune", r, f)
			}
			if foldRune(f) != foldRune(r) {
				t.Errorf("foldRune(%U) = %U, foldRune(%U) = %U", f, foldRune(f), r, foldRune(r))
			}
		}
	}
}

// Every text that holds a needle as words holds the needle's items: the
// property that makes the index exact.
func TestItemsOfMatches(t *testing.T) {
	alphabet := []string{"a", "B", "c", "1", "22", "_", " ", ".", "-", ":", "/", "é", "É", "ß", "\u212a", "k", "ſ", "s", "\u0301", "\xff", "\ufffd", "😀", "σ", "Σ", "ς"}
	r := rand.New(rand.NewPCG(3, 4))
	gen := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	matched := 0
	for range 15000 {
		text := gen(4 + r.IntN(30))
		var needle string
		if r.IntN(2) == 0 {
			// A piece of the text, so that many match.
			i := r.IntN(len(text))
			needle = text[i:min(len(text), i+1+r.IntN(8))]
		} else {
			needle = gen(1 + r.IntN(4))
		}
		if !utf8.ValidString(needle) || !wordtest.Regexp(needle).MatchString(strings.ToValidUTF8(text, "\ufffd")) {
			continue
		}
		matched++
		have := itemsOf(text)
		for _, h := range itemsOf(needle) {
			if !slices.Contains(have, h) {
				t.Fatalf("%q holds %q as words, but not its item %x", text, needle, h)
			}
		}
	}
	if matched < 700 {
		t.Fatalf("only %d texts matched their needle", matched)
	}
}

func BenchmarkAppendItems(b *testing.B) {
	raws := wordtest.Records(b)
	var size int64
	for _, r := range raws {
		size += int64(len(r))
	}
	b.SetBytes(size / int64(len(raws)))
	var dst []uint64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		dst = AppendItems(dst[:0], raws[i%len(raws)])
	}
}
