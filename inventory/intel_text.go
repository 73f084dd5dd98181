package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// This file reads plain-text lists of indicators, and the indicators
// themselves (addresses, networks, domains, hashes) for every format.

// readText reads a list of one indicator a line.
func (b *intelBuilder) readText(st *IntelStats, file string, br *bufio.Reader) error {
	list := b.label(Match{Source: st.Name})
	lines := lineReader{r: br}
	for {
		raw, err := lines.next()
		if err == errLineTooLong {
			st.skip(lines.n, "line too long")
			continue
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", file, lines.n, err)
		}
		line := string(bytes.TrimSpace(raw))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		label := list
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			if d := strings.TrimSpace(line[i+1:]); d != "" {
				label = b.label(Match{Source: st.Name, Description: d})
			}
			line = strings.TrimSpace(line[:i])
		}
		if strings.ContainsAny(line, " \t") {
			st.skip(lines.n, "more than one field")
			continue
		}
		ind, err := parseIndicator(line)
		if err != nil {
			st.skip(lines.n, err.Error())
			continue
		}
		b.add(ind, label, st)
	}
}

var errLineTooLong = errors.New("line too long")

// lineReader reads lines without holding more than its buffer, so a
// list of any size streams through.
type lineReader struct {
	r *bufio.Reader
	n int // the line last read, from 1
}

// next returns the next line, without its newline, valid until the next
// call. A line longer than the buffer is dropped with errLineTooLong.
func (lr *lineReader) next() ([]byte, error) {
	line, err := lr.r.ReadSlice('\n')
	if err == io.EOF && len(line) == 0 {
		return nil, io.EOF
	}
	lr.n++
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = lr.r.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, errLineTooLong
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	return line, nil
}

// parseIndicator detects the kind of a list entry and parses it.
func parseIndicator(s string) (indicator, error) {
	if s == "" {
		return indicator{}, errors.New("empty")
	}
	if strings.Contains(s, "/") || strings.Contains(s, ":") {
		if strings.Contains(s, "://") {
			return indicator{}, errors.New("a URL: list its host instead")
		}
		return parseNet(s)
	}
	if ind, ok := parseHashIndicator(s); ok {
		return ind, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return addrIndicator(a), nil
	}
	if len(s) >= 16 && isHex(s) {
		return indicator{}, fmt.Errorf("hex of length %d: not an MD5, SHA-1 or SHA-256 hash", len(s))
	}
	d, err := normDomain(s)
	if err != nil {
		return indicator{}, err
	}
	return indicator{kind: kindDomain, domain: d}, nil
}

// parseNet parses an IP address or CIDR network.
func parseNet(s string) (indicator, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return indicator{}, fmt.Errorf("not an IP address: %.80q", s)
		}
		return addrIndicator(a), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return indicator{}, fmt.Errorf("not a CIDR network: %.80q", s)
	}
	p = normPrefix(p)
	if p.IsSingleIP() {
		return indicator{kind: kindIP, prefix: p}, nil
	}
	return indicator{kind: kindCIDR, prefix: p}, nil
}

func addrIndicator(a netip.Addr) indicator {
	a = a.Unmap().WithZone("")
	return indicator{kind: kindIP, prefix: netip.PrefixFrom(a, a.BitLen())}
}

func parseHashIndicator(s string) (indicator, bool) {
	kind, sum, ok := parseHash(s)
	if !ok {
		return indicator{}, false
	}
	return indicator{kind: kind, hash: sum}, true
}

// parseHash decodes a hex MD5, SHA-1 or SHA-256 hash without allocating.
func parseHash[T string | []byte](s T) (indKind, [32]byte, bool) {
	var sum [32]byte
	var kind indKind
	switch len(s) {
	case 32:
		kind = kindMD5
	case 40:
		kind = kindSHA1
	case 64:
		kind = kindSHA256
	default:
		return 0, sum, false
	}
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return 0, sum, false
		}
		sum[i/2] = hi<<4 | lo
	}
	return kind, sum, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

// normDomain lower-cases a domain and checks it is one: two labels or
// more (a listed "com" would match half the Internet), of letters, digits,
// '-' and '_' (DNS has _dmarc and the like), the last not all digits (that
// is a mistyped IP address). A leading "*." or "." is dropped: subdomains
// match anyway.
func normDomain(s string) (string, error) {
	d := strings.TrimSuffix(s, ".")
	d = strings.TrimPrefix(d, "*.")
	d = strings.TrimPrefix(d, ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	if len(d) > 253 {
		return "", fmt.Errorf("domain longer than 253 bytes: %.40q…", d)
	}
	labels, digits, start := 0, true, 0
	for i := 0; i <= len(d); i++ {
		if i == len(d) || d[i] == '.' {
			n := i - start
			if n == 0 || n > 63 {
				return "", fmt.Errorf("not an IP address, network, domain or hash: %.80q", s)
			}
			labels++
			if i < len(d) {
				digits, start = true, i+1
			}
			continue
		}
		c := d[i]
		switch {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-', c == '_':
			digits = false
		default:
			return "", fmt.Errorf("not an IP address, network, domain or hash: %.80q", s)
		}
	}
	if labels < 2 {
		return "", fmt.Errorf("not a domain: %.80q has one label", s)
	}
	if digits {
		return "", fmt.Errorf("not an IP address or domain: %.80q", s)
	}
	return strings.ToLower(d), nil
}
