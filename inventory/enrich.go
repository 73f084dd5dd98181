package inventory

import (
	"bytes"
	"context"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

// maxHits bounds the threat-intel hits one event keeps: a document that
// names hundreds of listed domains is flagged as well by the first few.
const maxHits = 16

// An Enricher completes events before the ledger takes them with what
// vigil knows of them then: the origin of the credential they were made
// with, the assets that held their addresses, the team that owns their
// account, where their addresses are and whose network they are in,
// whether a cloud provider publishes them, and which threat-intel lists
// name their addresses or any address, domain or hash in their document.
//
// The inventory and the identities follow the events as they pass. The
// inventory is kept by tenant: 10.0.3.7 is some instance in every
// organization, and an event's asset is only ever its own tenant's. The
// lookups (GeoIP, intel, ranges, owners) are swapped in whole, as intel
// is when its files change, so a batch is enriched against one version
// of each.
// Its methods are safe for concurrent use.
type Enricher struct {
	ids *Identities

	// Each stage of Enrich has its lock, so that while a batch's
	// addresses are looked up another's assets are worked out: ingest
	// enriches batches in parallel.
	lookMu sync.Mutex // guards looked
	looked addrCache[lookedUp]
	mu     sync.Mutex // guards invs and held
	invs   map[string]*Inventory
	held   addrCache[heldBy]

	geo    atomic.Pointer[GeoIP]
	intel  atomic.Pointer[Intel]
	ranges atomic.Pointer[Ranges]
	owners atomic.Pointer[Owners]
	gen    atomic.Uint64 // counts the lookups swapped in
}

// NewEnricher returns an Enricher that follows identities as events pass,
// starting from what ids holds (nil: nothing).
func NewEnricher(ids *Identities) *Enricher {
	if ids == nil {
		ids = NewIdentities()
	}
	return &Enricher{ids: ids, invs: map[string]*Inventory{}}
}

// SetGeoIP sets the GeoIP databases; nil turns GeoIP off. The caller
// closes the one it replaces once enrichments that may use it are done.
func (e *Enricher) SetGeoIP(g *GeoIP) { e.geo.Store(g); e.gen.Add(1) }

// SetIntel sets the threat-intel lists; nil turns matching off.
func (e *Enricher) SetIntel(in *Intel) { e.intel.Store(in); e.gen.Add(1) }

// SetRanges sets the cloud providers' published ranges; nil turns that off.
func (e *Enricher) SetRanges(rs *Ranges) { e.ranges.Store(rs); e.gen.Add(1) }

// SetOwners sets the owners map; nil turns it off.
func (e *Enricher) SetOwners(o *Owners) { e.owners.Store(o) }

// Import adds a snapshot to a tenant's inventory.
func (e *Enricher) Import(tenant string, s *Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inventory(tenant).Import(s)
}

// withInventory calls fn with a tenant's inventory, which it must not
// keep.
func (e *Enricher) withInventory(tenant string, fn func(*Inventory)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e.inventory(tenant))
}

// inventory returns a tenant's inventory, made empty if it has none.
// The caller holds e.mu.
func (e *Enricher) inventory(tenant string) *Inventory {
	inv := e.invs[tenant]
	if inv == nil {
		inv = NewInventory()
		e.invs[tenant] = inv
	}
	return inv
}

// Lookup returns the assets ref names at t (over all time, for a zero t)
// in the inventories of the tenants scope includes, as Inventory.Lookup
// does.
func (e *Enricher) Lookup(scope query.Scope, ref string, at time.Time) []Found {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Found
	for tenant, inv := range e.invs {
		if scope.Includes(tenant) {
			out = append(out, inv.Lookup(ref, at)...)
		}
	}
	slices.SortFunc(out, func(x, y Found) int { return strings.Compare(x.Asset.key(), y.Asset.key()) })
	return out
}

// FollowAssets follows every asset the events of st tell of, of each
// tenant in its own inventory: what an Enricher starts from. It returns
// how many events it read.
func (e *Enricher) FollowAssets(ctx context.Context, st Store) (int, error) {
	evs, err := assetEvents(ctx, st, time.Time{})
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range evs {
		e.inventory(ev.Tenant).Observe(ev)
	}
	return len(evs), nil
}

// Addrs returns the addresses an asset of a tenant had at t, as the
// Enricher's inventory of the tenant knows them.
func (e *Enricher) Addrs(tenant string, a Asset, t time.Time) []netip.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if inv := e.invs[tenant]; inv != nil {
		return inv.Addrs(a, t)
	}
	return nil
}

// Observe learns what events say of credentials and assets, without
// enriching them: on a scale-out, the events other nodes enriched and
// stored, read back from the store.
func (e *Enricher) Observe(evs []*event.Event) {
	e.ids.Observe(evs)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range evs {
		e.inventory(ev.Tenant).Observe(ev)
	}
}

// Enrich enriches a batch of events, in time order as a batch reaches
// the ledger: the credentials and assets an event makes are known to the
// events after it.
func (e *Enricher) Enrich(evs []*event.Event) {
	e.ids.Enrich(evs)
	l := lookups{geo: e.geo.Load(), intel: e.intel.Load(), ranges: e.ranges.Load()}
	owners := e.owners.Load()
	// Documents are scanned before any lock is taken: of the work, it is
	// what needs nothing shared.
	var found []hitSet
	if l.intel.Len() > 0 {
		found = make([]hitSet, len(evs))
		for i, ev := range evs {
			found[i].scan(l.intel, ev)
		}
	}
	e.lookup(evs, &l, found)

	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range evs {
		inv := e.inventory(ev.Tenant)
		inv.Observe(ev)
		c := &ev.Context
		if o, ok := owners.Of(ev.Cloud.Account, nil); ok {
			if c.Team == "" {
				c.Team = o.Team
			}
			if ev.Environment == "" {
				ev.Environment = o.Environment
			}
		}
		at := nanos(ev.Time)
		for _, p := range [...]struct {
			place *event.Place
			addr  netip.Addr
		}{{&c.Src, ev.SrcIP}, {&c.Dst, ev.DstIP}} {
			if p.addr.IsValid() && p.place.Asset == "" {
				h, _ := e.held.get(p.addr)
				p.place.Asset, p.place.Owner = h.assetAt(inv, owners, p.addr, at)
			}
		}
	}
}

// lookup sets what the lookups say of the events' addresses, and their
// threat-intel hits: the addresses' first, then those found in their
// documents.
func (e *Enricher) lookup(evs []*event.Event, l *lookups, found []hitSet) {
	// Loaded with the lookups, a generation older than the lookups at
	// worst: the cache is then cleared again at the next batch.
	gen := e.gen.Load()
	e.lookMu.Lock()
	defer e.lookMu.Unlock()
	for i, ev := range evs {
		c := &ev.Context
		var hits hitSet
		for _, p := range [...]struct {
			place *event.Place
			addr  netip.Addr
		}{{&c.Src, ev.SrcIP}, {&c.Dst, ev.DstIP}} {
			if !p.addr.IsValid() {
				continue
			}
			a, hit := e.looked.get(p.addr)
			if !hit || a.gen != gen {
				*a = lookedUp{gen: gen, geo: l.geo.Lookup(p.addr)}
				a.cloud, _ = l.ranges.name(p.addr)
				a.match, a.listed = l.intel.MatchIP(p.addr)
			}
			if a.geo != (Geo{}) {
				p.place.Country, p.place.City, p.place.ASN, p.place.ASOrg = a.geo.Country, a.geo.City, a.geo.ASN, a.geo.ASOrg
			}
			if a.cloud != "" {
				p.place.Cloud = a.cloud
			}
			if a.listed {
				hits.add(a.match, p.addr.String())
			}
		}
		if found != nil {
			for _, h := range found[i].hits {
				hits.add(Match{Source: h.List, Type: h.Type}, h.Indicator)
			}
		}
		c.Intel = append(c.Intel, hits.hits...)
	}
}

// lookups are the lookups of one batch.
type lookups struct {
	geo    *GeoIP
	intel  *Intel
	ranges *Ranges
}

// An addrCache remembers something of the addresses seen last. Most of
// a log's addresses are ones it had just before: a few clients, a few
// peers. A two-way set-associative table settles them with a read or
// two, where the GeoIP databases alone take two lookups and decodes.
type addrCache[T any] struct {
	seed maphash.Seed
	sets [][2]cached[T]
	now  uint64 // counts gets: the entry of a set used least lately goes
}

type cached[T any] struct {
	addr netip.Addr
	used uint64 // zero: empty
	v    T
}

const addrCacheSets = 1 << 13 // a power of two; twice as many entries

// get returns the entry of addr, and whether it held one: one that did
// not is a zero value, in place of the entry used least lately of its
// set, for the caller to fill.
func (c *addrCache[T]) get(addr netip.Addr) (*T, bool) {
	if c.sets == nil {
		c.seed, c.sets = maphash.MakeSeed(), make([][2]cached[T], addrCacheSets)
	}
	c.now++
	set := &c.sets[maphash.Comparable(c.seed, addr)&(addrCacheSets-1)]
	s := &set[0]
	for i := range set {
		if set[i].used != 0 && set[i].addr == addr {
			set[i].used = c.now
			return &set[i].v, true
		}
		if set[i].used < s.used {
			s = &set[i]
		}
	}
	*s = cached[T]{addr: addr, used: c.now}
	return &s.v, false
}

// lookedUp is what the lookups of generation gen say of an address.
type lookedUp struct {
	gen    uint64
	geo    Geo
	cloud  string // the range's name
	match  Match  // the intel listing, if listed
	listed bool
}

// heldBy is the asset that had an address, and its owner, in inv, at any
// time in [lo, hi), while the facts of the address and of the asset are
// as they were (addrGen, and the asset's changes, assetGen) and the
// owners map is owners.
type heldBy struct {
	inv          *Inventory
	owners       *Owners
	addrGen      uint32
	ai           int32 // the asset, or none
	assetGen     uint32
	lo, hi       int64
	asset, owner string
}

// assetAt returns the asset that held the address at at in inv, and its
// owner. The answer is kept with the span of time over which it holds,
// which a change to the inventory ends: most events of a log are of the
// same addresses, and of times close together.
func (a *heldBy) assetAt(inv *Inventory, owners *Owners, addr netip.Addr, at int64) (asset, owner string) {
	gen := inv.addrGen(addr)
	if a.inv != inv || a.owners != owners || a.addrGen != gen || at < a.lo || at >= a.hi ||
		a.ai != none && inv.assets[a.ai].changes != a.assetGen {
		a.inv, a.owners, a.addrGen, a.ai = inv, owners, gen, none
		a.asset, a.owner = "", ""
		ai, ok := inv.assetAt(addr, at)
		a.lo, a.hi = inv.addrSpan(addr, at)
		if ok {
			a.ai, a.assetGen = ai, inv.assets[ai].changes
			lo, hi := inv.span(ai, at)
			a.lo, a.hi = max(a.lo, lo), min(a.hi, hi)
			a.asset = inv.strs.str(inv.assets[ai].id)
			if o, ok := owners.ofAsset(inv, ai, at, false); ok {
				a.owner = o.Team
			}
		}
	}
	return a.asset, a.owner
}

// scan adds the hits of the addresses, domains and hashes the event's
// document names, besides its own addresses.
func (s *hitSet) scan(in *Intel, ev *event.Event) {
	scanTokens(ev.Document(), in.hasHashes(), func(tok []byte, kind tokenKind) bool {
		var m Match
		var ok bool
		switch kind {
		case tokenHex:
			m, ok = matchHash(in, tok)
		case tokenIPv4:
			if a, isAddr := parseIPv4(tok); isAddr && a != ev.SrcIP && a != ev.DstIP {
				m, ok = in.MatchIP(a)
			}
		default:
			m, ok = matchDomain(in, tok)
		}
		if ok {
			s.add(m, string(tok))
		}
		return len(s.hits) < maxHits
	})
}

// hitSet collects an event's hits, each indicator once.
type hitSet struct{ hits []event.IntelHit }

func (s *hitSet) add(m Match, indicator string) {
	if len(s.hits) >= maxHits {
		return
	}
	for _, h := range s.hits {
		if h.Indicator == indicator {
			return
		}
	}
	s.hits = append(s.hits, event.IntelHit{List: m.Source, Indicator: indicator, Type: m.Type})
}

// A tokenKind says what a token of a document may be.
type tokenKind uint8

const (
	tokenDomain tokenKind = iota // letters, digits, '-' and dots, with a dot
	tokenHex                     // 32, 40 or 64 hex digits: a hash
	tokenIPv4                    // digits and three dots
)

// scanTokens calls fn with each token of doc that may be an indicator,
// until fn returns false. Tokens are runs of letters, digits, '.', '-'
// and '_' (so a URL gives its host, an email its domain, a JSON string
// its value), without leading or trailing dots, dashes and underscores.
//
// It reads little of doc: every domain and address has a dot, so those
// are found from the dots, which bytes.IndexByte finds fast; and a hash
// is a run of 32 hex digits or more, which holds one of every 32nd
// byte, so those are found from the hex digits among these. With hashes
// false, hashes are not looked for. The scan allocates nothing.
func scanTokens(doc []byte, hashes bool, fn func(tok []byte, kind tokenKind) bool) {
	for i := 0; i < len(doc); {
		j := bytes.IndexByte(doc[i:], '.')
		if j < 0 {
			break
		}
		start, end := tokenAround(doc, i+j)
		// The token ends at a byte that is not in a token, or at the end,
		// so the next starts after it: start ≥ i.
		// A hash (a token with no dot once trimmed) is the second
		// loop's to find.
		tok := trimToken(doc[start:end])
		if kind, ok := classify(tok); ok && kind != tokenHex && !fn(tok, kind) {
			return
		}
		i = end
	}
	if !hashes {
		return
	}
	for i := 0; i < len(doc); i += 32 {
		if !isHexDigit(doc[i]) {
			continue
		}
		start, end := tokenAround(doc, i)
		if tok := trimToken(doc[start:end]); isHash(tok) && !fn(tok, tokenHex) {
			return
		}
		// On to the first probe past the token.
		if next := (end+31)/32*32 - 32; next > i {
			i = next
		}
	}
}

// tokenAround returns the bounds of the token holding doc[i].
func tokenAround(doc []byte, i int) (start, end int) {
	start, end = i, i
	for start > 0 && tokenByte[doc[start-1]] {
		start--
	}
	for end < len(doc) && tokenByte[doc[end]] {
		end++
	}
	return start, end
}

// isHash reports whether tok is an MD5, SHA-1 or SHA-256 hash in hex.
func isHash(tok []byte) bool {
	if n := len(tok); n != 32 && n != 40 && n != 64 {
		return false
	}
	for _, c := range tok {
		if !isHexDigit(c) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// classify says what a token may be an indicator of, if anything.
func classify(tok []byte) (tokenKind, bool) {
	if len(tok) < 4 || len(tok) > 253 {
		return 0, false
	}
	dots, hex, letters := 0, true, false
	for _, c := range tok {
		switch {
		case c == '.':
			dots++
			hex = false
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
			letters = true
		default:
			hex, letters = false, true
		}
	}
	switch {
	case hex && (len(tok) == 32 || len(tok) == 40 || len(tok) == 64):
		return tokenHex, true
	case dots == 0:
		return 0, false
	case !letters:
		return tokenIPv4, dots == 3
	}
	return tokenDomain, true
}

// parseIPv4 parses a dotted-quad address without the allocation that
// netip.ParseAddr(string(b)) costs.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var a [4]byte
	part, digits, v := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			a[part] = byte(v)
			part, digits, v = part+1, 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || digits > 0 && v == 0 {
			return netip.Addr{}, false // not a digit, or a leading zero
		}
		if v = v*10 + int(c-'0'); v > 255 {
			return netip.Addr{}, false
		}
		digits++
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

// trimToken drops the dots, dashes and underscores a token starts or
// ends with: the end of a sentence, a markup's punctuation.
func trimToken(tok []byte) []byte {
	for len(tok) > 0 && !alnum(tok[0]) {
		tok = tok[1:]
	}
	for len(tok) > 0 && !alnum(tok[len(tok)-1]) {
		tok = tok[:len(tok)-1]
	}
	return tok
}

func alnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

var tokenByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = alnum(byte(c)) || c == '.' || c == '-' || c == '_'
	}
	return t
}()
