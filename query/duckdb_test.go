package query

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// These tests run compiled SQL on an embedded DuckDB with the store's
// schema: the rows that come back are what proves the SQL right.

type testEvent struct {
	seq            uint64
	time           string
	tenant         string
	source, class  string
	eventID        string
	provider       string
	account        string
	region, env    string
	actor, actorID string
	actorType      string
	session        string
	srcIP, dstIP   string
	srcPort        int
	dstPort        int
	host           string
	userAgent      string
	service        string
	action         string
	resources      []string
	outcome        string
	errorCode      string
	message        string
	skewed         bool
	raw            string
	doc            string
}

var testEvents = []testEvent{
	{
		seq: 1, time: "2024-07-31T10:00:00Z", tenant: "t1", source: "aws.cloudtrail", class: "api_activity",
		eventID: "ev-1", provider: "aws", account: "111111111111", region: "us-east-1", env: "prod",
		actor: "alice", actorID: "arn:aws:iam::111111111111:user/alice", actorType: "IAMUser", session: "AKIAALICE",
		srcIP: "203.0.113.5", userAgent: "aws-cli/2.15.0", service: "cloudtrail.amazonaws.com", action: "StopLogging",
		resources: []string{"arn:aws:cloudtrail:us-east-1:111111111111:trail/MalloryAx"}, outcome: "success",
		raw: `{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","userIdentity":{"type":"IAMUser","userName":"alice"},"sourceIPAddress":"203.0.113.5","description":"Stop logging for trail main"}`,
	},
	{
		seq: 2, time: "2024-07-31T10:05:00Z", tenant: "t1", source: "aws.cloudtrail", class: "account_change",
		eventID: "ev-2", provider: "aws", account: "111111111111", region: "us-east-1", env: "prod",
		actor: "root", actorID: "arn:aws:iam::111111111111:root", actorType: "Root", session: "ASIAROOT",
		srcIP: "198.51.100.7", userAgent: "console.amazonaws.com", service: "iam.amazonaws.com", action: "CreateUser",
		outcome: "failure", errorCode: "AccessDenied",
		raw: `{"eventName":"CreateUser","userIdentity":{"type":"Root"},"requestParameters":{"userName":"christophe"},"errorCode":"AccessDenied"}`,
	},
	{
		seq: 3, time: "2024-07-31T11:30:00Z", tenant: "t1", source: "gcp.audit", class: "api_activity",
		eventID: "ev-3", provider: "gcp", account: "proj-1", region: "europe-west1", env: "staging",
		actor: "bob@example.com", actorType: "user", srcIP: "2001:db8::1", userAgent: "gcloud/470.0.0",
		service: "iam.googleapis.com", action: "SetIamPolicy", outcome: "success",
		raw: `{"protoPayload":{"methodName":"google.iam.admin.v1.SetIamPolicy","authenticationInfo":{"principalEmail":"bob@example.com"}},"severity":"NOTICE"}`,
	},
	{
		seq: 4, time: "2024-08-01T02:00:00Z", tenant: "t1", source: "syslog", class: "authentication",
		srcIP: "10.1.2.3", dstIP: "10.9.9.9", srcPort: 2222, dstPort: 22, host: "web1", service: "sshd",
		action: "login", outcome: "failure", message: "Failed password for christophe",
		raw: `<38>Aug  1 02:00:00 web1 sshd[77]: Failed password for christophe from 10.1.2.3 port 2222 ssh2`,
	},
	{
		seq: 5, time: "2024-07-31T10:00:00Z", tenant: "t2", source: "aws.cloudtrail", class: "api_activity",
		eventID: "ev-5", provider: "aws", account: "222222222222", env: "prod", actor: "mallory", actorType: "Root",
		srcIP: "203.0.113.9", action: "StopLogging", outcome: "success",
		raw: `{"eventName":"StopLogging","userIdentity":{"type":"Root"},"secret":"other tenant"}`,
	},
	{
		seq: 6, time: "2024-07-31T12:00:00Z", tenant: "t1", source: "aws.cloudtrail", class: "account_change",
		eventID: "ev-6", provider: "aws", account: "111111111111", region: "us-east-1", env: "prod",
		actor: "alice", actorType: "IAMUser", session: "AKIAALICE", srcIP: "203.0.113.5",
		service: "iam.amazonaws.com", action: "CreateUser", outcome: "success", skewed: true,
		resources: []string{"arn:aws:iam::111111111111:user/Mallory_x", "arn:aws:iam::111111111111:user/eve"},
		// A LookupEvents record: raw wraps the event, doc is the event.
		raw: `{"EventId":"ev-6","CloudTrailEvent":"{\"eventName\":\"CreateUser\"}","note":"100% done_ok"}`,
		doc: `{"eventName":"CreateUser","userIdentity":{"type":"IAMUser","userName":"alice"},"requestParameters":{"userName":"eve","bytes":2048}}`,
	},
}

var (
	dbOnce sync.Once
	testDB *sql.DB
	dbErr  error
)

// openTestDB opens an in-memory DuckDB with the store's schema and
// testEvents, once for the package.
func openTestDB(t testing.TB) *sql.DB {
	t.Helper()
	dbOnce.Do(func() {
		testDB, dbErr = newTestDB()
	})
	if dbErr != nil {
		t.Fatal(dbErr)
	}
	return testDB
}

func newTestDB() (*sql.DB, error) {
	schema, err := os.ReadFile("../store/duckdb/schema.sql")
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	// One connection: an in-memory database is per connection's instance,
	// and one keeps the tests from racing on it.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(string(schema)); err != nil {
		return nil, fmt.Errorf("creating schema: %w", err)
	}
	for _, e := range testEvents {
		if err := insertEvent(db, e); err != nil {
			return nil, fmt.Errorf("inserting event %d: %w", e.seq, err)
		}
	}
	return db, nil
}

func insertEvent(db *sql.DB, e testEvent) error {
	ts, err := time.Parse(time.RFC3339, e.time)
	if err != nil {
		return err
	}
	received := ts.Add(time.Second)
	if e.skewed {
		received = ts.Add(48 * time.Hour)
	}
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	ip := func(s string) (any, any) {
		if s == "" {
			return nil, nil
		}
		a := netip.MustParseAddr(s)
		b := a.As16()
		return a.String(), b[:]
	}
	port := func(p int) any {
		if p == 0 {
			return nil
		}
		return p
	}
	var resources any
	if e.resources != nil {
		resources = e.resources
	}
	src, srcBin := ip(e.srcIP)
	dst, dstBin := ip(e.dstIP)
	_, err = db.Exec(`INSERT INTO events (seq, time, received, skewed, tenant, source, class, event_id,
		provider, account, region, environment, actor, actor_id, actor_type, session_id, session_origin,
		src_ip, src_ip_bin, dst_ip, dst_ip_bin, src_port, dst_port, host, user_agent, service, action,
		resources, outcome, error_code, message, origin, raw, raw_bin, doc)
		VALUES (?, make_timestamp_ns(?), make_timestamp_ns(?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.seq, ts.UnixNano(), received.UnixNano(), e.skewed, e.tenant, e.source, e.class, null(e.eventID),
		null(e.provider), null(e.account), null(e.region), null(e.env), null(e.actor), null(e.actorID), null(e.actorType),
		null(e.session), nil, src, srcBin, dst, dstBin, port(e.srcPort), port(e.dstPort), null(e.host),
		null(e.userAgent), null(e.service), null(e.action), resources, null(e.outcome), null(e.errorCode),
		null(e.message), "test:"+fmt.Sprint(e.seq), e.raw, nil, null(e.doc))
	return err
}

// run compiles req and runs it, returning the rows as strings: the seq of
// each event for Events, the columns joined by '|' for Table.
func run(t *testing.T, db *sql.DB, req Request) []string {
	t.Helper()
	out, err := Compile(req, DuckDB)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	rows, err := db.Query(out.Text, out.Args...)
	if err != nil {
		t.Fatalf("running %s %v: %v", out.Text, out.Args, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if out.Kind == Events && !slices.Equal(cols, eventColumns) {
		t.Fatalf("events columns = %v, want %v", cols, eventColumns)
	}
	if out.Kind == Table && len(cols) != len(out.Columns) {
		t.Fatalf("got %d columns, SQL.Columns = %v", len(cols), out.Columns)
	}
	var got []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if out.Kind == Events {
			got = append(got, fmt.Sprint(vals[0]))
			continue
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = render(v)
		}
		got = append(got, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func render(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = render(x)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case float64:
		return fmt.Sprintf("%g", v)
	}
	return fmt.Sprint(v)
}

var t1 = Scope{Tenants: []string{"t1"}}

func TestDuckDBSearch(t *testing.T) {
	db := openTestDB(t)
	tests := []struct {
		q    string
		want []string // seqs, newest first
	}{
		{``, []string{"4", "6", "3", "2", "1"}},
		{`*`, []string{"4", "6", "3", "2", "1"}},
		{`eventName:StopLogging`, []string{"1"}},
		{`eventName:stoplogging`, nil},
		{`eventName:stop*`, []string{"1"}},
		{`StopLogging`, []string{"1"}},
		{`stoplogging`, []string{"1"}},
		{`"stop logging"`, []string{"1"}},
		{`christophe`, []string{"4", "2"}},
		{`-christophe`, []string{"6", "3", "1"}},
		{`NOT christophe`, []string{"6", "3", "1"}},
		{`chris*phe`, []string{"4", "2"}},
		// Words and phrases match whole words, ignoring case; wildcards
		// match substrings.
		{`CHRISTOPHE`, []string{"4", "2"}},
		{`christ`, nil},
		{`christ*`, []string{"4", "2"}},
		{`hristophe`, nil},
		{`"Failed password for christophe"`, []string{"4"}},
		{`"password for"`, []string{"4"}},
		{`"password  for"`, nil},
		{`"password for christ"`, nil},
		{`logging`, []string{"1"}},
		{`alice`, []string{"1"}},
		{`sshd`, []string{"4"}},
		{`"sshd[77]:"`, []string{"4"}},
		{`"[77]"`, []string{"4"}},
		{`10.1.2.3`, []string{"4"}},
		{`10.1.2`, []string{"4"}}, // dots separate words
		{`0.1.2.3`, nil},
		{`203.0.113.5`, []string{"1"}},
		{`"100% done"`, nil}, // done_ok is one word
		{`"100% done_ok"`, []string{"6"}},
		{`done_ok`, []string{"6"}},
		{`100%done`, nil},
		{`"% done_ok\""`, []string{"6"}},
		{`christophe -"failed password"`, []string{"2"}},
		{`christophe OR logging`, []string{"4", "2", "1"}},
		{`action:CreateUser`, []string{"6", "2"}},
		{`action:createuser`, nil},
		{`action:*user*`, []string{"6", "2"}},
		{`action:Create?ser`, []string{"6", "2"}},
		{`action:Create\?ser`, nil},
		{`action:*`, []string{"4", "6", "3", "2", "1"}},
		{`action!=CreateUser`, []string{"4", "3", "1"}},
		{`action!=Create*`, []string{"4", "3", "1"}},
		{`(action:StopLogging OR action:SetIamPolicy) outcome:success`, []string{"3", "1"}},
		{`action:StopLogging OR action:SetIamPolicy AND outcome:failure`, []string{"1"}},
		{`src_ip:203.0.113.0/24 AND NOT outcome:success`, nil},
		{`src_ip:198.51.100.0/24 AND NOT outcome:success`, []string{"2"}},
		{`src_ip:10.0.0.0/8`, []string{"4"}},
		{`src_ip:10.1.2.3/8`, []string{"4"}},
		{`src_ip:0.0.0.0/0`, []string{"4", "6", "2", "1"}},
		{`src_ip:::ffff:10.1.2.3`, []string{"4"}},
		{`src_ip!=10.0.0.0/8`, []string{"6", "3", "2", "1"}},
		{`src_ip:2001:db8::/32`, []string{"3"}},
		{`src_ip:2001:db8::1`, []string{"3"}},
		{`src_ip:"2001:db8::1"`, []string{"3"}},
		{`src_ip:2001:0db8::0001`, []string{"3"}},
		{`src_ip:203.0.113.5`, []string{"6", "1"}},
		{`src_ip:203.0.113.*`, []string{"6", "1"}},
		{`dst_ip:10.9.9.9`, []string{"4"}},
		{`NOT outcome:success`, []string{"4", "2"}},
		{`NOT error_code:AccessDenied`, []string{"4", "6", "3", "1"}},
		{`error_code!=AccessDenied`, nil},
		{`src_port>=1024`, []string{"4"}},
		{`src_port<1024`, nil},
		{`dst_port:22`, []string{"4"}},
		{`seq>4`, []string{"6"}},
		{`seq<=2`, []string{"2", "1"}},
		{`userIdentity.type:Root`, []string{"2"}},
		{`userIdentity.type:root`, nil},
		{`userIdentity.type:ro*`, []string{"2"}},
		{`NOT userIdentity.type:Root`, []string{"4", "6", "3", "1"}},
		{`userIdentity.userName:alice`, []string{"6", "1"}},
		{`protoPayload.methodName:*SetIamPolicy`, []string{"3"}},
		{`requestParameters.userName:christophe`, []string{"2"}},
		{`requestParameters.bytes>1000`, []string{"6"}},
		{`requestParameters.bytes<1000`, nil},
		{`requestParameters.bytes:2048`, []string{"6"}},
		{`EventId:ev-6`, nil}, // doc, not raw, is the document of event 6
		{`time>=2024-07-31T11:00:00Z`, []string{"4", "6", "3"}},
		{`time:2024-07-31`, []string{"6", "3", "2", "1"}},
		{`time!=2024-07-31`, []string{"4"}},
		{`time>2024-07-31`, []string{"4"}},
		{`time<=2024-07-31`, []string{"6", "3", "2", "1"}},
		{`time<2024-07-31T10:05:00Z`, []string{"1"}},
		{`time:2024-07-31T10:05:00Z`, []string{"2"}},
		{`time<"2024-07-31 10:05:00"`, []string{"1"}},
		{`time>2024-07-31T12:00:00+02:00`, []string{"4", "6", "3", "2"}},
		{`received>2024-08-01`, []string{"6"}},
		{`skewed:true`, []string{"6"}},
		{`skewed:false action:CreateUser`, []string{"2"}},
		{`resources:arn:aws:iam::111111111111:user/eve`, []string{"6"}},
		{`resources:arn:aws:iam::111111111111:user/EVE`, nil},
		{`resources:*user/EVE`, []string{"6"}},
		{`resources:*Mallory_x*`, []string{"6"}},
		{`resources:*Mallory?x*`, []string{"6", "1"}},
		{`resources:*`, []string{"6", "1"}},
		{`resources!=*eve`, []string{"1"}},
		{`env:prod cloud:aws`, []string{"6", "2", "1"}},
		{`environment:staging`, []string{"3"}},
		{`id:ev-2`, []string{"2"}},
		{`session:AKIAALICE`, []string{"6", "1"}},
		{`actor_type:Root OR actor_type:user`, []string{"3", "2"}},
		{`user_agent:aws-cli*`, []string{"1"}},
		{`user_agent:"aws-cli/2.15.0"`, []string{"1"}},
		{`host:web1 message:"Failed password*"`, []string{"4"}},
		{`class:authentication source:syslog`, []string{"4"}},
		{`provider:gcp region:europe-west1 account:proj-1`, []string{"3"}},
		{`origin:test:4`, []string{"4"}},
		{`service:iam.*`, []string{"6", "3", "2"}},
		{`tenant:t2`, nil}, // outside the scope whatever the query says
		{`eventName:StopLogging | sort seq`, []string{"1"}},
		{`| sort seq`, []string{"1", "2", "3", "4", "6"}},
		// Text sorts by byte: upper case before lower case.
		{`| sort -action, seq`, []string{"4", "1", "3", "2", "6"}},
		{`| sort +action -seq`, []string{"6", "2", "3", "1", "4"}},
		// Missing values last; ties in the default order, newest first.
		{`| sort eventName`, []string{"6", "2", "1", "4", "3"}},
		{`| head 2`, []string{"4", "6"}},
		{`| head 3 | sort seq`, []string{"3", "4", "6"}},
		{`| sort seq | head 3 | head 2`, []string{"1", "2"}},
		{`| head 3 | head 5`, []string{"4", "6", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			q, err := Parse(tt.q)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := run(t, db, Request{Query: q, Scope: t1, Limit: 100})
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDuckDBTables(t *testing.T) {
	db := openTestDB(t)
	tests := []struct {
		q       string
		columns []string
		want    []string
	}{
		{`userIdentity.type:Root | stats count() by action`, []string{"action", "count"}, []string{"CreateUser|1"}},
		{`| stats count()`, []string{"count"}, []string{"5"}},
		{`| stats count`, []string{"count"}, []string{"5"}},
		{`| stats count() as n by action | sort -n, action`, []string{"action", "n"},
			[]string{"CreateUser|2", "SetIamPolicy|1", "StopLogging|1", "login|1"}},
		{`| stats count() by action | sort -count | head 1`, []string{"action", "count"}, []string{"CreateUser|2"}},
		{`| stats count() by env, action`, []string{"env", "action", "count"},
			[]string{"prod|CreateUser|2", "prod|StopLogging|1", "staging|SetIamPolicy|1", "NULL|login|1"}},
		{`| stats dc(actor) as actors, values(outcome) as outcomes, min(time), max(src_port)`,
			[]string{"actors", "outcomes", "min(time)", "max(src_port)"},
			[]string{"3|[failure success]|2024-07-31T10:00:00Z|2222"}},
		{`| stats sum(src_port), avg(requestParameters.bytes), max(requestParameters.userName), min(requestParameters.bytes)`,
			[]string{"sum(src_port)", "avg(requestParameters.bytes)", "max(requestParameters.userName)", "min(requestParameters.bytes)"},
			[]string{"2222|2048|eve|2048.0"}},
		{`| stats values(resources) by action | sort action`, []string{"action", "values(resources)"}, []string{
			"CreateUser|[arn:aws:iam::111111111111:user/Mallory_x arn:aws:iam::111111111111:user/eve]",
			"SetIamPolicy|[]",
			"StopLogging|[arn:aws:cloudtrail:us-east-1:111111111111:trail/MalloryAx]",
			"login|[]",
		}},
		{`| stats count() by userIdentity.type`, []string{"userIdentity.type", "count"},
			[]string{"IAMUser|2", "Root|1", "NULL|2"}},
		{`| stats count(error_code) as errs, count(requestParameters.userName) by provider`,
			[]string{"provider", "errs", "count(requestParameters.userName)"},
			[]string{"aws|1|2", "gcp|0|0", "NULL|0|0"}},
		{`| stats dc(action) as n by actor | stats count() as actors by n`,
			[]string{"n", "actors"}, []string{"1|3", "2|1"}},
		{`| stats count() as n by action | stats sum(n) as total, max(n)`,
			[]string{"total", "max(n)"}, []string{"5|2"}},
		{`| timechart span=1h count() by source`, []string{"_time", "source", "count"}, []string{
			"2024-07-31T10:00:00Z|aws.cloudtrail|2",
			"2024-07-31T11:00:00Z|gcp.audit|1",
			"2024-07-31T12:00:00Z|aws.cloudtrail|1",
			"2024-08-01T02:00:00Z|syslog|1",
		}},
		{`| timechart span=1d`, []string{"_time", "count"}, []string{"2024-07-31T00:00:00Z|4", "2024-08-01T00:00:00Z|1"}},
		{`outcome:success | timechart span=30m dc(actor) as actors`, []string{"_time", "actors"}, []string{
			"2024-07-31T10:00:00Z|1", "2024-07-31T11:30:00Z|1", "2024-07-31T12:00:00Z|1",
		}},
		{`| fields action, eventName | head 2`, []string{"time", "action", "eventName"}, []string{
			"2024-08-01T02:00:00Z|login|NULL", "2024-07-31T12:00:00Z|CreateUser|CreateUser",
		}},
		{`| fields seq, time | sort seq | head 2`, []string{"seq", "time"}, []string{
			"1|2024-07-31T10:00:00Z", "2|2024-07-31T10:05:00Z",
		}},
		{`| fields action | head 3 | stats count() by action`, []string{"action", "count"},
			[]string{"CreateUser|1", "SetIamPolicy|1", "login|1"}},
		{`| head 2 | stats count()`, []string{"count"}, []string{"2"}},
		{`| stats count() by action | fields action | sort -action`, []string{"action"},
			[]string{"login", "StopLogging", "SetIamPolicy", "CreateUser"}},
		{`| stats count() as n by action | sort -n, action | head 2 | fields action`, []string{"action"},
			[]string{"CreateUser", "SetIamPolicy"}},
		{`| stats count() as n by action | head 2 | sort -action`, []string{"action", "n"},
			[]string{"SetIamPolicy|1", "CreateUser|2"}},
		// The order of a table whose sort column was dropped does not
		// reach the next subquery (found by TestRandomQueries).
		{`| timechart span=1d count() as n by source | fields source | fields source`, []string{"source"},
			[]string{"aws.cloudtrail", "gcp.audit", "syslog"}},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			q, err := Parse(tt.q)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			out, err := Compile(Request{Query: q, Scope: t1, Limit: 100}, DuckDB)
			if err != nil {
				t.Fatal(err)
			}
			if out.Kind != Table || !slices.Equal(out.Columns, tt.columns) {
				t.Errorf("kind %v columns %q, want table %q", out.Kind, out.Columns, tt.columns)
			}
			got := run(t, db, Request{Query: q, Scope: t1, Limit: 100})
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDuckDBScopeRangeLimit(t *testing.T) {
	db := openTestDB(t)
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	must := func(s string) *Query {
		q, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	tests := []struct {
		name string
		req  Request
		want []string
	}{
		{"zero scope reads nothing", Request{Query: must(`StopLogging`)}, nil},
		{"zero scope, stats", Request{Query: must(`| stats count()`)}, []string{"0"}},
		{"all tenants", Request{Query: must(`eventName:StopLogging`), Scope: Scope{All: true}}, []string{"5", "1"}},
		{"other tenant", Request{Query: must(`eventName:StopLogging`), Scope: Scope{Tenants: []string{"t2"}}}, []string{"5"}},
		{"two tenants", Request{Query: must(`eventName:StopLogging`), Scope: Scope{Tenants: []string{"t2", "t1"}}}, []string{"5", "1"}},
		{"unknown tenant", Request{Query: must(``), Scope: Scope{Tenants: []string{"t1' OR '1'='1"}}}, nil},
		{"query cannot widen scope", Request{Query: must(`tenant:t2 OR *`), Scope: t1}, []string{"4", "6", "3", "2", "1"}},
		{"nil query", Request{Scope: t1}, []string{"4", "6", "3", "2", "1"}},
		{"time range", Request{Query: must(``), Scope: t1, From: at("2024-07-31T10:01:00Z"), To: at("2024-07-31T12:00:00Z")}, []string{"3", "2"}},
		{"open end", Request{Query: must(``), Scope: t1, From: at("2024-07-31T11:00:00Z")}, []string{"4", "6", "3"}},
		{"open start", Request{Query: must(``), Scope: t1, To: at("2024-07-31T10:05:00Z")}, []string{"1"}},
		{"limit", Request{Query: must(``), Scope: t1, Limit: 2}, []string{"4", "6"}},
		{"head replaces limit", Request{Query: must(`| head 3`), Scope: t1, Limit: 2}, []string{"4", "6", "3"}},
		{"head under limit", Request{Query: must(`| head 1`), Scope: t1, Limit: 2}, []string{"4"}},
		{"any head replaces limit", Request{Query: must(`| head 4 | sort seq`), Scope: t1, Limit: 2}, []string{"2", "3", "4", "6"}},
		{"limit after stats", Request{Query: must(`| stats count() by seq | sort -seq`), Scope: t1, Limit: 2}, []string{"6|1", "4|1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, db, tt.req)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDuckDBJSONPathQuoting checks that the path quoting holds for keys
// no query can spell, which reach jsonPath only from code.
func TestDuckDBJSONPathQuoting(t *testing.T) {
	db := openTestDB(t)
	doc, _ := json.Marshal(map[string]any{
		`a"b`:   "quote",
		`a.b`:   "dot",
		`a\b`:   "backslash",
		`$[0]`:  "syntax",
		`x`:     map[string]any{`y z`: "space"},
		`it's`:  "apostrophe",
		`ünï`:   "unicode",
		`a"]."`: "hostile",
	})
	for _, tt := range []struct {
		path []string
		want string
	}{
		{[]string{`a"b`}, "quote"},
		{[]string{`a.b`}, "dot"},
		{[]string{`a\b`}, "backslash"},
		{[]string{`$[0]`}, "syntax"},
		{[]string{"x", "y z"}, "space"},
		{[]string{`it's`}, "apostrophe"},
		{[]string{`ünï`}, "unicode"},
		{[]string{`a"]."`}, "hostile"},
		{[]string{"a"}, ""},
	} {
		f := DuckDB.docText(tt.path)
		var got sql.NullString
		args := append(f.args, string(doc))
		err := db.QueryRow("SELECT "+f.sql+" FROM (SELECT NULL::VARCHAR AS doc, ?::VARCHAR AS raw)", args...).Scan(&got)
		if err != nil {
			t.Fatalf("%q: %v", tt.path, err)
		}
		if got.String != tt.want {
			t.Errorf("%q (%s): got %q, want %q", tt.path, jsonPath(tt.path), got.String, tt.want)
		}
	}
}

// The deepest query Parse accepts still runs.
func TestDuckDBDeepNesting(t *testing.T) {
	db := openTestDB(t)
	for _, s := range []string{
		strings.Repeat("(", maxDepth-1) + "action:CreateUser" + strings.Repeat(")", maxDepth-1),
		strings.Repeat("NOT ", maxDepth-2) + "action:CreateUser",
		strings.Repeat("-(", maxDepth/2-1) + "christophe" + strings.Repeat(")", maxDepth/2-1),
	} {
		q, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if got := run(t, db, Request{Query: q, Scope: t1}); len(got) == 0 {
			t.Errorf("%.20s…: no rows", s)
		}
	}
}
