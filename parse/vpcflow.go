package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

// The aws.vpcflow format reads VPC flow log records: lines of
// space-separated fields in the default (version 2) format or in a custom
// format named by a header line, as delivered to S3, and the same records
// shipped as JSON (Panther, Firehose transforms), whose keys are the
// field names in any spelling: srcaddr, srcAddr, src_addr.
//
// A text record's Doc holds every field under its AWS name, numbers as
// numbers and "-" (no value) left out. A JSON record is its own document.

func init() {
	register(&Format{
		Name:        "aws.vpcflow",
		Description: "AWS VPC flow logs: default and custom text formats, or JSON records",
		parse:       parseVPCFlow,
	})
	jsonParsers["aws.vpcflow"] = parseVPCFlowJSON
	registerSniffer("aws.vpcflow", sniffVPCFlow)
}

// vpcflowFields are the fields of the default format, in order.
var vpcflowDefault = []string{
	"version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
	"protocol", "packets", "bytes", "start", "end", "action", "log-status",
}

// flowKind says how a field's value is checked and stored.
type flowKind uint8

const (
	flowString flowKind = iota
	flowInt             // a non-negative integer, stored as a number
	flowPort            // 0 to 65535
	flowAddr            // an IP address
)

// vpcflowKnown are the fields AWS documents, by version 2 to 8. A header
// may name others, which are kept as strings.
var vpcflowKnown = map[string]flowKind{
	"version": flowInt, "account-id": flowString, "interface-id": flowString,
	"srcaddr": flowAddr, "dstaddr": flowAddr, "srcport": flowPort, "dstport": flowPort,
	"protocol": flowInt, "packets": flowInt, "bytes": flowInt, "start": flowInt, "end": flowInt,
	"action": flowString, "log-status": flowString,
	"vpc-id": flowString, "subnet-id": flowString, "instance-id": flowString, "tcp-flags": flowInt,
	"type": flowString, "pkt-srcaddr": flowAddr, "pkt-dstaddr": flowAddr,
	"region": flowString, "az-id": flowString, "sublocation-type": flowString, "sublocation-id": flowString,
	"pkt-src-aws-service": flowString, "pkt-dst-aws-service": flowString,
	"flow-direction": flowString, "traffic-path": flowInt,
	"ecs-cluster-arn": flowString, "ecs-cluster-name": flowString, "ecs-container-instance-arn": flowString,
	"ecs-container-instance-id": flowString, "ecs-container-id": flowString, "ecs-second-container-id": flowString,
	"ecs-service-name": flowString, "ecs-task-definition-arn": flowString, "ecs-task-arn": flowString,
	"ecs-task-id": flowString, "reject-reason": flowString,
}

// vpcflowResources are the fields naming the resources a flow belongs
// to, in the order they go in Event.Resources.
var vpcflowResources = []string{"interface-id", "instance-id", "vpc-id", "subnet-id"}

func parseVPCFlow(p *parser, r *bufio.Reader) error {
	if startsWithJSON(r) {
		return p.jsonRecords(r, func(rec []byte, line, offset int64) error {
			return p.jsonRecord("aws.vpcflow", rec, line, offset)
		})
	}
	lr := newLineReader(r, p.opts.MaxLine)
	fields := vpcflowDefault
	for {
		l, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		b, offset := l.b, l.offset
		if l.num == 1 && bytes.HasPrefix(b, utf8BOM) {
			b, offset = b[len(utf8BOM):], offset+int64(len(utf8BOM))
		}
		if l.tooLong {
			if err := p.reject(lr.errTooLong(), bytes.Clone(b), l.num, offset); err != nil {
				return err
			}
			continue
		}
		values := flowValues(string(b))
		if len(values) == 0 {
			continue
		}
		if names, ok := vpcflowHeader(values); ok {
			// Files from S3 start with the header of their format; a
			// concatenation of files repeats it.
			fields = names
			continue
		}
		raw := bytes.Clone(b)
		ev, err := vpcflowEvent(fields, values)
		if err != nil {
			if err := p.reject(err, raw, l.num, offset); err != nil {
				return err
			}
			continue
		}
		if err := p.event(ev, raw, l.num, offset); err != nil {
			return err
		}
	}
}

// flowValues splits a record into its values. AWS's documentation
// annotates example records with a trailing "# comment"; no field value
// starts with '#', so it is dropped.
func flowValues(s string) []string {
	f := strings.Fields(s)
	for i, v := range f {
		if strings.HasPrefix(v, "#") {
			return f[:i]
		}
	}
	return f
}

// startsWithJSON reports whether the input's first non-space byte opens
// a JSON value.
func startsWithJSON(r *bufio.Reader) bool {
	for n := 512; ; n *= 4 {
		head, err := r.Peek(n)
		b := trimSpace(head)
		if len(b) > 0 {
			return b[0] == '{' || b[0] == '['
		}
		if err != nil || n >= sniffSize {
			return false
		}
	}
}

// vpcflowHeader reports whether values are a header line, a list of
// field names (or ${name}, as the format is written when the flow log is
// created), and returns the names.
func vpcflowHeader(values []string) ([]string, bool) {
	names := make([]string, len(values))
	known := 0
	for i, v := range values {
		if strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") {
			v = v[2 : len(v)-1]
		}
		if !isFieldName(v) {
			return nil, false
		}
		if _, ok := vpcflowKnown[v]; ok {
			known++
		}
		names[i] = v
	}
	return names, known > 0
}

// isFieldName reports whether s is spelt like a flow log field name:
// lower-case words joined by hyphens.
func isFieldName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// flowRecord is one record's values by field name, in order.
type flowRecord struct {
	names  []string
	values []any    // string, uint64 or netip.Addr; nil for no value
	texts  []string // the values as written
}

func (f *flowRecord) get(name string) any {
	for i, n := range f.names {
		if n == name {
			return f.values[i]
		}
	}
	return nil
}

func (f *flowRecord) str(name string) string {
	s, _ := f.get(name).(string)
	return s
}

// vpcflowEvent reads a text record.
func vpcflowEvent(fields, values []string) (*event.Event, error) {
	if len(values) != len(fields) {
		return nil, fmt.Errorf("VPC flow record has %d fields, its format has %d (%s)", len(values), len(fields), truncate(strings.Join(fields, " "), 200))
	}
	rec := &flowRecord{names: fields, values: make([]any, len(fields)), texts: values}
	for i, name := range fields {
		v, err := flowValue(name, values[i])
		if err != nil {
			return nil, err
		}
		rec.values[i] = v
	}
	ev := flowEvent(rec)
	ev.Doc = rec.doc()
	return ev, nil
}

// flowValue checks and converts the value of one field; "-" is no value.
func flowValue(name, v string) (any, error) {
	if v == "-" {
		return nil, nil
	}
	switch vpcflowKnown[name] {
	case flowInt:
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return nil, fmt.Errorf("VPC flow field %s: %q is not a non-negative integer", name, truncate(v, 40))
		}
		return n, nil
	case flowPort:
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("VPC flow field %s: %q is not a port number", name, truncate(v, 40))
		}
		return n, nil
	case flowAddr:
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("VPC flow field %s: %q is not an IP address", name, truncate(v, 60))
		}
		return ip, nil
	}
	return v, nil
}

// doc encodes the record as a JSON object in field order.
func (f *flowRecord) doc() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for i, name := range f.names {
		v := f.values[i]
		if v == nil {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(name)
		b.Write(k)
		b.WriteByte(':')
		switch v := v.(type) {
		case uint64:
			b.WriteString(strconv.FormatUint(v, 10))
		case netip.Addr:
			// As written: the document is the record, not its reading.
			s, _ := json.Marshal(f.texts[i])
			b.Write(s)
		case string:
			s, _ := json.Marshal(v)
			b.Write(s)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// flowEvent fills the normalized fields from a record.
func flowEvent(rec *flowRecord) *event.Event {
	ev := &event.Event{
		Source:  "aws.vpcflow",
		Class:   event.ClassNetworkActivity,
		Service: "vpc-flow-logs",
		Cloud:   event.Cloud{Provider: "aws", Region: rec.str("region")},
		Action:  rec.str("action"),
	}
	if acct := rec.str("account-id"); acct != "unknown" {
		// AWS writes "unknown" for interfaces its services own.
		ev.Cloud.Account = acct
	}
	for _, name := range []string{"start", "end"} {
		if t, ok := rec.get(name).(uint64); ok && t < 1<<40 {
			ev.Time = time.Unix(int64(t), 0).UTC()
			break
		}
	}
	if ip, ok := rec.get("srcaddr").(netip.Addr); ok {
		ev.SrcIP = ip.Unmap()
	}
	if ip, ok := rec.get("dstaddr").(netip.Addr); ok {
		ev.DstIP = ip.Unmap()
	}
	if p, ok := rec.get("srcport").(uint64); ok {
		ev.SrcPort = uint16(p)
	}
	if p, ok := rec.get("dstport").(uint64); ok {
		ev.DstPort = uint16(p)
	}
	for _, name := range vpcflowResources {
		if id := rec.str(name); id != "" {
			ev.Resources = append(ev.Resources, id)
		}
	}
	switch ev.Action {
	case "ACCEPT":
		ev.Outcome.Result = event.OutcomeSuccess
	case "REJECT":
		ev.Outcome.Result = event.OutcomeFailure
		ev.Outcome.Code = rec.str("reject-reason")
	default:
		// NODATA and SKIPDATA records carry no flow: they say the
		// interface was quiet, or that records were lost.
		ev.Outcome.Result = event.OutcomeUnknown
	}
	if st := rec.str("log-status"); st != "" && st != "OK" {
		ev.Outcome.Code = st
	}
	// A record without start or end (a custom format may leave them
	// out) is stamped with its receipt time by parser.event.
	return ev
}

// vpcflowJSONKeys maps JSON spellings of field names, lower-cased with
// '-' and '_' removed, to the AWS names.
var vpcflowJSONKeys = func() map[string]string {
	m := map[string]string{"account": "account-id", "status": "log-status", "logstatus": "log-status"}
	for name := range vpcflowKnown {
		m[strings.ReplaceAll(name, "-", "")] = name
	}
	return m
}()

// vpcflowJSONOnly are fields that a flow record has and the records
// shipped beside it (Route 53 resolver query logs share srcaddr, srcport,
// account_id, vpc_id) do not.
var vpcflowJSONOnly = []string{"dstaddr", "dstport", "interface-id", "log-status", "action", "packets", "bytes", "protocol", "pkt-srcaddr", "pkt-dstaddr", "tcp-flags", "flow-direction", "traffic-path"}

// parseVPCFlowJSON reads one flow record shipped as JSON.
func parseVPCFlowJSON(doc []byte, ev *event.Event) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return notThis("aws.vpcflow", "not a JSON object")
	}
	rec := &flowRecord{}
	for k, raw := range top {
		name, ok := vpcflowJSONKeys[strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(k))]
		if !ok {
			continue
		}
		v, err := flowJSONValue(name, raw)
		if err != nil {
			return err
		}
		if v != nil {
			rec.names = append(rec.names, name)
			rec.values = append(rec.values, v)
		}
	}
	flowish := false
	for _, name := range vpcflowJSONOnly {
		if _, ok := top[name]; ok || rec.get(name) != nil {
			flowish = true
		}
	}
	if !flowish {
		return notThis("aws.vpcflow", "no flow fields (dstaddr, interface-id, action, log-status …)")
	}
	*ev = *flowEvent(rec)
	return nil
}

// flowJSONValue converts one JSON value: a string as in the text format,
// or a number. JSON null, "" and the string "null" (which some pipelines
// write) are no value.
func flowJSONValue(name string, raw json.RawMessage) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("VPC flow field %s: %w", name, err)
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" || v == "null" {
			return nil, nil
		}
		if vpcflowKnown[name] == flowInt && (name == "start" || name == "end") {
			if _, err := strconv.ParseUint(v, 10, 63); err != nil {
				// Some pipelines turn the epoch into a timestamp.
				if t, err := parseTime(v); err == nil && t.Unix() >= 0 {
					return uint64(t.Unix()), nil
				}
			}
		}
		return flowValue(name, v)
	case json.Number:
		if vpcflowKnown[name] == flowString || vpcflowKnown[name] == flowAddr {
			// An account id may come as a number.
			return flowValue(name, v.String())
		}
		if strings.ContainsAny(v.String(), ".eE") {
			f, err := v.Float64()
			if err != nil || f < 0 || f != float64(uint64(f)) {
				return nil, fmt.Errorf("VPC flow field %s: %s is not a non-negative integer", name, v)
			}
			return flowValue(name, strconv.FormatUint(uint64(f), 10))
		}
		return flowValue(name, v.String())
	}
	return nil, fmt.Errorf("VPC flow field %s: want a string or number, got %s", name, truncate(string(raw), 40))
}

// sniffVPCFlow reports whether the first non-empty line of head is a
// flow log header naming an address field, or a default-format record.
func sniffVPCFlow(head []byte) bool {
	head = bytes.TrimPrefix(head, utf8BOM)
	for len(head) > 0 {
		l, rest, _ := bytes.Cut(head, []byte("\n"))
		head = rest
		values := flowValues(string(l))
		if len(values) == 0 {
			continue
		}
		if names, ok := vpcflowHeader(values); ok {
			known := 0
			addr := false
			for _, n := range names {
				if _, ok := vpcflowKnown[n]; ok {
					known++
				}
				addr = addr || n == "srcaddr" || n == "dstaddr" || n == "interface-id"
			}
			return addr && known >= 2
		}
		return isDefaultFlowRecord(values)
	}
	return false
}

// isDefaultFlowRecord reports whether values have the default format's
// shape: version, account, eni-…, …, log status.
func isDefaultFlowRecord(v []string) bool {
	if len(v) != len(vpcflowDefault) {
		return false
	}
	if _, err := strconv.ParseUint(v[0], 10, 8); err != nil {
		return false
	}
	acct := v[1]
	if acct != "-" && acct != "unknown" && (len(acct) != 12 || strings.Trim(acct, "0123456789") != "") {
		return false
	}
	if v[2] != "-" && !strings.HasPrefix(v[2], "eni-") {
		return false
	}
	switch v[13] {
	case "OK", "NODATA", "SKIPDATA":
		return true
	}
	return false
}
