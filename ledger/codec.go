package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/vigilsec/vigil/event"
)

// The codec's version is the first byte of every encoded event. A change
// to the encoding, including a new field in event.Event, needs a new
// version and a decoder that still reads the old ones: records are kept
// for years.
//
// Version 2 adds the event's Context after version 1's fields. An event
// without one is still written as version 1, so that its bytes, and its
// leaf hash, are what they were before enrichment existed.
const (
	codecV1 = 1
	codecV2 = 2 // version 1, then the Context
)

// Time tags. UnixNano covers 1678–2262; anything outside that range is
// still kept exactly, as seconds and nanoseconds, rather than wrapped.
const (
	timeZero = 0
	timeNano = 1
	timeWide = 2
)

// EncodeEvent returns the ledger encoding of every field of e except Seq,
// which is the record's index in the ledger and so not part of its
// content. The encoding is deterministic: equal events give equal bytes,
// so equal events give equal leaf hashes.
func EncodeEvent(e *event.Event) []byte {
	return appendEvent(make([]byte, 0, encodedSize(e)), e)
}

// encodedSize is at least the length of e's encoding.
func encodedSize(e *event.Event) int {
	// Fixed fields, with room for every length prefix.
	n := 128 + 10*(len(e.Resources)+25)
	for _, s := range []string{
		e.Tenant, e.Source, e.Class, e.ID, e.Cloud.Provider, e.Cloud.Account, e.Cloud.Region, e.Environment,
		e.Actor.ID, e.Actor.Type, e.Actor.Name, e.Session.ID, e.Session.Origin,
		e.Host, e.UserAgent, e.Service, e.Action, e.Outcome.Result, e.Outcome.Code, e.Message, e.Origin,
	} {
		n += len(s)
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	n += len(e.SrcIP.Zone()) + len(e.DstIP.Zone()) + len(e.Raw) + len(e.Doc)
	if c := &e.Context; !c.IsZero() {
		n += 64 + len(c.Team) + placeSize(&c.Src) + placeSize(&c.Dst)
		for _, h := range c.Intel {
			n += 15 + len(h.List) + len(h.Indicator) + len(h.Type)
		}
	}
	return n
}

func placeSize(p *event.Place) int {
	return len(p.Asset) + len(p.Owner) + len(p.Country) + len(p.City) + len(p.ASOrg) + len(p.Cloud)
}

// appendEvent appends the encoding of e to b.
func appendEvent(b []byte, e *event.Event) []byte {
	withContext := !e.Context.IsZero()
	if withContext {
		b = append(b, codecV2)
	} else {
		b = append(b, codecV1)
	}
	b = appendTime(b, e.Time)
	b = appendTime(b, e.Received)
	b = appendBool(b, e.Skewed)
	for _, s := range []string{
		e.Tenant, e.Source, e.Class, e.ID,
		e.Cloud.Provider, e.Cloud.Account, e.Cloud.Region,
		e.Environment,
		e.Actor.ID, e.Actor.Type, e.Actor.Name,
		e.Session.ID, e.Session.Origin,
	} {
		b = appendString(b, s)
	}
	b = appendAddr(b, e.SrcIP)
	b = appendAddr(b, e.DstIP)
	b = binary.BigEndian.AppendUint16(b, e.SrcPort)
	b = binary.BigEndian.AppendUint16(b, e.DstPort)
	for _, s := range []string{e.Host, e.UserAgent, e.Service, e.Action} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Resources)))
	for _, s := range e.Resources {
		b = appendString(b, s)
	}
	for _, s := range []string{e.Outcome.Result, e.Outcome.Code, e.Message, e.Origin} {
		b = appendString(b, s)
	}
	b = appendBytes(b, e.Raw)
	// Doc's nil-ness carries meaning (nil means "Raw is the document"),
	// so it gets a presence flag; Raw's does not.
	b = appendBool(b, e.Doc != nil)
	if e.Doc != nil {
		b = appendBytes(b, e.Doc)
	}
	if withContext {
		b = appendContext(b, &e.Context)
	}
	return b
}

func appendContext(b []byte, c *event.Context) []byte {
	for _, p := range []*event.Place{&c.Src, &c.Dst} {
		for _, s := range []string{p.Asset, p.Owner, p.Country, p.City} {
			b = appendString(b, s)
		}
		b = binary.AppendUvarint(b, uint64(p.ASN))
		b = appendString(b, p.ASOrg)
		b = appendString(b, p.Cloud)
	}
	b = appendString(b, c.Team)
	b = binary.AppendUvarint(b, uint64(len(c.Intel)))
	for _, h := range c.Intel {
		b = appendString(b, h.List)
		b = appendString(b, h.Indicator)
		b = appendString(b, h.Type)
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, timeZero)
	}
	if ns, ok := unixNano(t); ok {
		b = append(b, timeNano)
		return binary.BigEndian.AppendUint64(b, uint64(ns))
	}
	b = append(b, timeWide)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// unixNano is t.UnixNano when that is defined (it is not outside
// 1678–2262, where it silently wraps).
func unixNano(t time.Time) (int64, bool) {
	const minSec, maxSec = math.MinInt64 / int64(time.Second), math.MaxInt64 / int64(time.Second)
	s := t.Unix()
	if s <= minSec || s >= maxSec {
		return 0, false
	}
	return t.UnixNano(), true
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	// MarshalBinary cannot fail: it returns an error only to satisfy
	// encoding.BinaryMarshaler.
	p, _ := a.MarshalBinary()
	return appendBytes(b, p)
}

// errTruncated is returned by DecodeEvent for input that ends early.
var errTruncated = errors.New("truncated")

// DecodeEvent decodes the output of EncodeEvent. It accepts only the
// bytes EncodeEvent produces (minimal varints, no trailing bytes), so a
// decoded event re-encodes to its input. Seq is left zero: the caller
// knows the record's index. The result shares no memory with b.
func DecodeEvent(b []byte) (*event.Event, error) {
	d := decoder{b: b}
	e, err := d.event()
	if err != nil {
		return nil, fmt.Errorf("ledger: decode event at byte %d: %w", d.off, err)
	}
	return e, nil
}

type decoder struct {
	b   []byte
	off int
}

func (d *decoder) event() (*event.Event, error) {
	v, err := d.byte()
	if err != nil {
		return nil, err
	}
	if v != codecV1 && v != codecV2 {
		return nil, fmt.Errorf("unknown encoding version %d", v)
	}
	e := new(event.Event)
	if e.Time, err = d.time(); err != nil {
		return nil, err
	}
	if e.Received, err = d.time(); err != nil {
		return nil, err
	}
	if e.Skewed, err = d.bool(); err != nil {
		return nil, err
	}
	for _, s := range []*string{
		&e.Tenant, &e.Source, &e.Class, &e.ID,
		&e.Cloud.Provider, &e.Cloud.Account, &e.Cloud.Region,
		&e.Environment,
		&e.Actor.ID, &e.Actor.Type, &e.Actor.Name,
		&e.Session.ID, &e.Session.Origin,
	} {
		if *s, err = d.string(); err != nil {
			return nil, err
		}
	}
	if e.SrcIP, err = d.addr(); err != nil {
		return nil, err
	}
	if e.DstIP, err = d.addr(); err != nil {
		return nil, err
	}
	if e.SrcPort, err = d.uint16(); err != nil {
		return nil, err
	}
	if e.DstPort, err = d.uint16(); err != nil {
		return nil, err
	}
	for _, s := range []*string{&e.Host, &e.UserAgent, &e.Service, &e.Action} {
		if *s, err = d.string(); err != nil {
			return nil, err
		}
	}
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	// Every resource takes at least its length byte, which bounds the
	// allocation by the input's size.
	if n > uint64(len(d.b)-d.off) {
		return nil, errTruncated
	}
	if n > 0 {
		e.Resources = make([]string, n)
		for i := range e.Resources {
			if e.Resources[i], err = d.string(); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range []*string{&e.Outcome.Result, &e.Outcome.Code, &e.Message, &e.Origin} {
		if *s, err = d.string(); err != nil {
			return nil, err
		}
	}
	raw, err := d.bytes()
	if err != nil {
		return nil, err
	}
	if len(raw) > 0 {
		e.Raw = raw
	}
	hasDoc, err := d.bool()
	if err != nil {
		return nil, err
	}
	if hasDoc {
		if e.Doc, err = d.bytes(); err != nil {
			return nil, err
		}
	}
	if v == codecV2 {
		if err := d.context(&e.Context); err != nil {
			return nil, err
		}
		if e.Context.IsZero() {
			// EncodeEvent writes such an event as version 1.
			return nil, errors.New("version 2 event with an empty context")
		}
	}
	if d.off != len(d.b) {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b)-d.off)
	}
	return e, nil
}

func (d *decoder) context(c *event.Context) error {
	var err error
	for _, p := range []*event.Place{&c.Src, &c.Dst} {
		for _, s := range []*string{&p.Asset, &p.Owner, &p.Country, &p.City} {
			if *s, err = d.string(); err != nil {
				return err
			}
		}
		asn, err := d.uvarint()
		if err != nil {
			return err
		}
		if asn > math.MaxUint32 {
			return fmt.Errorf("AS number %d out of range", asn)
		}
		p.ASN = uint32(asn)
		for _, s := range []*string{&p.ASOrg, &p.Cloud} {
			if *s, err = d.string(); err != nil {
				return err
			}
		}
	}
	if c.Team, err = d.string(); err != nil {
		return err
	}
	n, err := d.uvarint()
	if err != nil {
		return err
	}
	// Every hit takes at least three bytes.
	if n > uint64(len(d.b)-d.off)/3 {
		return errTruncated
	}
	if n > 0 {
		c.Intel = make([]event.IntelHit, n)
		for i := range c.Intel {
			h := &c.Intel[i]
			for _, s := range []*string{&h.List, &h.Indicator, &h.Type} {
				if *s, err = d.string(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.b) {
		return 0, errTruncated
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

func (d *decoder) bool() (bool, error) {
	c, err := d.byte()
	if err != nil {
		return false, err
	}
	if c > 1 {
		return false, fmt.Errorf("bad boolean %d", c)
	}
	return c == 1, nil
}

func (d *decoder) fixed(n int) ([]byte, error) {
	if len(d.b)-d.off < n {
		return nil, errTruncated
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *decoder) uint16() (uint16, error) {
	p, err := d.fixed(2)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(p), nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b[d.off:])
	if n == 0 {
		return 0, errTruncated
	}
	// A negative n is an overflow; a longer-than-minimal encoding would
	// decode fine but re-encode differently.
	if n < 0 || n != uvarintLen(v) {
		return 0, errors.New("bad varint")
	}
	d.off += n
	return v, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, errTruncated
	}
	p, _ := d.fixed(int(n))
	return append([]byte{}, p...), nil
}

func (d *decoder) string() (string, error) {
	n, err := d.uvarint()
	if err != nil {
		return "", err
	}
	if n > uint64(len(d.b)-d.off) {
		return "", errTruncated
	}
	p, _ := d.fixed(int(n))
	return string(p), nil
}

func (d *decoder) time() (time.Time, error) {
	tag, err := d.byte()
	if err != nil {
		return time.Time{}, err
	}
	switch tag {
	case timeZero:
		return time.Time{}, nil
	case timeNano:
		p, err := d.fixed(8)
		if err != nil {
			return time.Time{}, err
		}
		t := time.Unix(0, int64(binary.BigEndian.Uint64(p))).UTC()
		if _, ok := unixNano(t); !ok || t.IsZero() {
			return time.Time{}, errors.New("time out of UnixNano range")
		}
		return t, nil
	case timeWide:
		p, err := d.fixed(12)
		if err != nil {
			return time.Time{}, err
		}
		sec, nsec := int64(binary.BigEndian.Uint64(p)), binary.BigEndian.Uint32(p[8:])
		if nsec >= 1e9 {
			return time.Time{}, errors.New("bad nanoseconds")
		}
		t := time.Unix(sec, int64(nsec)).UTC()
		if _, ok := unixNano(t); ok || t.IsZero() {
			return time.Time{}, errors.New("wide time within UnixNano range")
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("bad time tag %d", tag)
}

func (d *decoder) addr() (netip.Addr, error) {
	n, err := d.uvarint()
	if err != nil {
		return netip.Addr{}, err
	}
	if n > uint64(len(d.b)-d.off) {
		return netip.Addr{}, errTruncated
	}
	p, _ := d.fixed(int(n))
	var a netip.Addr
	if err := a.UnmarshalBinary(p); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}
