// Package event defines the normalized event every parser produces and
// every later stage (ledger, store, detection) consumes.
//
// Names follow OCSF where one fits. The original document is never thrown
// away: Raw holds the exact bytes received and Doc, when Raw is not itself
// the JSON document that dotted field names resolve against, holds that
// document.
package event

import (
	"net/netip"
	"time"
)

// Classes of events, after the OCSF class names.
const (
	ClassAPIActivity     = "api_activity"
	ClassAuthentication  = "authentication"
	ClassNetworkActivity = "network_activity"
	ClassHTTPActivity    = "http_activity"
	ClassAccountChange   = "account_change"
	ClassSystemLog       = "system_log"
	ClassRemediation     = "remediation_activity" // vigil's own response actions
	ClassOther           = "other"
)

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeUnknown = "unknown"
)

// An Event is one normalized log record.
type Event struct {
	Seq      uint64    // ledger index; 0 until the event is appended
	Time     time.Time // when it happened, UTC
	Received time.Time // when vigil received it, UTC
	Skewed   bool      // Time and Received differ by more than the configured bound

	Tenant      string
	Source      string // format, e.g. "aws.cloudtrail"
	Class       string // one of the Class constants
	ID          string // the source's own event id (eventID, insertId, …), if any
	Cloud       Cloud
	Environment string // from the account→environment map

	Actor     Actor
	Session   Session
	SrcIP     netip.Addr
	DstIP     netip.Addr
	SrcPort   uint16
	DstPort   uint16
	Host      string // the host that logged the event (syslog)
	UserAgent string
	Service   string // e.g. "iam.amazonaws.com", "sshd"
	Action    string // e.g. "CreateUser", "SetIamPolicy", "login"
	Resources []string
	Outcome   Outcome
	Message   string // free text, for formats that have one (syslog)

	// Origin says where the event came from: "path/to/file.json.gz:12"
	// for imports, the listener for live ingest.
	Origin string

	// Context is what vigil knew of the event's addresses and account
	// when it arrived: filled in by enrichment, before the ledger.
	Context Context

	// Raw is the exact bytes received for this event.
	Raw []byte
	// Doc is the JSON document original field names resolve against when
	// it differs from Raw: the inner event of a CloudTrail LookupEvents
	// record, the fields extracted from a syslog line. Nil when Raw is
	// the document.
	Doc []byte
}

// Cloud locates an event in a provider's hierarchy.
type Cloud struct {
	Provider string // aws, gcp, azure
	Account  string // AWS account id, GCP project, Azure subscription or tenant
	Region   string
}

// Actor is the principal that performed the action.
type Actor struct {
	ID   string // principal id, ARN, object id
	Type string // IAMUser, AssumedRole, Root, ServiceAccount, user, …
	Name string // the human-readable name: user name, email, UPN
}

// Session identifies the credential used, and after identity reassembly
// the principal that started the chain.
type Session struct {
	ID     string // access key id, session id
	Origin string // the originating principal, when known
}

// Context is what enrichment adds to an event. The zero Context says
// nothing was known.
type Context struct {
	Src, Dst Place
	Team     string // the team that owns the account, from the owners map
	Intel    []IntelHit
}

// A Place is what an address was at the event's time.
type Place struct {
	Asset   string // the asset that held it: an instance or interface id
	Owner   string // the asset's owner or team
	Country string // ISO 3166-1 alpha-2 code, from GeoIP
	City    string
	ASN     uint32 // autonomous system number, from GeoIP
	ASOrg   string // the autonomous system's organization
	Cloud   string // provider/service/region, when in a provider's published ranges
}

// An IntelHit is a value of the event that a threat-intel list names.
type IntelHit struct {
	List      string // the list, or the source a row of it names
	Indicator string // the value matched: an address, domain or hash
	Type      string // the threat type, when the list gave one
}

// IsZero reports whether c says nothing.
func (c *Context) IsZero() bool {
	return c.Src == Place{} && c.Dst == Place{} && c.Team == "" && len(c.Intel) == 0
}

// Outcome says whether the action succeeded.
type Outcome struct {
	Result string // one of the Outcome constants
	Code   string // provider error or status code
}

// Document returns the JSON document original field names resolve against.
func (e *Event) Document() []byte {
	if e.Doc != nil {
		return e.Doc
	}
	return e.Raw
}
