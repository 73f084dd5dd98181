package inventory

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vigilsec/vigil/event"
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
// lookups (GeoIP, intel, ranges, owners) are swapped in whole when their
// files change, so a batch is enriched against one version of each.
// Its methods are safe for concurrent use.
type Enricher struct {
	ids *Identities

	mu  sync.Mutex // guards inv
	inv *Inventory

	geo    atomic.Pointer[GeoIP]
	intel  atomic.Pointer[Intel]
	ranges atomic.Pointer[Ranges]
}

// NewEnricher returns an Enricher that follows identities and inventory
// as events pass, starting from what they hold; either may be nil.
func NewEnricher(ids *Identities, inv *Inventory) *Enricher {
	if ids == nil {
		ids = NewIdentities()
	}
	if inv == nil {
		inv = NewInventory()
	}
	return &Enricher{ids: ids, inv: inv}
}

// SetGeoIP sets the GeoIP databases; nil turns GeoIP off. The caller
// closes the one it replaces once enrichments that may use it are done.
func (e *Enricher) SetGeoIP(g *GeoIP) { e.geo.Store(g) }

// SetIntel sets the threat-intel lists; nil turns matching off.
func (e *Enricher) SetIntel(in *Intel) { e.intel.Store(in) }

// SetRanges sets the cloud providers' published ranges; nil turns that off.
func (e *Enricher) SetRanges(rs *Ranges) { e.ranges.Store(rs) }

// Inventory calls fn with the inventory, which it must not keep.
func (e *Enricher) Inventory(fn func(*Inventory)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e.inv)
}

// Enrich enriches a batch of events, in time order as a batch reaches
// the ledger: the credentials and assets an event makes are known to the
// events after it.
func (e *Enricher) Enrich(evs []*event.Event) {
	e.ids.Enrich(evs)
	geo, intel, ranges := e.geo.Load(), e.intel.Load(), e.ranges.Load()
	e.mu.Lock()
	for _, ev := range evs {
		e.inv.Observe(ev)
		c := &ev.Context
		e.place(&c.Src, ev.SrcIP, ev)
		e.place(&c.Dst, ev.DstIP, ev)
	}
	e.mu.Unlock()
	for _, ev := range evs {
		c := &ev.Context
		for _, p := range []struct {
			place *event.Place
			addr  netip.Addr
		}{{&c.Src, ev.SrcIP}, {&c.Dst, ev.DstIP}} {
			if !p.addr.IsValid() {
				continue
			}
			if g := geo.Lookup(p.addr); g != (Geo{}) {
				p.place.Country, p.place.City, p.place.ASN, p.place.ASOrg = g.Country, g.City, g.ASN, g.ASOrg
			}
			if name, ok := ranges.name(p.addr); ok {
				p.place.Cloud = name
			}
		}
		if intel.Len() > 0 {
			matchEvent(intel, ev)
		}
	}
}

// place fills in the asset that held addr at the event's time, and its
// owner. The caller holds e.mu.
func (e *Enricher) place(p *event.Place, addr netip.Addr, ev *event.Event) {
	if !addr.IsValid() || p.Asset != "" {
		return
	}
	a, ok := e.inv.AssetAt(addr, ev.Time)
	if !ok {
		return
	}
	p.Asset = a.ID
}

// matchEvent adds to ev the hits of its addresses, and of the addresses,
// domains and hashes its document names.
func matchEvent(in *Intel, ev *event.Event) {
	var hits hitSet
	for _, a := range []netip.Addr{ev.SrcIP, ev.DstIP} {
		if a.IsValid() {
			if m, ok := in.MatchIP(a); ok {
				hits.add(m, a.String())
			}
		}
	}
	scanTokens(ev.Document(), func(tok []byte, kind tokenKind) bool {
		var m Match
		var ok bool
		switch kind {
		case tokenHex:
			m, ok = matchHash(in, tok)
		case tokenIPv4:
			if a, ok2 := parseIPv4(tok); ok2 && a != ev.SrcIP && a != ev.DstIP {
				m, ok = in.MatchIP(a)
			}
		default:
			m, ok = matchDomain(in, tok)
		}
		if ok {
			hits.add(m, string(tok))
		}
		return len(hits.hits) < maxHits
	})
	ev.Context.Intel = append(ev.Context.Intel, hits.hits...)
}

// hitSet collects an event's hits, each indicator once.
type hitSet struct{ hits []event.IntelHit }

func (s *hitSet) add(m Match, indicator string) {
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
// Most tokens have no dot and are not a hash's length, and are passed
// over as they are read; the scan allocates nothing.
func scanTokens(doc []byte, fn func(tok []byte, kind tokenKind) bool) {
	for i := 0; i < len(doc); {
		if !tokenByte[doc[i]] {
			i++
			continue
		}
		start, dot := i, false
		for ; i < len(doc) && tokenByte[doc[i]]; i++ {
			dot = dot || doc[i] == '.'
		}
		if n := i - start; !dot && n != 32 && n != 40 && n != 64 {
			continue
		}
		tok := trimToken(doc[start:i])
		if kind, ok := classify(tok); ok && !fn(tok, kind) {
			return
		}
	}
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
