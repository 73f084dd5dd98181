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
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// This file reads the rows of CSV and JSON snapshots.

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
	if provider == "" && (isAWSAccount(account) || strings.HasPrefix(id, "arn:aws") || awsResourceID.MatchString(id)) {
		// A CMDB's export names no cloud: the events that name its
		// assets do, by these ids.
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
// awsResourceID matches the ids EC2 gives instances, network interfaces
// and address allocations.
var awsResourceID = regexp.MustCompile(`^(?:i|eni|eipalloc)-[0-9a-f]{8,17}$`)

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
