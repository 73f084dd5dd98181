package inventory

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
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
			inv.changed(j)
			return true
		})
	}
	// The inventory's facts of each asset, by attribute and value: an asset
	// may have thousands. An asset the inventory did not have has only the
	// snapshot's facts, which overlap in nothing, and is added as it is:
	// a snapshot of a CMDB is mostly such assets.
	have := map[string][]int32{}
	// Whether the inventory had facts of each asset it had, before the
	// snapshot's, and whether those are in have yet.
	had := make([]bool, len(inv.assets))
	for ai := range inv.assets {
		had[ai] = inv.assets[ai].first != none
	}
	gathered := map[int32]bool{}
	facts := s.Facts
	if !slices.IsSortedFunc(facts, func(a, b Fact) int { return a.From.Compare(b.From) }) {
		facts = slices.Clone(facts)
		slices.SortStableFunc(facts, func(a, b Fact) int { return a.From.Compare(b.From) })
	}
	inv.reserve(s.Stats.Assets, len(facts))
	for _, sf := range facts {
		ai, found := inv.lookupAsset(sf.Asset)
		if !found || int(ai) >= len(had) || !had[ai] {
			inv.add(sf)
			continue
		}
		if !gathered[ai] {
			gathered[ai] = true
			for j := inv.assets[ai].first; j != none; j = inv.facts[j].nextOfAsset {
				g := &inv.facts[j]
				fk := factKey(sf.Asset, inv.strs.str(g.attr), inv.strs.str(g.value))
				have[fk] = append(have[fk], j)
			}
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
					inv.changed(j)
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
	// The records of each asset together, the assets in the order of
	// their first record: sorted in place, rather than gathered in a
	// slice an asset, as a snapshot of a million assets has a million
	// with one record.
	first := make(map[string]int, len(sr.recs))
	rank := make([]int, len(sr.recs))
	nvals := len(sr.facts)
	for i, r := range sr.recs {
		k := r.asset.key()
		f, ok := first[k]
		if !ok {
			f = len(first)
			first[k] = f
		}
		rank[i] = f
		nvals += len(r.vals)
	}
	byAsset := make([]int, len(sr.recs))
	for i := range byAsset {
		byAsset[i] = i
	}
	slices.SortStableFunc(byAsset, func(a, b int) int { return cmp.Compare(rank[a], rank[b]) })
	s := &Snapshot{Stats: sr.st, Facts: make([]Fact, 0, nvals), seen: make([]snapState, 0, len(sr.recs))}
	assets := len(first)
	recs := make([]snapRecord, 0, 16)
	for lo, hi := 0, 0; lo < len(byAsset); lo = hi {
		recs = recs[:0]
		for hi = lo; hi < len(byAsset) && rank[byAsset[hi]] == rank[byAsset[lo]]; hi++ {
			recs = append(recs, sr.recs[byAsset[hi]])
		}
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
		k := f.Asset.key()
		if _, ok := first[k]; !ok {
			first[k] = -1
			assets++
		}
	}
	s.Facts = append(s.Facts, sr.facts...)
	slices.SortStableFunc(s.Facts, func(a, b Fact) int { return a.From.Compare(b.From) })
	s.Stats.Assets = assets
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
