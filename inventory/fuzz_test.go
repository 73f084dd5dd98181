package inventory

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz targets read arbitrary bytes as each format, and check that the
// reader never panics, that its errors name the file and a line within it,
// and that every indicator it loaded is found again by its lookup, with
// the label the most specific listing gives it.

var fuzzNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// fuzzSeed adds a testdata file to a fuzz target's corpus.
func fuzzSeed(f *testing.F, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
}

// fuzzIntel reads data as a list of a format, and checks the result. It
// returns the stats, and false when the read failed.
func fuzzIntel(t *testing.T, format IntelFormat, file string, data []byte) (IntelStats, bool) {
	b := newIntelBuilder(fuzzNow)
	st := IntelStats{Name: "fuzz", Format: format}
	err := b.read(&st, file, bytes.NewReader(data))
	if err != nil {
		checkErrLine(t, err, regexp.QuoteMeta(file)+`:(\d+): `, data)
		return st, false
	}
	if st.Skipped < len(st.Skips) || len(st.Skips) > maxSkips {
		t.Fatalf("skipped %d, skips %v", st.Skipped, st.Skips)
	}
	for _, sk := range st.Skips {
		if sk.Line < 1 || sk.Line > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("skip at line %d of %d: %v", sk.Line, bytes.Count(data, []byte("\n"))+1, sk)
		}
	}
	in := b.build()
	checkLoaded(t, b, in)
	// Lookups of anything never panic.
	in.MatchDomain(string(data))
	in.MatchHash(string(data))
	if a, err := netip.ParseAddr(strings.TrimSpace(string(data))); err == nil {
		in.MatchIP(a)
	}
	return st, true
}

// checkErrLine checks an error starts as the pattern wants, with a line
// number within data.
func checkErrLine(t *testing.T, err error, pattern string, data []byte) {
	t.Helper()
	m := regexp.MustCompile(`^` + pattern).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error %q does not name the file and line", err)
	}
	line, _ := strconv.Atoi(m[1])
	if lines := bytes.Count(data, []byte("\n")) + 1; line < 1 || line > lines {
		t.Fatalf("error at line %d of %d: %v", line, lines, err)
	}
}

// checkLoaded checks every indicator b gathered is found in in.
func checkLoaded(t *testing.T, b *intelBuilder, in *Intel) {
	t.Helper()
	for d, l := range b.domains {
		m, ok := in.MatchDomain(d)
		if !ok || m != b.labels[l] {
			t.Fatalf("MatchDomain(%q) = %+v %v, want %+v", d, m, ok, b.labels[l])
		}
		if _, ok := in.MatchDomain("Sub." + strings.ToUpper(d) + "."); !ok {
			t.Fatalf("a subdomain of %q is not found", d)
		}
	}
	for sum, l := range b.md5 {
		checkHash(t, in, hex.EncodeToString(sum[:]), b.labels[l])
	}
	for sum, l := range b.sha1 {
		checkHash(t, in, hex.EncodeToString(sum[:]), b.labels[l])
	}
	for sum, l := range b.sha256 {
		checkHash(t, in, hex.EncodeToString(sum[:]), b.labels[l])
	}
	checkSpans(t, b.v4, true, func(a netip.Addr) (uint32, bool) { return in.ips.lookup(a) })
	checkSpans(t, b.v6, false, func(a netip.Addr) (uint32, bool) { return in.ips.lookup(a) })
}

func checkHash(t *testing.T, in *Intel, h string, want Match) {
	t.Helper()
	for _, s := range []string{h, strings.ToUpper(h)} {
		if m, ok := in.MatchHash(s); !ok || m != want {
			t.Fatalf("MatchHash(%s) = %+v %v, want %+v", s, m, ok, want)
		}
	}
}

// checkSpans checks that each span's first and last addresses find the
// label of the most specific span holding them, the first listed of equal
// ones, by a plain search of them all.
func checkSpans(t *testing.T, spans []span, v4 bool, lookup func(netip.Addr) (uint32, bool)) {
	t.Helper()
	if len(spans) > 200 {
		spans = spans[:200] // the plain search is quadratic
	}
	for _, s := range spans {
		for _, x := range []u128{s.lo, s.hi} {
			var best *span
			for i := range spans {
				c := &spans[i]
				if x.less(c.lo) || c.hi.less(x) {
					continue
				}
				nested := best == nil || !c.lo.less(best.lo) && !best.hi.less(c.hi)
				same := best != nil && c.lo == best.lo && c.hi == best.hi
				if nested && (!same || c.rank < best.rank || c.rank == best.rank && c.order < best.order) {
					best = c
				}
			}
			addr := addrOf(x, v4)
			if addr.Is4In6() {
				continue // looked up as IPv4: see normPrefix
			}
			got, ok := lookup(addr)
			if !ok || got != best.label {
				t.Fatalf("lookup(%s) = %d %v, want %d", addr, got, ok, best.label)
			}
		}
	}
}

func addrOf(x u128, v4 bool) netip.Addr {
	if v4 {
		v := uint32(x.lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	for i := range 8 {
		b[i] = byte(x.hi >> (56 - 8*i))
		b[8+i] = byte(x.lo >> (56 - 8*i))
	}
	return netip.AddrFrom16(b)
}

func FuzzIntelText(f *testing.F) {
	fuzzSeed(f, "testdata/intel/blocklist.txt")
	for _, s := range []string{
		"", "\n", "192.0.2.1", "192.0.2.0/24\n192.0.2.1\n10.0.0.0/8 # x\n",
		"::/0\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n", "0.0.0.0/0\n255.255.255.255\r\n",
		"a.example\nb.a.example\nA.EXAMPLE.\n*.c.example ; desc\n",
		"d41d8cd98f00b204e9800998ecf8427e\nDA39A3EE5E6B4B0D3255BFEF95601890AFD80709\n",
		"\ufeff# bom\nx.example", "junk\n", "1.2.3.4 5.6.7.8\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, ok := fuzzIntel(t, IntelText, "fuzz.txt", data)
		if !ok {
			return
		}
		// Each line that reads as an indicator was counted: the reader
		// lost none of them.
		body := bytes.TrimPrefix(data, []byte("\ufeff"))
		want := 0
		for line := range bytes.SplitSeq(body, []byte("\n")) {
			if len(line)+1 > 64<<10 {
				continue // too long: skipped
			}
			s := strings.TrimSpace(string(line))
			if i := strings.IndexAny(s, "#;"); i >= 0 {
				s = strings.TrimSpace(s[:i])
			}
			if s == "" || strings.ContainsAny(s, " \t") {
				continue
			}
			if _, err := parseIndicator(s); err == nil {
				want++
			}
		}
		if got := st.IPs + st.CIDRs + st.Domains + st.Hashes; got != want {
			t.Fatalf("loaded %d indicators, the lines hold %d", got, want)
		}
	})
}

func FuzzIntelCSV(f *testing.F) {
	fuzzSeed(f, "testdata/intel/feed.csv")
	for _, s := range []string{
		"", "ip\n192.0.2.1\n", "IP Address,Domain,SHA256,Comment\n192.0.2.1,a.example,,one\n",
		"value,type,description,source\n192.0.2.0/24,c2,\"a, b\",feed\n",
		"# id,url\n1,http://a.example/x\n", "url\n\"http://[2001:db8::1]:80/\"\n",
		"md5,sha1\nd41d8cd98f00b204e9800998ecf8427e,da39a3ee5e6b4b0d3255bfef95601890afd80709\n",
		"foo,bar\n1,2\n", "ip\n\"bad\"quote\n192.0.2.1\n", "\ufeffhost\n192.0.2.1\nh.example\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzIntel(t, IntelCSV, "fuzz.csv", data)
	})
}

func FuzzIntelSTIX(f *testing.F) {
	fuzzSeed(f, "testdata/intel/bundle.json")
	for _, s := range []string{
		"", "{}", "[]", `{"type": "bundle"}`, `{"type": "bundle", "objects": []}`,
		`{"type": "bundle", "objects": [{"type": "indicator", "pattern": "[ipv4-addr:value = '192.0.2.1'] OR [domain-name:value = 'a.example']"}]}`,
		`{"objects": [{"type": "indicator", "pattern": "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']", "valid_until": "2030-01-01T00:00:00Z"}], "type": "bundle"}`,
		"{\"type\": \"bundle\", \"objects\": [\n{\"type\": \"indicator\", \"pattern\": 5},\n{\"type\": \"x\"}, 7]}",
		"{\"type\": \"bundle\", \"objects\": [\n{\"type\": \"indicator\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzIntel(t, IntelSTIX, "fuzz.json", data)
	})
}

// FuzzIntelSTIXPattern checks the pattern parser alone, which the bundle
// fuzzer reaches only through JSON: a pattern it reads, written again from
// its comparisons, reads the same.
func FuzzIntelSTIXPattern(f *testing.F) {
	for _, s := range []string{
		"[ipv4-addr:value = '198.51.100.1']",
		"[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '198.51.100.2'] OR ([domain-name:value = 'b.example'])",
		"[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
		`[domain-name:value = 'it\'s\\.example']`, "[a:b = 'x'] AND [c:d = 'y']", "[a:b = 'x'] WITHIN 300 SECONDS",
		"[(a:b = 'x' OR (c:d LIKE 'y'))]", "[a:b IN ('x', 'y')]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		cmps, err := parseSTIXPattern(pattern)
		if err != nil || len(cmps) == 0 {
			return
		}
		var parts []string
		for _, c := range cmps {
			v := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(c.value)
			parts = append(parts, c.object+":"+c.prop+" "+c.op+" '"+v+"'")
			c.indicator() // never panics
		}
		again := "[" + strings.Join(parts, " OR ") + "]"
		cmps2, err := parseSTIXPattern(again)
		if err != nil {
			t.Fatalf("%q written again as %q: %v", pattern, again, err)
		}
		if len(cmps2) != len(cmps) {
			t.Fatalf("%q written again as %q: %d comparisons, want %d", pattern, again, len(cmps2), len(cmps))
		}
		for i := range cmps {
			if cmps2[i] != cmps[i] {
				t.Fatalf("%q written again as %q: %+v, want %+v", pattern, again, cmps2[i], cmps[i])
			}
		}
	})
}

func FuzzAWSRanges(f *testing.F) {
	fuzzSeed(f, "testdata/ip-ranges.json")
	for _, s := range []string{
		"", "{}", `{"prefixes": []}`,
		`{"prefixes": [{"ip_prefix": "0.0.0.0/0", "service": "AMAZON"}, {"ip_prefix": "0.0.0.0/0", "service": "EC2"}, {"ip_prefix": "255.255.255.255/32"}]}`,
		`{"ipv6_prefixes": [{"ipv6_prefix": "::/0"}, {"ipv6_prefix": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "service": "S3"}]}`,
		"{\"prefixes\": [\n{\"ip_prefix\": \"3.0.0.0/8\"},\n{\"ip_prefix\" \"3.0.0.0/8\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := LoadAWSRanges(bytes.NewReader(data))
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "aws ip ranges: ") {
				t.Fatalf("error %q does not say what failed", msg)
			}
			if msg != "aws ip ranges: empty input" && !strings.Contains(msg, "not an ip-ranges.json") {
				checkErrLine(t, err, `aws ip ranges: line (\d+): `, data)
			}
			return
		}
		for _, r := range rs.ranges {
			for _, a := range []netip.Addr{r.Prefix.Addr(), lastAddr(r.Prefix)} {
				if a.Is4In6() {
					continue // looked up as IPv4: see normPrefix
				}
				got, ok := rs.Lookup(a)
				if !ok || !got.Prefix.Contains(a) || got.Prefix.Bits() < r.Prefix.Bits() {
					t.Fatalf("Lookup(%s) = %+v %v; %+v holds it", a, got, ok, r)
				}
				if got.Prefix == r.Prefix && strings.EqualFold(got.Service, "AMAZON") && !strings.EqualFold(r.Service, "AMAZON") {
					t.Fatalf("Lookup(%s) = %+v, not the service's %+v", a, got, r)
				}
			}
		}
	})
}

// lastAddr returns the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
