package detect

import (
	"bytes"
	"net/netip"

	"github.com/vigilsec/vigil/event"
)

// A fieldRef is a field a rule names, resolved for one source: a slot of
// the record's values, filled from the document or from the normalized
// event.
type fieldRef struct {
	name string
	slot int
	norm normField // nil for a document field
	// addr, for a normalized address field, returns the address, whose
	// text is only rendered when a rule compares it as text.
	addr func(*event.Event) netip.Addr
	// known, for a document field, returns its value from the event
	// when the parser copied it there unchanged, or "" when the
	// document must be read: most events then need no reading at all.
	known normField
}

// A val is one value of a field in a record: its text (unescaped) and,
// once asked for, its lower-case form, as offsets into the record's
// arena.
type val struct {
	off, end   int
	loff, lend int // lend < 0 until lower-cased
	null       bool
	// addr is the value read as an IP address, once a cidr test asked:
	// addrState 1 when it is one, 2 when it is not.
	addr      netip.Addr
	addrState uint8
	// unrendered: the value is addr, whose text is not in the arena yet.
	unrendered bool
}

// A record is the state of matching one event: the values of the fields
// the rules name. Document fields are read lazily, the document's
// top-level members only as far as the fields asked for need, and each
// member at most once.
type record struct {
	e       *event.Event
	src     *sourceRules
	ext     *extraction // what the document is read for
	reading bool        // rd was reset for the event
	noDoc   bool        // there is no document field to read
	rd      event.Reader
	onValue func(path int, v event.Value) // r.value, made once
	err     error
	vals    [][]val // by slot
	normed  []bool  // by slot: a normalized field was filled, or a document field from the event
	arena   []byte
	raw     []byte // lower-cased raw text, for keywords
	rawDone bool
}

func (r *record) reset(e *event.Event, src *sourceRules, ext *extraction) {
	r.e, r.src, r.ext, r.reading, r.err, r.rawDone = e, src, ext, false, nil, false
	if cap(r.vals) < src.slots {
		r.vals = make([][]val, src.slots)
		r.normed = make([]bool, src.slots)
	}
	r.vals, r.normed = r.vals[:src.slots], r.normed[:src.slots]
	for i := range r.vals {
		r.vals[i] = r.vals[i][:0]
		r.normed[i] = false
	}
	r.arena = r.arena[:0]
	r.raw = r.raw[:0]
}

// values returns the values of f in the event.
func (r *record) values(f *fieldRef) []val {
	switch {
	case f.norm != nil:
		if !r.normed[f.slot] {
			r.normed[f.slot] = true
			r.normalized(f)
		}
		return r.vals[f.slot]
	case r.normed[f.slot]:
		return r.vals[f.slot]
	case f.known != nil && len(r.vals[f.slot]) == 0:
		if s := f.known(r.e); s != "" {
			r.normed[f.slot] = true
			r.put(f.slot, s)
			return r.vals[f.slot]
		}
	}
	if !r.ext.covers[f.slot] {
		r.widen()
	}
	r.read(f.slot)
	return r.vals[f.slot]
}

// normalized fills the slot of a normalized field.
func (r *record) normalized(f *fieldRef) {
	if f.addr != nil {
		// The text of an IPv4-mapped address is not that of the address
		// a cidr test reads: render it.
		if a := f.addr(r.e); !a.Is4In6() {
			if a.IsValid() {
				r.vals[f.slot] = append(r.vals[f.slot], val{lend: -1, addr: a, addrState: 1, unrendered: true})
			}
			return
		}
	}
	r.put(f.slot, f.norm(r.e))
}

// put adds a value (if not empty) to a slot.
func (r *record) put(slot int, s string) {
	if s != "" {
		off := len(r.arena)
		r.arena = append(r.arena, s...)
		r.vals[slot] = append(r.vals[slot], val{off: off, end: len(r.arena), lend: -1})
	}
}

// widen reads every field of the source, for a field the event's rule
// set does not read (which only a caller outside matching asks for).
func (r *record) widen() {
	for i := range r.vals {
		if !r.normed[i] {
			r.vals[i] = r.vals[i][:0]
		}
	}
	r.ext, r.reading = r.src.noAction.ext, false
}

// read reads the document as far as the values of a slot need.
func (r *record) read(slot int) {
	if !r.reading {
		r.reading = true
		doc := r.e.Document()
		// Fields are in an object: there is nothing to read in any other
		// document.
		d := bytes.TrimLeft(doc, " \t\r\n")
		r.noDoc = r.ext.paths == nil || len(d) == 0 || d[0] != '{'
		if r.noDoc {
			return
		}
		if r.onValue == nil {
			r.onValue = r.value
		}
		r.rd.Reset(r.ext.paths, doc, r.onValue)
	}
	if r.noDoc || r.err != nil {
		return
	}
	if !r.src.partial {
		r.err = r.rd.ReadAll()
		return
	}
	for _, path := range r.ext.slotPaths[slot] {
		if err := r.rd.Read(path); err != nil {
			r.err = err
			return
		}
	}
}

// value keeps a value the reader found.
func (r *record) value(path int, v event.Value) {
	slot := r.ext.pathSlot[path]
	if r.normed[slot] {
		return // known from the event already
	}
	off := len(r.arena)
	r.arena = v.AppendStr(r.arena)
	r.vals[slot] = append(r.vals[slot], val{off: off, end: len(r.arena), lend: -1, null: v.Kind == event.KindNull})
}

func (r *record) text(v *val) []byte {
	if v.unrendered {
		v.unrendered = false
		v.off = len(r.arena)
		r.arena = v.addr.AppendTo(r.arena)
		v.end = len(r.arena)
	}
	return r.arena[v.off:v.end]
}

// addr returns the value as an IP address (IPv4-mapped IPv6 unmapped),
// parsed once for all the cidr tests of a rule set.
func (r *record) addr(v *val) (netip.Addr, bool) {
	if v.addrState == 0 {
		v.addrState = 2
		if a, err := netip.ParseAddr(string(r.text(v))); err == nil {
			v.addr, v.addrState = a.Unmap(), 1
		}
	}
	return v.addr, v.addrState == 1
}

func (r *record) lower(v *val) []byte {
	if v.lend < 0 {
		t := r.text(v)
		if !hasUpper(t) {
			v.loff, v.lend = v.off, v.end
		} else {
			v.loff = len(r.arena)
			r.arena = appendLower(r.arena, r.arena[v.off:v.end])
			v.lend = len(r.arena)
		}
	}
	return r.arena[v.loff:v.lend]
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}

// rawLower is the event's raw text lower-cased, which keywords search.
func (r *record) rawLower() []byte {
	if !r.rawDone {
		r.rawDone = true
		r.raw = appendLower(r.raw, r.e.Raw)
	}
	return r.raw
}

// A node is a compiled condition.
type node interface {
	eval(r *record) bool
}

type (
	andNode []node
	orNode  []node
	notNode struct{ x node }
	// constNode is a condition known when the rule is compiled.
	constNode bool
)

func (n andNode) eval(r *record) bool {
	for _, x := range n {
		if !x.eval(r) {
			return false
		}
	}
	return true
}

func (n orNode) eval(r *record) bool {
	for _, x := range n {
		if x.eval(r) {
			return true
		}
	}
	return false
}

func (n notNode) eval(r *record) bool { return !n.x.eval(r) }

func (n constNode) eval(*record) bool { return bool(n) }

// fieldNode is "field|modifiers: values".
type fieldNode struct {
	f     *fieldRef
	tests []valueTest
	all   bool // every test must match a value (the all modifier)
	neq   bool // no test may match any value
	// missing is the result for a field the event does not have: true
	// when a value is null, or for neq.
	missing bool
}

func (n *fieldNode) eval(r *record) bool {
	vals := r.values(n.f)
	if len(vals) == 0 {
		return n.missing
	}
	if n.all {
		for _, t := range n.tests {
			if !anyValue(r, vals, t) {
				return false
			}
		}
		return true
	}
	for _, t := range n.tests {
		if anyValue(r, vals, t) {
			return !n.neq
		}
	}
	return n.neq
}

func anyValue(r *record, vals []val, t valueTest) bool {
	for i := range vals {
		if t.test(r, &vals[i]) {
			return true
		}
	}
	return false
}

// existsNode is "field|exists: true/false".
type existsNode struct {
	f    *fieldRef
	want bool
}

func (n *existsNode) eval(r *record) bool { return (len(r.values(n.f)) > 0) == n.want }

// keywordNode searches the event's raw text for keywords: any of them,
// or with all, every one.
type keywordNode struct {
	pats []pattern // substring patterns, lower-cased unless cased
	all  bool
}

func (n *keywordNode) eval(r *record) bool {
	var text []byte
	for i := range n.pats {
		p := &n.pats[i]
		if p.cased {
			text = r.e.Raw
		} else {
			text = r.rawLower()
		}
		ok := p.match(text) || p.shape == shapeContains && jsonEscapedMatch(p, text)
		if ok && !n.all {
			return true
		}
		if !ok && n.all {
			return false
		}
	}
	return n.all
}

// jsonEscapedMatch finds a keyword in a JSON document, in which its
// quotes and backslashes are escaped.
func jsonEscapedMatch(p *pattern, text []byte) bool {
	if !bytes.ContainsAny(p.s, "\"\\") {
		return false
	}
	esc := bytes.ReplaceAll(p.s, []byte(`\`), []byte(`\\`))
	esc = bytes.ReplaceAll(esc, []byte(`"`), []byte(`\"`))
	return bytes.Contains(text, esc)
}
