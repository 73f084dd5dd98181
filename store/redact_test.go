package store

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/query"
)

func redaction(t *testing.T, names ...string) query.Redaction {
	t.Helper()
	f, _ := query.Parse("")
	s := query.Scope{Shares: []query.Share{{Grant: "g", Tenant: "a", Filter: f, Redact: names}}}
	return s.Redaction("a")
}

func TestRedactDocument(t *testing.T) {
	doc := []byte(`{"eventName":"StopLogging","requestParameters":{"name":"trail"},"RequestParameters":1,"resources":[{"ARN":"x","type":"t"}],"userIdentity":{"arn":"a","type":"Root"}}`)
	tests := []struct {
		name           string
		raw, doc       string
		hasDoc         bool
		redact         []string
		wantRaw        string
		wantDoc        string
		wantDocPresent bool
	}{
		{"nothing hidden", string(doc), "", false, nil, string(doc), "", false},
		{"a path, either case, everything under it", string(doc), "", false, []string{"requestParameters"},
			`{"eventName":"StopLogging","resources":[{"ARN":"x","type":"t"}],"userIdentity":{"arn":"a","type":"Root"}}`, "", false},
		{"a path under an object and through an array", string(doc), "", false, []string{"userIdentity.arn", "resources.arn"},
			`{"RequestParameters":1,"eventName":"StopLogging","requestParameters":{"name":"trail"},"resources":[{"type":"t"}],"userIdentity":{"type":"Root"}}`, "", false},
		{"a raw line beside its document is emptied", "Jul 31 sshd[1]: Accepted password for root", `{"user":"root","pid":1}`, true, []string{"user"},
			"", `{"pid":1}`, true},
		{"a raw line without a document keeps what no path names", "Jul 31 sshd: hello", "", false, []string{"user"}, "Jul 31 sshd: hello", "", false},
		{"a hidden normalized field empties both", string(doc), `{"a":1}`, true, []string{"src_ip"}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d []byte
			if tt.hasDoc {
				d = []byte(tt.doc)
			}
			raw, gotDoc := RedactDocument([]byte(tt.raw), d, tt.hasDoc, redaction(t, tt.redact...))
			if !jsonEqual(string(raw), tt.wantRaw) {
				t.Errorf("raw = %s, want %s", raw, tt.wantRaw)
			}
			if (gotDoc != nil) != tt.wantDocPresent || tt.wantDocPresent && !jsonEqual(string(gotDoc), tt.wantDoc) {
				t.Errorf("doc = %q, want %q", gotDoc, tt.wantDoc)
			}
		})
	}
}

// jsonEqual compares JSON documents by value, other text exactly.
func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(x, y)
}

// TestRedactEventEveryColumn: every column a grant may hide is emptied
// in an event, so that a column added to the events table without a way
// to hide it fails here.
func TestRedactEventEveryColumn(t *testing.T) {
	for _, c := range query.EventColumns() {
		switch c {
		case "seq", "time", "tenant", "raw", "raw_bin", "doc":
			continue // never redactable (tenant, time, seq), or the document itself
		}
		if _, ok := clearColumn[c]; !ok {
			t.Errorf("column %s cannot be hidden in an event", c)
		}
	}
	e := &event.Event{Tenant: "a", SrcIP: netip.MustParseAddr("203.0.113.9"), Action: "StopLogging",
		Raw: []byte(`{"sourceIPAddress":"203.0.113.9"}`), Resources: []string{"r"}}
	RedactEvent(e, redaction(t, "src_ip", "resources"))
	if e.SrcIP.IsValid() || e.Resources != nil || len(e.Raw) != 0 || e.Action != "StopLogging" {
		t.Errorf("redacted event: %+v", e)
	}
}

func TestRedactRow(t *testing.T) {
	cols := query.EventColumns()
	row := make([]any, len(cols))
	set := func(c string, v any) { row[slices.Index(cols, c)] = v }
	get := func(c string) any { return row[slices.Index(cols, c)] }
	set("tenant", "a")
	set("action", "StopLogging")
	set("raw", `{"eventName":"StopLogging","requestParameters":{"name":"trail"}}`)
	RedactRow(row, redaction(t, "requestParameters"))
	if !jsonEqual(get("raw").(string), `{"eventName":"StopLogging"}`) || get("action") != "StopLogging" || get("doc") != nil {
		t.Errorf("redacted row: raw %v, action %v, doc %v", get("raw"), get("action"), get("doc"))
	}
	set("src_ip", "203.0.113.9")
	RedactRow(row, redaction(t, "src_ip"))
	if get("src_ip") != nil || get("raw") != "" {
		t.Errorf("with src_ip hidden: src_ip %v, raw %q", get("src_ip"), get("raw"))
	}
}
