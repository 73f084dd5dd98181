package parse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

func init() {
	registerJSON("gcp.audit", "GCP Cloud Audit Logs: Cloud Logging entries whose protoPayload is an AuditLog, as JSON lines or arrays", parseGCPAudit)
}

// gcpLogEntry holds the fields of a Cloud Logging LogEntry that
// normalization reads; the rest stays in the raw document.
type gcpLogEntry struct {
	InsertID         string          `json:"insertId"`
	LogName          string          `json:"logName"`
	Timestamp        json.RawMessage `json:"timestamp"`
	ReceiveTimestamp json.RawMessage `json:"receiveTimestamp"`
	// Panther's stored events carry its own copy of the event time.
	PantherTime json.RawMessage `json:"p_event_time"`
	Resource    struct {
		Labels struct {
			ProjectID string `json:"project_id"`
			Region    string `json:"region"`
			Location  string `json:"location"`
			Zone      string `json:"zone"`
		} `json:"labels"`
	} `json:"resource"`
	ProtoPayload json.RawMessage `json:"protoPayload"`
}

// gcpAuditLog is the part of a google.cloud.audit.AuditLog that
// normalization reads.
type gcpAuditLog struct {
	Type string `json:"@type"`
	// Panther renames "@type", which its schema cannot hold.
	PantherType        string `json:"at_sign_type"`
	ServiceName        string `json:"serviceName"`
	MethodName         string `json:"methodName"`
	ResourceName       string `json:"resourceName"`
	AuthenticationInfo struct {
		PrincipalEmail               string `json:"principalEmail"`
		PrincipalSubject             string `json:"principalSubject"`
		ServiceAccountKeyName        string `json:"serviceAccountKeyName"`
		ServiceAccountDelegationInfo []struct {
			FirstPartyPrincipal struct {
				PrincipalEmail string `json:"principalEmail"`
			} `json:"firstPartyPrincipal"`
			ThirdPartyPrincipal struct {
				ThirdPartyClaims struct {
					Subject string `json:"sub"`
				} `json:"thirdPartyClaims"`
			} `json:"thirdPartyPrincipal"`
			PrincipalSubject string `json:"principalSubject"`
		} `json:"serviceAccountDelegationInfo"`
	} `json:"authenticationInfo"`
	RequestMetadata struct {
		CallerIP                string `json:"callerIp"` // Panther writes callerIP; matching is case-insensitive
		CallerSuppliedUserAgent string `json:"callerSuppliedUserAgent"`
		RequestAttributes       struct {
			Time json.RawMessage `json:"time"`
		} `json:"requestAttributes"`
	} `json:"requestMetadata"`
	Status struct {
		Code    jsonText `json:"code"`
		Message string   `json:"message"`
	} `json:"status"`
	ResourceLocation struct {
		CurrentLocations []string `json:"currentLocations"`
	} `json:"resourceLocation"`
}

const gcpAuditLogType = "type.googleapis.com/google.cloud.audit.AuditLog"

func parseGCPAudit(rec []byte, ev *event.Event) error {
	if !isJSONObject(rec) {
		return notThis("GCP audit log", "not a JSON object")
	}
	var e gcpLogEntry
	if err := decodeLenient(rec, &e); err != nil {
		return err
	}
	switch {
	case len(e.ProtoPayload) == 0 || e.ProtoPayload[0] == 'n':
		return notThis("GCP audit log", "no protoPayload")
	case e.ProtoPayload[0] != '{':
		return notThis("GCP audit log", "protoPayload is "+jsonKind(e.ProtoPayload)+", not an object")
	}
	var p gcpAuditLog
	if err := decodeLenient(e.ProtoPayload, &p); err != nil {
		return fmt.Errorf("GCP audit protoPayload: %w", err)
	}

	t, err := firstTime(
		timeSource{name: "timestamp", raw: e.Timestamp},
		timeSource{name: "receiveTimestamp", raw: e.ReceiveTimestamp, approx: true},
		timeSource{name: "p_event_time", raw: e.PantherTime, approx: true},
		timeSource{name: "protoPayload.requestMetadata.requestAttributes.time", raw: p.RequestMetadata.RequestAttributes.Time, approx: true})
	if err != nil {
		return fmt.Errorf("%s: %w", recordName("GCP audit record", e.InsertID), err)
	}
	ev.Time = t
	ev.ID = e.InsertID
	ev.Source = "gcp.audit"
	ev.Class = gcpClass(p)
	ev.Cloud = event.Cloud{Provider: "gcp", Account: gcpProject(e, p), Region: gcpRegion(e, p)}

	auth := &p.AuthenticationInfo
	ev.Actor.Name = auth.PrincipalEmail
	if ev.Actor.Name == "" {
		_, ev.Actor.Name, _ = strings.Cut(auth.PrincipalSubject, ":")
	}
	ev.Actor.ID = auth.PrincipalSubject
	ev.Actor.Type = gcpPrincipalType(auth.PrincipalEmail, auth.PrincipalSubject)
	ev.Session.ID = auth.ServiceAccountKeyName
	// The delegation chain lists the authorities behind an impersonated
	// service account, the original caller first.
	if d := auth.ServiceAccountDelegationInfo; len(d) > 0 {
		ev.Session.Origin = d[0].FirstPartyPrincipal.PrincipalEmail
		if ev.Session.Origin == "" {
			ev.Session.Origin = d[0].PrincipalSubject
		}
		if ev.Session.Origin == "" {
			ev.Session.Origin = d[0].ThirdPartyPrincipal.ThirdPartyClaims.Subject
		}
	}

	ev.SrcIP, ev.SrcPort = parseCallerIP(p.RequestMetadata.CallerIP)
	ev.UserAgent = p.RequestMetadata.CallerSuppliedUserAgent
	ev.Service = p.ServiceName
	ev.Action = p.MethodName
	if p.ResourceName != "" {
		ev.Resources = []string{p.ResourceName}
	}
	ev.Outcome = gcpOutcome(p.Status.Code)
	if ev.Outcome.Result == event.OutcomeFailure {
		ev.Message = p.Status.Message
	}
	return nil
}

// gcpProject finds the project an entry belongs to: the monitored
// resource's label, else the project that owns the log, else the project
// named in the audited resource. The logs of an organization, folder or
// billing account belong to no project; their account is the owner's
// resource name (organizations/123), which no project id can equal.
func gcpProject(e gcpLogEntry, p gcpAuditLog) string {
	if id := e.Resource.Labels.ProjectID; id != "" {
		return id
	}
	if id := projectIn(e.LogName); id != "" {
		return id
	}
	if id := projectIn(p.ResourceName); id != "" {
		return id
	}
	if owner, _, ok := strings.Cut(e.LogName, "/logs/"); ok {
		kind, id, _ := strings.Cut(owner, "/")
		switch kind {
		case "organizations", "folders", "billingAccounts":
			if id != "" {
				return owner
			}
		}
	}
	return ""
}

// projectIn returns X from a resource name containing "projects/X/";
// "_" and "-", which stand for any project, do not count.
func projectIn(name string) string {
	for i := 0; ; {
		j := strings.Index(name[i:], "projects/")
		if j < 0 {
			return ""
		}
		i += j
		if i == 0 || name[i-1] == '/' {
			id, _, _ := strings.Cut(name[i+len("projects/"):], "/")
			if id != "" && id != "_" && id != "-" {
				return id
			}
		}
		i += len("projects/")
	}
}

func gcpRegion(e gcpLogEntry, p gcpAuditLog) string {
	l := e.Resource.Labels
	for _, s := range []string{l.Region, l.Location, l.Zone} {
		if s != "" {
			return s
		}
	}
	if locs := p.ResourceLocation.CurrentLocations; len(locs) > 0 {
		return locs[0]
	}
	return ""
}

func gcpPrincipalType(email, subject string) string {
	switch {
	case strings.HasPrefix(subject, "serviceAccount:"),
		strings.HasSuffix(email, ".gserviceaccount.com"),
		strings.HasPrefix(email, "system:serviceaccount:"): // a GKE workload
		return "serviceAccount"
	case email != "", strings.HasPrefix(subject, "user:"):
		return "user"
	}
	return ""
}

// gcpClass sorts audit records: changes to IAM service accounts and
// roles are account changes; payloads that are not audit logs (App Engine
// request logs share the protoPayload field) are other.
func gcpClass(p gcpAuditLog) string {
	typ := p.Type
	if typ == "" {
		typ = p.PantherType
	}
	if typ != "" && typ != gcpAuditLogType {
		return event.ClassOther
	}
	if p.ServiceName == "iam.googleapis.com" {
		verb := p.MethodName[strings.LastIndexByte(p.MethodName, '.')+1:]
		for _, prefix := range []string{"Create", "Delete", "Undelete", "Update", "Patch", "Enable", "Disable", "Upload", "SetIamPolicy"} {
			if strings.HasPrefix(verb, prefix) {
				return event.ClassAccountChange
			}
		}
	}
	return event.ClassAPIActivity
}

// gcpCodes are the names of the google.rpc.Code values in status.code.
var gcpCodes = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// gcpOutcome reads status.code: absent or 0 is success, as in the proto
// the JSON comes from, where a zero code is not written.
func gcpOutcome(code jsonText) event.Outcome {
	if code == "" || code == "0" {
		return event.Outcome{Result: event.OutcomeSuccess}
	}
	c := string(code)
	if n, err := strconv.Atoi(c); err == nil && n > 0 && n < len(gcpCodes) {
		c = gcpCodes[n]
	}
	return event.Outcome{Result: event.OutcomeFailure, Code: c}
}

// Field decoding shared by the cloud formats (gcpaudit.go, azure.go).
//
// Exports of the same log differ in the JSON type of a field (a result
// code as 0 or "0"), and test fixtures put placeholders ("...") where an
// object belongs. A field that only adds detail is therefore decoded
// leniently; the fields a format is recognized by and its time are
// decoded as json.RawMessage or a type of their own and checked, so that
// a record malformed where it matters is quarantined with the reason.

// recordName names a record in an error: what it is, and its id when it
// has one.
func recordName(what, id string) string {
	if id == "" {
		return what
	}
	return fmt.Sprintf("%s %q", what, truncate(id, 64))
}

// decodeLenient decodes the JSON object rec into v, leaving fields of an
// unexpected JSON type zero: encoding/json fills every other field before
// it reports the first mismatch.
func decodeLenient(rec []byte, v any) error {
	err := json.Unmarshal(rec, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return jsonError(rec)
}

// isJSONObject reports whether rec holds a JSON object.
func isJSONObject(rec []byte) bool {
	rec = bytes.TrimLeft(rec, " \t\r\n")
	return len(rec) > 0 && rec[0] == '{'
}

// jsonKind names the JSON type of a value, for error messages.
func jsonKind(v []byte) string {
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// jsonText is a scalar that exports write as a string or as a number
// (resultType 0 or "0", status codes). Other JSON types decode to "".
type jsonText string

func (s *jsonText) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var v string
		if json.Unmarshal(b, &v) == nil {
			*s = jsonText(v)
		}
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		*s = jsonText(b)
	}
	return nil
}

// A timeSource is a field an event time may be read from.
type timeSource struct {
	name string
	raw  json.RawMessage
	// approx marks a field that only stands in for the event time (when
	// the log received the record, a copy some pipeline made). A value
	// there that is not a time is passed over: it does not make the
	// record itself malformed.
	approx bool
}

// firstTime reads the first present of the time fields. A field holding
// the event time that is present but not a time is an error, not a
// reason to look further: the record is malformed. No time at all is not
// an error; the event is then stamped with its receipt time.
func firstTime(srcs ...timeSource) (time.Time, error) {
	for _, src := range srcs {
		t, ok, err := readTimeField(src.name, src.raw)
		if err != nil && src.approx {
			continue
		}
		if err != nil || ok {
			return t, err
		}
	}
	return time.Time{}, nil
}

// readTimeField reads a time written as a string in any layout parseTime
// knows, or as a number since the epoch. An absent, null or empty field
// is not ok.
func readTimeField(name string, raw json.RawMessage) (t time.Time, ok bool, err error) {
	var s string
	switch {
	case len(raw) == 0 || raw[0] == 'n':
		return t, false, nil
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return t, false, fmt.Errorf("%s: %w", name, err)
		}
		if strings.TrimSpace(s) == "" {
			return t, false, nil
		}
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		s = string(raw)
	default:
		return t, false, fmt.Errorf("%s is %s, not a time", name, jsonKind(raw))
	}
	t, err = parseTime(s)
	if err != nil {
		return t, false, fmt.Errorf("%s: %w", name, err)
	}
	return t, true, nil
}

// parseCallerIP reads a caller address, with or without a port. What else
// cloud logs put there — "AWS Internal", "gce-internal-ip", a host name —
// gives the zero Addr.
func parseCallerIP(s string) (netip.Addr, uint16) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap(), 0
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Port()
	}
	return netip.Addr{}, 0
}
