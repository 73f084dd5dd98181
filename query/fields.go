package query

import (
	"strconv"
	"strings"
)

// A Type is the type of a normalized field, which decides how values are
// compared with it.
type Type int

// Types of normalized fields.
const (
	TypeString Type = iota + 1 // text; ':' is exact and case-sensitive, wildcards ignore case
	TypeIP                     // an address, matched by address or CIDR prefix
	TypeInt                    // an integer; <, <=, >, >= compare numerically
	TypeTime                   // a timestamp; values are RFC 3339 times or dates
	TypeBool                   // true or false
	TypeList                   // a list of text; matches when any element does

	// Types of expressions that are not fields of the events table.
	typeFloat // sum, avg
	typeDoc   // text taken from the original document; compared as a number by <, >
)

var typeNames = map[Type]string{
	TypeString: "string", TypeIP: "ip", TypeInt: "int", TypeTime: "time", TypeBool: "bool", TypeList: "list",
	typeFloat: "float", typeDoc: "document",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// A Field is a normalized field of the events table that queries name.
type Field struct {
	Name      string   // the name queries use
	Aliases   []string // other names for it
	Column    string   // the column of the events table
	BinColumn string   // for IP fields: the column with the 16-byte form used for CIDR ranges
	Type      Type
	Doc       string // one line for documentation and completion
}

// fields is the fixed table of normalized names. Column names reach SQL
// only from here, never from the query text.
var fields = []Field{
	{Name: "time", Column: "time", Type: TypeTime, Doc: "when the event happened (UTC)"},
	{Name: "received", Column: "received", Type: TypeTime, Doc: "when vigil received the event (UTC)"},
	{Name: "tenant", Column: "tenant", Type: TypeString, Doc: "the tenant that owns the event"},
	{Name: "source", Column: "source", Type: TypeString, Doc: "log format, e.g. aws.cloudtrail"},
	{Name: "class", Column: "class", Type: TypeString, Doc: "event class, e.g. api_activity, authentication"},
	{Name: "event_id", Aliases: []string{"id"}, Column: "event_id", Type: TypeString, Doc: "the source's own event id"},
	{Name: "provider", Aliases: []string{"cloud"}, Column: "provider", Type: TypeString, Doc: "aws, gcp, azure"},
	{Name: "account", Column: "account", Type: TypeString, Doc: "AWS account, GCP project, Azure subscription"},
	{Name: "region", Column: "region", Type: TypeString, Doc: "cloud region"},
	{Name: "environment", Aliases: []string{"env"}, Column: "environment", Type: TypeString, Doc: "environment from the account map"},
	{Name: "actor", Column: "actor", Type: TypeString, Doc: "the principal's name: user name, email, UPN"},
	{Name: "actor_id", Column: "actor_id", Type: TypeString, Doc: "the principal's id or ARN"},
	{Name: "actor_type", Column: "actor_type", Type: TypeString, Doc: "IAMUser, AssumedRole, Root, ServiceAccount, …"},
	{Name: "session", Aliases: []string{"session_id"}, Column: "session_id", Type: TypeString, Doc: "access key or session id"},
	{Name: "session_origin", Aliases: []string{"origin_actor"}, Column: "session_origin", Type: TypeString, Doc: "the principal that started the session chain"},
	{Name: "src_ip", Column: "src_ip", BinColumn: "src_ip_bin", Type: TypeIP, Doc: "source address"},
	{Name: "dst_ip", Column: "dst_ip", BinColumn: "dst_ip_bin", Type: TypeIP, Doc: "destination address"},
	{Name: "src_port", Column: "src_port", Type: TypeInt, Doc: "source port"},
	{Name: "dst_port", Column: "dst_port", Type: TypeInt, Doc: "destination port"},
	{Name: "host", Column: "host", Type: TypeString, Doc: "the host that logged the event"},
	{Name: "user_agent", Column: "user_agent", Type: TypeString, Doc: "client user agent"},
	{Name: "service", Column: "service", Type: TypeString, Doc: "e.g. iam.amazonaws.com, sshd"},
	{Name: "action", Column: "action", Type: TypeString, Doc: "e.g. CreateUser, SetIamPolicy, login"},
	{Name: "resources", Column: "resources", Type: TypeList, Doc: "resources acted on (ARNs, names)"},
	{Name: "outcome", Column: "outcome", Type: TypeString, Doc: "success, failure or unknown"},
	{Name: "error_code", Column: "error_code", Type: TypeString, Doc: "provider error or status code"},
	{Name: "message", Column: "message", Type: TypeString, Doc: "free text (syslog)"},
	{Name: "origin", Column: "origin", Type: TypeString, Doc: "file:line or listener the event came from"},
	{Name: "seq", Column: "seq", Type: TypeInt, Doc: "ledger index"},
	{Name: "skewed", Column: "skewed", Type: TypeBool, Doc: "event time is far from receipt time"},

	// Enrichment: what vigil knew of the addresses and the account when
	// the event arrived.
	{Name: "src_asset", Column: "src_asset", Type: TypeString, Doc: "the asset that had the source address then (instance, interface)"},
	{Name: "src_owner", Column: "src_owner", Type: TypeString, Doc: "the owner or team of the source asset"},
	{Name: "src_country", Column: "src_country", Type: TypeString, Doc: "the source address's country (ISO code, GeoIP)"},
	{Name: "src_city", Column: "src_city", Type: TypeString, Doc: "the source address's city (GeoIP)"},
	{Name: "src_asn", Column: "src_asn", Type: TypeInt, Doc: "the source address's autonomous system number"},
	{Name: "src_as_org", Column: "src_as_org", Type: TypeString, Doc: "the source address's autonomous system organization"},
	{Name: "src_cloud", Column: "src_cloud", Type: TypeString, Doc: "provider/service/region when the source is in a cloud's published ranges"},
	{Name: "dst_asset", Column: "dst_asset", Type: TypeString, Doc: "the asset that had the destination address then"},
	{Name: "dst_owner", Column: "dst_owner", Type: TypeString, Doc: "the owner or team of the destination asset"},
	{Name: "dst_country", Column: "dst_country", Type: TypeString, Doc: "the destination address's country (ISO code, GeoIP)"},
	{Name: "dst_city", Column: "dst_city", Type: TypeString, Doc: "the destination address's city (GeoIP)"},
	{Name: "dst_asn", Column: "dst_asn", Type: TypeInt, Doc: "the destination address's autonomous system number"},
	{Name: "dst_as_org", Column: "dst_as_org", Type: TypeString, Doc: "the destination address's autonomous system organization"},
	{Name: "dst_cloud", Column: "dst_cloud", Type: TypeString, Doc: "provider/service/region when the destination is in a cloud's published ranges"},
	{Name: "team", Column: "team", Type: TypeString, Doc: "the team that owns the account (owners map)"},
	{Name: "intel", Column: "intel", Type: TypeList, Doc: "threat-intel lists that named a value of the event"},
	{Name: "intel_indicator", Column: "intel_indicator", Type: TypeList, Doc: "the values of the event threat-intel lists named"},
	{Name: "intel_type", Column: "intel_type", Type: TypeList, Doc: "the threat types of those listings"},
}

var fieldsByName = func() map[string]*Field {
	m := make(map[string]*Field)
	for i := range fields {
		f := &fields[i]
		m[f.Name] = f
		for _, a := range f.Aliases {
			m[a] = f
		}
	}
	return m
}()

// Fields returns the normalized fields queries can name, in the order of
// the events table. Any other name is a path into the original document.
func Fields() []Field {
	out := make([]Field, len(fields))
	for i, f := range fields {
		f.Aliases = append([]string(nil), f.Aliases...)
		out[i] = f
	}
	return out
}

// LookupField returns the normalized field called name (or one of its
// aliases). Names are case-sensitive, as document paths are: Action is a
// document field, action the normalized one.
func LookupField(name string) (Field, bool) {
	f, ok := fieldsByName[name]
	if !ok {
		return Field{}, false
	}
	return *f, true
}

// eventColumns is the projection of a plain search, in this order: every
// column of the events table the store needs to rebuild an event.
var eventColumns = []string{
	"seq", "time", "received", "skewed", "tenant", "source", "class", "event_id",
	"provider", "account", "region", "environment", "actor", "actor_id", "actor_type",
	"session_id", "session_origin", "src_ip", "dst_ip", "src_port", "dst_port", "host",
	"user_agent", "service", "action", "resources", "outcome", "error_code", "message",
	"origin", "raw", "raw_bin", "doc",
	"src_asset", "src_owner", "src_country", "src_city", "src_asn", "src_as_org", "src_cloud",
	"dst_asset", "dst_owner", "dst_country", "dst_city", "dst_asn", "dst_as_org", "dst_cloud",
	"team", "intel", "intel_indicator", "intel_type",
}

// EventColumns returns the columns a plain search (Kind Events) selects,
// in order. They are columns of the events table, so the store scans rows
// of such a result straight into events.
func EventColumns() []string {
	return append([]string(nil), eventColumns...)
}

// A docColumn is a column that a source's parser fills with one field of
// the original document, copied verbatim.
type docColumn struct {
	source string
	column string
}

// docColumns lists, by document path, the columns that hold the field for
// some sources. Only verbatim copies belong here: a filter on the column
// must match the events a filter on the document would, for every value
// except the empty text (an empty field is a NULL column). One difference
// is deliberate: the CloudTrail parser, like encoding/json, also reads a
// key spelled in another case ("EventName"), and so does the filter, so
// that such a spelling cannot hide an event from a search or a rule.
// GCP's fields are not here: Panther's exports of GCP audit logs lower-case
// every key (methodname), which the parser reads and a document path does
// not, so there the column would match more than the document.
var docColumns = map[string][]docColumn{
	"eventName":   {{"aws.cloudtrail", "action"}},
	"eventSource": {{"aws.cloudtrail", "service"}},
	"eventID":     {{"aws.cloudtrail", "event_id"}},
	"awsRegion":   {{"aws.cloudtrail", "region"}},
	"userAgent":   {{"aws.cloudtrail", "user_agent"}},
}

// matchesText reports whether p matches only non-empty text, the values
// for which a document field and the column it was copied to agree.
func matchesText(p *predicate) bool {
	switch {
	case p.wild:
		return strings.Trim(p.val.Pattern, "*") != ""
	case p.op == Eq || p.op == Ne:
		return p.text != ""
	}
	return false
}
