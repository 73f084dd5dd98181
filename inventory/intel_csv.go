package inventory

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// This file reads CSV lists of indicators.

// csvRole is what a CSV column holds.
type csvRole uint8

const (
	roleNone   csvRole = iota
	roleAny            // any kind of indicator
	roleIP             // an IP address or network
	roleDomain         // a domain
	roleHost           // a domain or an IP address
	roleURL            // a URL, whose host is the indicator
	roleHash           // a hash of any kind
	roleMD5
	roleSHA1
	roleSHA256
	roleDescription // the roles from here on label, not indicate
	roleType
	roleSource
)

// csvColumns maps header names, as columnKey leaves them, to their roles.
var csvColumns = map[string]csvRole{
	"indicator": roleAny, "value": roleAny, "ioc": roleAny, "iocvalue": roleAny, "observable": roleAny,
	"ip": roleIP, "ipaddress": roleIP, "ipaddr": roleIP, "address": roleIP, "cidr": roleIP,
	"network": roleIP, "subnet": roleIP, "prefix": roleIP,
	"domain": roleDomain, "domainname": roleDomain, "fqdn": roleDomain,
	"host": roleHost, "hostname": roleHost,
	"url":  roleURL,
	"hash": roleHash, "filehash": roleHash,
	"md5": roleMD5, "sha1": roleSHA1, "sha256": roleSHA256,
	"description": roleDescription, "desc": roleDescription, "comment": roleDescription,
	"comments": roleDescription, "name": roleDescription, "title": roleDescription,
	"type": roleType, "threattype": roleType, "threat": roleType, "category": roleType,
	"malware": roleType, "indicatortype": roleType,
	"source": roleSource, "feed": roleSource, "list": roleSource,
}

// columnKey normalizes a header cell: "IP Address", "ip_address" and
// "# ip-address" are one column.
func columnKey(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-', '#', '\t', '"':
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// csvHeader is the meaning of a CSV file's columns.
type csvHeader struct {
	roles             []csvRole
	desc, typ, source int // column indexes, -1 when absent
	indicators        int // columns of indicator roles
}

func parseCSVHeader(rec []string) csvHeader {
	h := csvHeader{roles: make([]csvRole, len(rec)), desc: -1, typ: -1, source: -1}
	for i, cell := range rec {
		r := csvColumns[columnKey(cell)]
		h.roles[i] = r
		switch {
		case r == roleNone:
		case r < roleDescription:
			h.indicators++
		case r == roleDescription && h.desc < 0:
			h.desc = i
		case r == roleType && h.typ < 0:
			h.typ = i
		case r == roleSource && h.source < 0:
			h.source = i
		}
	}
	return h
}

// readCSV reads a CSV list with a header row.
func (b *intelBuilder) readCSV(st *IntelStats, file string, br *bufio.Reader) error {
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var (
		h        csvHeader
		haveHead bool
		comment  []string // the last comment row, perhaps a header
		list     = b.label(Match{Source: st.Name})
	)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil // an empty list, or one of only comments, is no error
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			st.skip(pe.StartLine, "bad CSV: "+pe.Err.Error())
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err) // from the file, not the CSV
		}
		line, _ := cr.FieldPos(0)
		if strings.HasPrefix(strings.TrimSpace(rec[0]), "#") {
			if !haveHead {
				comment = slices.Clone(rec)
			}
			continue
		}
		if !haveHead {
			h = parseCSVHeader(rec)
			if h.indicators == 0 && comment != nil {
				if ch := parseCSVHeader(comment); ch.indicators > 0 {
					// The header was commented out: this row is data.
					h, haveHead = ch, true
				}
			}
			if h.indicators == 0 {
				return fmt.Errorf("%s:%d: CSV header names no indicator column (want indicator, value, ip, domain, url, hash, …): %.120q", file, line, strings.Join(rec, ","))
			}
			if !haveHead {
				haveHead = true
				continue
			}
		}
		b.readCSVRow(st, h, rec, line, list)
	}
}

// readCSVRow adds the indicators of one CSV row.
func (b *intelBuilder) readCSVRow(st *IntelStats, h csvHeader, rec []string, line int, list uint32) {
	cell := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	label := list
	if d, t, s := cell(h.desc), cell(h.typ), cell(h.source); d != "" || t != "" || s != "" {
		if s == "" {
			s = st.Name
		}
		label = b.label(Match{Source: s, Type: t, Description: d})
	}
	found := false
	for i, role := range h.roles {
		if role == roleNone || role >= roleDescription {
			continue
		}
		v := cell(i)
		if v == "" {
			continue
		}
		found = true
		ind, err := parseCell(role, v)
		if err != nil {
			st.skip(line, err.Error())
			continue
		}
		b.add(ind, label, st)
	}
	if !found {
		st.skip(line, "no indicator in the row")
	}
}

// parseCell parses a CSV cell as its column's role wants.
func parseCell(role csvRole, v string) (indicator, error) {
	if role == roleURL {
		return urlIndicator(v)
	}
	ind, err := parseIndicator(v)
	if err != nil {
		return ind, err
	}
	if !fits(role, ind.kind) {
		return indicator{}, fmt.Errorf("%.80q does not fit its column", v)
	}
	return ind, nil
}

// fits reports whether a column of a role may hold an indicator kind.
func fits(role csvRole, k indKind) bool {
	switch role {
	case roleAny:
		return true
	case roleIP:
		return k == kindIP || k == kindCIDR
	case roleDomain:
		return k == kindDomain
	case roleHost:
		return k == kindDomain || k == kindIP
	case roleHash:
		return k >= kindMD5
	case roleMD5:
		return k == kindMD5
	case roleSHA1:
		return k == kindSHA1
	case roleSHA256:
		return k == kindSHA256
	}
	return false
}

// urlIndicator takes the host of a URL: an IP address or a domain.
func urlIndicator(v string) (indicator, error) {
	s := v
	if !strings.Contains(s, "://") {
		s = "http://" + s // a URL written without its scheme
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return indicator{}, fmt.Errorf("not a URL: %.80q", v)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return addrIndicator(a), nil
	}
	d, err := normDomain(host)
	if err != nil {
		return indicator{}, fmt.Errorf("URL %.80q: %w", v, err)
	}
	return indicator{kind: kindDomain, domain: d}, nil
}
