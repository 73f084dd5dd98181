package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/event"
)

// The syslog format reads the forms hosts write syslog in:
//
//   - RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG
//   - RFC 3164 and the traditional file format, with or without <PRI>:
//     Mmm dd hh:mm:ss host tag[pid]: msg
//   - the same with an RFC 3339 timestamp (rsyslog's high-precision
//     files), and ChromeOS's variant, which writes a severity word where
//     the host would be
//   - rsyslog's ForwardFormat and TraditionalForwardFormat files, whose
//     <PRI>-prefixed records follow one another without a newline.
//
// A line that starts no record continues the message of the record
// before it (a multi-line message), joined with "\n". Only a line with
// no record before it, or one holding binary data, is quarantined as not
// syslog; a line that starts like a record (<PRI>, or a timestamp) but
// does not parse as one is quarantined with the reason.
//
// Timestamps without a year take Options.Year, or the year that puts the
// time no more than a day after Received; timestamps without a zone are
// read in Options.Location, UTC unless set.

func init() {
	register(&Format{
		Name:        "syslog",
		Description: "syslog: RFC 5424, RFC 3164 and traditional files (rsyslog, ChromeOS, macOS); sshd logins become authentication events",
		parse:       parseSyslog,
	})
	// Syslog's shape is loose enough to claim other line formats (a VPC
	// flow log header is a line of words), so it is sniffed last.
	registerFallbackSniffer("syslog", sniffSyslog)
}

var utf8BOM = []byte("\xef\xbb\xbf")

// tsKind is the kind of timestamp a traditional record starts with.
type tsKind uint8

const (
	tsNone tsKind = iota
	tsBSD         // Mmm dd hh:mm:ss
	tsISO         // 2006-01-02T15:04:05.999999-07:00
)

// syslogHeader is what precedes a record's message.
type syslogHeader struct {
	pri       int    // -1 when the record has none
	severity  string // from a severity word when there is no PRI (ChromeOS, macOS)
	time      time.Time
	timestamp string // as written
	host      string
	app       string // APP-NAME or tag, without the pid
	procid    string
	msgid     string
	sd        map[string]map[string]string
	// forward is the timestamp kind of a <PRI>-prefixed traditional
	// record: rsyslog's forward formats, which may be concatenated on one
	// line. Zero for other records.
	forward tsKind
}

func parseSyslog(p *parser, r *bufio.Reader) error {
	s := &syslogStream{p: p, lr: newLineReader(r, p.opts.MaxLine), prevEnd: -1}
	return s.run()
}

// SyslogMessage parses one message that a listener has already framed: a
// UDP datagram, or an RFC 6587 or RFC 5425 frame. Unlike a line of a
// file, a framed message is one record whatever it holds: its newlines
// belong to its message, and it is neither split into forward-format
// records nor joined to the message before it. A message that starts
// with neither <PRI> nor a timestamp is quarantined, as such a line of a
// file would be.
//
// Line terminators and NULs at the end of msg, which some senders
// append, are not part of the message; Raw, a copy of msg, keeps them.
// A msg longer than opts.MaxLine is quarantined with its first bytes.
func SyslogMessage(msg []byte, opts Options) Result {
	var res Result
	p := newParser("syslog", opts, func(r Result) error {
		res = r
		return nil
	})
	if len(msg) > p.opts.MaxLine {
		p.reject(fmt.Errorf("message longer than %d bytes", p.opts.MaxLine), bytes.Clone(msg[:min(len(msg), previewSize)]), 0, 0)
		return res
	}
	raw := bytes.Clone(msg)
	b := bytes.TrimRight(bytes.TrimPrefix(raw, utf8BOM), "\r\n\x00")
	if len(bytes.TrimSpace(b)) == 0 {
		p.reject(errors.New("empty syslog message"), raw, 0, 0)
		return res
	}
	// The header is on the first line, as in a file, and the lines after
	// it continue the message.
	first, _, _ := bytes.Cut(b, []byte("\n"))
	first = bytes.TrimSuffix(first, []byte("\r"))
	if !syslogRecordStart(first) {
		reason := errors.New("not a syslog record: the message starts with neither <PRI> nor a timestamp")
		if why := binaryReason(first); why != "" {
			reason = fmt.Errorf("not syslog: %s", why)
		}
		p.reject(reason, raw, 0, 0)
		return res
	}
	h, msgAt, err := parseSyslogHeader(first, &p.opts)
	if err != nil {
		p.reject(err, raw, 0, 0)
		return res
	}
	p.event(syslogEvent(h, b[msgAt:], p.opts.Received), raw, 0, 0)
	return res
}

// syslogStream carries the record being read, which later lines may
// continue, across the lines of one input.
type syslogStream struct {
	p  *parser
	lr *lineReader

	cur *syslogRecord
	// prevEnd is the offset just past the text of the previous line, so
	// that the terminator between it and the next can be restored in Raw;
	// -1 when unknown.
	prevEnd int64
	// rejected says the last record was quarantined, so that its
	// continuation lines are quarantined with a reason that says so.
	rejected bool
}

// syslogRecord is a record whose message later lines may still continue.
type syslogRecord struct {
	h            syslogHeader
	raw          []byte
	msg          []byte
	line, offset int64
	// gap holds the terminators and blank lines after raw: part of the
	// record if a continuation line follows, dropped otherwise.
	gap      []byte
	gapLines int
}

func (s *syslogStream) run() error {
	for {
		l, err := s.lr.next()
		if err == io.EOF {
			return s.flush()
		}
		if err != nil {
			if ferr := s.flush(); ferr != nil {
				return ferr
			}
			return err
		}
		var term []byte
		switch l.offset - s.prevEnd {
		case 1:
			term = []byte("\n")
		case 2:
			term = []byte("\r\n")
		}
		s.prevEnd = l.offset + int64(len(l.b))
		b, offset := l.b, l.offset
		if l.num == 1 && bytes.HasPrefix(b, utf8BOM) {
			b, offset = b[len(utf8BOM):], offset+int64(len(utf8BOM))
		}
		if l.tooLong {
			s.prevEnd = -1
			if err := s.flush(); err != nil {
				return err
			}
			s.rejected = true
			if err := s.p.reject(s.lr.errTooLong(), bytes.Clone(b), l.num, offset); err != nil {
				return err
			}
			continue
		}
		if len(bytes.TrimSpace(b)) == 0 {
			if c := s.cur; c != nil {
				if len(c.raw)+len(c.gap)+len(term)+len(b) > s.p.opts.MaxLine {
					// Blank lines are no record of their own: a flood of
					// them only ends the record before.
					if err := s.flush(); err != nil {
						return err
					}
					continue
				}
				c.gap = append(append(c.gap, term...), b...)
				c.gapLines++
			}
			continue
		}
		if err := s.line(b, term, l.num, offset); err != nil {
			return err
		}
	}
}

// line handles one non-blank line: a continuation of the current record,
// one or more records, or both.
func (s *syslogStream) line(b, term []byte, num, offset int64) error {
	pos := 0
	if !syslogRecordStart(b) {
		if why := binaryReason(b); why != "" {
			if err := s.flush(); err != nil {
				return err
			}
			s.rejected = true
			return s.p.reject(fmt.Errorf("not syslog: %s", why), bytes.Clone(b), num, offset)
		}
		c := s.cur
		if c == nil {
			// A forward-format line may go on with records after the
			// continuation of a quarantined one.
			end := len(b)
			if i := nextForwardStart(b, 1, tsNone); i > 0 {
				end = i
			}
			reason := errors.New("not a syslog record: the line starts with neither <PRI> nor a timestamp, and no record precedes it")
			if s.rejected {
				reason = errors.New("not a syslog record: continuation line of a quarantined record")
			}
			if err := s.p.reject(reason, bytes.Clone(b[:end]), num, offset); err != nil {
				return err
			}
			if end == len(b) {
				return nil
			}
			pos = end
		} else {
			end := len(b)
			if c.h.forward != tsNone {
				if i := nextForwardStart(b, 0, c.h.forward); i >= 0 {
					end = i
				}
			}
			if len(c.raw)+len(c.gap)+len(term)+end > s.p.opts.MaxLine {
				if err := s.flush(); err != nil {
					return err
				}
				s.rejected = true
				err := fmt.Errorf("continuation line would make its record longer than %d bytes", s.p.opts.MaxLine)
				if err := s.p.reject(err, bytes.Clone(b[:end]), num, offset); err != nil {
					return err
				}
			} else {
				c.raw = append(append(append(c.raw, c.gap...), term...), b[:end]...)
				for range c.gapLines + 1 {
					c.msg = append(c.msg, '\n')
				}
				c.msg = append(c.msg, b[:end]...)
				c.gap, c.gapLines = c.gap[:0], 0
			}
			if end == len(b) {
				return nil
			}
			pos = end
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	for pos < len(b) {
		rec := b[pos:]
		h, msgAt, err := parseSyslogHeader(rec, &s.p.opts)
		if err != nil {
			end := len(rec)
			if rec[0] == '<' {
				if i := nextForwardStart(rec, 1, tsNone); i > 0 {
					end = i
				}
			}
			s.rejected = true
			if err := s.p.reject(err, bytes.Clone(rec[:end]), num, offset+int64(pos)); err != nil {
				return err
			}
			pos += end
			continue
		}
		end := len(rec)
		if h.forward != tsNone {
			if i := nextForwardStart(rec, max(msgAt, 1), h.forward); i >= 0 {
				end = i
			}
		}
		s.cur = &syslogRecord{
			h:      h,
			raw:    bytes.Clone(rec[:end]),
			msg:    bytes.Clone(rec[min(msgAt, end):end]),
			line:   num,
			offset: offset + int64(pos),
		}
		s.rejected = false
		pos += end
		if pos < len(b) {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush emits the current record, if any.
func (s *syslogStream) flush() error {
	c := s.cur
	if c == nil {
		return nil
	}
	s.cur = nil
	ev := syslogEvent(c.h, c.msg, s.p.opts.Received)
	return s.p.event(ev, c.raw, c.line, c.offset)
}

// syslogEvent builds the event of one record.
func syslogEvent(h syslogHeader, msgBytes []byte, received time.Time) *event.Event {
	msg := strings.ToValidUTF8(string(msgBytes), "\uFFFD")
	ev := &event.Event{
		Time:    h.time,
		Class:   event.ClassSystemLog,
		Host:    h.host,
		Service: serviceName(h.app),
		Message: msg,
	}
	if ev.Time.IsZero() {
		// RFC 5424's NILVALUE or a bare <PRI>: a relay stamps its own
		// time on such records, and so do we.
		ev.Time = received
	}
	doc := syslogDoc{
		Timestamp:      h.timestamp,
		Hostname:       h.host,
		Appname:        h.app,
		Procid:         h.procid,
		Msgid:          h.msgid,
		StructuredData: h.sd,
		Message:        msg,
	}
	if h.pri >= 0 {
		pri := h.pri
		doc.Priority = &pri
		doc.Facility = facilityNames[pri/8]
		doc.Severity = severityNames[pri%8]
	} else {
		doc.Severity = h.severity
	}
	inner := msg
	if n, rest, ok := repeatedMessage(msg); ok {
		doc.Repeated, inner = n, rest
	}
	if isSSHD(ev.Service) {
		if a, ok := parseSSHD(inner); ok {
			a.apply(ev)
			doc.sshdFields = &a.fields
		}
	}
	ev.Doc = marshalDoc(doc)
	return ev
}

// syslogDoc is the document original field names resolve against.
type syslogDoc struct {
	Facility       string                       `json:"facility,omitempty"`
	Severity       string                       `json:"severity,omitempty"`
	Priority       *int                         `json:"priority,omitempty"`
	Timestamp      string                       `json:"timestamp,omitempty"`
	Hostname       string                       `json:"hostname,omitempty"`
	Appname        string                       `json:"appname,omitempty"`
	Procid         string                       `json:"procid,omitempty"`
	Msgid          string                       `json:"msgid,omitempty"`
	StructuredData map[string]map[string]string `json:"structured_data,omitempty"`
	Message        string                       `json:"message"`
	Repeated       int                          `json:"repeated,omitempty"`
	*sshdFields
}

// marshalDoc encodes v without HTML escaping, which would only make the
// angle brackets of log messages unreadable.
func marshalDoc(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only strings and numbers go in: this cannot happen.
		return nil
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var facilityNames = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

var severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// severityWords maps the severity words ChromeOS writes in place of the
// host, and macOS after the tag, to RFC 5424 severity names.
var severityWords = map[string]string{
	"EMERG": "emerg", "EMERGENCY": "emerg", "PANIC": "emerg",
	"ALERT": "alert",
	"CRIT":  "crit", "CRITICAL": "crit",
	"ERR": "err", "ERROR": "err",
	"WARNING": "warning", "WARN": "warning",
	"NOTICE": "notice",
	"INFO":   "info",
	"DEBUG":  "debug",
}

// serviceName reduces a tag to the program's name, so that "sshd",
// "sshd(pam_unix)" and "/usr/sbin/sshd" are one service; Doc keeps the
// tag as written.
func serviceName(app string) string {
	if i := strings.IndexByte(app, '('); i > 0 {
		app = app[:i]
	}
	if strings.Contains(app, "/") {
		app = path.Base(app)
	}
	return app
}

// repeatedMessage reads rsyslog's "message repeated N times: [ msg]" and
// syslogd's "last message repeated N times".
func repeatedMessage(msg string) (n int, inner string, ok bool) {
	if rest, ok := strings.CutPrefix(msg, "message repeated "); ok {
		num, rest, ok := strings.Cut(rest, " times: [")
		if !ok || !strings.HasSuffix(rest, "]") {
			return 0, "", false
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 {
			return 0, "", false
		}
		return n, strings.TrimLeft(rest[:len(rest)-1], " "), true
	}
	s := strings.Trim(msg, "- ")
	if rest, ok := strings.CutPrefix(s, "last message repeated "); ok {
		num, tail, ok := strings.Cut(rest, " time")
		if n, err := strconv.Atoi(num); ok && err == nil && n >= 0 && (tail == "s" || tail == "") {
			return n, "", true
		}
	}
	return 0, "", false
}

// syslogRecordStart reports whether b starts like a record: with <PRI>,
// or with a timestamp. A line that does is a record or is quarantined; it
// is never taken as the continuation of another.
func syslogRecordStart(b []byte) bool {
	if len(b) >= 3 && b[0] == '<' {
		i := 1
		for i < len(b) && i < 5 && isDigit(b[i]) {
			i++
		}
		return i > 1 && i < len(b) && b[i] == '>'
	}
	return looksBSDTime(b) || looksISOTime(b)
}

// looksBSDTime reports whether b starts with "Mmm d hh:" or "Mmm dd hh:".
func looksBSDTime(b []byte) bool {
	if len(b) < 10 || month(b[:3]) == 0 || b[3] != ' ' {
		return false
	}
	i := 4
	for i < len(b) && b[i] == ' ' {
		i++
	}
	d := i
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i > d && i-d <= 2 && len(b) >= i+4 && b[i] == ' ' && isDigit(b[i+1]) && isDigit(b[i+2]) && b[i+3] == ':'
}

// looksISOTime reports whether b starts with "yyyy-mm-ddT".
func looksISOTime(b []byte) bool {
	return len(b) >= 11 && isDigit(b[0]) && isDigit(b[1]) && isDigit(b[2]) && isDigit(b[3]) &&
		b[4] == '-' && isDigit(b[5]) && isDigit(b[6]) && b[7] == '-' && isDigit(b[8]) && isDigit(b[9]) &&
		(b[10] == 'T' || b[10] == 't')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

var months = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// month returns the month a three-letter English abbreviation names, in
// any case, or 0.
func month(b []byte) time.Month {
	if len(b) != 3 {
		return 0
	}
	for i, m := range months {
		if (b[0]|0x20) == m[0] && (b[1]|0x20) == m[1] && (b[2]|0x20) == m[2] {
			return time.Month(i + 1)
		}
	}
	return 0
}

// nextForwardStart returns the index, at or after from, of the next
// record of a forward-format line: <PRI> followed by a timestamp of kind
// (either kind for tsNone). Messages may hold "<" and even "<13>", so the
// timestamp must parse too. It returns -1 if there is none.
func nextForwardStart(b []byte, from int, kind tsKind) int {
	for i := from; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return -1
		}
		i += j
		k := i + 1
		for k < len(b) && k-i <= 3 && isDigit(b[k]) {
			k++
		}
		if k == i+1 || k >= len(b) || b[k] != '>' {
			continue
		}
		if pri, err := strconv.Atoi(string(b[i+1 : k])); err != nil || pri > 191 {
			continue
		}
		rest := b[k+1:]
		if (kind == tsNone || kind == tsBSD) && looksBSDTime(rest) {
			if _, _, err := bsdTimestamp(rest, &Options{Received: time.Now()}); err == nil {
				return i
			}
		}
		if (kind == tsNone || kind == tsISO) && looksISOTime(rest) {
			if _, _, err := isoTimestamp(rest, nil); err == nil {
				return i
			}
		}
	}
	return -1
}

// binaryReason says why a line that starts no record is not text, or
// returns "".
func binaryReason(b []byte) string {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return fmt.Sprintf("binary data (byte 0x%02x at column %d)", c, i+1)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return fmt.Sprintf("invalid UTF-8 (byte 0x%02x at column %d)", c, i+1)
		}
		i += n
	}
	return ""
}

// parseSyslogHeader parses the header of the record b starts with and
// returns where its message starts.
func parseSyslogHeader(b []byte, opts *Options) (h syslogHeader, msgAt int, err error) {
	h.pri = -1
	i := 0
	if b[0] == '<' {
		j := bytes.IndexByte(b[:min(len(b), 5)], '>')
		if j < 2 || bytes.IndexFunc(b[1:j], func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return h, 0, fmt.Errorf("invalid syslog priority %q", truncate(string(b[:min(len(b), 8)]), 8))
		}
		pri, err := strconv.Atoi(string(b[1:j]))
		if err != nil || pri > 191 {
			return h, 0, fmt.Errorf("invalid syslog priority <%s>: want 0 to 191", b[1:j])
		}
		h.pri, i = pri, j+1
		// RFC 5424 follows the PRI with VERSION (1 to 99; 1 so far) and
		// a space, which no traditional header starts with.
		if v := i; v < len(b) && b[v] >= '1' && b[v] <= '9' {
			for v < len(b) && v-i < 2 && isDigit(b[v]) {
				v++
			}
			if v < len(b) && b[v] == ' ' {
				return parseRFC5424(b, h, i, opts)
			}
		}
	}
	rest := b[i:]
	var n int
	switch {
	case looksBSDTime(rest):
		h.time, n, err = bsdTimestamp(rest, opts)
		h.forward = tsBSD
	case looksISOTime(rest):
		h.time, n, err = isoTimestamp(rest, opts.Location)
		h.forward = tsISO
	case h.pri >= 0:
		// RFC 3164 4.3.3: a PRI with no timestamp. The rest is the
		// message; it must at least be text to count as a record.
		if why := binaryReason(rest); why != "" {
			return h, 0, fmt.Errorf("not syslog: after the priority, %s", why)
		}
		return h, i + countSpaces(rest, 0), nil
	default:
		return h, 0, errors.New("not a syslog record: no priority or timestamp")
	}
	if err != nil {
		return h, 0, err
	}
	if h.pri < 0 {
		h.forward = tsNone
	}
	h.timestamp = string(rest[:n])
	i += n
	return parseTraditional(b, h, i)
}

// parseTraditional parses what follows the timestamp of an RFC 3164 or
// traditional file record: [severity|host] tag[pid][ <Level>]: msg, where
// all but the message may be missing.
func parseTraditional(b []byte, h syslogHeader, i int) (syslogHeader, int, error) {
	if i < len(b) && b[i] == ':' {
		// "Mar 11 09:39:39: --- last message repeated 5 times ---"
		return h, countSpaces(b, i+1), nil
	}
	if countSpaces(b, i) >= len(b) {
		return h, 0, errors.New("syslog record ends after its timestamp")
	}
	if b[i] != ' ' && b[i] != '\t' {
		return h, 0, fmt.Errorf("syslog timestamp %q is not followed by a space", h.timestamp)
	}
	i = countSpaces(b, i)
	t1, after1 := token(b, i)
	switch {
	case severityWords[string(t1)] != "" && h.pri < 0 && tagWithColon(b, after1):
		// ChromeOS: "2016-10-25T12:37:23.297265-07:00 INFO periodic_scheduler[13707]: msg"
		h.severity = severityWords[string(t1)]
		i = after1
	case len(t1) > 1 && t1[len(t1)-1] == ':' && !isIP(t1):
		// No host: "Nov 18 08:30:20 kernel: [997.390602] …"
	default:
		h.host = string(t1)
		i = after1
	}
	i = countSpaces(b, i)
	if i >= len(b) {
		return h, i, nil
	}
	return parseTag(b, h, i)
}

// parseTag reads a tag at b[i:]: "tag:", "tag[pid]:", "tag[pid] <Level>:",
// or, as rsyslog's own parser allows, a word without a colon.
func parseTag(b []byte, h syslogHeader, i int) (syslogHeader, int, error) {
	t, after := token(b, i)
	tag := t
	if j := bytes.IndexByte(t, ':'); j >= 0 {
		tag = t[:j]
		after = i + j + 1
	} else if lvl, n := macLevel(b, after); n > 0 {
		// macOS: "sockerfilterfw[1985] <Info>: launchd Allow …"
		h.severity = lvl
		after = n
	}
	name, pid, ok := splitTag(tag)
	if !ok {
		// Not a tag after all ("-- root[2421]: ROOT LOGIN ON tty2"):
		// the whole rest is the message.
		return h, i, nil
	}
	h.app, h.procid = name, pid
	return h, countSpaces(b, after), nil
}

// splitTag splits "name[pid]" and checks that name looks like a program.
func splitTag(tag []byte) (name, pid string, ok bool) {
	if j := bytes.IndexByte(tag, '['); j > 0 && tag[len(tag)-1] == ']' {
		pid = string(tag[j+1 : len(tag)-1])
		tag = tag[:j]
	}
	if len(tag) == 0 {
		return "", "", false
	}
	c := tag[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '/' || c == '_') {
		return "", "", false
	}
	for _, c := range tag {
		if c <= ' ' || c == '[' || c == ']' || c == '<' || c == '>' || c == '"' || c >= 0x7f {
			return "", "", false
		}
	}
	return string(tag), pid, true
}

// tagWithColon reports whether the next token at b[i:] is a tag ending in
// a colon, as the tag after ChromeOS's severity word always is.
func tagWithColon(b []byte, i int) bool {
	i = countSpaces(b, i)
	t, _ := token(b, i)
	if len(t) < 2 || t[len(t)-1] != ':' {
		return false
	}
	_, _, ok := splitTag(t[:len(t)-1])
	return ok
}

// macLevel reads macOS's " <Level>:" after a tag, returning the severity
// and the index after the colon, or n == 0.
func macLevel(b []byte, i int) (string, int) {
	if i+1 >= len(b) || b[i] != ' ' || b[i+1] != '<' {
		return "", 0
	}
	j := bytes.Index(b[i:min(len(b), i+16)], []byte(">:"))
	if j < 0 {
		return "", 0
	}
	sev := severityWords[strings.ToUpper(string(b[i+2:i+j]))]
	if sev == "" {
		return "", 0
	}
	return sev, i + j + 2
}

// token returns the run of non-space bytes at b[i:] and where it ends.
func token(b []byte, i int) ([]byte, int) {
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], j
}

// countSpaces returns the index of the first byte at or after i that is
// not a space.
func countSpaces(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

func isIP(b []byte) bool {
	_, err := netip.ParseAddr(string(b))
	return err == nil
}

// bsdTimestamp reads "Mmm dd hh:mm:ss[.fraction]" and returns the time
// and the length read. The year is inferred (see syslogYear).
func bsdTimestamp(b []byte, opts *Options) (time.Time, int, error) {
	mon := month(b[:3])
	i := countSpaces(b, 3)
	day, i := digits(b, i, 2)
	n := i
	if i < len(b) && b[i] == ' ' {
		i++
	}
	hh, i := digits(b, i, 2)
	ok := i-n == 3 && i < len(b) && b[i] == ':'
	mm, j := digits(b, i+1, 2)
	ok = ok && j == i+3 && j < len(b) && b[j] == ':'
	ss, k := digits(b, j+1, 2)
	ok = ok && k == j+3
	nsec := 0
	if ok && k+1 < len(b) && b[k] == '.' && isDigit(b[k+1]) {
		f, e := digits(b, k+1, 9)
		scale := e - k - 1
		nsec = f
		for ; scale < 9; scale++ {
			nsec *= 10
		}
		k = e
	}
	raw := string(b[:min(k, len(b))])
	if !ok || k < len(b) && b[k] != ' ' && b[k] != ':' && b[k] != '\t' {
		return time.Time{}, 0, fmt.Errorf("invalid RFC 3164 timestamp %q", truncate(string(b[:min(len(b), 20)]), 20))
	}
	if day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, 0, fmt.Errorf("RFC 3164 timestamp %q out of range", raw)
	}
	year, err := syslogYear(mon, day, hh, opts)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("RFC 3164 timestamp %q: %w", raw, err)
	}
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	t := time.Date(year, mon, day, hh, mm, ss, nsec, loc)
	if t.Day() != day {
		return time.Time{}, 0, fmt.Errorf("RFC 3164 timestamp %q: no such day in %d", raw, year)
	}
	return t.UTC(), k, nil
}

// digits reads up to max decimal digits at b[i:].
func digits(b []byte, i, max int) (int, int) {
	v, j := 0, i
	for j < len(b) && j-i < max && isDigit(b[j]) {
		v = v*10 + int(b[j]-'0')
		j++
	}
	return v, j
}

// syslogYear gives a year to a timestamp that has none: Options.Year if
// set, else the year of Received, or the one before when that would put
// the time more than a day after Received (a December record read in
// January). February 29 goes back to the last leap year.
func syslogYear(mon time.Month, day, hour int, opts *Options) (int, error) {
	leap := func(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }
	if opts.Year != 0 {
		if mon == time.February && day == 29 && !leap(opts.Year) {
			return 0, fmt.Errorf("date is February 29 in %d, which is not a leap year", opts.Year)
		}
		return opts.Year, nil
	}
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	recv := opts.Received
	if recv.IsZero() {
		recv = time.Now()
	}
	recv = recv.In(loc)
	y := recv.Year()
	d := day
	if mon == time.February && day == 29 {
		d = 28 // so that Date does not make it March 1 in a common year
	}
	if time.Date(y, mon, d, hour, 0, 0, 0, loc).After(recv.Add(24 * time.Hour)) {
		y--
	}
	if mon == time.February && day == 29 {
		for !leap(y) {
			y--
		}
	}
	return y, nil
}

// maxISOTimestamp bounds the search for the end of an RFC 3339
// timestamp ("2006-01-02T15:04:05.999999999-07:00:" is 36 bytes), so that
// a line of many "<1>2021-01-01T…" candidates costs linear time.
const maxISOTimestamp = 40

// isoTimestamp reads an RFC 3339 timestamp up to the next space; one
// without a zone is read in loc.
func isoTimestamp(b []byte, loc *time.Location) (time.Time, int, error) {
	tok, n := token(b[:min(len(b), maxISOTimestamp+1)], 0)
	if n > maxISOTimestamp {
		return time.Time{}, 0, fmt.Errorf("invalid syslog timestamp %q", truncate(string(tok), 40))
	}
	s := string(tok)
	if strings.HasSuffix(s, ":") {
		// "2020-05-31T00:00:45Z: msg", with no host or tag.
		s, n = s[:len(s)-1], n-1
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if loc == nil {
			loc = time.UTC
		}
		var err2 error
		if t, err2 = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, loc); err2 != nil {
			return time.Time{}, 0, fmt.Errorf("invalid syslog timestamp %q", truncate(s, 40))
		}
	}
	return t.UTC(), n, nil
}

// parseRFC5424 parses an RFC 5424 header from b[i:], just after the PRI.
func parseRFC5424(b []byte, h syslogHeader, i int, opts *Options) (syslogHeader, int, error) {
	_, i = token(b, i) // VERSION
	fields := [5]string{}
	names := [5]string{"TIMESTAMP", "HOSTNAME", "APP-NAME", "PROCID", "MSGID"}
	for k := range fields {
		if i >= len(b) || b[i] != ' ' || i+1 >= len(b) || b[i+1] == ' ' {
			return h, 0, fmt.Errorf("RFC 5424 header: missing %s", names[k])
		}
		var t []byte
		t, i = token(b, i+1)
		if string(t) != "-" {
			fields[k] = string(t)
		}
	}
	if fields[0] != "" {
		h.timestamp = fields[0]
		t, _, err := isoTimestamp([]byte(fields[0]), opts.Location)
		if err != nil {
			return h, 0, fmt.Errorf("RFC 5424 header: %w", err)
		}
		h.time = t
	}
	h.host, h.app, h.procid, h.msgid = fields[1], fields[2], fields[3], fields[4]
	if i >= len(b) || b[i] != ' ' || i+1 >= len(b) {
		return h, 0, errors.New("RFC 5424 header: missing STRUCTURED-DATA")
	}
	i++
	if b[i] == '-' {
		i++
	} else {
		sd, n, err := structuredData(b[i:])
		if err != nil {
			return h, 0, fmt.Errorf("RFC 5424 structured data: %w", err)
		}
		h.sd, i = sd, i+n
	}
	if i < len(b) {
		if b[i] != ' ' {
			return h, 0, fmt.Errorf("RFC 5424 header: unexpected %q after STRUCTURED-DATA", b[i])
		}
		i++
		if bytes.HasPrefix(b[i:], utf8BOM) {
			i += len(utf8BOM)
		}
	}
	return h, countSpaces(b, i), nil
}

// structuredData parses SD-ELEMENTs, [id name="value" …][…], returning
// them by SD-ID and the length read. A repeated SD-ID or parameter keeps
// its last value; Raw keeps them all.
func structuredData(b []byte) (map[string]map[string]string, int, error) {
	sd := map[string]map[string]string{}
	i := 0
	for i < len(b) && b[i] == '[' {
		i++
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != ']' && b[j] != '=' && b[j] != '"' {
			j++
		}
		if j == i || j >= len(b) || b[j] == '=' || b[j] == '"' {
			return nil, 0, fmt.Errorf("invalid SD-ID at byte %d", i)
		}
		id := string(b[i:j])
		params := sd[id]
		if params == nil {
			params = map[string]string{}
			sd[id] = params
		}
		i = j
		for i < len(b) && b[i] == ' ' {
			i++
			j := i
			for j < len(b) && b[j] != '=' && b[j] != ' ' && b[j] != ']' && b[j] != '"' {
				j++
			}
			if j == i || j+1 >= len(b) || b[j] != '=' || b[j+1] != '"' {
				return nil, 0, fmt.Errorf("invalid SD-PARAM in %s at byte %d", id, i)
			}
			name := string(b[i:j])
			i = j + 2
			var val []byte
			for ; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\' || b[i+1] == ']') {
					i++
				}
				val = append(val, b[i])
			}
			if i >= len(b) {
				return nil, 0, fmt.Errorf("unterminated value of %s in %s", name, id)
			}
			i++ // closing quote
			params[name] = strings.ToValidUTF8(string(val), "\uFFFD")
		}
		if i >= len(b) || b[i] != ']' {
			return nil, 0, fmt.Errorf("unterminated SD-ELEMENT %s", id)
		}
		i++
	}
	return sd, i, nil
}

// sniffSyslog reports whether the first non-empty line of head is a
// syslog record.
func sniffSyslog(head []byte) bool {
	head = bytes.TrimPrefix(head, utf8BOM)
	for len(head) > 0 {
		l, rest, _ := bytes.Cut(head, []byte("\n"))
		head = rest
		l = bytes.TrimRight(l, "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if !syslogRecordStart(l) {
			return false
		}
		opts := Options{Received: time.Now()}
		_, _, err := parseSyslogHeader(l, &opts)
		return err == nil
	}
	return false
}
