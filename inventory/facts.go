package inventory

import (
	"hash/maphash"
	"math"
	"time"
	"unsafe"
)

// This file is how an Inventory keeps its facts. There may be millions
// (a CMDB snapshot, years of audit logs), kept for as long as vigil
// runs, beside an ingest that allocates fast. Held as Fact values, each
// with its own strings and pointers to it from every index, they cost
// the garbage collector a trace of every one at every cycle, which
// measured at a million facts slowed ingest by half. So facts are
// records of numbers: texts by their number in a table that holds each
// once, in one byte array; assets and facts by their index; the lists an
// index keeps, linked through the records. Nothing in them is a pointer.

// none ends a linked list.
const none = -1

// openTo is the To of a fact that still holds.
const openTo = math.MaxInt64

// A strTable holds each distinct text once and names it by a number.
type strTable struct {
	data  []byte
	ends  []uint32 // text i is data[ends[i-1]:ends[i]] (from 0 for i = 0)
	slots []uint32 // open addressing by hash: 0 is empty, else id+1
	seed  maphash.Seed
}

// id returns the number of s, adding it if it is new.
func (t *strTable) id(s string) uint32 {
	if t.slots == nil {
		t.seed, t.slots = maphash.MakeSeed(), make([]uint32, 1024)
	}
	slot := t.slot(s)
	if v := t.slots[slot]; v != 0 {
		return v - 1
	}
	t.data = append(t.data, s...)
	t.ends = append(t.ends, uint32(len(t.data)))
	id := uint32(len(t.ends) - 1)
	t.slots[slot] = id + 1
	if 2*len(t.ends) > len(t.slots) {
		t.grow()
	}
	return id
}

// find returns the number of s, if the table has it.
func (t *strTable) find(s string) (uint32, bool) {
	if t.slots == nil {
		return 0, false
	}
	v := t.slots[t.slot(s)]
	return v - 1, v != 0
}

// slot returns the slot that holds s, or the empty one it would go in.
func (t *strTable) slot(s string) int {
	mask := len(t.slots) - 1
	for i := int(maphash.String(t.seed, s)) & mask; ; i = (i + 1) & mask {
		v := t.slots[i]
		if v == 0 || t.str(v-1) == s {
			return i
		}
	}
}

func (t *strTable) grow() {
	old := t.slots
	t.slots = make([]uint32, 2*len(old))
	mask := len(t.slots) - 1
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := int(maphash.String(t.seed, t.str(v-1))) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = v
	}
}

// str returns text id. It shares the table's bytes, which are never
// written again once added (a growing array is copied, and the old one
// stays as it was for the strings that point into it), so returning it
// costs no copy.
func (t *strTable) str(id uint32) string {
	start := uint32(0)
	if id > 0 {
		start = t.ends[id-1]
	}
	end := t.ends[id]
	if start == end {
		return ""
	}
	return unsafe.String(&t.data[start], end-start)
}

// An assetRec is an asset, with the ends of the list of its facts.
type assetRec struct {
	kind, id, provider, account, region uint32
	first, last                         int32 // its facts, in the order added
	nextSameID                          int32 // the next asset whose id is the same but for case
	changes                             uint32
}

// assetKey names an asset as the inventory files it: provider, kind, id.
type assetKey [3]uint32

// A factRec is a Fact.
type factRec struct {
	from, to            int64 // Unix nanoseconds; to is openTo while it holds
	asset               int32
	attr, value, source uint32
	nextOfAsset         int32
	nextByValue         int32 // newer to older
	nextByAddr          int32 // newer to older
}

func (f *factRec) holds(t int64) bool { return f.from <= t && t < f.to }

func (f *factRec) open() bool { return f.to == openTo }

// nanos is t in Unix nanoseconds, clamped to the years 1678–2262 that
// they cover.
func nanos(t time.Time) int64 {
	const minSec, maxSec = math.MinInt64/int64(time.Second) + 1, math.MaxInt64/int64(time.Second) - 1
	switch s := t.Unix(); {
	case s <= minSec:
		return math.MinInt64 + 1
	case s >= maxSec:
		return openTo - 1
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
