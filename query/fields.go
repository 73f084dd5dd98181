package query

import "strconv"

// A Type is the type of a normalized field, which decides how values are
// compared with it.
type Type int

// Types of normalized fields.
const (
	String Type = iota + 1 // text; ':' is exact and case-sensitive, wildcards case-insensitive
	IP                     // an address, matched by address or CIDR prefix
	Int                    // an integer; <, <=, >, >= compare numerically
	Time                   // a timestamp; values are RFC 3339 times or dates
	Bool                   // true or false
	List                   // a list of text; matches when any element does

	// Types of expressions that are not fields of the events table.
	typeFloat // sum, avg
	typeDoc   // text taken from the original document; compared as a number by <, >
)

var typeNames = map[Type]string{
	String: "string", IP: "ip", Int: "int", Time: "time", Bool: "bool", List: "list",
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
	{Name: "time", Column: "time", Type: Time, Doc: "when the event happened (UTC)"},
	{Name: "received", Column: "received", Type: Time, Doc: "when vigil received the event (UTC)"},
	{Name: "tenant", Column: "tenant", Type: String, Doc: "the tenant that owns the event"},
	{Name: "source", Column: "source", Type: String, Doc: "log format, e.g. aws.cloudtrail"},
	{Name: "class", Column: "class", Type: String, Doc: "event class, e.g. api_activity, authentication"},
	{Name: "event_id", Aliases: []string{"id"}, Column: "event_id", Type: String, Doc: "the source's own event id"},
	{Name: "provider", Aliases: []string{"cloud"}, Column: "provider", Type: String, Doc: "aws, gcp, azure"},
	{Name: "account", Column: "account", Type: String, Doc: "AWS account, GCP project, Azure subscription"},
	{Name: "region", Column: "region", Type: String, Doc: "cloud region"},
	{Name: "environment", Aliases: []string{"env"}, Column: "environment", Type: String, Doc: "environment from the account map"},
	{Name: "actor", Column: "actor", Type: String, Doc: "the principal's name: user name, email, UPN"},
	{Name: "actor_id", Column: "actor_id", Type: String, Doc: "the principal's id or ARN"},
	{Name: "actor_type", Column: "actor_type", Type: String, Doc: "IAMUser, AssumedRole, Root, ServiceAccount, …"},
	{Name: "session", Aliases: []string{"session_id"}, Column: "session_id", Type: String, Doc: "access key or session id"},
	{Name: "session_origin", Column: "session_origin", Type: String, Doc: "the principal that started the session chain"},
	{Name: "src_ip", Column: "src_ip", BinColumn: "src_ip_bin", Type: IP, Doc: "source address"},
	{Name: "dst_ip", Column: "dst_ip", BinColumn: "dst_ip_bin", Type: IP, Doc: "destination address"},
	{Name: "src_port", Column: "src_port", Type: Int, Doc: "source port"},
	{Name: "dst_port", Column: "dst_port", Type: Int, Doc: "destination port"},
	{Name: "host", Column: "host", Type: String, Doc: "the host that logged the event"},
	{Name: "user_agent", Column: "user_agent", Type: String, Doc: "client user agent"},
	{Name: "service", Column: "service", Type: String, Doc: "e.g. iam.amazonaws.com, sshd"},
	{Name: "action", Column: "action", Type: String, Doc: "e.g. CreateUser, SetIamPolicy, login"},
	{Name: "resources", Column: "resources", Type: List, Doc: "resources acted on (ARNs, names)"},
	{Name: "outcome", Column: "outcome", Type: String, Doc: "success, failure or unknown"},
	{Name: "error_code", Column: "error_code", Type: String, Doc: "provider error or status code"},
	{Name: "message", Column: "message", Type: String, Doc: "free text (syslog)"},
	{Name: "origin", Column: "origin", Type: String, Doc: "file:line or listener the event came from"},
	{Name: "seq", Column: "seq", Type: Int, Doc: "ledger index"},
	{Name: "skewed", Column: "skewed", Type: Bool, Doc: "event time is far from receipt time"},
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
}

// EventColumns returns the columns a plain search (Kind Events) selects,
// in order. They are columns of the events table, so the store scans rows
// of such a result straight into events.
func EventColumns() []string {
	return append([]string(nil), eventColumns...)
}
