package access

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/event"
)

// AuditSource is the source of audit events, which are kept in the
// ledger as any event is, in SystemTenant: appended, never edited, and
// proved by vigil verify.
const AuditSource = "vigil.audit"

// ClassAudit is the class of audit events.
const ClassAudit = "audit"

// A Record is one action someone took in vigil: a search, a hunt, an
// export, a share, a login, a role change, an approval.
type Record struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // search, login, grant.create, …
	// Who: the principal (or token) and what authenticated them.
	Principal  string `json:"principal,omitempty"`
	Actor      string `json:"actor"`
	Kind       string `json:"kind"` // user, service, token, anonymous
	Credential string `json:"credential,omitempty"`
	Elevated   string `json:"elevated,omitempty"` // the break-glass elevation in force
	// Where: the tenants acted in or read ("*" for every tenant), and
	// what was acted on (alert:ID, grant:ID, principal:ID).
	Tenants []string `json:"tenants,omitempty"`
	Target  string   `json:"target,omitempty"`
	// What: the query, the reason, the change; never a secret.
	Detail    string `json:"detail,omitempty"`
	Remote    string `json:"remote,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Method    string `json:"method,omitempty"`
	Path      string `json:"path,omitempty"`
	Status    int    `json:"status"`
}

// Event returns the record as an audit event of SystemTenant. Its
// resources name the tenants acted in (tenant:NAME), by which an
// auditor of some tenants reads the records of actions in them, and the
// target; its raw bytes are the record as JSON.
func (r *Record) Event() *event.Event {
	raw, _ := json.Marshal(r)
	e := &event.Event{
		Time:      r.Time.UTC(),
		Received:  r.Time.UTC(),
		Tenant:    SystemTenant,
		Source:    AuditSource,
		Class:     ClassAudit,
		Actor:     event.Actor{ID: r.Principal, Type: r.Kind, Name: r.Actor},
		Session:   event.Session{ID: r.Credential},
		UserAgent: r.UserAgent,
		Service:   "vigil",
		Action:    r.Action,
		Message:   r.Detail,
		Raw:       raw,
		Outcome:   event.Outcome{Result: event.OutcomeSuccess, Code: strconv.Itoa(r.Status)},
	}
	if r.Status >= 400 {
		e.Outcome.Result = event.OutcomeFailure
	}
	if ip, err := netip.ParseAddr(r.Remote); err == nil {
		e.SrcIP = ip
	}
	for _, t := range r.Tenants {
		e.Resources = append(e.Resources, tenantResource(t))
	}
	if r.Target != "" {
		e.Resources = append(e.Resources, r.Target)
	}
	return e
}
