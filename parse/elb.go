package parse

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/event"
)

// The aws.elb format reads Elastic Load Balancing access logs: the
// Application Load Balancer's (first field the request type) and the
// Classic Load Balancer's (first field the time). Fields are separated by
// spaces; strings that may hold spaces are double-quoted.

func init() {
	register(&Format{
		Name:        "aws.elb",
		Description: "AWS Elastic Load Balancing access logs (Application and Classic load balancers)",
		parse:       parseELB,
	})
	registerSniffer("aws.elb", sniffELB)
}

// albFields are the fields of an Application Load Balancer log entry, in
// order; AWS appends new ones at the end, which are kept unnamed.
var albFields = []string{
	"type", "time", "elb", "client:port", "target:port", "request_processing_time",
	"target_processing_time", "response_processing_time", "elb_status_code", "target_status_code",
	"received_bytes", "sent_bytes", "request", "user_agent", "ssl_cipher", "ssl_protocol",
	"target_group_arn", "trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
	"request_creation_time", "actions_executed", "redirect_url", "error_reason", "target:port_list",
	"target_status_code_list", "classification", "classification_reason", "conn_trace_id",
}

// classicFields are the fields of a Classic Load Balancer log entry.
var classicFields = []string{
	"time", "elb", "client:port", "backend:port", "request_processing_time",
	"backend_processing_time", "response_processing_time", "elb_status_code", "backend_status_code",
	"received_bytes", "sent_bytes", "request", "user_agent", "ssl_cipher", "ssl_protocol",
}

// nlbFields are the fields of a Network Load Balancer TLS log entry.
var nlbFields = []string{
	"type", "version", "time", "elb", "listener", "client:port", "destination:port",
	"connection_time", "tls_handshake_time", "received_bytes", "sent_bytes", "incoming_tls_alert",
	"chosen_cert_arn", "chosen_cert_serial", "tls_cipher", "tls_protocol_version", "tls_named_group",
	"domain_name", "alpn_fe_protocol", "alpn_be_protocol", "alpn_client_preference_list",
	"tls_connection_creation_time",
}

var albTypes = map[string]bool{"http": true, "https": true, "h2": true, "grpcs": true, "ws": true, "wss": true}

var elbLine = regexp.MustCompile(`^(?:(?:https?|h2|grpcs|wss?) |tls \d\.\d )?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z? \S+ \S+[: ]`)

func sniffELB(head []byte) bool {
	l, _, _ := strings.Cut(string(trimSpace(head)), "\n")
	return elbLine.MatchString(l)
}

func parseELB(p *parser, r *bufio.Reader) error {
	lr := newLineReader(r, p.opts.MaxLine)
	for {
		l, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		raw := append([]byte(nil), l.b...)
		if l.tooLong {
			if err := p.reject(lr.errTooLong(), raw, l.num, l.offset); err != nil {
				return err
			}
			continue
		}
		if len(trimSpace(raw)) == 0 {
			continue
		}
		ev := &event.Event{}
		if perr := parseELBLine(string(raw), ev); perr != nil {
			err = p.reject(perr, raw, l.num, l.offset)
		} else {
			err = p.event(ev, raw, l.num, l.offset)
		}
		if err != nil {
			return err
		}
	}
}

// parseELBLine fills ev from one access log entry.
func parseELBLine(s string, ev *event.Event) error {
	vals, err := splitQuoted(s)
	if err != nil {
		return err
	}
	names := classicFields
	switch {
	case len(vals) > 0 && albTypes[vals[0]]:
		names = albFields
	case len(vals) > 0 && vals[0] == "tls":
		names = nlbFields
	}
	if len(vals) < 12 {
		return fmt.Errorf("ELB access log entry has %d fields, want at least 12", len(vals))
	}
	doc := make(map[string]any, len(vals))
	for i, v := range vals {
		name := "field_" + strconv.Itoa(i+1)
		if i < len(names) {
			name = names[i]
		}
		if v == "-" {
			continue
		}
		if n, err := strconv.ParseFloat(v, 64); err == nil && (strings.HasSuffix(name, "_time") || strings.HasSuffix(name, "_bytes")) {
			doc[name] = n
			continue
		}
		doc[name] = v
	}
	get := func(name string) string { s, _ := doc[name].(string); return s }

	t, err := parseTime(get("time"))
	if err != nil {
		return fmt.Errorf("ELB time: %w", err)
	}
	ev.Time = t
	ev.Source = "aws.elb"
	ev.Class = event.ClassHTTPActivity
	ev.Cloud.Provider = "aws"
	ev.Service = "elasticloadbalancing"
	ev.UserAgent = get("user_agent")
	ev.ID = get("trace_id")
	if ap, err := netip.ParseAddrPort(get("client:port")); err == nil {
		ev.SrcIP, ev.SrcPort = ap.Addr().Unmap(), ap.Port()
	}
	target := get("target:port")
	if target == "" {
		target = get("backend:port")
	}
	if target == "" {
		target = get("destination:port")
	}
	if ap, err := netip.ParseAddrPort(target); err == nil {
		ev.DstIP, ev.DstPort = ap.Addr().Unmap(), ap.Port()
	}
	// "GET https://host:443/path HTTP/1.1"
	method, rest, _ := strings.Cut(get("request"), " ")
	url, _, _ := strings.Cut(rest, " ")
	ev.Action = method
	if method == "-" || names[0] == "type" && vals[0] == "tls" {
		ev.Action = "tls_connection"
		ev.Class = event.ClassNetworkActivity
	}
	if url != "" && url != "-" {
		ev.Resources = append(ev.Resources, url)
	}
	if elb := get("elb"); elb != "" {
		ev.Resources = append(ev.Resources, elb)
	}
	arn := get("target_group_arn")
	if arn == "" {
		arn = get("chosen_cert_arn")
	}
	if strings.HasPrefix(arn, "arn:") {
		// arn:aws:SERVICE:REGION:ACCOUNT:…
		parts := strings.SplitN(arn, ":", 6)
		if len(parts) >= 5 {
			ev.Cloud.Region, ev.Cloud.Account = parts[3], parts[4]
		}
	}
	status := get("elb_status_code")
	ev.Outcome = event.Outcome{Result: event.OutcomeUnknown, Code: status}
	if alert := get("incoming_tls_alert"); names[0] == "type" && vals[0] == "tls" {
		ev.Outcome = event.Outcome{Result: event.OutcomeSuccess}
		if alert != "" {
			ev.Outcome = event.Outcome{Result: event.OutcomeFailure, Code: alert}
		}
	} else if code, err := strconv.Atoi(status); err == nil {
		ev.Outcome.Result = event.OutcomeSuccess
		if code >= 400 {
			ev.Outcome.Result = event.OutcomeFailure
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("ELB entry: %w", err)
	}
	ev.Doc = b
	return nil
}

// splitQuoted splits a line on spaces, keeping double-quoted strings
// (with backslash escapes) whole and unquoted.
func splitQuoted(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		switch {
		case s[i] == ' ':
			i++
		case s[i] == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errors.New("unterminated quoted field")
			}
			out = append(out, b.String())
			i = j + 1
		default:
			j := strings.IndexByte(s[i:], ' ')
			if j < 0 {
				j = len(s) - i
			}
			out = append(out, s[i:i+j])
			i += j
		}
	}
	return out, nil
}
