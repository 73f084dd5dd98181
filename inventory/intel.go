package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/maphash"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// This file holds threat intelligence: lists of known-bad IP addresses and
// networks, domains and file hashes, loaded from files and matched against
// every event at ingest. An Intel never changes once loaded, so any number
// of goroutines may match against it while a reload builds its successor;
// callers swap the two with an atomic.Pointer.

// An IntelFormat is the format of an indicator list.
type IntelFormat int

// The formats LoadIntel reads.
const (
	// IntelAuto picks the format from the file: a first byte '{' is STIX;
	// a .csv name, or a first line naming a known column, is CSV; anything
	// else is text.
	IntelAuto IntelFormat = iota
	// IntelText is one indicator a line: an IP address, a CIDR network, a
	// domain or a hex MD5, SHA-1 or SHA-256 hash. Blank lines and lines
	// starting with '#' or ';' are skipped; text after a '#' or ';' on an
	// indicator's line becomes its description.
	IntelText
	// IntelCSV has a header row naming its columns; see LoadIntel.
	IntelCSV
	// IntelSTIX is a STIX 2.1 bundle of indicator objects.
	IntelSTIX
)

func (f IntelFormat) String() string {
	switch f {
	case IntelAuto:
		return "auto"
	case IntelText:
		return "text"
	case IntelCSV:
		return "csv"
	case IntelSTIX:
		return "stix"
	}
	return "IntelFormat(" + strconv.Itoa(int(f)) + ")"
}

// An IntelSource is a file of indicators.
type IntelSource struct {
	// Name names the list in the Matches it gives: the file's base name
	// without its extension when empty.
	Name   string
	Path   string
	Format IntelFormat
}

// A Match says which list named an indicator, and why.
type Match struct {
	Source      string // the list's name (a CSV row's source column overrides it)
	Type        string // the threat type, when the list gave one
	Description string // when the list gave one
}

// IntelStats reports what LoadIntel made of one source.
type IntelStats struct {
	Name   string
	Path   string
	Format IntelFormat // as read, never IntelAuto

	// Indicators loaded, counting those listed more than once.
	IPs, CIDRs, Domains, Hashes int
	// Skipped counts the lines, CSV cells and STIX indicators (or
	// comparisons of their patterns) that gave no indicator: unreadable,
	// unsupported, revoked or expired. Skips says why for the first few.
	Skipped int
	Skips   []IntelSkip
	// Ignored counts the STIX objects that are not indicators (identities,
	// relationships, malware, …): a bundle is expected to carry them.
	Ignored int
}

// An IntelSkip is an input that gave no indicator, and why.
type IntelSkip struct {
	Line   int
	Reason string
}

const (
	maxSkips = 10 // the skips IntelStats keeps reasons for
	// maxDescription bounds a description: a Match goes into every event
	// it enriches, and a STIX description can run to pages.
	maxDescription = 256
)

// Intel matches addresses, domains and hashes against indicator lists.
// Its methods are safe for concurrent use; it never changes once loaded.
type Intel struct {
	labels []Match
	ips    prefixTable
	// The listed domains (lower case, no trailing dot) and the last two
	// labels of each, by number in a table: a million names held in
	// byte arrays, not as strings the garbage collector traces at every
	// cycle while ingest runs.
	domains strTable
	nodes   []domainNode // by the number of the domain
	tops    topFilter    // the last two labels of the listed domains
	md5     map[[16]byte]uint32
	sha1    map[[20]byte]uint32
	sha256  map[[32]byte]uint32
	n       int
}

// LoadIntel reads indicator lists into a new Intel, and reports for each
// source how many indicators it gave and what it skipped.
//
// A line, CSV cell or STIX indicator that gives no indicator is skipped and
// counted, so that one bad entry does not cost a whole feed; but a text or
// CSV file of which nothing could be read is an error, as is a file that is
// not of its format (a CSV header naming no indicator column, broken JSON).
// Errors name the file and line.
//
// An indicator listed more than once keeps the label of its first listing,
// in the order of the sources. Networks may nest: an address matches the
// most specific one listing it. A listed domain matches itself and its
// subdomains.
//
// CSV columns are named by the header row (case and the characters
// " _-#" aside). Each row gives an indicator for every non-empty cell of
// these columns:
//
//	indicator, value, ioc, observable   any kind, detected
//	ip, ip_address, cidr, network, subnet, prefix   an IP address or network
//	domain, domain_name, fqdn           a domain
//	host, hostname                      a domain or an IP address
//	url                                 the URL's host
//	hash, file_hash                     an MD5, SHA-1 or SHA-256 hash
//	md5, sha1, sha256 (and sha_1, sha_256)   a hash of that kind
//
// and labels it with the first non-empty cell of these:
//
//	description, desc, comment, comments, name, title   the description
//	type, threat_type, threat, category, malware, indicator_type   the type
//	source, feed, list                  the source, instead of the list's name
//
// Rows whose first cell starts with '#' are comments; when the first row
// names no known column, the last comment before it is tried as the header
// (abuse.ch's CSV exports comment their header out).
//
// From a STIX bundle, LoadIntel takes the indicator objects whose pattern
// is one or more comparisons joined by OR, each of the form
// [ipv4-addr:value = '…'], [ipv6-addr:value = '…'] (an address or a CIDR,
// also with ISSUBSET), [domain-name:value = '…'], [url:value = '…'] (its
// host) or [file:hashes.'SHA-256' = '…'] (also MD5 and SHA-1). Other
// comparisons, patterns with AND, FOLLOWEDBY or qualifiers, other pattern
// types, and revoked or expired (valid_until past) indicators are skipped.
// A Match's Description is the indicator's name, else its description; its
// Type, the indicator_types.
func LoadIntel(sources ...IntelSource) (*Intel, []IntelStats, error) {
	b := newIntelBuilder(time.Now())
	stats := make([]IntelStats, 0, len(sources))
	for _, src := range sources {
		st, err := b.load(src)
		stats = append(stats, st)
		if err != nil {
			return nil, stats, err
		}
	}
	return b.build(), stats, nil
}

// MatchIP reports whether an indicator lists addr, by itself or in a
// network. An IPv4-mapped IPv6 address matches as its IPv4 address.
func (in *Intel) MatchIP(addr netip.Addr) (Match, bool) {
	if in == nil {
		return Match{}, false
	}
	if l, ok := in.ips.lookup(addr); ok {
		return in.labels[l], true
	}
	return Match{}, false
}

// MatchDomain reports whether an indicator lists name or a domain it is
// under: a listed evil.com matches a.b.evil.com. Case and a trailing dot
// do not matter. The most specific listing wins.
func (in *Intel) MatchDomain(name string) (Match, bool) {
	return matchDomain(in, name)
}

func matchDomain[T string | []byte](in *Intel, name T) (Match, bool) {
	if in == nil || len(in.nodes) == 0 {
		return Match{}, false
	}
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	var buf [253]byte // the longest domain name
	if len(name) == 0 || len(name) > len(buf) {
		return Match{}, false
	}
	n := copy(buf[:], name)
	for i, c := range buf[:n] {
		if 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	// Every listed domain has two labels or more, so any listing of name
	// or a parent ends in name's last two labels. Those settle most names:
	// the filter, then the map, says whether any listing ends so, and how
	// many labels deep such listings go, so that only names that deep or
	// shallower are tried, longest first.
	labels, top := 1, 0 // top: where the last two labels start
	for i := n - 1; i >= 0; i-- {
		if buf[i] == '.' {
			if labels++; labels == 3 {
				top = i + 1
			}
		}
	}
	if labels < 2 {
		return Match{}, false
	}
	if !in.tops.mayHave(buf[top:n]) {
		return Match{}, false
	}
	node, ok := in.domain(buf[top:n])
	if !ok {
		return Match{}, false
	}
	name1 := buf[:n]
	for ; labels > 2; labels-- {
		if labels <= int(node.deepest) {
			if d, ok := in.domain(name1); ok && d.listed {
				return in.labels[d.label], true
			}
		}
		name1 = name1[bytes.IndexByte(name1, '.')+1:]
	}
	if node.listed {
		return in.labels[node.label], true
	}
	return Match{}, false
}

// domain returns the node of a domain name.
func (in *Intel) domain(name []byte) (domainNode, bool) {
	// The table only reads the name, and keeps nothing of it: a string
	// sharing its bytes costs no copy.
	id, ok := in.domains.find(unsafe.String(unsafe.SliceData(name), len(name)))
	if !ok {
		return domainNode{}, false
	}
	return in.nodes[id], true
}

// topFilter says whether a name may be the last two labels of a listed
// domain, or surely is not: a Bloom filter, two bits of one word a name.
// Most names looked up are not listed, and their two last labels not
// either. At 16 bits a name the filter settles about 98% of those with
// one read of a small array, where a map of a million domains costs reads
// of a large one that miss the cache and the TLB: measured with a million
// domains listed, it cut an unlisted name's lookup from 280 ns to 90–165.
type topFilter struct {
	seed maphash.Seed
	bits []uint64 // a power of two long
}

func newTopFilter(n int) topFilter {
	words := 1
	for words*64 < 16*n {
		words *= 2
	}
	return topFilter{seed: maphash.MakeSeed(), bits: make([]uint64, words)}
}

// hash returns the word and the two bits of a name.
func (f *topFilter) hash(name []byte) (int, uint64) {
	h := maphash.Bytes(f.seed, name)
	return int(h>>12) & (len(f.bits) - 1), 1<<(h&63) | 1<<(h>>6&63)
}

func (f *topFilter) add(name string) {
	w, m := f.hash([]byte(name))
	f.bits[w] |= m
}

func (f *topFilter) mayHave(name []byte) bool {
	w, m := f.hash(name)
	return f.bits[w]&m == m
}

// A domainNode is a domain in Intel's map: a listed one, or the last two
// labels of listed ones, or both.
type domainNode struct {
	label   uint32
	listed  bool  // a listed domain, not only the end of some
	deepest uint8 // of a two-label name: the most labels of a listing under it
}

// MatchHash reports whether an indicator lists a file hash, given in hex
// (either case): an MD5, SHA-1 or SHA-256 by its length.
func (in *Intel) MatchHash(hexDigest string) (Match, bool) {
	return matchHash(in, hexDigest)
}

func matchHash[T string | []byte](in *Intel, hexDigest T) (Match, bool) {
	if in == nil {
		return Match{}, false
	}
	kind, sum, ok := parseHash(hexDigest)
	if !ok {
		return Match{}, false
	}
	var l uint32
	switch kind {
	case kindMD5:
		l, ok = in.md5[[16]byte(sum[:16])]
	case kindSHA1:
		l, ok = in.sha1[[20]byte(sum[:20])]
	default:
		l, ok = in.sha256[sum]
	}
	if !ok {
		return Match{}, false
	}
	return in.labels[l], true
}

// hasHashes reports whether any list names a hash: if none does, a
// document's hashes need not be looked for.
func (in *Intel) hasHashes() bool {
	return in != nil && len(in.md5)+len(in.sha1)+len(in.sha256) > 0
}

// Len returns the number of distinct indicators: addresses and networks,
// domains and hashes.
func (in *Intel) Len() int {
	if in == nil {
		return 0
	}
	return in.n
}

// indKind is the kind of an indicator.
type indKind uint8

const (
	kindIP indKind = iota + 1
	kindCIDR
	kindDomain
	kindMD5
	kindSHA1
	kindSHA256
)

// An indicator is one parsed entry of a list.
type indicator struct {
	kind   indKind
	prefix netip.Prefix // kindIP (a single-address prefix) and kindCIDR
	domain string       // kindDomain: normalized
	hash   [32]byte     // the hashes, left-aligned
}

// intelBuilder gathers the indicators of the sources.
type intelBuilder struct {
	now      time.Time // against which STIX valid_until is judged
	labels   []Match
	labelIdx map[Match]uint32
	v4, v6   []span
	domains  map[string]uint32
	md5      map[[16]byte]uint32
	sha1     map[[20]byte]uint32
	sha256   map[[32]byte]uint32
}

func newIntelBuilder(now time.Time) *intelBuilder {
	return &intelBuilder{
		now:      now,
		labelIdx: make(map[Match]uint32),
		domains:  make(map[string]uint32),
		md5:      make(map[[16]byte]uint32),
		sha1:     make(map[[20]byte]uint32),
		sha256:   make(map[[32]byte]uint32),
	}
}

// label interns m: lists label most of their entries alike, and a million
// indicators should not hold a million copies of one Match.
func (b *intelBuilder) label(m Match) uint32 {
	m.Description = truncate(m.Description, maxDescription)
	m.Type = truncate(m.Type, maxDescription)
	m.Source = truncate(m.Source, maxDescription)
	if l, ok := b.labelIdx[m]; ok {
		return l
	}
	l := uint32(len(b.labels))
	b.labels = append(b.labels, m)
	b.labelIdx[m] = l
	return l
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// add records an indicator with a label; the first listing wins.
func (b *intelBuilder) add(ind indicator, label uint32, st *IntelStats) {
	switch ind.kind {
	case kindIP, kindCIDR:
		if ind.kind == kindIP {
			st.IPs++
		} else {
			st.CIDRs++
		}
		s := spanOf(ind.prefix, label)
		if ind.prefix.Addr().Is4() {
			s.order = uint32(len(b.v4))
			b.v4 = append(b.v4, s)
		} else {
			s.order = uint32(len(b.v6))
			b.v6 = append(b.v6, s)
		}
	case kindDomain:
		st.Domains++
		if _, ok := b.domains[ind.domain]; !ok {
			b.domains[ind.domain] = label
		}
	case kindMD5, kindSHA1, kindSHA256:
		st.Hashes++
		switch ind.kind {
		case kindMD5:
			if _, ok := b.md5[[16]byte(ind.hash[:16])]; !ok {
				b.md5[[16]byte(ind.hash[:16])] = label
			}
		case kindSHA1:
			if _, ok := b.sha1[[20]byte(ind.hash[:20])]; !ok {
				b.sha1[[20]byte(ind.hash[:20])] = label
			}
		default:
			if _, ok := b.sha256[ind.hash]; !ok {
				b.sha256[ind.hash] = label
			}
		}
	}
}

func (b *intelBuilder) build() *Intel {
	ips, n := buildPrefixTable(b.v4, b.v6)
	var (
		domains strTable
		nodes   []domainNode
	)
	node := func(d string) *domainNode {
		id := domains.id(d)
		if int(id) == len(nodes) {
			nodes = append(nodes, domainNode{})
		}
		return &nodes[id]
	}
	for d, label := range b.domains {
		n := node(d)
		n.label, n.listed = label, true
		labels := strings.Count(d, ".") + 1
		i := strings.LastIndexByte(d, '.')
		n = node(d[strings.LastIndexByte(d[:i], '.')+1:])
		n.deepest = max(n.deepest, uint8(labels))
	}
	n2 := 0
	for _, n := range nodes {
		if n.deepest > 0 {
			n2++
		}
	}
	tops := newTopFilter(n2)
	for id, n := range nodes {
		if n.deepest > 0 {
			tops.add(domains.str(uint32(id)))
		}
	}
	return &Intel{
		labels:  b.labels,
		ips:     ips,
		domains: domains,
		nodes:   nodes,
		tops:    tops,
		md5:     b.md5,
		sha1:    b.sha1,
		sha256:  b.sha256,
		n:       n + len(b.domains) + len(b.md5) + len(b.sha1) + len(b.sha256),
	}
}

// load reads one source.
func (b *intelBuilder) load(src IntelSource) (IntelStats, error) {
	st := IntelStats{Name: src.Name, Path: src.Path, Format: src.Format}
	if st.Name == "" {
		base := filepath.Base(src.Path)
		st.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return st, fmt.Errorf("loading intel: %w", err)
	}
	defer f.Close()
	err = b.read(&st, src.Path, f)
	return st, err
}

// read reads a list from r into b, naming it file in errors. It fills in
// st.Format when it is IntelAuto.
func (b *intelBuilder) read(st *IntelStats, file string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	// Spreadsheets save CSV with a byte-order mark.
	if p, _ := br.Peek(3); bytes.Equal(p, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	if st.Format == IntelAuto {
		st.Format = sniff(file, br)
	}
	var err error
	switch st.Format {
	case IntelText:
		err = b.readText(st, file, br)
	case IntelCSV:
		err = b.readCSV(st, file, br)
	case IntelSTIX:
		err = b.readSTIX(st, file, br)
	default:
		return fmt.Errorf("%s: unknown intel format %v", file, st.Format)
	}
	if err != nil {
		return err
	}
	// A list of which nothing could be read is not a list (an HTML error
	// page saved by a failed download, a CSV read as text): say so rather
	// than load nothing. STIX is spared: a bundle of only revoked or
	// unsupported indicators is still a good bundle.
	if st.Format != IntelSTIX && st.Skipped > 0 && st.IPs+st.CIDRs+st.Domains+st.Hashes == 0 {
		sk := st.Skips[0]
		return fmt.Errorf("%s:%d: no indicator read from %d entries, the first: %s", file, sk.Line, st.Skipped, sk.Reason)
	}
	return nil
}

// sniff guesses a list's format from its name and first bytes.
func sniff(file string, br *bufio.Reader) IntelFormat {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".csv":
		return IntelCSV
	case ".json", ".stix":
		return IntelSTIX
	}
	head, _ := br.Peek(4096)
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return IntelSTIX
	}
	for line := range bytes.Lines(head) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		for cell := range bytes.SplitSeq(line, []byte(",")) {
			if r := csvColumns[columnKey(string(cell))]; r != roleNone && r < roleDescription {
				return IntelCSV
			}
		}
		break
	}
	return IntelText
}

// skip counts an entry that gave no indicator.
func (st *IntelStats) skip(line int, reason string) {
	st.Skipped++
	if len(st.Skips) < maxSkips {
		st.Skips = append(st.Skips, IntelSkip{Line: line, Reason: reason})
	}
}
