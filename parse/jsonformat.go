package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/event"
)

// A jsonParser fills ev from one JSON record. It returns an error wrapping
// errNotThisFormat when the record does not have the format's shape, so
// that auto-detection can try another format for it.
type jsonParser func(rec []byte, ev *event.Event) error

// errNotThisFormat says a record is not of the format it was given to.
var errNotThisFormat = errors.New("record is not of this format")

var jsonParsers = map[string]jsonParser{}

// registerJSON registers a format whose records are JSON documents.
func registerJSON(name, description string, fn jsonParser) {
	jsonParsers[name] = fn
	register(&Format{Name: name, Description: description, parse: func(p *parser, r *bufio.Reader) error {
		return p.jsonRecords(r, func(rec []byte, line, offset int64) error {
			return p.jsonRecord(name, rec, line, offset)
		})
	}})
}

// jsonRecord parses one record as format and emits the result. Under
// auto-detection a record of another shape is classified on its own, so
// that a file mixing formats (or a test fixture wrapping each event)
// imports whole.
func (p *parser) jsonRecord(format string, rec []byte, line, offset int64) error {
	ev := &event.Event{Source: format}
	err := p.parseJSONAs(format, rec, ev)
	if err != nil && p.auto && errors.Is(err, errNotThisFormat) {
		if f, doc := classifyJSON(rec); f != "" && (f != format || doc != nil) {
			ev = &event.Event{Source: f}
			if doc == nil {
				doc = rec
			}
			err = p.parseJSONAs(f, doc, ev)
			if err == nil && doc != nil && ev.Doc == nil && !sameSlice(doc, rec) {
				ev.Doc = doc
			}
		}
	}
	if err != nil {
		return p.rejectAs(ev.Source, err, rec, line, offset)
	}
	return p.event(ev, rec, line, offset)
}

// parseJSONAs runs the named format's record parser. The generic json
// format is the one that depends on the options.
func (p *parser) parseJSONAs(format string, rec []byte, ev *event.Event) error {
	if format == "json" {
		return parseGenericJSON(rec, ev, p.opts.TimeField)
	}
	return jsonParsers[format](rec, ev)
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// classifyJSON names the format of one JSON record by its top-level
// keys. A record of no known format that carries a known one under
// "event" — a Splunk HEC envelope, the fixtures of Panther, Stratus Red
// Team and the AWS documentation — is classified by the inner event,
// whose bytes are returned as doc.
func classifyJSON(rec []byte) (format string, doc []byte) {
	var top map[string]json.RawMessage
	if json.Unmarshal(rec, &top) != nil {
		return "", nil
	}
	f := classifyKeys(top)
	if inner, ok := top["event"]; ok && f == "json" && len(inner) > 0 && inner[0] == '{' {
		if g, _ := classifyJSON(inner); g != "" && g != "json" {
			return g, inner
		}
	}
	return f, nil
}

// classifyKeys names the format of a record from its top-level keys.
func classifyKeys(top map[string]json.RawMessage) string {
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := top[k]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("eventSource", "eventName"), has("CloudTrailEvent"), has("EventName", "EventSource"):
		return "aws.cloudtrail"
	case has("detail-type", "detail"):
		var dt string
		json.Unmarshal(top["detail-type"], &dt)
		if dt == "AWS API Call via CloudTrail" || dt == "AWS Console Sign In via CloudTrail" || bytes.Contains(top["detail"], []byte(`"eventSource"`)) {
			return "aws.cloudtrail"
		}
	case has("protoPayload"), has("protopayload"): // Panther lowercases some keys
		return "gcp.audit"
	case has("srcaddr", "dstaddr"), has("srcAddr", "dstAddr"):
		if _, ok := jsonParsers["aws.vpcflow"]; ok {
			return "aws.vpcflow"
		}
	}
	if f := classifyAzure(top); f != "" {
		return f
	}
	return "json"
}

// classifyAzure tells Azure activity records from Entra ID sign-in and
// audit records, in the shapes they are exported in: diagnostic settings
// (operationName, category, resourceId); the Activity Log REST API and its
// SDKs (operationName as {"value": …}, snake_case from Python); Datadog's
// (an ARM resourceId, the rest moved under evt); and the Graph API's
// directory audits and sign-ins, whose fields are top-level. Keys match
// case-insensitively, as in encoding/json: Panther lowercases some.
func classifyAzure(top map[string]json.RawMessage) string {
	const armPrefix = `"/subscriptions/`
	get := func(names ...string) json.RawMessage {
		for _, name := range names {
			if v, ok := top[name]; ok {
				return v
			}
		}
		for k, v := range top {
			for _, name := range names {
				if strings.EqualFold(k, name) {
					return v
				}
			}
		}
		return nil
	}
	op, rid := get("operationName", "operation_name"), get("resourceId", "resource_id")
	entra := false
	switch {
	case op != nil && (rid != nil || op[0] == '{' || get("category") != nil || get("authorization") != nil || get("caller") != nil):
	case len(rid) > len(armPrefix) && bytes.EqualFold(rid[:len(armPrefix)], []byte(armPrefix)):
	case get("activityDisplayName") != nil && (get("initiatedBy") != nil || get("targetResources") != nil),
		get("userPrincipalName") != nil && get("appDisplayName") != nil && get("createdDateTime") != nil:
		entra = true
	default:
		return ""
	}
	var category string
	json.Unmarshal(get("category"), &category)
	entra = entra || isEntra(category, string(rid))
	f := "azure.activity"
	if entra {
		f = "azure.signin"
	}
	if _, ok := jsonParsers[f]; ok {
		return f
	}
	return ""
}

// rejectAs reports a rejected record on behalf of a named format.
func (p *parser) rejectAs(format string, reason error, raw []byte, line, offset int64) error {
	return p.send(Result{Err: reason, Format: format, Raw: raw, Line: line, Offset: offset})
}

// notThis returns an error saying why rec is not of format.
func notThis(format, why string) error {
	return fmt.Errorf("not a %s record: %s: %w", format, why, errNotThisFormat)
}
