package query

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests check the one guarantee tenants rely on: every statement
// Compile writes reads only the events its scope allows, whatever the
// query. They check it three ways: in the text of the SQL (every read of
// the events table begins its WHERE with the scope's condition, bound to
// the scope's arguments), in what is refused (a query over a redacting
// share may not name what it hides, nor search free text), and in the
// rows (a query over a scope returns what the same query returns over
// all of a store holding only the events the scope may read).

// scopeEvents are testEvents and the events of more tenants: t2 and t3
// share parts of theirs, t4 shares nothing, and SystemTenant holds audit
// records.
var scopeEvents = append(slices.Clone(testEvents), []testEvent{
	{
		seq: 7, time: "2024-07-31T11:00:00Z", tenant: "t2", source: "aws.cloudtrail", class: "account_change",
		eventID: "ev-7", provider: "aws", account: "222222222222", region: "us-east-1", env: "prod",
		actor: "mallory", actorID: "arn:aws:iam::222222222222:user/mallory", actorType: "IAMUser",
		srcIP: "203.0.113.9", service: "iam.amazonaws.com", action: "CreateUser", outcome: "failure", errorCode: "AccessDenied",
		raw: `{"eventName":"CreateUser","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::222222222222:user/mallory"},"requestParameters":{"userName":"christophe","bytes":10}}`,
	},
	{
		seq: 8, time: "2024-08-01T03:00:00Z", tenant: "t2", source: "aws.cloudtrail", class: "api_activity",
		eventID: "ev-8", provider: "aws", account: "222222222222", region: "us-west-2", env: "prod",
		actor: "mallory", actorType: "Root", srcIP: "198.51.100.7", service: "s3.amazonaws.com", action: "DeleteBucket",
		resources: []string{"arn:aws:s3:::secret-bucket"}, outcome: "success",
		raw: `{"eventName":"DeleteBucket","userIdentity":{"type":"Root","arn":"arn:aws:iam::222222222222:root"},"requestParameters":{"bucketName":"secret-bucket","bytes":4096}}`,
	},
	{
		seq: 9, time: "2024-07-31T08:00:00Z", tenant: "t2", source: "syslog", class: "authentication",
		srcIP: "10.4.4.4", dstIP: "10.9.9.9", srcPort: 4444, dstPort: 22, host: "db2", service: "sshd",
		action: "login", outcome: "success", message: "Accepted publickey for christophe",
		raw: `<38>Jul 31 08:00:00 db2 sshd[9]: Accepted publickey for christophe from 10.4.4.4 port 4444 ssh2`,
	},
	{
		seq: 10, time: "2024-07-31T12:30:00Z", tenant: "t3", source: "gcp.audit", class: "api_activity",
		eventID: "ev-10", provider: "gcp", account: "proj-3", region: "europe-west1", env: "staging",
		actor: "carol@example.com", actorType: "user", srcIP: "2001:db8::3", service: "storage.googleapis.com",
		action: "storage.buckets.delete", outcome: "success",
		raw: `{"protoPayload":{"methodName":"storage.buckets.delete","authenticationInfo":{"principalEmail":"carol@example.com"}},"requestParameters":{"bucketName":"t3-bucket"}}`,
	},
	{
		seq: 11, time: "2024-07-30T23:00:00Z", tenant: "t3", source: "aws.cloudtrail", class: "api_activity",
		eventID: "ev-11", provider: "aws", account: "333333333333", region: "eu-west-1", env: "prod",
		actor: "dave", actorType: "IAMUser", srcIP: "203.0.113.77", action: "StopLogging", outcome: "success", skewed: true,
		raw: `{"eventName":"StopLogging","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::333333333333:user/dave"}}`,
	},
	{
		seq: 12, time: "2024-07-31T10:00:00Z", tenant: "t4", source: "aws.cloudtrail", class: "api_activity",
		eventID: "ev-12", provider: "aws", env: "prod", actor: "eve", srcIP: "203.0.113.5", action: "StopLogging", outcome: "success",
		raw: `{"eventName":"StopLogging","secret":"t4 only"}`,
	},
	{
		seq: 13, time: "2024-07-31T15:00:00Z", tenant: "t2", source: "aws.cloudtrail", class: "api_activity",
		eventID: "ev-13", provider: "aws", account: "222222222222", actor: "mallory", srcIP: "203.0.113.9",
		service: "s3.amazonaws.com", action: "GetObject", resources: []string{"arn:aws:s3:::secret-bucket/key"},
		// No outcome: a NULL, which NOT outcome:failure selects.
		raw: `{"EventId":"ev-13"}`,
		doc: `{"eventName":"GetObject","userIdentity":{"type":"IAMUser"},"requestParameters":{"bucketName":"secret-bucket","key":"key"}}`,
	},
	{
		seq: 14, time: "2024-07-31T07:00:00Z", tenant: "t2", source: "aws.cloudtrail", class: "api_activity",
		eventID: "ev-14", provider: "aws", account: "222222222222", actor: "mallory", action: "ListBuckets", outcome: "success",
		raw: `{"eventName":"ListBuckets","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::222222222222:user/mallory"}}`,
	},
	{
		seq: 15, time: "2024-07-31T10:30:00Z", tenant: SystemTenant, source: "vigil.audit", class: "audit",
		actor: "alice", action: "search", resources: []string{"tenant:t1"}, outcome: "success",
		raw: `{"action":"search","query":"requestParameters.userName:christophe","tenant":"t1"}`,
	},
	{
		seq: 16, time: "2024-07-31T10:35:00Z", tenant: SystemTenant, source: "vigil.audit", class: "audit",
		actor: "mallory", action: "search", resources: []string{"tenant:t2"}, outcome: "success",
		raw: `{"action":"search","query":"secret","tenant":"t2"}`,
	},
}...)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustFilter(s string) *Query {
	q, err := Parse(s)
	if err != nil {
		panic(fmt.Sprintf("Parse(%q): %v", s, err))
	}
	return q
}

// The paths and fields redacting shares below hide, and the shares'
// filters.
var (
	redactedPaths  = []string{"requestParameters", "userIdentity.arn"}
	redactedFields = []string{"src_ip", "env"}
	shareFilter    = `source:aws.cloudtrail AND NOT outcome:failure`
	sharesFilter   = `action:StopLogging OR src_ip:10.0.0.0/8`
)

// A scopeCase is a scope and, worked out by hand from scopeEvents, the
// events it reads and the names a query over it may not name.
type scopeCase struct {
	name    string
	scope   Scope
	reads   []uint64 // the seqs of the events the scope reads
	hides   []string // what a query may not name
	diff    bool     // compare each query's rows with its rows over a store of reads alone (not when redacting: the store redacts rows after SQL)
	tenants []string // tenant names that must be arguments of every statement
}

var allButSystem = []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

var scopeCases = []scopeCase{
	{name: "tenant", scope: Scope{Tenants: []string{"t1"}},
		reads: []uint64{1, 2, 3, 4, 6}, diff: true, tenants: []string{"t1"}},
	// t2's share: CloudTrail events that did not fail, in [09:00, 24:00)
	// of July 31: 5, and 13, whose outcome is NULL (not 7, a failure, 8,
	// after, 9, syslog, 14, before).
	{name: "tenants and a share", scope: Scope{Tenants: []string{"t1", "t3"}, Shares: []Share{{
		Grant: "g-t2", Tenant: "t2", Filter: mustFilter(shareFilter),
		From: mustTime("2024-07-31T09:00:00Z"), To: mustTime("2024-08-01T00:00:00Z"),
	}}}, reads: []uint64{1, 2, 3, 4, 5, 6, 10, 11, 13}, diff: true, tenants: []string{"t1", "t2", "t3"}},
	// Shares alone: t2's StopLogging and 10/8 (5, 9), t2's before 07:30
	// (14), t3's from July 31 (10, not 11).
	{name: "shares only", scope: Scope{Shares: []Share{
		{Grant: "g-a", Tenant: "t2", Filter: mustFilter(sharesFilter)},
		{Grant: "g-b", Tenant: "t2", To: mustTime("2024-07-31T07:30:00Z")},
		{Grant: "g-c", Tenant: "t3", From: mustTime("2024-07-31T00:00:00Z")},
	}}, reads: []uint64{5, 9, 10, 14}, diff: true, tenants: []string{"t2", "t3"}},
	// eventName:* selects t2's JSON events: all but the syslog line 9.
	{name: "redacting share", scope: Scope{Tenants: []string{"t1"}, Shares: []Share{{
		Grant: "g-r", Tenant: "t2", Filter: mustFilter(`eventName:*`), Redact: redactedPaths,
	}}}, reads: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 13, 14}, hides: redactedPaths, tenants: []string{"t1", "t2"}},
	// Two tenants' shares hide the union of what each hides.
	{name: "two redacting shares", scope: Scope{Shares: []Share{
		{Grant: "g-r2", Tenant: "t2", Redact: []string{"requestParameters"}},
		{Grant: "g-r3", Tenant: "t3", Redact: redactedFields},
	}}, reads: []uint64{5, 7, 8, 9, 10, 11, 13, 14}, hides: append([]string{"requestParameters"}, redactedFields...), tenants: []string{"t2", "t3"}},
	{name: "zero", scope: Scope{}, diff: true},
	{name: "no tenants", scope: Scope{Tenants: []string{}}, diff: true},
	{name: "all", scope: Scope{All: true}, reads: allButSystem, diff: true},
	{name: "all and the system tenant", scope: Scope{All: true, Tenants: []string{SystemTenant}},
		reads: append(slices.Clone(allButSystem), 15, 16), diff: true},
	// An auditor of t1 (see access.auditScope).
	{name: "audit share", scope: Scope{Shares: []Share{{
		Grant: "audit of t1", Tenant: SystemTenant, Filter: mustFilter(`resources:` + Quote("tenant:t1")),
	}}}, reads: []uint64{15}, diff: true, tenants: []string{SystemTenant}},
	// A share of a tenant the scope reads whole adds nothing and hides
	// nothing.
	{name: "share of its own tenant", scope: Scope{Tenants: []string{"t1"}, Shares: []Share{{
		Grant: "g-own", Tenant: "t1", Redact: []string{"requestParameters"},
	}}}, reads: []uint64{1, 2, 3, 4, 6}, diff: true, tenants: []string{"t1"}},
	{name: "all and a redacting share", scope: Scope{All: true, Shares: []Share{{
		Grant: "g-all", Tenant: "t2", Redact: []string{"requestParameters"},
	}}}, reads: allButSystem, diff: true},
}

// hiddenBy reports whether a query naming name reads what a share
// redacting redact hides, by the rule written in Share.Redact's doc, not
// by the code under test: a normalized field (or an alias of it) hides
// the column whatever name the query gives it; a document path hides
// itself, every path under it and every path above it (whose text holds
// it), its keys compared without regard to case.
func hiddenBy(redact []string, name string) bool {
	f, isField := LookupField(name)
	for _, r := range redact {
		if rf, ok := LookupField(r); ok {
			if isField && rf.Column == f.Column {
				return true
			}
			continue
		}
		if isField {
			continue // a column, not the document
		}
		p, q := strings.Split(name, "."), strings.Split(r, ".")
		n := min(len(p), len(q))
		if slices.EqualFunc(p[:n], q[:n], strings.EqualFold) {
			return true
		}
	}
	return false
}

// eventNames calls fn with each name q reads from the events: those of
// its filter and of its commands up to the first stats or timechart,
// after which names are the columns of a table, not fields.
func eventNames(q *Query, fn func(string)) {
	var walk func(Expr)
	walk = func(e Expr) {
		switch e := e.(type) {
		case *And:
			for _, a := range e.Args {
				walk(a)
			}
		case *Or:
			for _, a := range e.Args {
				walk(a)
			}
		case *Not:
			walk(e.X)
		case *Compare:
			fn(e.Field)
		}
	}
	walk(q.Filter)
	aggs := func(aggs []Agg, by []FieldRef) {
		for _, a := range aggs {
			if a.Field != nil {
				fn(a.Field.Name)
			}
		}
		for _, b := range by {
			fn(b.Name)
		}
	}
	for _, p := range q.Pipes {
		switch p := p.(type) {
		case *Stats:
			aggs(p.Aggs, p.By)
			return
		case *Timechart:
			aggs(p.Aggs, p.By)
			return
		case *Sort:
			for _, k := range p.Keys {
				fn(k.Name)
			}
		case *Project:
			for _, f := range p.Fields {
				fn(f.Name)
			}
		}
	}
}

// namesHidden returns the first name of q that redact hides.
func namesHidden(q *Query, redact []string) string {
	var hit string
	eventNames(q, func(n string) {
		if hit == "" && hiddenBy(redact, n) {
			hit = n
		}
	})
	return hit
}

// A verdict is what Compile must do with a query over a redacting scope.
type verdict int

const (
	mustCompile verdict = iota // when it compiles over a tenant alone
	mustRefuse                 // with a *query.Error
)

// redactVerdict says what Compile must do with q over a scope hiding
// hides, and why: refuse a query naming what the scope hides or
// searching free text (which reads the whole raw event), and any
// document path while a normalized field is hidden (the field may have
// been read from any key of the document); compile one that names
// nothing of the kind.
func redactVerdict(q *Query, hides []string) (verdict, string) {
	if len(hides) == 0 {
		return mustCompile, ""
	}
	if n := namesHidden(q, hides); n != "" {
		return mustRefuse, n
	}
	if freeText(q.Filter) {
		return mustRefuse, "free text"
	}
	if !slices.ContainsFunc(hides, func(n string) bool { _, ok := LookupField(n); return ok }) {
		return mustCompile, ""
	}
	var path string
	eventNames(q, func(n string) {
		if _, ok := LookupField(n); !ok && path == "" {
			path = n
		}
	})
	if path != "" {
		return mustRefuse, path
	}
	return mustCompile, ""
}

// readsHiddenColumn returns a column of the events table that s reads
// other than to return it in an event (which the store redacts) and
// other than in the scope's condition cond (a grant's filter, the
// owner's): a column of a normalized field in hides, or "".
func readsHiddenColumn(s *SQL, cond scopeCond, hides []string) string {
	text := strings.ReplaceAll(s.Text, cond.text, "<scope>")
	text = strings.ReplaceAll(text, strings.Join(eventColumns, ", "), "<events>")
	for _, n := range hides {
		f, ok := LookupField(n)
		if !ok {
			continue
		}
		for _, col := range []string{f.Column, f.BinColumn} {
			if col != "" && regexp.MustCompile(`\b`+col+`\b`).MatchString(text) {
				return col
			}
		}
	}
	return ""
}

// freeText reports whether q searches free text other than '*', which
// matches every event.
func freeText(e Expr) bool {
	switch e := e.(type) {
	case *And:
		return slices.ContainsFunc(e.Args, freeText)
	case *Or:
		return slices.ContainsFunc(e.Args, freeText)
	case *Not:
		return freeText(e.X)
	case *Text:
		return e.Value.Pattern == "" || strings.Trim(e.Value.Pattern, "*") != ""
	}
	return false
}

// resultOrder says how the rows of q's result compare between two runs
// over the same events. ordered: q orders them totally (events by time
// and seq, tables by their groups, sorts breaking ties by the order
// before), so that they come in the same order. comparable: they are the
// same rows at all. A head (or the request's limit) over rows without a
// total order keeps rows the engine picks, so its result is not
// comparable; tables after fields lose their order, conservatively even
// when the columns kept would still order them.
func resultOrder(q *Query, limit int) (ordered, comparable bool) {
	total, events, head := true, true, false
	for _, p := range q.Pipes {
		switch p.(type) {
		case *Stats, *Timechart:
			total, events = true, false
		case *Project:
			if !events {
				total = false
			}
		case *Head:
			if !total {
				return false, false
			}
			head = true
		}
	}
	if !head && limit > 0 && !total {
		return false, false
	}
	return total, true
}

// A scopeCond is the condition a scope puts first in the WHERE of every
// read of the events table, and the arguments of its placeholders.
type scopeCond struct {
	text string
	args []any
}

var (
	// No user text reaches the SQL, and no column or alias of it is
	// called events: each occurrence of the word is a read of the table.
	eventsRead = regexp.MustCompile(`\bevents\b`)
	fromBefore = regexp.MustCompile(`\bFROM\s+$`)
	whereStart = regexp.MustCompile(`^\s+WHERE\s+`)
	orderBy    = regexp.MustCompile(`\s+ORDER\s+BY\s`)
)

// scopeCondOf compiles the empty query over s and takes its scope
// condition: the whole of its WHERE, since nothing else is there.
func scopeCondOf(s Scope) (scopeCond, error) {
	out, err := Compile(Request{Scope: s}, DuckDB)
	if err != nil {
		return scopeCond{}, err
	}
	reads := eventsRead.FindAllStringIndex(out.Text, -1)
	if len(reads) != 1 {
		return scopeCond{}, fmt.Errorf("the empty query reads the events %d times: %s", len(reads), out.Text)
	}
	rest := out.Text[reads[0][1]:]
	w := whereStart.FindStringIndex(rest)
	if w == nil {
		return scopeCond{}, fmt.Errorf("the empty query has no WHERE: %s", out.Text)
	}
	rest = rest[w[1]:]
	o := orderBy.FindAllStringIndex(rest, -1)
	if len(o) == 0 {
		return scopeCond{}, fmt.Errorf("the empty query has no ORDER BY: %s", out.Text)
	}
	cond := scopeCond{text: rest[:o[len(o)-1][0]], args: out.Args}
	if n := placeholders(out.Text); n != len(out.Args) {
		return scopeCond{}, fmt.Errorf("%d placeholders, %d arguments: %s", n, len(out.Args), out.Text)
	}
	return cond, nil
}

// placeholders counts the '?' of SQL text outside its string literals.
func placeholders(s string) int {
	n, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			quoted = !quoted
		case '?':
			if !quoted {
				n++
			}
		}
	}
	return n
}

var condEnd = regexp.MustCompile(`^\s*($|\)|AND\s|GROUP\s+BY\s|ORDER\s+BY\s|LIMIT\s)`)
var clauseEnd = regexp.MustCompile(`^\s(GROUP\s+BY|ORDER\s+BY|LIMIT)\s`)

// checkScoped reports how s fails to keep every read of the events table
// to the scope whose condition is cond: each must be FROM events WHERE
// followed by the whole condition (then AND, or the end of the WHERE or
// of the subquery), with the scope's arguments at its placeholders, and
// with no OR beside it in the WHERE that could widen it. It returns the
// index in s.Args of the scope's first argument at each read.
func checkScoped(s *SQL, cond scopeCond) ([]int, error) {
	if n := placeholders(s.Text); n != len(s.Args) {
		return nil, fmt.Errorf("%d placeholders, %d arguments", n, len(s.Args))
	}
	reads := eventsRead.FindAllStringIndex(s.Text, -1)
	if len(reads) == 0 {
		return nil, errors.New("no read of the events table")
	}
	var at []int
	for _, r := range reads {
		if !fromBefore.MatchString(s.Text[:r[0]]) {
			return nil, fmt.Errorf("the events table at %d is read but not as FROM events: %.30q", r[0], s.Text[max(r[0]-20, 0):])
		}
		w := whereStart.FindStringIndex(s.Text[r[1]:])
		if w == nil {
			return nil, fmt.Errorf("FROM events at %d has no WHERE", r[0])
		}
		start := r[1] + w[1]
		if !strings.HasPrefix(s.Text[start:], cond.text) {
			return nil, fmt.Errorf("the WHERE at %d does not begin with the scope's condition %q", start, cond.text)
		}
		end := start + len(cond.text)
		if !condEnd.MatchString(s.Text[end:]) {
			return nil, fmt.Errorf("the scope's condition at %d is followed by %.30q", start, s.Text[end:])
		}
		if i := topLevelOr(s.Text[end:]); i >= 0 {
			return nil, fmt.Errorf("an OR beside the scope's condition at %d: %.40q", end+i, s.Text[end+i:])
		}
		k := placeholders(s.Text[:start])
		if k+len(cond.args) > len(s.Args) || !slices.EqualFunc(s.Args[k:k+len(cond.args)], cond.args, equalArg) {
			return nil, fmt.Errorf("the scope's condition at %d has arguments %v, want %v", start, s.Args[k:min(k+len(cond.args), len(s.Args))], cond.args)
		}
		at = append(at, k)
	}
	return at, nil
}

func equalArg(a, b any) bool { return reflect.DeepEqual(a, b) }

// topLevelOr returns the offset of an OR at the level of the WHERE that
// s continues, before the clause or the subquery ends; -1 if none.
func topLevelOr(s string) int {
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return -1
			}
		case depth == 0 && clauseEnd.MatchString(s[i:]):
			return -1
		case depth == 0 && strings.HasPrefix(s[i:], " OR "):
			return i
		}
	}
	return -1
}

// TestCheckScoped checks the checker: it must see a scope condition
// dropped, moved, widened or bound to other arguments.
func TestCheckScoped(t *testing.T) {
	s := Scope{Tenants: []string{"t1"}, Shares: []Share{{Grant: "g", Tenant: "t2", Filter: mustFilter(shareFilter)}}}
	cond, err := scopeCondOf(s)
	if err != nil {
		t.Fatal(err)
	}
	q := mustFilter(`action:CreateUser | head 2 | stats count() by actor`)
	out, err := Compile(Request{Query: q, Scope: s}, DuckDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkScoped(out, cond); err != nil {
		t.Fatalf("%v\n%s", err, out.Text)
	}
	i := strings.Index(out.Text, cond.text)
	k := placeholders(out.Text[:i])
	without := func(args []any, from, n int) []any {
		return append(slices.Clone(args[:from]), args[from+n:]...)
	}
	bad := map[string]*SQL{
		"dropped": {Text: strings.Replace(out.Text, cond.text+" AND ", "", 1), Args: without(out.Args, k, len(cond.args))},
		"true":    {Text: strings.Replace(out.Text, cond.text, "TRUE", 1), Args: without(out.Args, k, len(cond.args))},
		"moved": {Text: strings.Replace(strings.Replace(out.Text, cond.text+" AND ", "", 1), " GROUP BY", " AND "+cond.text+" GROUP BY", 1),
			Args: append(without(out.Args, k, len(cond.args)), cond.args...)},
		"widened":       {Text: strings.Replace(out.Text, cond.text+" AND ", cond.text+" OR ", 1), Args: out.Args},
		"or later":      {Text: strings.Replace(out.Text, " ORDER BY", " OR TRUE ORDER BY", 1), Args: out.Args},
		"other tenant":  {Text: out.Text, Args: slices.Replace(slices.Clone(out.Args), k, k+1, any("t4"))},
		"second read":   {Text: strings.Replace(out.Text, ") AS _t0", ") AS _t0, (SELECT seq FROM events WHERE TRUE) AS _x", 1), Args: out.Args},
		"unscoped read": {Text: strings.Replace(out.Text, ") AS _t0", ") AS _t0, events", 1), Args: out.Args},
	}
	for name, b := range bad {
		if b.Text == out.Text && reflect.DeepEqual(b.Args, out.Args) {
			t.Fatalf("%s: the mutation changed nothing", name)
		}
		if _, err := checkScoped(b, cond); err == nil {
			t.Errorf("%s: checkScoped accepts %s %v", name, b.Text, b.Args)
		}
	}
}

// newEventsDB opens an in-memory DuckDB with the store's schema holding
// evs alone.
func newEventsDB(evs []testEvent) (*sql.DB, error) {
	schema, err := os.ReadFile("../store/duckdb/schema.sql")
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SET threads TO 1"); err != nil {
		return nil, err
	}
	if _, err := db.Exec(string(schema)); err != nil {
		return nil, fmt.Errorf("creating schema: %w", err)
	}
	for _, e := range evs {
		if err := insertEvent(db, e); err != nil {
			return nil, fmt.Errorf("inserting event %d: %w", e.seq, err)
		}
	}
	return db, nil
}

var eventsDBs struct {
	sync.Mutex
	m map[string]*sql.DB
}

// eventsDB returns a store (one per set, kept for the process) holding
// the scopeEvents whose seqs are in seqs, or all of them when all is set.
func eventsDB(t testing.TB, all bool, seqs []uint64) *sql.DB {
	t.Helper()
	var evs []testEvent
	key := "some:"
	if all {
		key = "all"
	}
	for _, e := range scopeEvents {
		if all || slices.Contains(seqs, e.seq) {
			evs = append(evs, e)
			if !all {
				key += strconv.FormatUint(e.seq, 10) + ","
			}
		}
	}
	if !all && len(evs) != len(seqs) {
		t.Fatalf("no events for some of %v", seqs)
	}
	eventsDBs.Lock()
	defer eventsDBs.Unlock()
	if db, ok := eventsDBs.m[key]; ok {
		return db
	}
	db, err := newEventsDB(evs)
	if err != nil {
		t.Fatal(err)
	}
	if eventsDBs.m == nil {
		eventsDBs.m = make(map[string]*sql.DB)
	}
	eventsDBs.m[key] = db
	return db
}

// rowsOf runs s on db and renders each row, its columns joined by '|'.
func rowsOf(db *sql.DB, s *SQL) ([]string, error) {
	rows, err := db.Query(s.Text, s.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = render(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out, rows.Err()
}

// TestScopeCasesRead checks the hand-worked reads of each scope case, on
// which the differential checks below rest.
func TestScopeCasesRead(t *testing.T) {
	full := eventsDB(t, true, nil)
	seq := &Query{Pipes: []Pipe{&Project{Fields: []FieldRef{{Name: "seq"}}}, &Sort{Keys: []SortKey{{FieldRef: FieldRef{Name: "seq"}}}}}}
	for _, sc := range scopeCases {
		out, err := Compile(Request{Query: seq, Scope: sc.scope}, DuckDB)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		got, err := rowsOf(full, out)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		var want []string
		for _, s := range slices.Sorted(slices.Values(sc.reads)) {
			want = append(want, "%|"+strconv.FormatUint(s, 10))
		}
		for i := range got {
			got[i] = "%" + got[i][strings.IndexByte(got[i], '|'):]
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s reads %v, want %v", sc.name, got, want)
		}
	}
}

// An astGen builds random queries as ASTs.
type astGen struct {
	r *rand.Rand
	n int // numbers the 'as' names, so that none is taken
}

// Names the filters and commands use: normalized fields that the events
// fill, every normalized field and alias, and document paths, some under,
// above, beside or in another case than the paths the redacting scopes
// hide.
var (
	genCommon = []string{"action", "actor", "src_ip", "dst_ip", "time", "seq", "source", "outcome", "env",
		"environment", "tenant", "resources", "skewed", "src_port", "dst_port", "event_id", "id", "received", "region", "cloud"}
	genPaths = []string{"eventName", "EventName", "requestParameters.bucketName", "requestParameters.userName",
		"requestParameters.bytes", "requestParameters", "RequestParameters.X", "REQUESTPARAMETERS.key", "requestParametersX",
		"userIdentity.arn", "userIdentity", "UserIdentity.Arn", "userIdentity.type", "userIdentity.userName",
		"userIdentity.arnX", "protoPayload.methodName", "errorCode", "sourceIPAddress", "secret", "Env"}
	genAll = func() []string {
		var out []string
		for _, f := range Fields() {
			out = append(out, f.Name)
			out = append(out, f.Aliases...)
		}
		return out
	}()
	genValues = map[Type][]string{
		TypeString: {"CreateUser", "StopLogging", "login", "alice", "mallory", "prod", "staging", "aws.cloudtrail", "syslog",
			"success", "failure", "t1", "t2", "ev-5", "*user*", "Create?ser", "*", "", `Create\*User`, "iam.*", "*a*"},
		TypeIP: {"203.0.113.5", "203.0.113.9", "10.4.4.4", "2001:db8::1", "::ffff:10.1.2.3", "10.0.0.0/8", "203.0.113.0/24",
			"2001:db8::/32", "0.0.0.0/0", "::/0", "10.1.2.3/8", "203.0.113.*", "*"},
		TypeInt:  {"0", "5", "9", "13", "22", "1024", "4444", "65535", "-3", "2*"},
		TypeTime: {"2024-07-31", "2024-07-30", "2024-08-01", "2024-07-31T10:00:00Z", "2024-07-31T10:05:00Z", "2024-07-31T12:00:00+02:00", "2024-07-31T15:00:00.5Z", "2024-07-31*"},
		TypeBool: {"true", "false", "TRUE"},
		TypeList: {"arn:aws:iam::111111111111:user/eve", "arn:aws:s3:::secret-bucket", "tenant:t1", "*eve", "*bucket*", "*", "x"},
		typeDoc: {"StopLogging", "CreateUser", "Root", "IAMUser", "secret-bucket", "christophe", "Ro?t", "*bucket*", "*", "",
			"eve", "10", "2048", "4096", "1e3"},
	}
	genNumbers  = []string{"1", "10", "1000", "2048", "1e3", "4096.5", "-1"}
	genTexts    = []string{"christophe", "StopLogging", "stop logging", "*", "**", "chris*", "10.1.2.3", "secret", "mallory", "", `a\*b`}
	genAggFuncs = []string{"count", "count", "dc", "values", "min", "max", "sum", "avg"}
	genSpans    = []time.Duration{time.Second, 5 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
)

func (g *astGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// field returns the name of a field of the events.
func (g *astGen) field() string {
	switch g.r.IntN(4) {
	case 0, 1:
		return g.pick(genCommon)
	case 2:
		return g.pick(genAll)
	}
	return g.pick(genPaths)
}

func (g *astGen) query() *Query {
	q := &Query{}
	if g.r.IntN(5) > 0 {
		q.Filter = g.expr(0)
	}
	st := &genStage{events: true}
	for range g.r.IntN(5) {
		q.Pipes = append(q.Pipes, g.pipe(st))
	}
	return q
}

func (g *astGen) expr(depth int) Expr {
	n := g.r.IntN(10)
	if depth >= 4 {
		n = 5 + g.r.IntN(5)
	}
	switch {
	case n < 2:
		return &And{Args: g.exprs(depth)}
	case n < 4:
		return &Or{Args: g.exprs(depth)}
	case n < 5:
		return &Not{X: g.expr(depth + 1)}
	case n < 9:
		return g.compare()
	}
	return &Text{Value: Value{Pattern: g.pick(genTexts)}}
}

func (g *astGen) exprs(depth int) []Expr {
	args := make([]Expr, 2+g.r.IntN(2))
	for i := range args {
		args[i] = g.expr(depth + 1)
	}
	return args
}

func (g *astGen) compare() *Compare {
	name := g.field()
	typ := typeDoc
	if f, ok := LookupField(name); ok {
		typ = f.Type
	}
	c := &Compare{Field: name, Op: Eq}
	vals := genValues[typ]
	switch n := g.r.IntN(20); {
	case n == 0:
		// Anything: most such comparisons are refused.
		c.Op = Op(g.r.IntN(6))
		vals = genValues[Type(1+g.r.IntN(6))]
	case n < 6:
		c.Op = Ne
	case n < 10 && (typ == TypeInt || typ == TypeTime || typ == typeDoc):
		c.Op = Op(2 + g.r.IntN(4))
		if typ == typeDoc {
			vals = genNumbers
		}
		vals = slices.DeleteFunc(slices.Clone(vals), func(v string) bool { return strings.Contains(v, "*") })
	}
	v := g.pick(vals)
	c.Value = Value{Pattern: v, Quoted: v == "" || strings.ContainsAny(v, " :")}
	return c
}

// A genStage is what the generator knows of the rows a command reads.
type genStage struct {
	events bool
	allow  []string // events after fields: the names kept; nil for all
	cols   []string // a table's columns
}

// name returns a name the stage has.
func (g *astGen) name(st *genStage) string {
	switch {
	case !st.events:
		return g.pick(st.cols)
	case st.allow != nil:
		return g.pick(st.allow)
	}
	return g.field()
}

func (g *astGen) pipe(st *genStage) Pipe {
	switch g.r.IntN(6) {
	case 0, 1:
		return g.stats(st, 0)
	case 2:
		if st.events || slices.Contains(st.cols, "time") {
			return g.stats(st, g.pickSpan())
		}
	case 3:
		var keys []SortKey
		for range 1 + g.r.IntN(3) {
			keys = append(keys, SortKey{FieldRef: FieldRef{Name: g.name(st)}, Desc: g.r.IntN(2) == 0})
		}
		return &Sort{Keys: keys}
	case 5:
		var refs []FieldRef
		var kept []string
		if st.events {
			kept = []string{"time"} // events keep their time
		}
		for range 1 + g.r.IntN(3) {
			n := g.name(st)
			refs = append(refs, FieldRef{Name: n})
			if !slices.Contains(kept, n) {
				kept = append(kept, n)
			}
		}
		if st.events {
			st.allow = kept
		} else {
			st.cols = kept
		}
		return &Project{Fields: refs}
	}
	return &Head{N: 1 + g.r.IntN(6)}
}

func (g *astGen) pickSpan() time.Duration { return genSpans[g.r.IntN(len(genSpans))] }

// stats returns a stats command, or a timechart when span is not zero,
// with names unique as the parser requires.
func (g *astGen) stats(st *genStage, span time.Duration) Pipe {
	var cols []string
	if span > 0 {
		cols = append(cols, "_time")
	}
	var by []FieldRef
	for range g.r.IntN(3) {
		if n := g.name(st); !slices.Contains(cols, n) {
			cols = append(cols, n)
			by = append(by, FieldRef{Name: n})
		}
	}
	var aggs []Agg
	for range 1 + g.r.IntN(2) {
		a := Agg{Func: g.pick(genAggFuncs)}
		if a.Func != "count" || g.r.IntN(2) == 0 {
			f := FieldRef{Name: g.name(st)}
			a.Field = &f
		}
		if g.r.IntN(3) == 0 || slices.Contains(cols, a.Name()) {
			g.n++
			a.As = "n" + strconv.Itoa(g.n)
		}
		cols = append(cols, a.Name())
		aggs = append(aggs, a)
	}
	st.events, st.allow, st.cols = false, nil, cols
	if span > 0 {
		return &Timechart{Span: span, Aggs: aggs, By: by}
	}
	return &Stats{Aggs: aggs, By: by}
}

// TestRandomASTScope builds random queries as ASTs, reproducibly, and
// compiles each over every scope of scopeCases: the scope must be the
// first condition of every read of the events, a query over a redacting
// share must be refused exactly when it names what the share hides or
// searches free text, and a query over a scope that does not redact must
// return what it returns over all of a store of the scope's events.
func TestRandomASTScope(t *testing.T) {
	full := eventsDB(t, true, nil)
	conds := make([]scopeCond, len(scopeCases))
	for i, sc := range scopeCases {
		c, err := scopeCondOf(sc.scope)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		for _, tn := range sc.tenants {
			if !slices.Contains(c.args, any(tn)) {
				t.Fatalf("%s: tenant %s is not an argument of the scope's condition %s %v", sc.name, tn, c.text, c.args)
			}
		}
		if sc.reads == nil && c.text != DuckDB.falseLit {
			t.Fatalf("%s: the condition of a scope that reads nothing is %q, want %s", sc.name, c.text, DuckDB.falseLit)
		}
		conds[i] = c
	}

	n := 500
	if testing.Short() {
		n = 50
	}
	g := &astGen{r: rand.New(rand.NewPCG(7, 11))}
	var compiled, exact, multiset, skipped, refusedName, refusedText, redactedOK int
	for i := range n {
		q := g.query()
		req := Request{Query: q}
		switch g.r.IntN(8) {
		case 0:
			req.From = mustTime("2024-07-31T10:00:00Z")
		case 1:
			req.To = mustTime("2024-07-31T12:00:00Z")
		case 2:
			req.SeqRanges = [][2]uint64{{2, 9}, {13, 15}}
		case 3:
			req.Limit = 3
		}
		req.Scope = t1
		_, baseErr := Compile(req, DuckDB)
		if baseErr == nil {
			compiled++
		}
		ordered, comparable := resultOrder(q, req.Limit)
		// The rows of the query over all of a store, by the store's
		// events: scopes that read the same events share them.
		overAll := make(map[string][]string)
		ran := make(map[string][]string)
		for j, sc := range scopeCases {
			where := fmt.Sprintf("case %d %q, scope %s", i, q, sc.name)
			req.Scope = sc.scope
			out, err := Compile(req, DuckDB)
			v, why := redactVerdict(q, sc.hides)
			var qe *Error
			switch {
			case v == mustRefuse:
				if !errors.As(err, &qe) {
					t.Errorf("%s: names %s, which the scope hides: got %v, want a *query.Error", where, why, err)
				} else if why == "free text" {
					refusedText++
				} else {
					refusedName++
				}
				continue
			case (err == nil) != (baseErr == nil):
				t.Errorf("%s: %v; over tenant t1: %v", where, err, baseErr)
				continue
			case err != nil:
				if !errors.As(err, &qe) {
					t.Errorf("%s: error %T %v, want *query.Error", where, err, err)
				}
				continue
			}
			if len(sc.hides) > 0 {
				redactedOK++
				if col := readsHiddenColumn(out, conds[j], sc.hides); col != "" {
					t.Errorf("%s: reads column %s, which the scope hides:\n%s", where, col, out.Text)
				}
			}
			if _, err := checkScoped(out, conds[j]); err != nil {
				t.Errorf("%s: %v\n%s\n%v", where, err, out.Text, out.Args)
				continue
			}
			for _, tn := range sc.tenants {
				if !slices.Contains(out.Args, any(tn)) {
					t.Errorf("%s: tenant %s is not an argument: %v", where, tn, out.Args)
				}
			}
			// Running SQL is what takes the time (a few ms a statement),
			// so each case runs the statements of about half the scopes,
			// in turn, and each distinct statement once: scopes that
			// compile to the same SQL (a share of a tenant read whole
			// adds nothing) share its rows.
			if (i+j)%2 != 0 {
				continue
			}
			stmt := fmt.Sprintf("%s %#v", out.Text, out.Args)
			got, ok := ran[stmt]
			if !ok {
				if got, err = rowsOf(full, out); err != nil {
					t.Errorf("%s: DuckDB: %v\n%s\n%v", where, err, out.Text, out.Args)
					continue
				}
				ran[stmt] = got
			}
			if !sc.diff {
				continue
			}
			if !comparable {
				// A head over rows in no total order: each run may keep
				// other rows. The SQL ran, and its scope is checked above.
				skipped++
				continue
			}
			key := fmt.Sprint(sc.reads)
			want, ok := overAll[key]
			if !ok {
				all := req
				all.Scope = Scope{All: true, Tenants: []string{SystemTenant}}
				out, err := Compile(all, DuckDB)
				if err != nil {
					t.Errorf("%s: over all: %v", where, err)
					continue
				}
				if want, err = rowsOf(eventsDB(t, false, sc.reads), out); err != nil {
					t.Errorf("%s: over all: DuckDB: %v\n%s", where, err, out.Text)
					continue
				}
				overAll[key] = want
			}
			if ordered {
				exact++
			} else {
				multiset++
				got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: rows differ from the query's over a store of the scope's events alone\ngot  %q\nwant %q\n%s\n%v", where, got, want, out.Text, out.Args)
			}
		}
	}
	t.Logf("%d queries, %d compiled over t1; rows compared %d in order, %d as multisets, %d not (head without order); over redacting scopes %d refused for names, %d for free text, %d compiled",
		n, compiled, exact, multiset, skipped, refusedName, refusedText, redactedOK)
	if compiled < n/2 || exact < n || multiset < n/20 || refusedName < n/10 || refusedText < n/20 || redactedOK < n/5 {
		t.Errorf("the generator made too few queries of some kind: see the counts above")
	}
}

// fuzzScopes are the scopes FuzzCompileScope compiles over, made with
// the fuzzed tenant; hides is what each hides.
var fuzzScopes = []struct {
	mk    func(tenant string) Scope
	hides []string
}{
	{func(tn string) Scope { return Scope{Tenants: []string{tn}} }, nil},
	{func(tn string) Scope {
		return Scope{Tenants: []string{tn}, Shares: []Share{{
			Grant: "g-t2", Tenant: "t2", Filter: mustFilter(shareFilter),
			From: mustTime("2024-07-31T09:00:00Z"), To: mustTime("2024-08-01T00:00:00Z"),
		}}}
	}, nil},
	{func(tn string) Scope {
		return Scope{Shares: []Share{
			{Grant: "g-a", Tenant: tn, Filter: mustFilter(sharesFilter), To: mustTime("2024-08-01T00:00:00Z")},
			{Grant: "g-r", Tenant: tn, Redact: redactedPaths},
		}}
	}, redactedPaths},
	{func(tn string) Scope {
		return Scope{Shares: []Share{{Grant: "g-f", Tenant: tn, Redact: redactedFields}}}
	}, redactedFields},
}

// sentinel is a tenant name no fuzzed query holds: compiling over it and
// over the fuzzed tenant must write the same SQL text.
const sentinel = "\x00sentinel tenant\x00"

func FuzzCompileScope(f *testing.F) {
	tenants := []string{"t1", "", "t1' OR '1'='1", "events", "FROM events WHERE TRUE", "?", SystemTenant, "t3", `")--`, "tenant IN (?)"}
	for i, s := range fuzzSeeds {
		f.Add(s, tenants[i%len(tenants)])
	}
	for _, s := range []string{
		`requestParameters.bucketName:x`, `| stats count() by RequestParameters.X`, `userIdentity:*`,
		`| stats count() as requestParameters | sort requestParameters`, `christophe OR *`, `env:prod | fields time`,
		`tenant:t2 OR tenant!=t1`, `| head 2 | stats count() by tenant | sort -count`, `| fields tenant | head 1 | sort tenant`,
	} {
		f.Add(s, "t2x")
	}
	full := eventsDB(f, true, nil)
	diff := scopeCases[1]
	if diff.name != "tenants and a share" {
		f.Fatalf("scopeCases[1] is %s", diff.name)
	}
	allowed := eventsDB(f, false, diff.reads)
	diffCond, err := scopeCondOf(diff.scope)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s, tenant string) {
		q, err := Parse(s)
		if err != nil || tenant == sentinel || tenant == "t2" {
			return // t2 is the second scope's share, which its own tenant would not need
		}
		_, baseErr := Compile(Request{Query: q, Scope: t1}, DuckDB)
		for i, fs := range fuzzScopes {
			sc, ss := fs.mk(tenant), fs.mk(sentinel)
			cond, err := scopeCondOf(sc)
			if err != nil {
				t.Fatalf("scope %d over %q: %v", i, tenant, err)
			}
			condS, err := scopeCondOf(ss)
			if err != nil {
				t.Fatal(err)
			}
			if cond.text != condS.text || !slices.Contains(cond.args, any(tenant)) {
				t.Fatalf("scope %d: the condition over %q is %s %q, over another tenant %s", i, tenant, cond.text, cond.args, condS.text)
			}
			out, err := Compile(Request{Query: q, Scope: sc}, DuckDB)
			outS, errS := Compile(Request{Query: q, Scope: ss}, DuckDB)
			v, why := redactVerdict(q, fs.hides)
			switch {
			case (err == nil) != (errS == nil):
				t.Fatalf("Compile(%q) over scope %d: %v over tenant %q, %v over another", s, i, err, tenant, errS)
			case err != nil:
				var qe *Error
				if !errors.As(err, &qe) {
					t.Fatalf("Compile(%q) over scope %d: error %T %v, want *query.Error", s, i, err, err)
				}
				if v == mustCompile && baseErr == nil {
					t.Fatalf("Compile(%q) over scope %d: %v, but it names nothing the scope hides", s, i, err)
				}
				continue
			case v == mustRefuse:
				t.Fatalf("Compile(%q) over scope %d hiding %v: names %s, yet compiles:\n%s", s, i, fs.hides, why, out.Text)
			case baseErr != nil:
				t.Fatalf("Compile(%q) over scope %d compiles, over t1 fails: %v", s, i, baseErr)
			}
			if col := readsHiddenColumn(out, cond, fs.hides); col != "" {
				t.Fatalf("Compile(%q) over scope %d reads column %s, which it hides:\n%s", s, i, col, out.Text)
			}
			at, err := checkScoped(out, cond)
			if err != nil {
				t.Fatalf("Compile(%q) over scope %d: %v\n%s\n%#v", s, i, err, out.Text, out.Args)
			}
			atS, err := checkScoped(outS, condS)
			if err != nil {
				t.Fatalf("Compile(%q) over scope %d, another tenant: %v\n%s", s, i, err, outS.Text)
			}
			// The tenant is an argument and nothing else: the text is
			// the same whatever its name, and so are the other
			// arguments.
			if out.Text != outS.Text || !slices.Equal(at, atS) {
				t.Fatalf("Compile(%q) over scope %d: the SQL depends on the tenant's name %q:\n%s\n%s", s, i, tenant, out.Text, outS.Text)
			}
			args, argsS := slices.Clone(out.Args), slices.Clone(outS.Args)
			for _, k := range at {
				for j := range cond.args {
					args[k+j], argsS[k+j] = nil, nil
				}
			}
			if !reflect.DeepEqual(args, argsS) {
				t.Fatalf("Compile(%q) over scope %d: arguments depend on the tenant's name %q:\n%#v\n%#v", s, i, tenant, out.Args, outS.Args)
			}
		}

		// Over a fixed scope with a share, the rows are those of the
		// query over all of a store of the scope's events.
		if baseErr != nil {
			return
		}
		req := Request{Query: q, Scope: diff.scope}
		out, err := Compile(req, DuckDB)
		if err != nil {
			t.Fatalf("Compile(%q) over %s: %v", s, diff.name, err)
		}
		if _, err := checkScoped(out, diffCond); err != nil {
			t.Fatalf("Compile(%q) over %s: %v\n%s", s, diff.name, err, out.Text)
		}
		req.Scope = Scope{All: true, Tenants: []string{SystemTenant}}
		outAll, err := Compile(req, DuckDB)
		if err != nil {
			t.Fatalf("Compile(%q) over all: %v", s, err)
		}
		got, err := rowsOf(full, out)
		want, errAll := rowsOf(allowed, outAll)
		if err != nil || errAll != nil {
			if (err == nil) != (errAll == nil) {
				t.Fatalf("Compile(%q): DuckDB: %v over the scope, %v over all", s, err, errAll)
			}
			return // SQL DuckDB refuses either way: FuzzParse's concern
		}
		ordered, comparable := resultOrder(q, 0)
		if !comparable {
			return
		}
		if !ordered {
			got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Compile(%q) over %s: rows differ from the query's over a store of its events alone\ngot  %q\nwant %q\n%s", s, diff.name, got, want, out.Text)
		}
	})
}

// TestCompileRedactedCopiedColumns: a document path that a parser copies
// into a column (eventName into action for CloudTrail) is read from the
// column; when a share hides the column, a query naming the path must be
// refused, or at least not read the column, else it filters on what the
// share hides.
func TestCompileRedactedCopiedColumns(t *testing.T) {
	var leaks []string
	for path, cols := range docColumns {
		for _, dc := range cols {
			var field string
			for _, f := range Fields() {
				if f.Column == dc.column {
					field = f.Name
				}
			}
			if field == "" {
				t.Fatalf("no field has column %s", dc.column)
			}
			s := Scope{Tenants: []string{"t1"}, Shares: []Share{{Grant: "g", Tenant: "t2", Redact: []string{field}}}}
			cond, err := scopeCondOf(s)
			if err != nil {
				t.Fatal(err)
			}
			q := mustFilter(path + ":x")
			out, err := Compile(Request{Query: q, Scope: s}, DuckDB)
			if err != nil {
				var qe *Error
				if !errors.As(err, &qe) {
					t.Errorf("%s with %s hidden: %v, want a *query.Error", path, field, err)
				}
				continue
			}
			if col := readsHiddenColumn(out, cond, []string{field}); col != "" {
				leaks = append(leaks, fmt.Sprintf("%s:x reads %s, hidden", path, col))
			}
		}
	}
	if len(leaks) > 0 {
		slices.Sort(leaks)
		t.Errorf("a query naming a document path that CloudTrail copies into a column reads the column a share hides: %s", strings.Join(leaks, "; "))
	}
}

// TestCompileRedactedColumnHidesDocument: a share that hides a normalized
// field hides the whole document of its events, since vigil cannot tell
// from which key the field was read (store.RedactRow). A query that names
// a document path then reads what the grantee may not see: in a stats
// table, which the store does not redact, or in a filter.
func TestCompileRedactedColumnHidesDocument(t *testing.T) {
	full := eventsDB(t, true, nil)
	s := Scope{Tenants: []string{"t1"}, Shares: []Share{{Grant: "g", Tenant: "t2", Redact: []string{"src_ip"}}}}
	var leaks []string
	for _, src := range []string{`| stats values(secret), values(requestParameters.bucketName)`, `requestParameters.bucketName:secret*`} {
		out, err := Compile(Request{Query: mustFilter(src), Scope: s}, DuckDB)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Errorf("%s: %v, want a *query.Error", src, err)
			}
			continue
		}
		rows, err := rowsOf(full, out)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rows {
			rows[i] = r[:min(len(r), 40)]
		}
		leaks = append(leaks, fmt.Sprintf("%s returns %q", src, rows))
	}
	if len(leaks) > 0 {
		t.Errorf("over a share hiding src_ip, queries read t2's documents, which the store hides: %s", strings.Join(leaks, "; "))
	}
}
