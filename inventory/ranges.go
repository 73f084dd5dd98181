package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// This file says which addresses belong to a cloud provider, from the
// ranges it publishes: an event from one of them came from inside the
// cloud, and the region and service say from where. Like an Intel, a
// Ranges never changes once loaded, and callers swap reloads in with an
// atomic.Pointer.

// A Range is a block of addresses a cloud provider publishes.
type Range struct {
	Provider string       // "aws"
	Prefix   netip.Prefix // as published
	Region   string       // "us-east-1", or "GLOBAL"
	Service  string       // "EC2", "S3", "CLOUDFRONT", …; "AMAZON" for any
	// NetworkBorderGroup is where AWS advertises the block from: the
	// region, or a Local or Wavelength Zone's group.
	NetworkBorderGroup string
}

// Ranges finds the published Range holding an address. Its methods are
// safe for concurrent use; it never changes once loaded.
type Ranges struct {
	ranges []Range
	names  []string // of each range: provider/service/region, as events hold it
	table  prefixTable
	v4, v6 []span // the table's, for MergeRanges
}

// awsPrefix is an entry of AWS's prefixes or ipv6_prefixes.
type awsPrefix struct {
	IPPrefix           string `json:"ip_prefix"`
	IPv6Prefix         string `json:"ipv6_prefix"`
	Region             string `json:"region"`
	Service            string `json:"service"`
	NetworkBorderGroup string `json:"network_border_group"`
}

// LoadAWSRanges reads AWS's ip-ranges.json, as published at
// https://ip-ranges.amazonaws.com/ip-ranges.json (the format is documented
// at docs.aws.amazon.com/vpc/latest/userguide/aws-ip-ranges.html).
//
// AWS lists each block under the service "AMAZON" and again under the
// service using it; Lookup prefers the service. An entry that is not a
// prefix of its list's family is an error naming its line: the file is
// machine-made, so a bad entry means a bad file.
func LoadAWSRanges(r io.Reader) (*Ranges, error) {
	lc := &lineCounter{r: r}
	dec := json.NewDecoder(lc)
	fail := func(err error) error {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("aws ip ranges: line %d: %w", lc.lineAt(jsonErrOffset(dec, lc, err)), err)
	}
	failAt := func(off int64, format string, args ...any) error {
		return fmt.Errorf("aws ip ranges: line %d: %s", lc.lineAt(off), fmt.Sprintf(format, args...))
	}
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, errors.New("aws ip ranges: empty input")
	}
	if err != nil {
		return nil, fail(err)
	}
	if tok != json.Delim('{') {
		return nil, failAt(dec.InputOffset(), "want a JSON object")
	}
	var (
		rs     = &Ranges{}
		v4, v6 []span
		lists  int
		raw    json.RawMessage
	)
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fail(err)
		}
		v6list := key == "ipv6_prefixes"
		if key != "prefixes" && !v6list {
			if err := dec.Decode(&raw); err != nil { // syncToken, createDate
				return nil, fail(err)
			}
			continue
		}
		lists++
		if tok, err := dec.Token(); err != nil {
			return nil, fail(err)
		} else if tok != json.Delim('[') {
			return nil, failAt(dec.InputOffset(), "%s is not an array", key)
		}
		for dec.More() {
			if err := dec.Decode(&raw); err != nil {
				return nil, fail(err)
			}
			start := dec.InputOffset() - int64(len(raw))
			var e awsPrefix
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, failAt(start, "%s entry: %v", key, err)
			}
			text := e.IPPrefix
			if v6list {
				text = e.IPv6Prefix
			}
			p, err := netip.ParsePrefix(text)
			if err != nil || p.Addr().Is4() == v6list {
				return nil, failAt(start, "%s entry: bad prefix %.80q", key, text)
			}
			p = normPrefix(p)
			s := spanOf(p, uint32(len(rs.ranges)))
			// Of the entries for one block, the specific service wins,
			// then the first listed.
			if strings.EqualFold(e.Service, "AMAZON") {
				s.rank = 1
			}
			if p.Addr().Is6() {
				s.order = uint32(len(v6))
				v6 = append(v6, s)
			} else {
				s.order = uint32(len(v4))
				v4 = append(v4, s)
			}
			rs.ranges = append(rs.ranges, Range{
				Provider:           "aws",
				Prefix:             p,
				Region:             e.Region,
				Service:            e.Service,
				NetworkBorderGroup: e.NetworkBorderGroup,
			})
		}
		if _, err := dec.Token(); err != nil {
			return nil, fail(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, failAt(dec.InputOffset(), "data after the ranges")
	}
	if lists == 0 {
		return nil, errors.New("aws ip ranges: no prefixes or ipv6_prefixes: not an ip-ranges.json")
	}
	rs.v4, rs.v6 = v4, v6
	rs.table, _ = buildPrefixTable(v4, v6)
	rs.names = make([]string, len(rs.ranges))
	for i, r := range rs.ranges {
		rs.names[i] = r.Name()
	}
	return rs, nil
}

// MergeRanges returns the ranges of several files as one, as each
// partition of AWS (aws, aws-cn, aws-us-gov) publishes its own. Of the
// entries for one block, the specific service wins, then the first
// listed, the files taken in order.
func MergeRanges(rss ...*Ranges) *Ranges {
	if len(rss) == 1 {
		return rss[0]
	}
	out := &Ranges{}
	for _, rs := range rss {
		base := uint32(len(out.ranges))
		for _, l := range []struct {
			from []span
			to   *[]span
		}{{rs.v4, &out.v4}, {rs.v6, &out.v6}} {
			order := uint32(len(*l.to))
			for _, sp := range l.from {
				sp.label += base
				sp.order += order
				*l.to = append(*l.to, sp)
			}
		}
		out.ranges = append(out.ranges, rs.ranges...)
		out.names = append(out.names, rs.names...)
	}
	out.table, _ = buildPrefixTable(out.v4, out.v6)
	return out
}

// Name names the range as an event's src_cloud and dst_cloud hold it:
// aws/EC2/us-east-1.
func (r Range) Name() string { return r.Provider + "/" + r.Service + "/" + r.Region }

// name returns the Name of the range holding addr, made once at load.
func (rs *Ranges) name(addr netip.Addr) (string, bool) {
	if rs == nil {
		return "", false
	}
	if i, ok := rs.table.lookup(addr); ok {
		return rs.names[i], true
	}
	return "", false
}

// Lookup returns the most specific Range holding addr. An IPv4-mapped
// IPv6 address is looked up as its IPv4 address (and a published mapped
// prefix, ::ffff:a.b.c.d/n, was loaded as the IPv4 prefix it stands for).
func (rs *Ranges) Lookup(addr netip.Addr) (Range, bool) {
	if rs == nil {
		return Range{}, false
	}
	if i, ok := rs.table.lookup(addr); ok {
		return rs.ranges[i], true
	}
	return Range{}, false
}

// Len returns the number of entries loaded, counting a block listed under
// two services twice.
func (rs *Ranges) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.ranges)
}

// normPrefix masks a prefix, and makes one of IPv4-mapped IPv6 addresses
// the IPv4 prefix it stands for: lookups take a mapped address as its IPv4
// address, so only an IPv4 prefix can match it. (An IPv6 prefix shorter
// than /96 that holds mapped addresses matches only its other addresses.)
func normPrefix(p netip.Prefix) netip.Prefix {
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// u128 is an IPv6 address as a number; IPv4 addresses use lo alone.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) add1() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func (a u128) sub1() u128 {
	if a.lo == 0 {
		return u128{a.hi - 1, ^uint64(0)}
	}
	return u128{a.hi, a.lo - 1}
}

var u128Max = u128{^uint64(0), ^uint64(0)}

// A span is the range of addresses of a listed network.
type span struct {
	lo, hi u128
	rank   uint32 // among spans of one network, the lower rank wins
	order  uint32 // then the earlier
	label  uint32
}

// spanOf returns the span of a masked prefix.
func spanOf(p netip.Prefix, label uint32) span {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		lo := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		hi := lo | (uint64(1)<<(32-p.Bits()) - 1)
		return span{lo: u128{0, lo}, hi: u128{0, hi}, label: label}
	}
	lo := addr128(a)
	hi := lo
	if host := 128 - p.Bits(); host >= 64 {
		hi.lo = ^uint64(0)
		hi.hi |= uint64(1)<<(host-64) - 1
	} else {
		hi.lo |= uint64(1)<<host - 1
	}
	return span{lo: lo, hi: hi, label: label}
}

func addr128(a netip.Addr) u128 {
	b := a.As16()
	var x u128
	for i := range 8 {
		x.hi = x.hi<<8 | uint64(b[i])
		x.lo = x.lo<<8 | uint64(b[8+i])
	}
	return x
}

// A segment is a run of addresses with one label, in a flattened table.
type segment struct {
	lo, hi u128
	label  uint32
}

// flatten turns spans of networks, which nest but never partly overlap,
// into sorted disjoint segments, each labelled by the most specific span
// covering it; of spans of one network, the first by rank and order wins.
// It also returns the number of distinct networks.
func flatten(spans []span) ([]segment, int) {
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.lo != b.lo:
			return cmpBool(a.lo.less(b.lo))
		case a.hi != b.hi:
			return cmpBool(b.hi.less(a.hi)) // the wider first: it contains the other
		case a.rank != b.rank:
			return cmpBool(a.rank < b.rank)
		}
		return cmpBool(a.order < b.order)
	})
	var out []segment
	emit := func(lo, hi u128, label uint32) {
		if hi.less(lo) {
			return
		}
		if n := len(out); n > 0 && out[n-1].label == label && out[n-1].hi != u128Max && out[n-1].hi.add1() == lo {
			out[n-1].hi = hi
			return
		}
		out = append(out, segment{lo, hi, label})
	}
	var stack []span // the spans containing pos, innermost last
	var pos u128     // the first address not yet emitted
	distinct := 0
	for _, s := range spans {
		if n := len(stack); n > 0 && stack[n-1].lo == s.lo && stack[n-1].hi == s.hi {
			continue // the same network again: the first wins
		}
		distinct++
		for len(stack) > 0 && stack[len(stack)-1].hi.less(s.lo) {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			emit(pos, top.hi, top.label)
			pos = top.hi.add1() // top.hi < s.lo: no overflow
		}
		if len(stack) > 0 && pos.less(s.lo) {
			emit(pos, s.lo.sub1(), stack[len(stack)-1].label)
		}
		pos = s.lo
		stack = append(stack, s)
	}
	done := false
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !done {
			emit(pos, top.hi, top.label)
		}
		if top.hi == u128Max {
			done = true // the spans around it end there too
		} else {
			pos = top.hi.add1()
		}
	}
	return out, distinct
}

func cmpBool(less bool) int {
	if less {
		return -1
	}
	return 1
}

// prefixTable finds the label of an address among flattened networks by
// binary search: sorted arrays of 4-byte starts keep a million IPv4
// networks in a few megabytes, and an index on the top 16 bits cuts each
// search to the networks sharing them.
type prefixTable struct {
	v4start, v4end []uint32
	v4label        []uint32
	v4index        []uint32 // v4index[x>>16] is the first segment starting at or after x&^0xffff; 65537 long
	v6start, v6end []u128
	v6label        []uint32
}

// buildPrefixTable builds a table of IPv4 and IPv6 spans, and returns it
// with the number of distinct networks.
func buildPrefixTable(v4, v6 []span) (prefixTable, int) {
	var t prefixTable
	seg4, n4 := flatten(v4)
	seg6, n6 := flatten(v6)
	t.v4start = make([]uint32, len(seg4))
	t.v4end = make([]uint32, len(seg4))
	t.v4label = make([]uint32, len(seg4))
	for i, s := range seg4 {
		t.v4start[i], t.v4end[i], t.v4label[i] = uint32(s.lo.lo), uint32(s.hi.lo), s.label
	}
	t.v4index = make([]uint32, 1<<16+1)
	i := 0
	for hi16 := range 1 << 16 {
		for i < len(t.v4start) && t.v4start[i]>>16 < uint32(hi16) {
			i++
		}
		t.v4index[hi16] = uint32(i)
	}
	t.v4index[1<<16] = uint32(len(t.v4start))
	t.v6start = make([]u128, len(seg6))
	t.v6end = make([]u128, len(seg6))
	t.v6label = make([]uint32, len(seg6))
	for i, s := range seg6 {
		t.v6start[i], t.v6end[i], t.v6label[i] = s.lo, s.hi, s.label
	}
	return t, n4 + n6
}

// lookup returns the label of the segment holding addr.
func (t *prefixTable) lookup(addr netip.Addr) (uint32, bool) {
	if !addr.IsValid() {
		return 0, false
	}
	addr = addr.Unmap()
	if addr.Is4() {
		if len(t.v4start) == 0 {
			return 0, false
		}
		b := addr.As4()
		x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		// Find the first segment starting after x, among those whose
		// start shares x's top 16 bits; the one before it may hold x.
		lo, hi := t.v4index[x>>16], t.v4index[x>>16+1]
		for lo < hi {
			m := lo + (hi-lo)/2
			if t.v4start[m] <= x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo == 0 || t.v4end[lo-1] < x {
			return 0, false
		}
		return t.v4label[lo-1], true
	}
	x := addr128(addr)
	lo, hi := 0, len(t.v6start)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !x.less(t.v6start[m]) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 || t.v6end[lo-1].less(x) {
		return 0, false
	}
	return t.v6label[lo-1], true
}
