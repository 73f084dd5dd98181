package query

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A predicate is a Compare whose field is resolved and whose value is
// converted to the field's type. Parse builds one to check the query;
// Compile builds it again to emit SQL.
type predicate struct {
	field *Field   // nil for a document field
	path  []string // document field: the path segments
	op    Op
	typ   Type
	val   Value

	wild   bool // the value has wildcards: match text with LIKE
	text   string
	num    int64
	float  float64
	b      bool
	t0, t1 time.Time    // a time; for a date, t1 is the end of the day (exclusive)
	day    bool         // the value was a date
	addr   netip.Addr   // IP field, single address
	prefix netip.Prefix // IP field, CIDR prefix (valid when isPrefix)
	isPfx  bool
}

// resolveCompare checks c against its field's type. src is the query
// text, for the column of errors.
func resolveCompare(src string, c *Compare) (*predicate, *Error) {
	p := &predicate{op: c.Op, val: c.Value, typ: typeDoc, wild: c.Value.HasWildcard(), text: c.Value.Text()}
	if f, ok := fieldsByName[c.Field]; ok {
		p.field, p.typ = f, f.Type
	} else {
		p.path = strings.Split(c.Field, ".")
	}
	at := c.Value.At
	s := p.text
	ordering := c.Op != Eq && c.Op != Ne
	if p.wild {
		if ordering {
			return nil, errorf(src, at, "wildcards work only with ':' and '!='")
		}
		return p, nil
	}
	switch p.typ {
	case TypeString, TypeList:
		if ordering {
			return nil, errorf(src, c.At, "%s is %s: compare it with ':' or '!='", c.Field, typeArticle(p.typ))
		}
	case typeDoc:
		if ordering {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, errorf(src, at, "bad number %q: '%s' compares numbers", s, c.Op)
			}
			p.float = f
		}
	case TypeInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, errorf(src, at, "bad number %q: %s is an integer", s, c.Field)
		}
		p.num = n
	case TypeTime:
		t, day, ok := parseTime(s)
		if !ok {
			return nil, errorf(src, at, "bad time %q (want RFC 3339, e.g. 2024-07-31T12:00:00Z, or a date, 2024-07-31)", s)
		}
		if t.Year() < 1678 || t.Year() > 2261 {
			return nil, errorf(src, at, "time %q out of range (years 1678 to 2261)", s)
		}
		p.t0, p.day = t, day
		if day {
			p.t1 = t.AddDate(0, 0, 1)
		}
	case TypeBool:
		if ordering {
			return nil, errorf(src, c.At, "%s is true or false: compare it with ':' or '!='", c.Field)
		}
		switch strings.ToLower(s) {
		case "true":
			p.b = true
		case "false":
		default:
			return nil, errorf(src, at, "bad value %q: %s is true or false", s, c.Field)
		}
	case TypeIP:
		if ordering {
			return nil, errorf(src, c.At, "%s is an IP address: compare it with ':' or '!='", c.Field)
		}
		if strings.Contains(s, "/") {
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, errorf(src, at, "bad CIDR prefix %q", s)
			}
			p.prefix, p.isPfx = pfx.Masked(), true
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, errorf(src, at, "bad IP address %q", s)
			}
			// The store keeps IPv4 addresses in their IPv4 form.
			p.addr = a.Unmap()
		}
	}
	return p, nil
}

func typeArticle(t Type) string {
	switch t {
	case TypeString:
		return "text"
	case TypeList:
		return "a list"
	}
	return t.String()
}

// parseTime parses an RFC 3339 time, the same without a zone (UTC), or a
// date. day reports a date.
func parseTime(s string) (t time.Time, day, ok bool) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, true
	}
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), false, true
		}
	}
	return time.Time{}, false, false
}

// ipRange returns the first and last address of pfx in the 16-byte form
// of the *_ip_bin columns, where IPv4 addresses are IPv4-mapped.
func ipRange(pfx netip.Prefix) (lo, hi []byte) {
	bits := pfx.Bits()
	if pfx.Addr().Is4() {
		bits += 96
	}
	a := pfx.Addr().As16()
	b := a
	for i := bits; i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return a[:], b[:]
}

// likePattern converts a Value's Pattern to a LIKE pattern with '\' as
// the escape character.
func likePattern(pattern string) string {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		case '%', '_':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\\':
			if i+1 < len(pattern) {
				i++
				c = pattern[i]
			}
			if c == '\\' || c == '%' || c == '_' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// jsonPath renders path as a JSON path with every key quoted, so that no
// character of a key is read as path syntax: $."userIdentity"."type".
func jsonPath(path []string) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, seg := range path {
		b.WriteString(`."`)
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(seg[i])
		}
		b.WriteByte('"')
	}
	return b.String()
}
