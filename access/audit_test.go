package access

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

func TestRecordEvent(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	base := Record{
		Time: at, Action: "grant.create", Principal: "p-1", Actor: "alice", Kind: User, Credential: "session",
		Tenants: []string{"a"}, Target: "grant:g-1", Detail: `to tenant:b: "action:login"`,
		Remote: "203.0.113.7", UserAgent: "curl/8.0", Method: "POST", Path: "/api/v1/grants", Status: 201,
	}
	for _, tc := range []struct {
		name      string
		change    func(*Record)
		srcIP     string // "" for unset
		outcome   string
		code      string
		resources []string
	}{
		{"a share", func(*Record) {}, "203.0.113.7", event.OutcomeSuccess, "201", []string{"tenant:a", "grant:g-1"}},
		{"IPv6", func(r *Record) { r.Remote = "2001:db8::1" }, "2001:db8::1", event.OutcomeSuccess, "201", []string{"tenant:a", "grant:g-1"}},
		{"address and port", func(r *Record) { r.Remote = "203.0.113.7:51234" }, "", event.OutcomeSuccess, "201", []string{"tenant:a", "grant:g-1"}},
		{"a name", func(r *Record) { r.Remote = "proxy.example.com" }, "", event.OutcomeSuccess, "201", []string{"tenant:a", "grant:g-1"}},
		{"hostile", func(r *Record) { r.Remote = "203.0.113.7' OR 1=1 --" }, "", event.OutcomeSuccess, "201", []string{"tenant:a", "grant:g-1"}},
		{"no address", func(r *Record) { r.Remote = "" }, "", event.OutcomeSuccess, "201", []string{"tenant:a", "grant:g-1"}},
		{"399", func(r *Record) { r.Status = 399 }, "203.0.113.7", event.OutcomeSuccess, "399", []string{"tenant:a", "grant:g-1"}},
		{"400", func(r *Record) { r.Status = 400 }, "203.0.113.7", event.OutcomeFailure, "400", []string{"tenant:a", "grant:g-1"}},
		{"forbidden", func(r *Record) { r.Status = 403 }, "203.0.113.7", event.OutcomeFailure, "403", []string{"tenant:a", "grant:g-1"}},
		{"server error", func(r *Record) { r.Status = 500 }, "203.0.113.7", event.OutcomeFailure, "500", []string{"tenant:a", "grant:g-1"}},
		{"several tenants", func(r *Record) { r.Tenants = []string{"a", "b", AllTenants} }, "203.0.113.7", event.OutcomeSuccess, "201",
			[]string{"tenant:a", "tenant:b", "tenant:*", "grant:g-1"}},
		{"no target", func(r *Record) { r.Target = "" }, "203.0.113.7", event.OutcomeSuccess, "201", []string{"tenant:a"}},
		{"no tenant", func(r *Record) { r.Tenants = nil }, "203.0.113.7", event.OutcomeSuccess, "201", []string{"grant:g-1"}},
		{"nothing acted on", func(r *Record) { r.Tenants, r.Target = nil, "" }, "203.0.113.7", event.OutcomeSuccess, "201", nil},
	} {
		r := base
		r.Tenants = slices.Clone(base.Tenants)
		tc.change(&r)
		e := r.Event()
		if e.Tenant != SystemTenant || e.Source != AuditSource || e.Class != ClassAudit || e.Service != "vigil" {
			t.Errorf("%s: tenant %q, source %q, class %q, service %q; want %s, %s, %s, vigil", tc.name, e.Tenant, e.Source, e.Class, e.Service, SystemTenant, AuditSource, ClassAudit)
		}
		if e.Tenant != "_system" || e.Source != "vigil.audit" || e.Class != "audit" {
			t.Errorf("%s: the constants changed: %q %q %q", tc.name, e.Tenant, e.Source, e.Class)
		}
		if !e.Time.Equal(at) || e.Time.Location() != time.UTC || !e.Received.Equal(at) || e.Seq != 0 {
			t.Errorf("%s: time %v, received %v, seq %d; want %v", tc.name, e.Time, e.Received, e.Seq, at)
		}
		if want := (event.Actor{ID: "p-1", Type: User, Name: "alice"}); e.Actor != want {
			t.Errorf("%s: actor %+v, want %+v", tc.name, e.Actor, want)
		}
		if e.Session.ID != "session" || e.Session.Origin != "" {
			t.Errorf("%s: session %+v, want the credential", tc.name, e.Session)
		}
		if e.Action != "grant.create" || e.Message != r.Detail || e.UserAgent != "curl/8.0" {
			t.Errorf("%s: action %q, message %q, user agent %q", tc.name, e.Action, e.Message, e.UserAgent)
		}
		if tc.srcIP == "" {
			if e.SrcIP.IsValid() {
				t.Errorf("%s: remote %q gave source address %v, want none", tc.name, r.Remote, e.SrcIP)
			}
		} else if e.SrcIP != netip.MustParseAddr(tc.srcIP) {
			t.Errorf("%s: source address %v, want %s", tc.name, e.SrcIP, tc.srcIP)
		}
		if e.DstIP.IsValid() {
			t.Errorf("%s: destination address %v, want none", tc.name, e.DstIP)
		}
		if e.Outcome.Result != tc.outcome || e.Outcome.Code != tc.code {
			t.Errorf("%s: outcome %+v, want %s %s", tc.name, e.Outcome, tc.outcome, tc.code)
		}
		if !slices.Equal(e.Resources, tc.resources) {
			t.Errorf("%s: resources %q, want %q", tc.name, e.Resources, tc.resources)
		}
		var back Record
		if err := json.Unmarshal(e.Raw, &back); err != nil {
			t.Fatalf("%s: raw %s: %v", tc.name, e.Raw, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Errorf("%s: raw is\n%+v\nwant the record\n%+v", tc.name, back, r)
		}
	}
}

func TestRecordEventTimeIsUTC(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	r := Record{Time: time.Date(2025, 3, 1, 13, 0, 0, 0, paris), Action: "login", Kind: "anonymous", Actor: "alice", Status: 401}
	e := r.Event()
	want := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if e.Time != want || e.Received != want {
		t.Errorf("time %v, received %v; want %v in UTC", e.Time, e.Received, want)
	}
	if e.Outcome.Result != event.OutcomeFailure || e.Actor.ID != "" || e.Actor.Type != "anonymous" || e.Session.ID != "" {
		t.Errorf("an anonymous failed login: %+v", e)
	}
	var back map[string]any
	if err := json.Unmarshal(e.Raw, &back); err != nil {
		t.Fatal(err)
	}
	// The raw record leaves out what is empty, and holds what the record
	// says, nothing more.
	for _, k := range []string{"principal", "credential", "elevated", "tenants", "target", "detail", "remote", "user_agent", "method", "path"} {
		if _, ok := back[k]; ok {
			t.Errorf("raw %s has an empty %q", e.Raw, k)
		}
	}
	if back["action"] != "login" || back["actor"] != "alice" || back["status"] != 401.0 {
		t.Errorf("raw %s", e.Raw)
	}
}
