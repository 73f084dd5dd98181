package inventory

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file reads snapshots of assets: what a cloud's own inventory (AWS
// Config), a CMDB or a spreadsheet says existed and when, to hold beside
// what the audit logs said. The logs tell of the assets made while they
// were collected; a snapshot also tells of those made before, and of
// changes no audited call made.

// Bounds on what ReadSnapshot reads, whatever reader it is given:
// variables so that tests can lower them.
var (
	maxSnapshotBytes int64 = 1 << 30  // a whole file
	maxSnapshotItem  int64 = 16 << 20 // a JSON value or line, a CSV line
)

// maxSnapshotSkips is how many skips SnapshotStats keeps reasons for.
const maxSnapshotSkips = 10

// The statuses of an AWS Config configuration item, and the keys of the
// objects that wrap items.
const (
	configOK                 = "OK"
	configDiscovered         = "ResourceDiscovered"
	configNotRecorded        = "ResourceNotRecorded"
	configDeleted            = "ResourceDeleted"
	configDeletedNotRecorded = "ResourceDeletedNotRecorded"
	configItemsKey           = "configurationItems"     // S3 files, get-resource-config-history
	baseConfigItemsKey       = "baseConfigurationItems" // batch-get-resource-config
	configItemKey            = "configurationItem"      // a change notification
)

// The formats, as SnapshotStats names them.
const (
	configFormat = "aws-config"
	jsonFormat   = "json"
	csvFormat    = "csv"
)

const (
	tooLargeText      = "larger than %d bytes"
	lineTooLongText   = "a line longer than %d bytes"
	valueTooLargeText = "a JSON value larger than %d bytes"
)

// A Snapshot is what one file said of assets.
type Snapshot struct {
	// Facts are the assets' facts, ordered by From. A history gives facts
	// that ended within it (To set); what held at its end is open.
	Facts []Fact
	Stats SnapshotStats

	// seen are the states of assets the file described, which Import sets
	// against what the inventory holds.
	seen []snapState
}

// SnapshotStats says what ReadSnapshot made of a file.
type SnapshotStats struct {
	Name   string
	Format string // aws-config, json or csv
	// Records counts the configuration items, rows and facts read; Assets
	// the distinct assets they told of.
	Records, Assets int
	// Skipped counts those that could not be read; Skips says why for the
	// first few.
	Skipped int
	Skips   []SnapshotSkip
	// Ignored are the first few CSV columns or JSON keys that name nothing
	// ReadSnapshot reads: a misspelt column shows here.
	Ignored []string
}

// A SnapshotSkip is a record that could not be read, and why.
type SnapshotSkip struct {
	Line   int
	Reason string
}

// ReadSnapshot reads a snapshot of assets from r, naming it name in
// errors and in its facts' Source. at is when the snapshot was taken: the
// time of the CSV and JSON rows that give none. The format is told from
// the content.
//
// AWS Config configuration items: the files AWS Config delivers to S3
// (ConfigSnapshot and ConfigHistory, whose configurationItems lists them),
// what `aws configservice get-resource-config-history` and
// `batch-get-resource-config` print, a change notification
// (configurationItem), a bare item, or items one after another or one a
// line. An item is told by its configurationItemCaptureTime. Of an item,
// ReadSnapshot reads configurationItemCaptureTime (RFC 3339, or seconds
// since 1970), configurationItemStatus, resourceType, resourceId,
// resourceName, ARN (or arn), awsAccountId (or accountId), awsRegion and
// tags; and of the configuration (an object, or JSON in a string) of
// instances, network interfaces, Elastic IPs, IAM users and roles: the
// private and public addresses (the instance's and each interface's),
// imageId, instanceType, subnetId, the user or role name.
//
// Resource types become the kinds the inventory uses (AWS::EC2::Instance:
// instance, AWS::EC2::NetworkInterface: network-interface, AWS::IAM::User:
// user, AWS::IAM::Role: role, AWS::Lambda::Function: function,
// AWS::S3::Bucket: bucket, AWS::EC2::EIP: elastic-ip, …; others, their
// service and type: AWS::SNS::Topic is sns-topic). A user or role is known
// by its ARN, as the audit logs know it. An interface attached to an
// instance lends its addresses to the instance, and an Elastic IP its
// address to what it is associated with, so that AssetAt answers the
// instance, as it does from the audit logs.
//
// The items of a resource, in the order of their capture times, are its
// history: an item's facts hold from its capture time until an item says
// otherwise. ResourceDeleted and ResourceDeletedNotRecorded (and an
// instance's terminated state) end them all; ResourceNotRecorded says the
// resource exists and nothing of its configuration.
//
// JSON rows: an array of objects, or objects one a line, each an asset as
// a CSV row below, its columns as keys; addresses may be a list, tags an
// object or a list of {"Key":…,"Value":…}. An object with asset and attr
// keys is a Fact, as the inventory writes them, taken as it is.
//
// CSV, with a header row naming its columns (case, spaces, '_' and '-'
// aside; separated by commas, semicolons or tabs; lines starting with '#'
// are comments):
//
//	id, asset_id, resource_id, instance_id        the asset's id (required)
//	kind, asset_kind, asset_type, resource_type   instance, user, …, or an AWS resource type;
//	                                              when absent, told from the id (i-…, eni-…, ARNs)
//	provider, cloud                               aws, gcp, azure: aws when absent and the account
//	                                              is an AWS account id or the id an AWS ARN
//	account, account_id, project, subscription    the account, project or subscription
//	region, location                              the region
//	private_ip, public_ip (also …_ips)            addresses, several separated by spaces, ',' or ';'
//	name (resource_name, hostname), arn, image (image_id, ami),
//	type (instance_type, machine_type, vm_size), subnet (subnet_id),
//	owner (team), environment (env)               the attributes of those names
//	tag:KEY (or tags.KEY)                         the tag KEY
//	tags                                          every tag: k=v;k2=v2, or a JSON object
//	time (timestamp, from, observed)              when the row held, instead of at
//	to (until)                                    when it stopped holding
//	status, state                                 deleted, terminated, ResourceDeleted: the asset
//	                                              was gone at the time
//
// A row without an end is the asset's state at its time: its cells hold
// all the asset had of their attributes (an empty cell, none), and the
// rows of one asset at several times are its history, as items are. A
// row with an end gives facts that held over [time, to), and says nothing
// of other times. Times are RFC 3339, or the same without a zone (UTC) or
// with a space for the T, a date, or seconds since 1970.
//
// A record that cannot be read (a bad address or time, no id, a broken
// or over-long JSON line) is skipped and counted, with its line, in the
// stats. A file of which nothing could be read, or of no shape above, is
// an error; so are broken JSON outside JSON lines (a file cut short), a
// JSON value or CSV line longer than 16 MiB, and a file larger than 1 GiB.
// Errors name the file and line.
func ReadSnapshot(r io.Reader, name string, at time.Time) (*Snapshot, error) {
	if name == "" {
		name = "snapshot"
	}
	sr := &snapReader{name: name, at: at.UTC(), st: SnapshotStats{Name: name}}
	br := bufio.NewReaderSize(&snapLimitReader{r: r, n: maxSnapshotBytes}, 64<<10)
	// Spreadsheets save CSV with a byte-order mark.
	if p, _ := br.Peek(3); bytes.Equal(p, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	// Leading blank lines are counted, so that lines are numbered as an
	// editor numbers them.
	base := 0
	var first byte
	for found := false; !found; {
		c, err := br.ReadByte()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty snapshot", name)
		}
		if err != nil {
			return nil, sr.fileErr(err)
		}
		switch c {
		case '\n':
			base++
		case ' ', '\t', '\r':
		default:
			first, found = c, true
			br.UnreadByte()
		}
	}
	var err error
	if first == '{' || first == '[' {
		sr.st.Format = jsonFormat
		if le := sr.readJSON(br, base, true); le != nil {
			err = sr.lineErr(le)
		}
	} else {
		sr.st.Format = csvFormat
		err = sr.readCSV(br, base)
	}
	if err != nil {
		return nil, err
	}
	if sr.st.Records == 0 && sr.st.Skipped > 0 {
		sk := sr.st.Skips[0]
		return nil, fmt.Errorf("%s:%d: no asset read from %d records, the first: %s", name, sk.Line, sr.st.Skipped, sk.Reason)
	}
	return sr.build(), nil
}

// Import adds a snapshot's facts to the inventory, beside what it holds
// from other sources: the audit logs, other snapshots.
//
// Each state of an asset the snapshot describes (a configuration item, a
// row without an end) ends, at its time, the asset's facts of the
// attributes it describes that it does not say still held: a snapshot
// without an address ends the address an earlier one gave. A deletion
// ends all the asset's facts. As with End, neither ends a fact that began
// after it: a snapshot taken before a change the logs tell of does not
// undo the change.
//
// A fact the inventory already holds when the snapshot's begins is not
// added again; if it is open, it ends where the snapshot's ends. An open
// fact whose value the inventory has begin again later holds until then,
// so that one fact holds at a time. Facts that ended are added closed.
//
// Import snapshots oldest first: a snapshot's open facts are taken to hold
// until a later one, or the logs, say otherwise.
func (inv *Inventory) Import(s *Snapshot) {
	// What the snapshot said held, by asset, attribute and value: made
	// when first needed, for an asset the inventory had facts of.
	var said map[string][]*Fact
	saidHeld := func(a Asset, attr, value string, at time.Time) bool {
		if said == nil {
			said = make(map[string][]*Fact, len(s.Facts))
			for i := range s.Facts {
				f := &s.Facts[i]
				k := factKey(f.Asset, f.Attr, f.Value)
				said[k] = append(said[k], f)
			}
		}
		return slices.ContainsFunc(said[factKey(a, attr, value)], func(g *Fact) bool { return g.Holds(at) })
	}
	// The inventory's open facts of each asset the snapshot saw, as the
	// states end them.
	open := map[string][]int32{}
	states := slices.Clone(s.seen)
	slices.SortStableFunc(states, func(a, b snapState) int { return a.at.Compare(b.at) })
	for _, o := range states {
		k := o.asset.key()
		l, ok := open[k]
		if !ok {
			if ai, found := inv.lookupAsset(o.asset); found {
				for j := inv.assets[ai].first; j != none; j = inv.facts[j].nextOfAsset {
					if inv.facts[j].open() {
						l = append(l, j)
					}
				}
			}
		}
		at := nanos(o.at)
		open[k] = slices.DeleteFunc(l, func(j int32) bool {
			f := &inv.facts[j]
			if f.from > at {
				return false
			}
			if !o.gone {
				attr := inv.strs.str(f.attr)
				if !o.covers.has(attr) || saidHeld(o.asset, attr, inv.strs.str(f.value), o.at) {
					return false
				}
			}
			f.to = at
			inv.changes++
			return true
		})
	}
	// The inventory's facts of each asset, by attribute and value: an asset
	// may have thousands. An asset the inventory did not have has only the
	// snapshot's facts, which overlap in nothing, and is added as it is:
	// a snapshot of a CMDB is mostly such assets.
	have := map[string][]int32{}
	known := map[Asset]bool{} // whether the inventory had the asset
	facts := slices.Clone(s.Facts)
	slices.SortStableFunc(facts, func(a, b Fact) int { return a.From.Compare(b.From) })
	inv.facts = slices.Grow(inv.facts, len(facts))
	for _, sf := range facts {
		had, seen := known[sf.Asset]
		if !seen {
			ai, found := inv.lookupAsset(sf.Asset)
			had = found && inv.assets[ai].first != none
			known[sf.Asset] = had
			if had {
				for j := inv.assets[ai].first; j != none; j = inv.facts[j].nextOfAsset {
					g := &inv.facts[j]
					fk := factKey(sf.Asset, inv.strs.str(g.attr), inv.strs.str(g.value))
					have[fk] = append(have[fk], j)
				}
			}
		}
		if !had {
			inv.add(sf)
			continue
		}
		fk := factKey(sf.Asset, sf.Attr, sf.Value)
		from := nanos(sf.From)
		var next int64 = openTo // when the inventory has the value begin again
		held := false
		for _, j := range have[fk] {
			g := &inv.facts[j]
			if g.holds(from) {
				if g.open() && !sf.To.IsZero() {
					g.to = nanos(sf.To)
					inv.changes++
				}
				held = true
				break
			}
			if g.from > from && g.from < next {
				next = g.from
			}
		}
		if held {
			continue
		}
		if sf.To.IsZero() && next != openTo {
			sf.To = fromNanos(next)
		}
		if j, added := inv.add(sf); added {
			have[fk] = append(have[fk], j)
		}
	}
}

func factKey(a Asset, attr, value string) string { return a.key() + "\x00" + attr + "\x00" + value }

// A snapState is an asset's state as a snapshot saw it at a time.
type snapState struct {
	asset  Asset
	at     time.Time
	covers *coverage // the attributes it describes
	gone   bool      // deleted
}

// A coverage is the attributes a record describes: it gives every value
// the asset had of those.
type coverage struct {
	attrs   []string
	allTags bool // every tag:KEY
}

func (c *coverage) has(attr string) bool {
	return (c.allTags && strings.HasPrefix(attr, "tag:")) || slices.Contains(c.attrs, attr)
}

func (c *coverage) union(d *coverage) *coverage {
	if c == d {
		return c
	}
	u := &coverage{attrs: slices.Clone(c.attrs), allTags: c.allTags || d.allTags}
	for _, a := range d.attrs {
		if !slices.Contains(u.attrs, a) {
			u.attrs = append(u.attrs, a)
		}
	}
	return u
}

var (
	// An item with its configuration describes all an item gives.
	configCoverage = &coverage{attrs: []string{"exists", "arn", "name", "private_ip", "public_ip", "image", "type", "subnet"}, allTags: true}
	// One without describes its own fields.
	itemCoverage = &coverage{attrs: []string{"exists", "arn", "name"}, allTags: true}
	// ResourceNotRecorded: that the resource exists.
	notRecordedCoverage = &coverage{attrs: []string{"exists", "arn", "name"}}
)

// A snapRecord is an asset's state at a time, as an item or row gave it.
type snapRecord struct {
	asset  Asset
	at     time.Time
	gone   bool
	vals   []attrVal
	covers *coverage
	source string
}

type attrVal struct{ attr, value string }

// snapReader gathers a snapshot's records.
type snapReader struct {
	name  string
	at    time.Time
	st    SnapshotStats
	recs  []snapRecord
	facts []Fact // given with their intervals
}

func (sr *snapReader) skip(line int, reason string) {
	sr.st.Skipped++
	if len(sr.st.Skips) < maxSnapshotSkips {
		sr.st.Skips = append(sr.st.Skips, SnapshotSkip{Line: line, Reason: reason})
	}
}

func (sr *snapReader) ignore(column string) {
	column = fmt.Sprintf("%.64s", column)
	if len(sr.st.Ignored) < maxSnapshotSkips && !slices.Contains(sr.st.Ignored, column) {
		sr.st.Ignored = append(sr.st.Ignored, column)
	}
}

func (sr *snapReader) add(rec snapRecord) {
	sr.st.Records++
	sr.recs = append(sr.recs, rec)
}

func (sr *snapReader) source(line int) string {
	return sr.st.Format + ":" + sr.name + ":" + strconv.Itoa(line)
}

// fileErr is a reading error that is no line's.
func (sr *snapReader) fileErr(err error) error {
	if errors.Is(err, errSnapshotTooLarge) {
		return fmt.Errorf("%s: "+tooLargeText, sr.name, maxSnapshotBytes)
	}
	return fmt.Errorf("%s: %w", sr.name, err)
}

// build turns the records into facts: the records of an asset, in the
// order of their times, are its history.
func (sr *snapReader) build() *Snapshot {
	s := &Snapshot{Stats: sr.st}
	groups := map[string][]snapRecord{}
	var order []string
	for _, r := range sr.recs {
		k := r.asset.key()
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	assets := map[string]bool{}
	for _, k := range order {
		assets[k] = true
		recs := groups[k]
		// A deletion last among the records of a time: a resource made
		// and deleted within one instant is gone.
		slices.SortStableFunc(recs, func(a, b snapRecord) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return goneLast(a.gone, b.gone)
		})
		open := map[attrVal]int{} // the facts holding, by index in s.Facts
		for i, j := 0, 0; i < len(recs); i = j {
			cur := recs[i]
			// The records of a time are one state: the addresses of an
			// asset given a row each.
			for j = i + 1; j < len(recs) && recs[j].at.Equal(cur.at) && recs[j].gone == cur.gone; j++ {
			}
			if j > i+1 {
				v := snapVals{rec: &snapRecord{}}
				for _, r := range recs[i:j] {
					for _, av := range r.vals {
						v.add(av.attr, av.value)
					}
					cur.covers = cur.covers.union(r.covers)
				}
				cur.vals = v.rec.vals
			}
			s.seen = append(s.seen, snapState{asset: cur.asset, at: cur.at, covers: cur.covers, gone: cur.gone})
			var still map[attrVal]bool // cur.vals, when there are many
			if len(cur.vals) > 16 {
				still = make(map[attrVal]bool, len(cur.vals))
				for _, v := range cur.vals {
					still[v] = true
				}
			}
			for v, fi := range open {
				held := still[v] || (still == nil && slices.Contains(cur.vals, v))
				if cur.gone || (cur.covers.has(v.attr) && !held) {
					s.Facts[fi].To = cur.at
					delete(open, v)
				}
			}
			if cur.gone {
				continue
			}
			for _, v := range cur.vals {
				if _, ok := open[v]; !ok {
					open[v] = len(s.Facts)
					s.Facts = append(s.Facts, Fact{Asset: cur.asset, Attr: v.attr, Value: v.value, From: cur.at, Source: cur.source})
				}
			}
		}
	}
	// A fact ended the instant it began (an asset made and deleted within
	// one capture time) never held.
	s.Facts = slices.DeleteFunc(s.Facts, func(f Fact) bool { return !f.To.IsZero() && !f.To.After(f.From) })
	for _, f := range sr.facts {
		assets[f.Asset.key()] = true
	}
	s.Facts = append(s.Facts, sr.facts...)
	slices.SortStableFunc(s.Facts, func(a, b Fact) int { return a.From.Compare(b.From) })
	s.Stats.Assets = len(assets)
	return s
}

func goneLast(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// JSON

// A snapLineError is an error at a line of the file.
type snapLineError struct {
	line int
	err  error
}

func (sr *snapReader) lineErr(le *snapLineError) error {
	if errors.Is(le.err, errSnapshotTooLarge) {
		return sr.fileErr(le.err)
	}
	return fmt.Errorf("%s:%d: %w", sr.name, le.line, le.err)
}

// jsonIn is a JSON decoder that knows its line, and reads no value larger
// than maxSnapshotItem.
type jsonIn struct {
	dec  *json.Decoder
	lc   *jsonLines
	base int // the lines before the decoder's input
}

func newJSONIn(r io.Reader, base int) *jsonIn {
	lc := &jsonLines{r: r}
	return &jsonIn{dec: json.NewDecoder(lc), lc: lc, base: base}
}

func (j *jsonIn) lineAt(off int64) int { return j.base + j.lc.lineAt(off) }

// reset lets the decoder read up to maxSnapshotItem bytes for the next
// token or value, counting those it holds already: none is larger.
func (j *jsonIn) reset() {
	j.lc.budget = maxSnapshotItem - int64(j.dec.Buffered().(interface{ Len() int }).Len())
}

func (j *jsonIn) token() (json.Token, error) {
	j.reset()
	return j.dec.Token()
}

func (j *jsonIn) more() bool {
	j.reset()
	return j.dec.More()
}

// value reads the next value, and returns it with the line it starts on.
func (j *jsonIn) value() (json.RawMessage, int, error) {
	j.reset()
	var raw json.RawMessage
	if err := j.dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			// The decoder's offsets of errors within a value are not of
			// its input; decoding the value alone finds where it broke.
			start := j.dec.InputOffset()
			var x json.RawMessage
			if err2 := json.NewDecoder(j.dec.Buffered()).Decode(&x); errors.As(err2, &se) {
				return nil, 0, &posError{start + se.Offset, err2}
			}
		}
		return nil, 0, err
	}
	return raw, j.lineAt(j.dec.InputOffset() - int64(len(raw))), nil
}

// A posError is an error at an offset of the decoder's input.
type posError struct {
	off int64
	err error
}

func (e *posError) Error() string { return e.err.Error() }

// fail says where a decoding error happened. io.EOF is an error only
// within a value: the input was cut short.
func (j *jsonIn) fail(err error) *snapLineError {
	var (
		pe *posError
		se *json.SyntaxError
	)
	switch {
	case errors.As(err, &pe):
		return &snapLineError{j.lineAt(pe.off), fmt.Errorf("bad JSON: %w", pe.err)}
	case errors.As(err, &se):
		off := se.Offset // from Token: of the input, unless of a value it read
		if off > j.lc.off {
			off = j.dec.InputOffset()
		}
		return &snapLineError{j.lineAt(off), fmt.Errorf("bad JSON: %w", err)}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return &snapLineError{j.lineAt(j.lc.off), errors.New("truncated JSON: unexpected end of input")}
	case errors.Is(err, errValueTooLarge):
		return &snapLineError{j.lineAt(j.lc.off), fmt.Errorf(valueTooLargeText, maxSnapshotItem)}
	}
	return &snapLineError{j.lineAt(j.lc.off), err}
}

// readJSON reads JSON values from r: objects wrapping configuration items,
// arrays of items or rows, items or rows. When lines is set and its first
// value is an item or row on a line of its own, the rest is read as JSON
// lines, so that a broken line costs only itself.
func (sr *snapReader) readJSON(r io.Reader, base int, lines bool) *snapLineError {
	j := newJSONIn(r, base)
	for first := true; ; first = false {
		t, err := j.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return j.fail(err)
		}
		switch t {
		case json.Delim('['):
			if le := sr.readArray(j); le != nil {
				return le
			}
		case json.Delim('{'):
			line := j.lineAt(j.dec.InputOffset() - 1)
			isRecord, le := sr.readObject(j, line)
			if le != nil {
				return le
			}
			if lines && first && isRecord && j.lineAt(j.dec.InputOffset()) == line {
				return sr.readLines(io.MultiReader(j.dec.Buffered(), j.lc.r), line)
			}
		default:
			return &snapLineError{j.lineAt(j.dec.InputOffset()), fmt.Errorf("not a snapshot: %.40v at the top level", t)}
		}
	}
}

// readArray reads the elements of an array whose '[' was read.
func (sr *snapReader) readArray(j *jsonIn) *snapLineError {
	for j.more() {
		raw, line, err := j.value()
		if err != nil {
			return j.fail(err)
		}
		sr.record(raw, line)
	}
	if _, err := j.token(); err != nil {
		return j.fail(err)
	}
	return nil
}

// readObject reads an object whose '{' was read at line: one wrapping
// configuration items, which it reads as it goes (an S3 file may hold
// thousands on one line), or a record. It says which.
func (sr *snapReader) readObject(j *jsonIn, line int) (isRecord bool, le *snapLineError) {
	var (
		stash   map[string]json.RawMessage
		size    int64
		wrapper bool
	)
	for j.more() {
		t, err := j.token()
		if err != nil {
			return false, j.fail(err)
		}
		key, _ := t.(string)
		switch key {
		case configItemsKey, baseConfigItemsKey:
			wrapper = true
			t, err := j.token()
			if err != nil {
				return false, j.fail(err)
			}
			switch t {
			case json.Delim('['):
				if le := sr.readArray(j); le != nil {
					return false, le
				}
			case nil:
			default:
				return false, &snapLineError{j.lineAt(j.dec.InputOffset()), fmt.Errorf("%s is not an array", key)}
			}
		case configItemKey:
			wrapper = true
			raw, l, err := j.value()
			if err != nil {
				return false, j.fail(err)
			}
			if string(raw) != "null" {
				sr.record(raw, l)
			}
		default:
			raw, _, err := j.value()
			if err != nil {
				return false, j.fail(err)
			}
			if size += int64(len(key) + len(raw)); size > maxSnapshotItem {
				return false, j.fail(errValueTooLarge)
			}
			if stash == nil {
				stash = map[string]json.RawMessage{}
			}
			stash[key] = raw
		}
	}
	if _, err := j.token(); err != nil {
		return false, j.fail(err)
	}
	if wrapper {
		return false, nil
	}
	raw := []byte("{}")
	if stash != nil {
		raw, _ = json.Marshal(stash) // of valid values: it cannot fail
	}
	sr.record(raw, line)
	return true, nil
}

// readLines reads JSON lines, the first of which is line first.
func (sr *snapReader) readLines(r io.Reader, first int) *snapLineError {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for line := first; ; line++ {
		b, long, err := readSnapLine(br, maxSnapshotItem, buf[:0])
		buf = b
		if err != nil && err != io.EOF {
			return &snapLineError{line, err}
		}
		if long {
			sr.skip(line, fmt.Sprintf(lineTooLongText, maxSnapshotItem))
		} else if b = bytes.TrimSpace(b); len(b) > 0 {
			before := sr.st.Records + sr.st.Skipped
			if le := sr.readJSON(bytes.NewReader(b), line-1, false); le != nil {
				sr.skip(line, le.err.Error())
			} else if sr.st.Records+sr.st.Skipped == before {
				sr.skip(line, "no record in the line")
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// readSnapLine reads a line into buf, up to max bytes of it, and says
// whether there was more.
func readSnapLine(br *bufio.Reader, max int64, buf []byte) (line []byte, long bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if int64(len(buf)+len(frag)) <= max {
			buf = append(buf, frag...)
		} else {
			long = true
		}
		if err != bufio.ErrBufferFull {
			return buf, long, err
		}
	}
}

// record reads a JSON value of a snapshot: a configuration item, a row or
// a Fact.
func (sr *snapReader) record(raw json.RawMessage, line int) {
	if len(raw) == 0 || raw[0] != '{' {
		sr.skip(line, fmt.Sprintf("not a JSON object: %.40s", raw))
		return
	}
	var ci configItem
	err := json.Unmarshal(raw, &ci)
	if len(ci.CaptureTime) > 0 {
		if sr.st.Records == 0 {
			sr.st.Format = configFormat
		}
		if err != nil {
			sr.skip(line, ci.what()+": "+err.Error())
			return
		}
		sr.configItem(&ci, line)
		return
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		sr.skip(line, "bad JSON: "+err.Error())
		return
	}
	if obj["asset"] != nil && obj["attr"] != nil {
		sr.factObject(raw, line)
		return
	}
	sr.jsonRow(obj, line)
}

// AWS Config

// A configItem is an AWS Config configuration item: as delivered to S3,
// and as the API and the CLI give it (accountId, arn, the configuration as
// a string, times in seconds).
type configItem struct {
	CaptureTime   json.RawMessage `json:"configurationItemCaptureTime"`
	Status        string          `json:"configurationItemStatus"`
	ResourceType  string          `json:"resourceType"`
	ResourceID    string          `json:"resourceId"`
	ResourceName  string          `json:"resourceName"`
	ARN           string          `json:"arn"` // ARN in S3 files: encoding/json matches either
	AWSAccountID  string          `json:"awsAccountId"`
	AccountID     string          `json:"accountId"`
	Region        string          `json:"awsRegion"`
	Tags          json.RawMessage `json:"tags"`
	Configuration json.RawMessage `json:"configuration"`
}

func (ci *configItem) what() string {
	return fmt.Sprintf("%.64s %.128s", cmp.Or(ci.ResourceType, "configuration item"), ci.ResourceID)
}

// The parts of configurations read: of instances (as EC2's
// DescribeInstances gives them), network interfaces, Elastic IPs, IAM
// users and roles.
type (
	instanceConfig struct {
		PrivateIPAddress string `json:"privateIpAddress"`
		PublicIPAddress  string `json:"publicIpAddress"`
		ImageID          string `json:"imageId"`
		InstanceType     string `json:"instanceType"`
		SubnetID         string `json:"subnetId"`
		State            *struct {
			Name string `json:"name"`
		} `json:"state"`
		NetworkInterfaces []interfaceConfig `json:"networkInterfaces"`
	}
	interfaceConfig struct {
		PrivateIPAddress   string `json:"privateIpAddress"`
		SubnetID           string `json:"subnetId"`
		PrivateIPAddresses []struct {
			PrivateIPAddress string             `json:"privateIpAddress"`
			Association      *associationConfig `json:"association"`
		} `json:"privateIpAddresses"`
		Association *associationConfig `json:"association"`
		Attachment  *struct {
			InstanceID string `json:"instanceId"`
		} `json:"attachment"`
	}
	associationConfig struct {
		PublicIP string `json:"publicIp"`
	}
	eipConfig struct {
		PublicIP           string `json:"publicIp"`
		InstanceID         string `json:"instanceId"`
		NetworkInterfaceID string `json:"networkInterfaceId"`
	}
	iamConfig struct {
		UserName string `json:"userName"`
		RoleName string `json:"roleName"`
	}
)

// configItem adds what a configuration item says.
func (sr *snapReader) configItem(ci *configItem, line int) {
	fail := func(reason string) { sr.skip(line, ci.what()+": "+reason) }
	if ci.ResourceType == "" {
		fail("no resourceType")
		return
	}
	if ci.ResourceID == "" {
		fail("no resourceId")
		return
	}
	at, err := parseCaptureTime(ci.CaptureTime)
	if err != nil {
		fail("configurationItemCaptureTime: " + err.Error())
		return
	}
	kind, ok := configKind(ci.ResourceType)
	if !ok {
		fail("not a resource type")
		return
	}
	a := Asset{Kind: kind, ID: ci.ResourceID, Provider: "aws", Account: cmp.Or(ci.AWSAccountID, ci.AccountID), Region: ci.Region}
	if (kind == "user" || kind == "role") && ci.ARN != "" {
		a.ID = ci.ARN
	}
	rec := snapRecord{asset: a, at: at, source: sr.source(line), covers: configCoverage}
	switch ci.Status {
	case configOK, configDiscovered, "":
	case configNotRecorded:
		rec.covers = notRecordedCoverage
	case configDeleted, configDeletedNotRecorded:
		rec.gone = true
		sr.add(rec)
		return
	default:
		fail(fmt.Sprintf("unknown configurationItemStatus %.40q", ci.Status))
		return
	}
	v := snapVals{rec: &rec}
	v.add("exists", "true")
	v.add("arn", ci.ARN)
	if rec.covers == notRecordedCoverage {
		v.add("name", ci.ResourceName)
		sr.add(rec)
		return
	}
	tags, err := parseTags(ci.Tags)
	if err != nil {
		fail("tags: " + err.Error())
		return
	}
	for _, t := range tags {
		v.add("tag:"+t.attr, t.value)
	}
	conf, err := configBytes(ci.Configuration)
	if err != nil {
		fail("configuration: " + err.Error())
		return
	}
	name := ci.ResourceName
	if conf == nil {
		rec.covers = itemCoverage
	} else {
		switch kind {
		case "instance":
			var c instanceConfig
			if err = json.Unmarshal(conf, &c); err != nil {
				break
			}
			if c.State != nil && c.State.Name == "terminated" {
				rec.gone, rec.vals = true, nil
				sr.add(rec)
				return
			}
			v.ip("private_ip", c.PrivateIPAddress)
			v.ip("public_ip", c.PublicIPAddress)
			for _, ni := range c.NetworkInterfaces {
				v.iface(&ni)
			}
			v.add("image", c.ImageID)
			v.add("type", c.InstanceType)
			v.add("subnet", c.SubnetID)
		case "network-interface":
			var c interfaceConfig
			if err = json.Unmarshal(conf, &c); err != nil {
				break
			}
			if c.Attachment == nil || c.Attachment.InstanceID == "" {
				v.iface(&c)
			}
			v.add("subnet", c.SubnetID)
		case "elastic-ip":
			var c eipConfig
			if err = json.Unmarshal(conf, &c); err != nil {
				break
			}
			if c.InstanceID == "" && c.NetworkInterfaceID == "" {
				v.ip("public_ip", c.PublicIP)
			}
		case "user", "role":
			var c iamConfig
			if err = json.Unmarshal(conf, &c); err != nil {
				break
			}
			name = cmp.Or(name, c.UserName, c.RoleName)
		}
	}
	if err != nil {
		fail("configuration: " + err.Error())
		return
	}
	if v.err != nil {
		fail(v.err.Error())
		return
	}
	v.add("name", name)
	sr.add(rec)
}

// snapVals gathers a record's values, once each, checking addresses.
type snapVals struct {
	rec  *snapRecord
	err  error
	seen map[attrVal]bool // the values, once there are many
}

func (v *snapVals) add(attr, value string) {
	if value == "" {
		return
	}
	av := attrVal{attr, value}
	if v.seen == nil && len(v.rec.vals) > 16 {
		v.seen = make(map[attrVal]bool, 2*len(v.rec.vals))
		for _, x := range v.rec.vals {
			v.seen[x] = true
		}
	}
	if v.seen[av] || (v.seen == nil && slices.Contains(v.rec.vals, av)) {
		return
	}
	if v.seen != nil {
		v.seen[av] = true
	}
	v.rec.vals = append(v.rec.vals, av)
}

// ip adds an address in its canonical form, the one the inventory is
// searched by.
func (v *snapVals) ip(attr, value string) {
	if value == "" {
		return
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(value))
	if err != nil {
		if v.err == nil {
			v.err = fmt.Errorf("bad %s %.64q", attr, value)
		}
		return
	}
	v.add(attr, ip.Unmap().String())
}

// iface adds a network interface's addresses.
func (v *snapVals) iface(ni *interfaceConfig) {
	v.ip("private_ip", ni.PrivateIPAddress)
	if ni.Association != nil {
		v.ip("public_ip", ni.Association.PublicIP)
	}
	for _, p := range ni.PrivateIPAddresses {
		v.ip("private_ip", p.PrivateIPAddress)
		if p.Association != nil {
			v.ip("public_ip", p.Association.PublicIP)
		}
	}
}

// configBytes returns an item's configuration: an object in S3 files, a
// string of JSON from the API. nil is none.
func configBytes(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if s = strings.TrimSpace(s); s == "" || s == "null" {
			return nil, nil
		}
		raw = []byte(s)
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("not an object: %.40s", raw)
	}
	return raw, nil
}

// configKinds are the kinds of the resource types the inventory knows by
// other names than configKind makes.
var configKinds = map[string]string{
	"AWS::EC2::Instance":                        "instance",
	"AWS::EC2::NetworkInterface":                "network-interface",
	"AWS::EC2::EIP":                             "elastic-ip",
	"AWS::EC2::SecurityGroup":                   "security-group",
	"AWS::EC2::Subnet":                          "subnet",
	"AWS::EC2::VPC":                             "vpc",
	"AWS::EC2::Volume":                          "volume",
	"AWS::IAM::User":                            "user",
	"AWS::IAM::Role":                            "role",
	"AWS::IAM::Group":                           "group",
	"AWS::IAM::Policy":                          "policy",
	"AWS::Lambda::Function":                     "function",
	"AWS::S3::Bucket":                           "bucket",
	"AWS::RDS::DBInstance":                      "db-instance",
	"AWS::RDS::DBCluster":                       "db-cluster",
	"AWS::DynamoDB::Table":                      "table",
	"AWS::KMS::Key":                             "key",
	"AWS::ElasticLoadBalancing::LoadBalancer":   "load-balancer",
	"AWS::ElasticLoadBalancingV2::LoadBalancer": "load-balancer",
}

// configKind returns the kind of a resource type: a known one's, or its
// service and type (AWS::SNS::Topic: sns-topic).
func configKind(typ string) (string, bool) {
	if k, ok := configKinds[typ]; ok {
		return k, true
	}
	parts := strings.Split(typ, "::")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" || len(typ) > 256 {
		return "", false
	}
	return strings.ToLower(parts[1]) + "-" + kebab(parts[2]), true
}

// kebab writes a CamelCase name in lower case, its words joined by '-':
// DBInstance is db-instance.
func kebab(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('-')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// parseCaptureTime parses an item's time: RFC 3339 in S3 files and the
// CLI's output, seconds since 1970 in the API's.
func parseCaptureTime(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
		return parseSnapTime(s)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New("none")
	}
	return parseEpoch(string(raw))
}

// parseSnapTime parses a time: RFC 3339, the same without a zone (UTC) or
// with a space for the T, a date, or seconds or milliseconds since 1970.
func parseSnapTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("none")
	}
	if len(s) >= 9 && s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:") {
		return parseEpoch(s)
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return checkTime(t)
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %.40q", s)
}

// parseEpoch parses seconds since 1970, with a fraction, or milliseconds.
func parseEpoch(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("not a time: %.40q", s)
	}
	if f > 1e11 { // milliseconds: 1e11 seconds is the year 5138
		f /= 1e3
	}
	if f < 0 || f > 253402300799 { // 9999-12-31T23:59:59Z
		return time.Time{}, fmt.Errorf("time out of range: %.40q", s)
	}
	sec, frac := math.Modf(f)
	// To the millisecond: a float64 of seconds holds no finer.
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC(), nil
}

// checkTime refuses times a Fact could not be written out with.
func checkTime(t time.Time) (time.Time, error) {
	t = t.UTC()
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("time out of range: %s", t.Format(time.RFC3339))
	}
	return t, nil
}

// parseTags reads tags: an object of key to value (items, JSON rows), a
// list of {"Key":…,"Value":…} (as the EC2 API gives them), or a string of
// key=value pairs separated by ';'.
func parseTags(raw json.RawMessage) ([]attrVal, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var out []attrVal
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			s, err := jsonScalar(v)
			if err != nil {
				return nil, fmt.Errorf("tag %.64q: %w", k, err)
			}
			out = append(out, attrVal{k, s})
		}
	case '[':
		var l []struct{ Key, Value *string }
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, err
		}
		for _, t := range l {
			if t.Key == nil {
				return nil, errors.New("a tag without a key")
			}
			v := ""
			if t.Value != nil {
				v = *t.Value
			}
			out = append(out, attrVal{*t.Key, v})
		}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return parseTagText(s)
	default:
		return nil, fmt.Errorf("not tags: %.40s", raw)
	}
	slices.SortFunc(out, func(a, b attrVal) int { return strings.Compare(a.attr, b.attr) })
	return out, nil
}

// parseTagText reads tags written k=v;k2=v2, or as JSON.
func parseTagText(s string) ([]attrVal, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
		return parseTags(json.RawMessage(s))
	}
	var out []attrVal
	for kv := range strings.SplitSeq(s, ";") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("want key=value, not %.64q", kv)
		}
		out = append(out, attrVal{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return out, nil
}

// jsonScalar returns a JSON string, number or boolean as text; null as "".
func jsonScalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{', '[':
		return "", fmt.Errorf("not a string: %.40s", raw)
	}
	return string(raw), nil
}

// Rows

// A colRole is what a snapshot's column holds.
type colRole uint8

const (
	colNone colRole = iota
	colKind
	colID
	colProvider
	colAccount
	colRegion
	colTime
	colTo
	colStatus
	colAttr // an attribute: snapCol.attr
	colTag  // a tag: snapCol.attr is tag:KEY
	colTags // every tag
)

type snapCol struct {
	role colRole
	attr string
}

// snapColumns are the columns, by their names as columnKey leaves them.
var snapColumns = map[string]snapCol{
	"kind": {role: colKind}, "assetkind": {role: colKind}, "assettype": {role: colKind}, "resourcetype": {role: colKind},
	"id": {role: colID}, "assetid": {role: colID}, "resourceid": {role: colID}, "instanceid": {role: colID},
	"provider": {role: colProvider}, "cloud": {role: colProvider},
	"account": {role: colAccount}, "accountid": {role: colAccount}, "awsaccountid": {role: colAccount},
	"project": {role: colAccount}, "projectid": {role: colAccount},
	"subscription": {role: colAccount}, "subscriptionid": {role: colAccount},
	"region": {role: colRegion}, "awsregion": {role: colRegion}, "location": {role: colRegion},
	"time": {role: colTime}, "timestamp": {role: colTime}, "from": {role: colTime}, "observed": {role: colTime}, "observedat": {role: colTime},
	"to": {role: colTo}, "until": {role: colTo},
	"status": {role: colStatus}, "state": {role: colStatus},
	"privateip": {colAttr, "private_ip"}, "privateips": {colAttr, "private_ip"},
	"privateipaddress": {colAttr, "private_ip"}, "privateipaddresses": {colAttr, "private_ip"},
	"publicip": {colAttr, "public_ip"}, "publicips": {colAttr, "public_ip"},
	"publicipaddress": {colAttr, "public_ip"}, "publicipaddresses": {colAttr, "public_ip"},
	"name": {colAttr, "name"}, "resourcename": {colAttr, "name"}, "hostname": {colAttr, "name"},
	"arn":   {colAttr, "arn"},
	"owner": {colAttr, "owner"}, "team": {colAttr, "owner"},
	"environment": {colAttr, "environment"}, "env": {colAttr, "environment"},
	"image": {colAttr, "image"}, "imageid": {colAttr, "image"}, "ami": {colAttr, "image"},
	"type": {colAttr, "type"}, "instancetype": {colAttr, "type"}, "machinetype": {colAttr, "type"}, "vmsize": {colAttr, "type"},
	"subnet": {colAttr, "subnet"}, "subnetid": {colAttr, "subnet"},
	"tags": {role: colTags},
}

// snapColumn returns what a column holds. tag:KEY and tags.KEY keep KEY
// as written: tag keys are case-sensitive.
func snapColumn(name string) (snapCol, bool) {
	n := strings.TrimSpace(name)
	for _, p := range []string{"tag:", "tags."} {
		if len(n) > len(p) && strings.EqualFold(n[:len(p)], p) {
			return snapCol{colTag, "tag:" + strings.TrimSpace(n[len(p):])}, true
		}
	}
	c, ok := snapColumns[columnKey(n)]
	return c, ok
}

// A snapCell is a row's values of a column.
type snapCell struct {
	col  snapCol
	vals []string  // several for addresses
	tags []attrVal // of colTags
}

// rowCoverage is what a row of cells describes.
func rowCoverage(cells []snapCell) *coverage {
	c := &coverage{attrs: []string{"exists"}}
	for _, cl := range cells {
		switch cl.col.role {
		case colAttr, colTag:
			if !slices.Contains(c.attrs, cl.col.attr) {
				c.attrs = append(c.attrs, cl.col.attr)
			}
		case colTags:
			c.allTags = true
		}
	}
	return c
}

// row adds what a CSV or JSON row says.
func (sr *snapReader) row(cells []snapCell, cov *coverage, line int) {
	var kind, id, provider, account, region, status, from, to string
	for _, c := range cells {
		if len(c.vals) == 0 {
			continue
		}
		v := strings.TrimSpace(c.vals[0])
		switch c.col.role {
		case colKind:
			kind = cmp.Or(kind, v)
		case colID:
			id = cmp.Or(id, v)
		case colProvider:
			provider = cmp.Or(provider, strings.ToLower(v))
		case colAccount:
			account = cmp.Or(account, v)
		case colRegion:
			region = cmp.Or(region, v)
		case colStatus:
			status = cmp.Or(status, v)
		case colTime:
			from = cmp.Or(from, v)
		case colTo:
			to = cmp.Or(to, v)
		}
	}
	if id == "" {
		sr.skip(line, "no id")
		return
	}
	if strings.Contains(kind, "::") {
		k, ok := configKind(kind)
		if !ok {
			sr.skip(line, fmt.Sprintf("kind %.64q is not a resource type", kind))
			return
		}
		kind, provider = k, cmp.Or(provider, "aws")
	}
	kind = cmp.Or(strings.ToLower(kind), kindOfID(id))
	if kind == "" {
		sr.skip(line, fmt.Sprintf("no kind, and the id %.64q tells none", id))
		return
	}
	if provider == "" && (isAWSAccount(account) || strings.HasPrefix(id, "arn:aws")) {
		provider = "aws"
	}
	rec := snapRecord{asset: Asset{Kind: kind, ID: id, Provider: provider, Account: account, Region: region}, at: sr.at, covers: cov, source: sr.source(line)}
	if from != "" {
		t, err := parseSnapTime(from)
		if err != nil {
			sr.skip(line, "time: "+err.Error())
			return
		}
		rec.at = t
	}
	if rec.at.IsZero() {
		sr.skip(line, "no time: the row gives none, nor the snapshot")
		return
	}
	var end time.Time
	if to != "" {
		t, err := parseSnapTime(to)
		if err != nil {
			sr.skip(line, "to: "+err.Error())
			return
		}
		if !t.After(rec.at) {
			sr.skip(line, "to is not after the time")
			return
		}
		end = t
	}
	switch strings.ToLower(status) {
	case "deleted", "terminated", "resourcedeleted", "resourcedeletednotrecorded":
		if !end.IsZero() {
			sr.skip(line, "a deleted asset with an end")
			return
		}
		rec.gone = true
		sr.add(rec)
		return
	}
	v := snapVals{rec: &rec}
	if end.IsZero() {
		// A row with an end says what held, not that the asset ceased
		// to be.
		v.add("exists", "true")
	}
	for _, c := range cells {
		switch c.col.role {
		case colAttr:
			for _, s := range c.vals {
				if c.col.attr != "private_ip" && c.col.attr != "public_ip" {
					v.add(c.col.attr, strings.TrimSpace(s))
					continue
				}
				for a := range strings.FieldsFuncSeq(s, isAddrSep) {
					v.ip(c.col.attr, a)
				}
			}
		case colTag:
			for _, s := range c.vals {
				v.add(c.col.attr, strings.TrimSpace(s))
			}
		case colTags:
			for _, t := range c.tags {
				v.add("tag:"+t.attr, t.value)
			}
		}
	}
	if v.err != nil {
		sr.skip(line, v.err.Error())
		return
	}
	if end.IsZero() {
		sr.add(rec)
		return
	}
	sr.st.Records++
	for _, av := range rec.vals {
		sr.facts = append(sr.facts, Fact{Asset: rec.asset, Attr: av.attr, Value: av.value, From: rec.at, To: end, Source: rec.source})
	}
}

func isAddrSep(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) }

// kindOfID tells an asset's kind from its id, where the id tells it.
func kindOfID(id string) string {
	switch {
	case strings.HasPrefix(id, "i-"):
		return "instance"
	case strings.HasPrefix(id, "eni-"):
		return "network-interface"
	case strings.HasPrefix(id, "eipalloc-"):
		return "elastic-ip"
	case strings.HasPrefix(id, "arn:aws"):
		// arn:partition:service:region:account:resource
		parts := strings.SplitN(id, ":", 6)
		if len(parts) < 6 {
			return ""
		}
		switch svc, res := parts[2], parts[5]; {
		case svc == "iam" && strings.HasPrefix(res, "user/"):
			return "user"
		case svc == "iam" && strings.HasPrefix(res, "role/"):
			return "role"
		case svc == "lambda" && strings.HasPrefix(res, "function:"):
			return "function"
		case svc == "s3" && res != "" && !strings.Contains(res, "/"):
			return "bucket"
		}
	}
	return ""
}

func isAWSAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// jsonRow reads a JSON object as a row.
func (sr *snapReader) jsonRow(obj map[string]json.RawMessage, line int) {
	cells := make([]snapCell, 0, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		col, ok := snapColumn(k)
		if !ok {
			sr.ignore(k)
			continue
		}
		c := snapCell{col: col}
		raw := bytes.TrimSpace(obj[k])
		var err error
		switch {
		case col.role == colTags:
			c.tags, err = parseTags(raw)
		case len(raw) > 0 && raw[0] == '[':
			var l []json.RawMessage
			if err = json.Unmarshal(raw, &l); err != nil {
				break
			}
			for _, e := range l {
				var s string
				if s, err = jsonScalar(e); err != nil {
					break
				}
				c.vals = append(c.vals, s)
			}
		default:
			var s string
			if s, err = jsonScalar(raw); err == nil && s != "" {
				c.vals = []string{s}
			}
		}
		if err != nil {
			sr.skip(line, fmt.Sprintf("%.64s: %v", k, err))
			return
		}
		cells = append(cells, c)
	}
	sr.row(cells, rowCoverage(cells), line)
}

// factObject reads a Fact as the inventory writes it.
func (sr *snapReader) factObject(raw json.RawMessage, line int) {
	var f Fact
	if err := json.Unmarshal(raw, &f); err != nil {
		sr.skip(line, "bad fact: "+err.Error())
		return
	}
	switch {
	case f.Asset.ID == "" || f.Asset.Kind == "":
		sr.skip(line, "a fact of an asset without kind or id")
		return
	case f.Attr == "" || f.Value == "":
		sr.skip(line, "a fact without attribute or value")
		return
	}
	if f.From.IsZero() {
		f.From = sr.at
	}
	var err error
	if f.From, err = checkTime(f.From); err != nil {
		sr.skip(line, "a fact without a time, or out of range")
		return
	}
	if !f.To.IsZero() {
		if f.To, err = checkTime(f.To); err != nil || !f.To.After(f.From) {
			sr.skip(line, "a fact whose to is not after its from")
			return
		}
	}
	if f.Attr == "private_ip" || f.Attr == "public_ip" {
		ip, err := netip.ParseAddr(f.Value)
		if err != nil {
			sr.skip(line, fmt.Sprintf("bad %s %.64q", f.Attr, f.Value))
			return
		}
		f.Value = ip.Unmap().String()
	}
	f.Source = cmp.Or(f.Source, sr.source(line))
	sr.st.Records++
	sr.facts = append(sr.facts, f)
}

// CSV

// readCSV reads a CSV snapshot whose first line is line base+1.
func (sr *snapReader) readCSV(br *bufio.Reader, base int) error {
	cr := csv.NewReader(&lineLimiter{r: br, line: base + 1})
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.Comma = sniffComma(br)
	var (
		cols []snapCol
		cov  *coverage
	)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			if cols == nil {
				return fmt.Errorf("%s: no CSV header", sr.name)
			}
			return nil
		}
		var (
			pe *csv.ParseError
			tl *lineTooLongError
		)
		switch {
		case errors.As(err, &tl):
			return fmt.Errorf("%s:%d: "+lineTooLongText, sr.name, tl.line, maxSnapshotItem)
		case errors.As(err, &pe) && cols != nil:
			sr.skip(base+pe.StartLine, "bad CSV: "+pe.Err.Error())
			continue
		case pe != nil:
			return fmt.Errorf("%s:%d: not a snapshot: bad CSV header: %w", sr.name, base+pe.StartLine, pe.Err)
		case err != nil:
			return sr.fileErr(err)
		}
		line, _ := cr.FieldPos(0)
		line += base
		if cols == nil {
			cols = make([]snapCol, len(rec))
			cells := make([]snapCell, len(rec))
			hasID := false
			for i, h := range rec {
				c, ok := snapColumn(h)
				if !ok {
					sr.ignore(h)
				}
				cols[i], cells[i].col = c, c
				hasID = hasID || c.role == colID
			}
			if !hasID {
				return fmt.Errorf("%s:%d: not a snapshot: the CSV header names no id column (want kind,id,account,region,private_ip,…): %.120q",
					sr.name, line, strings.Join(rec, string(cr.Comma)))
			}
			cov = rowCoverage(cells)
			continue
		}
		if len(rec) != len(cols) {
			sr.skip(line, fmt.Sprintf("%d fields, where the header has %d", len(rec), len(cols)))
			continue
		}
		cells := make([]snapCell, 0, len(rec))
		var bad error
		for i, v := range rec {
			c := snapCell{col: cols[i]}
			switch {
			case c.col.role == colNone:
				continue
			case c.col.role == colTags:
				c.tags, err = parseTagText(v)
				bad = cmp.Or(bad, err)
			case v != "":
				c.vals = []string{v}
			}
			cells = append(cells, c)
		}
		if bad != nil {
			sr.skip(line, "tags: "+bad.Error())
			continue
		}
		sr.row(cells, cov, line)
	}
}

// sniffComma picks the separator of a CSV file by its header line: the
// one of ',', ';' and tab it has most of.
func sniffComma(br *bufio.Reader) rune {
	head, _ := br.Peek(4096)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	best, n := ',', bytes.Count(head, []byte(","))
	for _, c := range []rune{';', '\t'} {
		if m := bytes.Count(head, []byte(string(c))); m > n {
			best, n = c, m
		}
	}
	return best
}

// Readers

var (
	errSnapshotTooLarge = errors.New("snapshot too large")
	errValueTooLarge    = errors.New("JSON value too large")
)

// snapLimitReader reads at most n bytes, and fails after, every time
// it is read: a reader above it may swallow one error (json.Decoder.More
// does), but must not see the file end well.
type snapLimitReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *snapLimitReader) Read(p []byte) (int, error) {
	if l.over {
		return 0, errSnapshotTooLarge
	}
	if l.n <= 0 {
		// One byte more tells a file of exactly n bytes from a longer one.
		var b [1]byte
		k, err := l.r.Read(b[:])
		if k > 0 {
			l.over = true
			return 0, errSnapshotTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// jsonLines hands a decoder its input, noting where the lines end, and
// refuses more than budget bytes.
type jsonLines struct {
	r      io.Reader
	off    int64   // bytes handed out
	nls    []int64 // the offsets of newlines not yet counted in lines
	lines  int
	budget int64
}

func (c *jsonLines) Read(p []byte) (int, error) {
	if c.budget <= 0 {
		return 0, errValueTooLarge
	}
	if int64(len(p)) > c.budget {
		p = p[:c.budget]
	}
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			c.nls = append(c.nls, c.off+int64(i))
		}
	}
	c.off += int64(n)
	c.budget -= int64(n)
	return n, err
}

// lineAt returns the line of the byte at off. It is asked of offsets that
// never go back: the newlines before one are counted and let go.
func (c *jsonLines) lineAt(off int64) int {
	i, _ := slices.BinarySearch(c.nls, off)
	c.lines += i
	c.nls = c.nls[i:]
	return c.lines + 1
}

// lineLimiter fails on a line longer than maxSnapshotItem: encoding/csv
// would hold all of it.
type lineLimiter struct {
	r    io.Reader
	line int
	cur  int64 // the length of the line so far
}

type lineTooLongError struct{ line int }

func (e *lineTooLongError) Error() string {
	return fmt.Sprintf("line %d: "+lineTooLongText, e.line, maxSnapshotItem)
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.line++
			l.cur = 0
			continue
		}
		if l.cur++; l.cur > maxSnapshotItem {
			return 0, &lineTooLongError{l.line}
		}
	}
	return n, err
}
