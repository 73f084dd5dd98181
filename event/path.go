package event

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Detection rules name the fields of the original log document by dotted
// path (eventName, userIdentity.sessionContext.sessionIssuer.type), and a
// rule set names a few dozen of them. Decoding each document into a map
// to look them up would cost far more than the rules themselves, so
// Paths compiles the set into a trie and Extract walks the document's
// bytes once, following only the members some path goes into and
// skipping the rest without decoding it.

// maxDepth bounds the nesting of arrays and objects that Extract accepts.
// It is encoding/json's bound, so that a document the standard library
// accepts is never refused here for its depth, and a hostile one is
// refused rather than followed without end.
const maxDepth = 10000

// A Kind is the JSON type of an extracted value.
type Kind uint8

// The kinds of values.
const (
	KindString Kind = iota + 1
	KindNumber
	KindBool   // Raw is "true" or "false"
	KindNull   // Raw is "null"
	KindObject // Raw is the whole object's JSON text
	// KindArray is reported only for an empty array, with Raw "[]": the
	// elements of a non-empty array are reported one by one instead, so
	// a rule can still tell a field that is present but empty from one
	// that is missing.
	KindArray
)

// A Value is one value found at a path.
type Value struct {
	Kind Kind
	// Raw is the value's JSON text. For a string it is the text between
	// the quotes, still escaped; Str and AppendStr decode it.
	Raw []byte
}

// emptyArray is the Raw of every KindArray value. It is cut to its length
// so that appending to it cannot write into the shared array.
var emptyArray = []byte("[]")[:2:2]

// Str returns the value as text: a string with its JSON escapes decoded,
// and any other value as its JSON text. Invalid UTF-8 in a string is kept
// byte for byte rather than replaced, so that a rule looking for a
// malformed byte sequence can still see it; an escaped surrogate that is
// not part of a pair becomes U+FFFD, as in encoding/json.
func (v Value) Str() string {
	if v.Kind == KindString && bytes.IndexByte(v.Raw, '\\') >= 0 {
		return string(appendUnescaped(make([]byte, 0, len(v.Raw)), v.Raw))
	}
	return string(v.Raw)
}

// AppendStr appends the text Str would return to dst and returns the
// extended buffer. Callers that lower-case or compare the text can reuse
// one buffer and so avoid allocating a string per value.
func (v Value) AppendStr(dst []byte) []byte {
	if v.Kind == KindString {
		return appendUnescaped(dst, v.Raw)
	}
	return append(dst, v.Raw...)
}

// Paths is a set of dotted paths compiled for extraction. It is not
// changed by Extract, so one Paths may be used by many goroutines at once.
type Paths struct {
	root pathNode
	n    int
	fold bool
	tops []int // by path: the index of its first segment among root's children
}

// A pathNode is one segment of the trie of compiled paths: the paths that
// end here, and the segments that follow.
type pathNode struct {
	seg      string // the segment as first spelled
	ends     []int  // indices of the paths that end here
	children []child
	top      int // for a first segment, its index among root's children

	// index finds a child by its length and first eight bytes: an
	// open-addressed hash table of child indices plus one (0 is empty),
	// made by CompilePaths for nodes with enough children to gain by it.
	// With fold it holds the ASCII segments only, lower-cased, and
	// unicode the others, which only equalFold can compare.
	index   []int32
	shift   uint8
	unicode []int32
}

// A child is a segment that follows, with what find compares first: its
// length and its first sixteen bytes as two words (lower-cased when the
// paths fold case), so that most keys are told apart by comparing
// integers, and matched without a call to compare memory.
type child struct {
	n      int
	w1, w2 uint64
	ascii  bool // the segment is all ASCII, so folding cannot change its length
	node   *pathNode
}

// minIndexed is the number of children from which a hash lookup beats
// comparing each in turn.
const minIndexed = 5

// CompilePaths compiles paths for Extract.
//
// A path is a sequence of object keys separated by dots; a dot always
// separates segments, so a key that itself contains a dot cannot be
// named. An empty path, or one with an empty segment ("a..b", ".a",
// "a."), is an error naming the path.
//
// With fold, keys match segments case-insensitively, under Unicode simple
// case folding as in strings.EqualFold: sources disagree on spelling
// (Azure logs write both resultType and ResultType), and a rule should
// not care. Duplicate paths are allowed; each keeps its own index.
func CompilePaths(paths []string, fold bool) (*Paths, error) {
	p := &Paths{n: len(paths), fold: fold}
	firsts := make([]*pathNode, len(paths))
	for i, path := range paths {
		if path == "" {
			return nil, fmt.Errorf("event: path %d is empty", i)
		}
		n := &p.root
		for seg := range strings.SplitSeq(path, ".") {
			if seg == "" {
				return nil, fmt.Errorf("event: path %q has an empty segment", path)
			}
			n = n.child(seg, fold)
			if firsts[i] == nil {
				firsts[i] = n
			}
		}
		n.ends = append(n.ends, i)
	}
	for i, c := range p.root.children {
		c.node.top = i
	}
	p.tops = make([]int, len(paths))
	for i, n := range firsts {
		p.tops[i] = n.top
	}
	p.root.makeIndex(fold)
	return p, nil
}

// child returns n's child for seg, adding it if there is none. With fold,
// segments that fold to the same text share one child, so that a key
// matches at most one child and each member's value is read only once.
func (n *pathNode) child(seg string, fold bool) *pathNode {
	for _, c := range n.children {
		if c.node.seg == seg || fold && strings.EqualFold(c.node.seg, seg) {
			return c.node
		}
	}
	b := []byte(seg)
	c := child{n: len(seg), ascii: isASCII(b), node: &pathNode{seg: seg}}
	c.w1, c.w2 = keyWords(b, 0, len(b))
	if fold && c.ascii {
		c.w1, c.w2 = lowerWord(c.w1), lowerWord(c.w2)
	}
	n.children = append(n.children, c)
	return c.node
}

// makeIndex makes the lookup tables of n and of the nodes below it.
func (n *pathNode) makeIndex(fold bool) {
	for _, c := range n.children {
		c.node.makeIndex(fold)
	}
	n.unicode = nil
	for i, c := range n.children {
		if fold && !c.ascii {
			n.unicode = append(n.unicode, int32(i))
		}
	}
	if len(n.children) < minIndexed {
		return
	}
	size := 8
	for size < 2*len(n.children) {
		size *= 2
	}
	n.index = make([]int32, size)
	n.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	for i, c := range n.children {
		if fold && !c.ascii {
			continue
		}
		h := hashKey(c.w1, c.n) >> n.shift
		for n.index[h] != 0 {
			h = (h + 1) & uint64(size-1)
		}
		n.index[h] = int32(i + 1)
	}
}

func hashKey(w uint64, n int) uint64 {
	return (w ^ uint64(n)) * 0x9e3779b97f4a7c15
}

// find returns the child of n that key matches, or nil. w1 and w2 are
// the key's keyWords.
func (n *pathNode) find(key []byte, w1, w2 uint64, fold bool) *pathNode {
	if fold {
		return n.findFold(key, w1, w2)
	}
	if n.index == nil {
		for i := range n.children {
			if c := &n.children[i]; c.matches(key, w1, w2) {
				return c.node
			}
		}
		return nil
	}
	mask := uint64(len(n.index) - 1)
	for h := hashKey(w1, len(key)) >> n.shift; ; h = (h + 1) & mask {
		k := n.index[h]
		if k == 0 {
			return nil
		}
		if c := &n.children[k-1]; c.matches(key, w1, w2) {
			return c.node
		}
	}
}

// matches reports whether key, whose keyWords are w1 and w2, is c's
// segment.
func (c *child) matches(key []byte, w1, w2 uint64) bool {
	return c.w1 == w1 && c.n == len(key) && c.w2 == w2 && (c.n <= 16 || string(key[16:]) == c.node.seg[16:])
}

// findFold is find for paths that fold case.
func (n *pathNode) findFold(key []byte, w1, w2 uint64) *pathNode {
	if !isASCII(key) {
		for i := range n.children {
			if c := &n.children[i]; equalFold(key, c.node.seg) {
				return c.node
			}
		}
		return nil
	}
	// An ASCII key can fold to an ASCII segment only if the two are of
	// one length and equal once lower-cased.
	w1, w2 = lowerWord(w1), lowerWord(w2)
	match := func(c *child) bool {
		return c.w1 == w1 && c.n == len(key) && c.w2 == w2 && (c.n <= 16 || equalFold(key[16:], c.node.seg[16:]))
	}
	if n.index == nil {
		for i := range n.children {
			c := &n.children[i]
			if c.ascii && match(c) || !c.ascii && equalFold(key, c.node.seg) {
				return c.node
			}
		}
		return nil
	}
	mask := uint64(len(n.index) - 1)
	for h := hashKey(w1, len(key)) >> n.shift; ; h = (h + 1) & mask {
		k := n.index[h]
		if k == 0 {
			break
		}
		if c := &n.children[k-1]; match(c) {
			return c.node
		}
	}
	for _, i := range n.unicode {
		if c := &n.children[i]; equalFold(key, c.node.seg) {
			return c.node
		}
	}
	return nil
}

// findEscaped is find for a key written with escapes, which must be
// decoded before it can be compared. It is kept apart so that its buffer
// does not weigh on the frames of the recursive descent.
func (n *pathNode) findEscaped(key []byte, fold bool) *pathNode {
	var buf [64]byte
	key = appendUnescaped(buf[:0], key)
	w1, w2 := keyWords(key, 0, len(key))
	return n.find(key, w1, w2, fold)
}

// Len returns the number of paths.
func (p *Paths) Len() int { return p.n }

// Extract scans doc once and calls fn for each value found at one of the
// paths, with the path's index in the slice given to CompilePaths.
//
// The paths follow the convention Sigma rules use for nested and list
// fields. Where a path meets an array before its last segment, the rest
// of the path applies to every element, and so on recursively (arrays of
// arrays of objects included). Where a path ends at an array, fn is called
// once for each element, with the element's own kind (an object as
// KindObject, a nested array flattened in turn); an empty array gives one
// call with KindArray. A path that ends at an object gives the object as
// KindObject. A member whose key appears several times in one object is
// reported each time. For one path, values are reported in document
// order; a path that ends at an object is reported after the paths that
// go into it.
//
// Members that no path goes into are skipped with only their brackets and
// quotes checked, so Extract returns an error, naming the byte offset,
// only for invalid JSON in the parts it had to read, and for nesting
// deeper than 10,000 levels. fn may have been called before the error is
// found. The Raw slices of the values alias doc (but for the "[]" of
// KindArray, which is shared), so they must not be modified, and must be
// copied to be kept after doc is reused.
func (p *Paths) Extract(doc []byte, fn func(path int, v Value)) error {
	x := extractor{doc: doc, fold: p.fold, fn: fn}
	i := skipSpace(doc, 0)
	if i >= len(doc) {
		return x.errEnd()
	}
	var err error
	if len(p.root.children) == 0 {
		i, err = x.skip(i, 0)
	} else {
		i, err = x.value(&p.root, i, 0)
	}
	if err != nil {
		return err
	}
	if i = skipSpace(doc, i); i < len(doc) {
		return x.errChar(i, "after top-level value")
	}
	return nil
}

// A Reader extracts paths from documents lazily: a document's top-level
// members are read one at a time, only as far as the paths asked for
// need. A question about a field near the start of a long record is then
// answered without scanning the rest, and a field the record lacks still
// costs a scan to its end. The values reported, once a document is read
// to its end, are those Extract reports, in the same order.
//
// The one difference: a document with the same top-level key twice has
// the values of the later member reported only if reading gets that
// far, which it does when another path needs a member after it.
//
// The zero Reader is ready for Reset. A Reader is not safe for
// concurrent use.
type Reader struct {
	p     *Paths
	x     extractor
	i     int    // where the next member's key starts
	state uint8  // what is left to read
	seen  []bool // by index among root's children: a member of that key was read
	err   error
}

// What a Reader has left to read.
const (
	readerDone    = iota
	readerMembers // the members of the top-level object from i on
	readerWhole   // a document that is not an object, read whole when asked
)

// Reset makes r read doc, calling fn for each value found at one of p's
// paths as Extract does.
func (r *Reader) Reset(p *Paths, doc []byte, fn func(path int, v Value)) {
	r.p, r.x, r.err = p, extractor{doc: doc, fold: p.fold, fn: fn}, nil
	if n := len(p.root.children); cap(r.seen) < n {
		r.seen = make([]bool, n)
	} else {
		r.seen = r.seen[:n]
		clear(r.seen)
	}
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		r.state = readerWhole
		return
	}
	r.state = readerMembers
	if r.i = skipSpace(doc, i+1); r.i < len(doc) && doc[r.i] == '}' {
		r.finish(r.i + 1)
	}
}

// Read reads the document as far as the values of path need: up to and
// including the first top-level member that path goes into, or to the
// end when there is none. It returns the first error found in what was
// read, for every call after it too: an invalid document is read no
// further.
func (r *Reader) Read(path int) error {
	top := r.p.tops[path]
	for r.state == readerMembers && !r.seen[top] {
		r.next()
	}
	if r.state == readerWhole {
		r.all()
	}
	return r.err
}

// ReadAll reads the rest of the document.
func (r *Reader) ReadAll() error {
	for r.state == readerMembers {
		r.next()
	}
	if r.state == readerWhole {
		r.all()
	}
	return r.err
}

// next reads one top-level member.
func (r *Reader) next() {
	c, i, closed, err := r.x.member(&r.p.root, r.i, 1)
	switch {
	case err != nil:
		r.state, r.err = readerDone, err
	case closed:
		r.finish(i)
	default:
		r.i = i
	}
	if c != nil {
		r.seen[c.top] = true
	}
}

// finish ends the reading at i, past the top-level object, where only
// space may follow.
func (r *Reader) finish(i int) {
	r.state = readerDone
	if i = skipSpace(r.x.doc, i); i < len(r.x.doc) {
		r.err = r.x.errChar(i, "after top-level value")
	}
}

// all reads a document that is not an object, whole, as Extract does.
func (r *Reader) all() {
	r.state = readerDone
	r.err = r.p.Extract(r.x.doc, r.x.fn)
}

// An extractor is the state of one Extract call.
type extractor struct {
	doc  []byte
	fold bool
	fn   func(int, Value)
}

// A syntaxError is invalid JSON and where Extract found it.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return "event: invalid JSON at byte " + strconv.Itoa(e.off) + ": " + e.msg
}

func (x *extractor) errAt(i int, msg string) error {
	return &syntaxError{off: i, msg: msg}
}

func (x *extractor) errEnd() error {
	return &syntaxError{off: len(x.doc), msg: "unexpected end of JSON input"}
}

func (x *extractor) errChar(i int, context string) error {
	if i >= len(x.doc) {
		return x.errEnd()
	}
	return &syntaxError{off: i, msg: fmt.Sprintf("invalid character %q %s", x.doc[i], context)}
}

func (x *extractor) errDepth(i int) error {
	return &syntaxError{off: i, msg: "nesting exceeds " + strconv.Itoa(maxDepth) + " levels"}
}

// emit reports a value at n to every path that ends there.
func (x *extractor) emit(n *pathNode, k Kind, raw []byte) {
	for _, path := range n.ends {
		x.fn(path, Value{Kind: k, Raw: raw})
	}
}

// value reads the value that starts at doc[i], where the paths are at
// node n, and returns the offset just past it. depth is the number of
// arrays and objects that enclose it.
//
// Recursion happens only through objects that some path goes into, so
// its depth is bounded by the longest path, not by the document: nested
// arrays are followed by a loop, and skipped members by another.
func (x *extractor) value(n *pathNode, i, depth int) (int, error) {
	doc := x.doc
	switch doc[i] {
	case '{':
		if depth >= maxDepth {
			return 0, x.errDepth(i)
		}
		start := i
		var err error
		if len(n.children) == 0 {
			i, err = x.skipNested(i, depth)
		} else {
			i, err = x.object(n, i, depth+1)
		}
		if err != nil {
			return 0, err
		}
		x.emit(n, KindObject, doc[start:i])
		return i, nil
	case '[':
		return x.array(n, i, depth)
	case '"':
		if len(n.ends) == 0 {
			return x.skipString(i)
		}
		end := notPlain(doc, i+1)
		if end >= len(doc) || doc[end] != '"' {
			var err error
			if end, _, err = x.scanString(i); err != nil {
				return 0, err
			}
			end--
		}
		x.emit(n, KindString, doc[i+1:end])
		return end + 1, nil
	}
	end, k, err := x.scalar(i)
	if err != nil {
		return 0, err
	}
	x.emit(n, k, doc[i:end])
	return end, nil
}

// object reads the object that starts at doc[i] and follows its members
// into the children of n. depth counts the object itself.
func (x *extractor) object(n *pathNode, i, depth int) (int, error) {
	doc := x.doc
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return i + 1, nil
	}
	for {
		var (
			closed bool
			err    error
		)
		if _, i, closed, err = x.member(n, i, depth); err != nil || closed {
			return i, err
		}
	}
}

// member reads the object member whose key starts at doc[i], where the
// paths are at node n. It returns the child of n the key names (nil for
// none), and the offset past the comma that follows the member, or past
// the closing brace, with closed set.
func (x *extractor) member(n *pathNode, i, depth int) (c *pathNode, next int, closed bool, err error) {
	doc := x.doc
	if i >= len(doc) || doc[i] != '"' {
		return nil, 0, false, x.errChar(i, "looking for beginning of object key string")
	}
	// Most keys hold no escape: find the closing quote in one step, and
	// leave the rest to scanString.
	k := i + 1
	end, w1, w2 := scanKey(doc, k)
	if end < len(doc) && doc[end] == '"' {
		c = n.find(doc[k:end], w1, w2, x.fold)
		end++
	} else {
		if end, _, err = x.scanString(i); err != nil {
			return nil, 0, false, err
		}
		c = n.findEscaped(doc[k:end-1], x.fold)
	}
	i = skipSpace(doc, end)
	if i >= len(doc) || doc[i] != ':' {
		return nil, 0, false, x.errChar(i, "after object key")
	}
	i = skipSpace(doc, i+1)
	if i >= len(doc) {
		return nil, 0, false, x.errEnd()
	}
	if c != nil {
		i, err = x.value(c, i, depth)
	} else {
		i, err = x.skip(i, depth)
	}
	if err != nil {
		return nil, 0, false, err
	}
	i = skipSpace(doc, i)
	if i >= len(doc) {
		return nil, 0, false, x.errEnd()
	}
	switch doc[i] {
	case ',':
		return c, skipSpace(doc, i+1), false, nil
	case '}':
		return c, i + 1, true, nil
	}
	return nil, 0, false, x.errChar(i, "after object key:value pair")
}

// array reads the array that starts at doc[i], applying n to each element.
// Arrays nested directly in arrays leave the paths where they are, so they
// are followed by counting levels rather than by recursion: a document
// of many thousands of brackets costs no stack.
func (x *extractor) array(n *pathNode, i, depth int) (int, error) {
	doc := x.doc
	level := 0 // arrays open in this call
	var err error
open: // doc[i] is '['
	if depth+level >= maxDepth {
		return 0, x.errDepth(i)
	}
	level++
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == ']' {
		x.emit(n, KindArray, emptyArray)
		i++
		goto closed
	}
element:
	if i >= len(doc) {
		return 0, x.errEnd()
	}
	if doc[i] == '[' {
		goto open
	}
	if i, err = x.value(n, i, depth+level); err != nil {
		return 0, err
	}
next:
	i = skipSpace(doc, i)
	if i >= len(doc) {
		return 0, x.errEnd()
	}
	switch doc[i] {
	case ',':
		i = skipSpace(doc, i+1)
		goto element
	case ']':
		i++
		goto closed
	}
	return 0, x.errChar(i, "after array element")
closed:
	if level--; level > 0 {
		goto next
	}
	return i, nil
}

// skip passes over the value that starts at doc[i], which no path goes
// into. Scalars are checked, as they are cheap to check; nested arrays and
// objects are only balanced.
func (x *extractor) skip(i, depth int) (int, error) {
	switch x.doc[i] {
	case '"':
		return x.skipString(i)
	case '{', '[':
		return x.skipNested(i, depth)
	}
	end, _, err := x.scalar(i)
	return end, err
}

// skipNested passes over the array or object that starts at doc[i],
// checking only that its brackets balance outside strings. It is one loop,
// without recursion or calls, as most of a document is skipped.
func (x *extractor) skipNested(i, depth int) (int, error) {
	doc := x.doc
	var buf [64]byte
	open := buf[:0] // the brackets open, innermost last
	str := -1       // where the string being skipped starts, or -1
	j := i
	for {
		// Find the next byte that matters: within a string a quote or a
		// backslash, without one a quote or a bracket.
		if j+8 <= len(doc) {
			w := binary.LittleEndian.Uint64(doc[j:])
			var m uint64
			if str >= 0 {
				m = zeroBytes(w^(lo8*'"')) | zeroBytes(w^(lo8*'\\'))
			} else {
				v := w | lo8*0x20 // turns '[' into '{' and ']' into '}'
				m = zeroBytes(w^(lo8*'"')) | zeroBytes(v^(lo8*'{')) | zeroBytes(v^(lo8*'}'))
			}
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) / 8
		} else if j >= len(doc) {
			if str >= 0 {
				return 0, x.errAt(str, "unterminated string")
			}
			return 0, x.errEnd()
		} else if c := doc[j]; c != '"' && (str < 0 || c != '\\') && (str >= 0 || c|0x20 != '{' && c|0x20 != '}') {
			j++
			continue
		}
		switch c := doc[j]; c {
		case '"':
			if str < 0 {
				str = j
			} else {
				str = -1
			}
		case '\\':
			j++ // the escaped byte, which may be a quote
		case '{', '[':
			if depth+len(open) >= maxDepth {
				return 0, x.errDepth(j)
			}
			open = append(open, c)
		default: // '}' or ']'
			if len(open) == 0 || open[len(open)-1] != c-2 { // '['+2 == ']', '{'+2 == '}'
				return 0, x.errChar(j, "closing no matching bracket")
			}
			if open = open[:len(open)-1]; len(open) == 0 {
				return j + 1, nil
			}
		}
		j++
	}
}

// skipString passes over the string that starts at doc[i] and returns the
// offset just past its closing quote, without checking its contents.
func (x *extractor) skipString(i int) (int, error) {
	doc := x.doc
	j := i + 1
	for j+8 <= len(doc) {
		w := binary.LittleEndian.Uint64(doc[j:])
		if m := zeroBytes(w^(lo8*'"')) | zeroBytes(w^(lo8*'\\')); m != 0 {
			j += bits.TrailingZeros64(m) / 8
			if doc[j] == '"' {
				return j + 1, nil
			}
			j += 2 // past the escape, which may be of a quote
			continue
		}
		j += 8
	}
	for j < len(doc) {
		switch doc[j] {
		case '"':
			return j + 1, nil
		case '\\':
			j += 2
		default:
			j++
		}
	}
	return 0, x.errAt(i, "unterminated string")
}

// plain marks the bytes a string may hold as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString reads the string that starts at doc[i], checking its escapes
// and that it holds no control characters, and returns the offset just
// past its closing quote and whether it holds escapes.
func (x *extractor) scanString(i int) (end int, escaped bool, err error) {
	doc := x.doc
	j := i + 1
	for {
		if j = notPlain(doc, j); j >= len(doc) {
			return 0, false, x.errAt(i, "unterminated string")
		}
		switch doc[j] {
		case '"':
			return j + 1, escaped, nil
		case '\\':
			escaped = true
			if j+1 >= len(doc) {
				return 0, false, x.errAt(i, "unterminated string")
			}
			switch doc[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(doc) || hex4(doc[j+2:j+6]) < 0 {
					return 0, false, x.errAt(j, "invalid \\u escape in string")
				}
				j += 6
			default:
				return 0, false, x.errAt(j, fmt.Sprintf("invalid escape %q in string", doc[j:j+2]))
			}
		default:
			return 0, false, x.errAt(j, fmt.Sprintf("invalid control character %q in string", doc[j]))
		}
	}
}

// scalar reads the number, true, false or null that starts at doc[i].
func (x *extractor) scalar(i int) (int, Kind, error) {
	doc := x.doc
	switch doc[i] {
	case 't':
		if bytes.HasPrefix(doc[i:], []byte("true")) {
			return i + 4, KindBool, nil
		}
	case 'f':
		if bytes.HasPrefix(doc[i:], []byte("false")) {
			return i + 5, KindBool, nil
		}
	case 'n':
		if bytes.HasPrefix(doc[i:], []byte("null")) {
			return i + 4, KindNull, nil
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if end := scanNumber(doc, i); end > i {
			return end, KindNumber, nil
		}
		return 0, 0, x.errAt(i, "invalid number")
	}
	return 0, 0, x.errChar(i, "looking for beginning of value")
}

// scanNumber returns the offset just past the JSON number that starts at
// doc[i], or i if there is none.
func scanNumber(doc []byte, i int) int {
	j := i
	if doc[j] == '-' {
		j++
	}
	if j >= len(doc) || !isDigit(doc[j]) {
		return i
	}
	if doc[j] == '0' {
		j++
	} else {
		j = skipDigits(doc, j)
	}
	if j < len(doc) && doc[j] == '.' {
		j++
		if j >= len(doc) || !isDigit(doc[j]) {
			return i
		}
		j = skipDigits(doc, j)
	}
	if j < len(doc) && (doc[j] == 'e' || doc[j] == 'E') {
		j++
		if j < len(doc) && (doc[j] == '+' || doc[j] == '-') {
			j++
		}
		if j >= len(doc) || !isDigit(doc[j]) {
			return i
		}
		j = skipDigits(doc, j)
	}
	return j
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(doc []byte, j int) int {
	for j < len(doc) && isDigit(doc[j]) {
		j++
	}
	return j
}

func skipSpace(doc []byte, i int) int {
	// Bytes above the space are never white space: one comparison
	// passes over the common case of none.
	for i < len(doc) && doc[i] <= ' ' && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// The scanners below look at eight bytes at a time, with the bit tricks
// of "Bit Twiddling Hacks" (Sean Eron Anderson): a byte of a word is
// flagged by its high bit. Only the lowest flagged byte is exact, as a
// borrow can flag bytes above it, so each takes the lowest and no other.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// zeroBytes flags the zero bytes of w.
func zeroBytes(w uint64) uint64 { return (w - lo8) &^ w & hi8 }

// stringStops flags the bytes of w that a string cannot hold as they
// are: quotes, backslashes and control characters.
func stringStops(w uint64) uint64 {
	q := w ^ (lo8 * '"')
	b := w ^ (lo8 * '\\')
	return ((q-lo8)&^q | (b-lo8)&^b | (w-lo8*0x20)&^w) & hi8
}

// notPlain returns the offset of the first byte at or after j that a
// string cannot hold as it is, or len(doc).
func notPlain(doc []byte, j int) int {
	for ; j+8 <= len(doc); j += 8 {
		if m := stringStops(binary.LittleEndian.Uint64(doc[j:])); m != 0 {
			return j + bits.TrailingZeros64(m)/8
		}
	}
	for j < len(doc) && plain[doc[j]] {
		j++
	}
	return j
}

// scanKey is notPlain for an object key, which is most often short: it
// also returns the key's keyWords, from the loads that found its end,
// when that end is a quote.
func scanKey(doc []byte, k int) (end int, w1, w2 uint64) {
	if k+16 > len(doc) {
		end = notPlain(doc, k)
		w1, w2 = keyWords(doc, k, end)
		return end, w1, w2
	}
	w1 = binary.LittleEndian.Uint64(doc[k:])
	if m := stringStops(w1); m != 0 {
		n := bits.TrailingZeros64(m) / 8
		return k + n, w1 & (1<<(8*n) - 1), 0
	}
	w2 = binary.LittleEndian.Uint64(doc[k+8:])
	if m := stringStops(w2); m != 0 {
		n := bits.TrailingZeros64(m) / 8
		return k + 8 + n, w1, w2 & (1<<(8*n) - 1)
	}
	return notPlain(doc, k+16), w1, w2
}

// prefixWord returns the first eight bytes of doc[i:end] as a little-endian
// word, zero-filled when there are fewer.
func prefixWord(doc []byte, i, end int) uint64 {
	if i+8 <= len(doc) {
		w := binary.LittleEndian.Uint64(doc[i:])
		if n := end - i; n < 8 {
			w &= 1<<(8*n) - 1
		}
		return w
	}
	var w uint64
	for k := min(end, i+8) - 1; k >= i; k-- {
		w = w<<8 | uint64(doc[k])
	}
	return w
}

// keyWords returns the first and the second eight bytes of doc[i:end], as
// prefixWord does.
func keyWords(doc []byte, i, end int) (w1, w2 uint64) {
	w1 = prefixWord(doc, i, end)
	if end-i > 8 {
		w2 = prefixWord(doc, i+8, end)
	}
	return w1, w2
}

// lowerWord lower-cases the ASCII letters of w, whose bytes are all ASCII.
func lowerWord(w uint64) uint64 {
	ge := w + lo8*(0x80-'A')   // flags bytes >= 'A'
	gt := w + lo8*(0x80-'Z'-1) // flags bytes > 'Z'
	return w | (ge&^gt&hi8)>>2
}

func isASCII(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		if binary.LittleEndian.Uint64(b)&hi8 != 0 {
			return false
		}
	}
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hex4 decodes the four hex digits at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendUnescaped appends the text of the JSON string body s to dst. It
// decodes escapes as encoding/json does, but keeps invalid UTF-8 and any
// malformed escape as they are, since a Value need not come from a valid
// document.
func appendUnescaped(dst, s []byte) []byte {
	for len(s) > 0 {
		k := bytes.IndexByte(s, '\\')
		if k < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:k]...)
		s = s[k:]
		if len(s) < 2 {
			return append(dst, s...)
		}
		switch c := s[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[2:])
			if r < 0 {
				dst = append(dst, s[:2]...)
				break
			}
			s = s[6:]
			if utf16.IsSurrogate(r) {
				// Half a pair, or a pair that does not decode, is U+FFFD.
				r2 := rune(-1)
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					r2 = hex4(s[2:])
				}
				if r = utf16.DecodeRune(r, r2); r != unicode.ReplacementChar {
					s = s[6:]
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			dst = append(dst, s[:2]...)
		}
		s = s[2:]
	}
	return dst
}

// equalFold reports whether s and t are equal under simple Unicode case
// folding. It is strings.EqualFold for a byte slice, so that a key can be
// compared without making a string of it.
func equalFold(s []byte, t string) bool {
	i := 0
	for n := min(len(s), len(t)); i < n; i++ {
		sr, tr := s[i], t[i]
		if sr|tr >= utf8.RuneSelf {
			return equalFoldUnicode(s[i:], t[i:])
		}
		if tr == sr {
			continue
		}
		if tr < sr {
			tr, sr = sr, tr
		}
		if 'A' <= sr && sr <= 'Z' && tr == sr+'a'-'A' {
			continue
		}
		return false
	}
	return len(s) == len(t)
}

func equalFoldUnicode(s []byte, t string) bool {
	for len(s) > 0 {
		sr, size := utf8.DecodeRune(s)
		s = s[size:]
		if len(t) == 0 {
			return false
		}
		tr, size := utf8.DecodeRuneInString(t)
		t = t[size:]
		if tr == sr {
			continue
		}
		if tr < sr {
			tr, sr = sr, tr
		}
		if tr < utf8.RuneSelf {
			if 'A' <= sr && sr <= 'Z' && tr == sr+'a'-'A' {
				continue
			}
			return false
		}
		r := unicode.SimpleFold(sr)
		for r != sr && r < tr {
			r = unicode.SimpleFold(r)
		}
		if r != tr {
			return false
		}
	}
	return len(t) == 0
}
