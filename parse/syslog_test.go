package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
)

const (
	plasoSyslog = shared + "plaso-log-format-fixtures/test_data/syslog/"
	openSSH2k   = shared + "loghub-openssh-linux/OpenSSH/OpenSSH_2k.log"
	linux2k     = shared + "loghub-openssh-linux/Linux/Linux_2k.log"
)

// syslogFixtures are real logs: every record must parse.
var syslogFixtures = []struct {
	path   string
	golden string
	events int
	sample int // events pinned in the golden file; 0 means all
}{
	// 18 lines: the tab-indented line and "MMM 22 …" (not a month, so
	// not a record) continue the records before them.
	{plasoSyslog + "syslog", "syslog-plaso", 16, 0},
	{plasoSyslog + "syslog_chromeos", "syslog-chromeos", 8, 0},
	{plasoSyslog + "syslog_cron.log", "syslog-cron", 9, 0},
	{plasoSyslog + "syslog_osx", "syslog-osx", 2, 0},
	{plasoSyslog + "syslog_rsyslog", "syslog-rsyslog", 5, 0},
	{plasoSyslog + "syslog_rsyslog_ForwardFormat", "syslog-rsyslog-forward", 9, 0},
	{plasoSyslog + "syslog_rsyslog_SysklogdFileFormat", "syslog-rsyslog-sysklogd", 9, 0},
	{plasoSyslog + "syslog_rsyslog_SyslogProtocol23Format", "syslog-rsyslog-rfc5424", 9, 0},
	{plasoSyslog + "syslog_rsyslog_TraditionalForwardFormat", "syslog-rsyslog-traditional-forward", 9, 0},
	{plasoSyslog + "syslog_rsyslog_traditional", "syslog-rsyslog-traditional", 8, 0},
	{plasoSyslog + "syslog_ssh.log", "syslog-ssh", 9, 0},
	{openSSH2k, "syslog-openssh", 2000, 30},
	{linux2k, "syslog-linux", 2000, 30},
}

func TestSyslogFixtures(t *testing.T) {
	for _, fx := range syslogFixtures {
		t.Run(fx.golden, func(t *testing.T) {
			used, rs := parseFile(t, fx.path, Auto, Options{})
			if used != "syslog" {
				t.Fatalf("detected format %q, want syslog", used)
			}
			evs := events(t, rs)
			if len(evs) != fx.events {
				t.Errorf("%d events, want %d", len(evs), fx.events)
			}
			checkRawAtOffset(t, fx.path, rs)
			if fx.sample > 0 && len(evs) > fx.sample {
				evs = evs[:fx.sample]
			}
			checkGolden(t, fx.golden, evs)
		})
	}
}

// checkRawAtOffset checks that each record's Raw is the exact bytes of
// the input at its Offset: records split from one line (rsyslog's forward
// formats) and records spanning lines (CRLF files included) alike.
func checkRawAtOffset(t *testing.T, path string, rs []Result) {
	t.Helper()
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		end := r.Offset + int64(len(r.Raw))
		if len(r.Raw) == 0 || r.Offset < 0 || end > int64(len(in)) || !bytes.Equal(in[r.Offset:end], r.Raw) {
			t.Errorf("line %d: Raw %q is not the input at offset %d", r.Line, truncate(string(r.Raw), 80), r.Offset)
		}
	}
}

func TestSyslogSSHDBruteForce(t *testing.T) {
	in, err := os.ReadFile(openSSH2k)
	if err != nil {
		t.Fatal(err)
	}
	// Counted on the text, independently of the parser: each line that
	// reports a failed password from the address, "message repeated"
	// lines included (one event each, with Doc.repeated set).
	const attacker = "183.62.140.253"
	want := len(regexp.MustCompile(`(?m)Failed password for .* from `+regexp.QuoteMeta(attacker)+` port`).FindAll(in, -1))
	if want < 100 {
		t.Fatalf("fixture changed: only %d failed passwords from %s", want, attacker)
	}
	_, rs := parseFile(t, openSSH2k, "syslog", Options{})
	evs := events(t, rs)
	ip := netip.MustParseAddr(attacker)
	got, failures := 0, 0
	bySource := map[netip.Addr]int{}
	for _, e := range evs {
		if e.Class == event.ClassAuthentication && e.Action == "login" && e.Outcome.Result == event.OutcomeFailure {
			failures++
			bySource[e.SrcIP]++
			var doc struct {
				AuthMethod string `json:"auth_method"`
			}
			if err := json.Unmarshal(e.Doc, &doc); err != nil {
				t.Fatal(err)
			}
			if e.SrcIP == ip && doc.AuthMethod == "password" {
				got++
			}
			if !e.SrcIP.IsValid() || e.SrcPort == 0 || e.Actor.Name == "" {
				t.Errorf("failed login without address, port or user: %s", e.Raw)
			}
		}
	}
	if got != want {
		t.Errorf("%d failed-password events from %s, grep counts %d", got, attacker, want)
	}
	// "Failed password" and "Failed none" lines are the login failures.
	if n := bytes.Count(in, []byte("]: Failed ")) + bytes.Count(in, []byte("[ Failed ")); failures != n {
		t.Errorf("%d failed logins, want %d", failures, n)
	}
	top, topN := netip.Addr{}, 0
	for a, n := range bySource {
		if n > topN {
			top, topN = a, n
		}
	}
	if top != ip {
		t.Errorf("most failed logins from %s (%d), want %s", top, topN, attacker)
	}
}

func TestSyslogSSHD(t *testing.T) {
	type want struct {
		action, result, code, user, ip string
		port                           uint16
		method                         string
	}
	tests := []struct {
		msg  string
		want want // zero action: not an authentication event
	}{
		{"Accepted password for fztu from 119.137.62.142 port 49116 ssh2",
			want{"login", "success", "", "fztu", "119.137.62.142", 49116, "password"}},
		{"Accepted publickey for fred from 192.0.2.60 port 59915 ssh2: RSA SHA256:5xyQ+PG1Z3CIiShclJ2iNya5TOdKDgE/HrOXr21IdOo",
			want{"login", "success", "", "fred", "192.0.2.60", 59915, "publickey"}},
		{"Accepted keyboard-interactive/pam for alice from 2001:db8::5 port 50000 ssh2",
			want{"login", "success", "", "alice", "2001:db8::5", 50000, "keyboard-interactive/pam"}},
		{"Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
			want{"login", "failure", "invalid_user", "webmaster", "173.234.31.186", 38926, "password"}},
		{"Failed password for root from 183.62.140.253 port 52160 ssh2",
			want{"login", "failure", "bad_password", "root", "183.62.140.253", 52160, "password"}},
		{"Failed publickey for plaso from 001:db8:a0b:12f0::1 port 8759",
			want{"login", "failure", "bad_publickey", "plaso", "1:db8:a0b:12f0::1", 8759, "publickey"}},
		{"Failed none for invalid user 0 from 5.188.10.180 port 40212 ssh2",
			want{"login", "failure", "invalid_user", "0", "5.188.10.180", 40212, "none"}},
		// The user is the client's choice: what sshd writes after it is
		// read from the right.
		{"Failed password for invalid user root from 6.6.6.6 port 1 from 10.1.2.3 port 22 ssh2",
			want{"login", "failure", "invalid_user", "root from 6.6.6.6 port 1", "10.1.2.3", 22, "password"}},
		{"Failed password for root from ::ffff:10.0.0.9 port 22 ssh2",
			want{"login", "failure", "bad_password", "root", "10.0.0.9", 22, "password"}},
		// UseDNS: a name where the address would be.
		{"Failed password for root from host.example.com port 22 ssh2",
			want{"login", "failure", "bad_password", "root", "", 22, "password"}},
		{"message repeated 5 times: [ Failed password for root from 5.36.59.76 port 42393 ssh2]",
			want{"login", "failure", "bad_password", "root", "5.36.59.76", 42393, "password"}},
		{"Invalid user webmaster from 173.234.31.186",
			want{"invalid_user", "failure", "invalid_user", "webmaster", "173.234.31.186", 0, ""}},
		{"Invalid user  0101 from 187.141.143.180",
			want{"invalid_user", "failure", "invalid_user", " 0101", "187.141.143.180", 0, ""}},
		{"Invalid user admin from 10.0.0.1 port 4444",
			want{"invalid_user", "failure", "invalid_user", "admin", "10.0.0.1", 4444, ""}},
		{"input_userauth_request: invalid user test9 [preauth]",
			want{"invalid_user", "failure", "invalid_user", "test9", "", 0, ""}},
		{"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=183.62.140.253  user=root",
			want{"pam_auth", "failure", "auth_failure", "root", "183.62.140.253", 0, "password"}},
		{"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=ec2-52-80-34-196.cn-north-1.compute.amazonaws.com.cn ",
			want{"pam_auth", "failure", "auth_failure", "", "", 0, "password"}},
		{"PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=183.62.140.253  user=root",
			want{"pam_auth", "failure", "auth_failure", "root", "183.62.140.253", 0, "password"}},
		{"pam_unix(sshd:auth): check pass; user unknown",
			want{"pam_auth", "failure", "unknown_user", "", "", 0, ""}},
		{"pam_unix(sshd:session): session opened for user fztu by (uid=0)",
			want{"session_open", "success", "", "fztu", "", 0, ""}},
		{"pam_unix(sshd:session): session opened for user bob(uid=1000) by bob(uid=0)",
			want{"session_open", "success", "", "bob", "", 0, ""}},
		{"pam_unix(sshd:session): session closed for user fztu",
			want{"session_close", "success", "", "fztu", "", 0, ""}},
		{"error: maximum authentication attempts exceeded for invalid user admin from 141.98.10.1 port 5000 ssh2 [preauth]",
			want{"login", "failure", "max_attempts", "admin", "141.98.10.1", 5000, ""}},
		{"User root from 10.9.8.7 not allowed because not listed in AllowUsers",
			want{"login", "failure", "not_allowed", "root", "10.9.8.7", 0, ""}},
		{"reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!",
			want{"reverse_mapping_check", "failure", "possible_break_in", "", "173.234.31.186", 0, ""}},
		{"Address 1.2.3.4 maps to evil.example, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
			want{"reverse_mapping_check", "failure", "possible_break_in", "", "1.2.3.4", 0, ""}},
		{"Received disconnect from 52.80.34.196: 11: Bye Bye [preauth]",
			want{"disconnect", "unknown", "", "", "52.80.34.196", 0, ""}},
		{"Received disconnect from 2001:db8::7: 11: Bye Bye [preauth]",
			want{"disconnect", "unknown", "", "", "2001:db8::7", 0, ""}},
		{"Received disconnect from 10.0.0.2 port 51234:11: disconnected by user",
			want{"disconnect", "unknown", "", "", "10.0.0.2", 51234, ""}},
		{"error: Received disconnect from 103.99.0.122: 14: No more user authentication methods available. [preauth]",
			want{"disconnect", "failure", "no_more_auth_methods", "", "103.99.0.122", 0, ""}},
		{"Disconnecting: Too many authentication failures for root [preauth]",
			want{"disconnect", "failure", "too_many_failures", "root", "", 0, ""}},
		{"Disconnecting invalid user admin 10.0.0.3 port 2222: Too many authentication failures [preauth]",
			want{"disconnect", "failure", "too_many_failures", "admin", "10.0.0.3", 2222, ""}},
		{"Disconnected from authenticating user root 10.0.0.4 port 33 [preauth]",
			want{"disconnect", "unknown", "", "root", "10.0.0.4", 33, ""}},
		{"Connection closed by 212.47.254.145 [preauth]",
			want{"connection_closed", "unknown", "", "", "212.47.254.145", 0, ""}},
		{"Connection closed by invalid user oracle 10.0.0.5 port 40000 [preauth]",
			want{"connection_closed", "unknown", "", "oracle", "10.0.0.5", 40000, ""}},
		{"Connection reset by 10.0.0.6 port 1234 [preauth]",
			want{"connection_closed", "unknown", "", "", "10.0.0.6", 1234, ""}},
		{"Connection from 188.124.3.41 port 32889 on 10.0.0.1 port 22",
			want{"connect", "unknown", "", "", "188.124.3.41", 32889, ""}},
		{"Did not receive identification string from 61.187.54.9",
			want{"connect", "unknown", "no_identification", "", "61.187.54.9", 0, ""}},
		{"Server listening on 0.0.0.0 port 22.", want{}},
		{"PAM service(sshd) ignoring max retries; 5 > 3", want{}},
		{"fatal: Write failed: Connection reset by peer [preauth]", want{}},
		{"Failed to release session", want{}},
	}
	for _, tt := range tests {
		in := "Dec 10 06:55:46 LabSZ sshd[24200]: " + tt.msg + "\n"
		rs := parseString(t, in, "syslog", Options{})
		evs := events(t, rs)
		if len(evs) != 1 {
			t.Fatalf("%q: %d events", tt.msg, len(evs))
		}
		e := evs[0]
		if tt.want.action == "" {
			if e.Class != event.ClassSystemLog || e.Action != "" {
				t.Errorf("%q: class %s action %q, want a plain system_log event", tt.msg, e.Class, e.Action)
			}
			continue
		}
		var doc struct {
			AuthMethod string `json:"auth_method"`
			User       string `json:"user"`
		}
		if err := json.Unmarshal(e.Doc, &doc); err != nil {
			t.Fatalf("%q: Doc: %v", tt.msg, err)
		}
		ip := ""
		if e.SrcIP.IsValid() {
			ip = e.SrcIP.String()
		}
		got := want{e.Action, e.Outcome.Result, e.Outcome.Code, e.Actor.Name, ip, e.SrcPort, doc.AuthMethod}
		if e.Class != event.ClassAuthentication || got != tt.want || doc.User != e.Actor.Name {
			t.Errorf("%q:\n got %s %+v\nwant authentication %+v", tt.msg, e.Class, got, tt.want)
		}
	}
}

func TestSyslogRecordForms(t *testing.T) {
	type doc struct {
		Facility string         `json:"facility"`
		Severity string         `json:"severity"`
		Priority *int           `json:"priority"`
		Hostname string         `json:"hostname"`
		Appname  string         `json:"appname"`
		Procid   string         `json:"procid"`
		Msgid    string         `json:"msgid"`
		SD       map[string]any `json:"structured_data"`
		Message  string         `json:"message"`
	}
	tests := []struct {
		name, in               string
		time, host, svc, msg   string
		facility, severity, sd string
		pri                    int // -1: none
		procid, msgid          string
	}{
		{name: "rfc5424 example 1",
			in:   "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
			time: "2003-10-11T22:14:15.003Z", host: "mymachine.example.com", svc: "su", msg: "'su root' failed for lonvick on /dev/pts/8",
			facility: "auth", severity: "crit", pri: 34, msgid: "ID47"},
		{name: "rfc5424 structured data",
			in:   `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high" note="a \"quoted\] value\\"] An application event`,
			time: "2003-10-11T22:14:15.003Z", host: "mymachine.example.com", svc: "evntslog", msg: "An application event",
			facility: "local4", severity: "notice", pri: 165, msgid: "ID47",
			sd: `{"examplePriority@32473":{"class":"high","note":"a \"quoted] value\\"},"exampleSDID@32473":{"eventID":"1011","eventSource":"Application","iut":"3"}}`},
		{name: "rfc5424 nil values and no message",
			in:   "<13>1 - - - - - -",
			time: "2026-01-02T03:04:05Z", facility: "user", severity: "notice", pri: 13},
		{name: "rfc5424 offset",
			in:   "<14>1 1985-04-12T19:20:50.52-04:00 host app 1234 - - hello",
			time: "1985-04-12T23:20:50.52Z", host: "host", svc: "app", msg: "hello", facility: "user", severity: "info", pri: 14, procid: "1234"},
		{name: "rfc3164 with pri",
			in:   "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
			time: "2025-10-11T22:14:15Z", host: "mymachine", svc: "su", msg: "'su root' failed for lonvick on /dev/pts/8",
			facility: "auth", severity: "crit", pri: 34},
		{name: "rfc3164 pri only",
			in:   "<13>hello world",
			time: "2026-01-02T03:04:05Z", msg: "hello world", facility: "user", severity: "notice", pri: 13},
		{name: "iso traditional",
			in:   "2020-05-31T00:00:45.738158+00:00 localhost systemd[1]: Reloaded System Logging Service.",
			time: "2020-05-31T00:00:45.738158Z", host: "localhost", svc: "systemd", msg: "Reloaded System Logging Service.", pri: -1, procid: "1"},
		{name: "iso without zone is UTC",
			in:   "2020-05-31T00:00:45 localhost app: x",
			time: "2020-05-31T00:00:45Z", host: "localhost", svc: "app", msg: "x", pri: -1},
		{name: "chromeos",
			in:   "2016-10-25T12:37:23.297265-07:00 INFO periodic_scheduler[13707]: cleanup_logs: job completed",
			time: "2016-10-25T19:37:23.297265Z", svc: "periodic_scheduler", msg: "cleanup_logs: job completed", severity: "info", pri: -1, procid: "13707"},
		{name: "no tag colon",
			in:   "Jan 22 07:54:32 myhostname.myhost.com Job `cron.daily' terminated",
			time: "2025-01-22T07:54:32Z", host: "myhostname.myhost.com", svc: "Job", msg: "`cron.daily' terminated", pri: -1},
		{name: "no host",
			in:   "Mar 11 09:39:39: --- last message repeated 5 times ---",
			time: "2025-03-11T09:39:39Z", msg: "--- last message repeated 5 times ---", pri: -1},
		{name: "ipv6 host",
			in:   "Mar 11 09:39:39 2001:db8::1 sshd[1]: hello",
			time: "2025-03-11T09:39:39Z", host: "2001:db8::1", svc: "sshd", msg: "hello", pri: -1, procid: "1"},
		{name: "macos level",
			in:   "Mar 11 19:26:45 osx-machine sockerfilterfw[1985] <Info>: launchd Allow TCP LISTEN (in:0 out:2)",
			time: "2025-03-11T19:26:45Z", host: "osx-machine", svc: "sockerfilterfw", msg: "launchd Allow TCP LISTEN (in:0 out:2)", severity: "info", pri: -1, procid: "1985"},
		{name: "tag with facility and path",
			in:   "Jun 14 15:16:01 combo /usr/sbin/sshd(pam_unix)[19939]: check pass; user unknown",
			time: "2025-06-14T15:16:01Z", host: "combo", svc: "sshd", msg: "check pass; user unknown", pri: -1, procid: "19939"},
		{name: "not a tag",
			in:   "Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2",
			time: "2025-07-07T08:06:15Z", host: "combo", msg: "-- root[2421]: ROOT LOGIN ON tty2", pri: -1},
		{name: "invalid UTF-8 in a message is kept",
			in:   "Mar 11 09:39:39 host app: caf\xe9",
			time: "2025-03-11T09:39:39Z", host: "host", svc: "app", msg: "caf\uFFFD", pri: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseString(t, tt.in+"\n", "syslog", Options{})
			evs := events(t, rs)
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			e := evs[0]
			if got := e.Time.Format(time.RFC3339Nano); got != tt.time {
				t.Errorf("time %s, want %s", got, tt.time)
			}
			if e.Host != tt.host || e.Service != tt.svc || e.Message != tt.msg {
				t.Errorf("host %q service %q message %q, want %q %q %q", e.Host, e.Service, e.Message, tt.host, tt.svc, tt.msg)
			}
			if string(e.Raw) != tt.in {
				t.Errorf("raw %q, want %q", e.Raw, tt.in)
			}
			var d doc
			if err := json.Unmarshal(e.Doc, &d); err != nil {
				t.Fatalf("Doc %s: %v", e.Doc, err)
			}
			pri := -1
			if d.Priority != nil {
				pri = *d.Priority
			}
			if d.Facility != tt.facility || d.Severity != tt.severity || pri != tt.pri || d.Procid != tt.procid || d.Msgid != tt.msgid || d.Message != tt.msg || d.Hostname != tt.host {
				t.Errorf("doc %s", e.Doc)
			}
			if tt.sd != "" {
				got, _ := json.Marshal(d.SD)
				if string(got) != tt.sd {
					t.Errorf("structured data\n got %s\nwant %s", got, tt.sd)
				}
			}
		})
	}
}

func TestSyslogYear(t *testing.T) {
	received := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	plus2 := time.FixedZone("UTC+2", 2*3600)
	tests := []struct {
		in   string
		opts Options
		want string // "" when the record is quarantined
	}{
		{"Dec 31 23:59:59 h a: x", Options{}, "2025-12-31T23:59:59Z"},
		{"Jan  2 10:00:00 h a: x", Options{}, "2026-01-02T10:00:00Z"},
		{"Jan  3 02:00:00 h a: x", Options{}, "2026-01-03T02:00:00Z"}, // less than a day ahead: a fast clock
		{"Jan  4 02:00:00 h a: x", Options{}, "2025-01-04T02:00:00Z"},
		{"Feb 29 01:15:43 h a: x", Options{}, "2024-02-29T01:15:43Z"},
		{"Feb 29 01:15:43 h a: x", Options{Year: 2012}, "2012-02-29T01:15:43Z"},
		{"Feb 29 01:15:43 h a: x", Options{Year: 2023}, ""},
		{"Apr 31 01:15:43 h a: x", Options{}, ""},
		{"Mar 11 10:00:00 h a: x", Options{Year: 2020}, "2020-03-11T10:00:00Z"},
		{"Mar 11 10:00:00 h a: x", Options{Location: plus2}, "2025-03-11T08:00:00Z"},
		{"2020-03-11T10:00:00 h a: x", Options{Location: plus2}, "2020-03-11T08:00:00Z"},
		{"2020-03-11T10:00:00Z h a: x", Options{Location: plus2}, "2020-03-11T10:00:00Z"},
	}
	for _, tt := range tests {
		tt.opts.Received = received
		rs := parseString(t, tt.in, "syslog", tt.opts)
		if len(rs) != 1 {
			t.Fatalf("%q: %d results", tt.in, len(rs))
		}
		r := rs[0]
		switch {
		case tt.want == "" && r.Err == nil:
			t.Errorf("%q %+v: got %s, want quarantine", tt.in, tt.opts, r.Event.Time)
		case tt.want == "":
		case r.Err != nil:
			t.Errorf("%q: %v", tt.in, r.Err)
		case r.Event.Time.Format(time.RFC3339) != tt.want:
			t.Errorf("%q %+v: got %s, want %s", tt.in, tt.opts, r.Event.Time.Format(time.RFC3339), tt.want)
		}
	}
}

// TestSyslogBadInput checks that what is not syslog is quarantined with a
// reason, and that the records after it still parse.
func TestSyslogBadInput(t *testing.T) {
	good := "Mar 11 22:55:32 ubuntu2015 sshd[3]: Failed password for root from 188.124.3.41 port 32889 ssh2"
	tests := []struct {
		name   string
		in     string
		opts   Options
		reason string // in the first quarantined record
		bad    int    // quarantined records
		good   int    // events
	}{
		{"binary before the first record", "\x00\x01\x02\xff\xfe junk\n" + good + "\n", Options{}, "binary data", 1, 1},
		{"text before the first record", "hello there\n" + good + "\n", Options{}, "no record precedes it", 1, 1},
		{"binary between records", good + "\n\x7fELF\x02\x01\x01\x00\n" + good + "\n", Options{}, "binary data", 1, 2},
		{"invalid UTF-8 line", good + "\n\xc3\x28\xa0\xa1 oops\n" + good + "\n", Options{}, "invalid UTF-8", 1, 2},
		{"truncated timestamp", "Mar 11 22:5\n" + good + "\n", Options{}, "invalid RFC 3164 timestamp", 1, 1},
		{"timestamp only", "Mar 11 22:55:32\n" + good, Options{}, "ends after its timestamp", 1, 1},
		{"truncated rfc5424", "<34>1 2003-10-11T22:14:15.003Z mymachine\n" + good, Options{}, "missing APP-NAME", 1, 1},
		{"bad rfc5424 time", "<34>1 2003-13-11T22:14:15.003Z h a - - - x\n" + good, Options{}, "invalid syslog timestamp", 1, 1},
		{"bad structured data", "<34>1 2003-10-11T22:14:15.003Z h a - - [id x=\"1] msg\n" + good, Options{}, "structured data", 1, 1},
		{"bad priority", "<999>Mar 11 22:55:32 host a: x\n" + good, Options{}, "invalid syslog priority", 1, 1},
		{"binary after priority", "<13>\x00\x00\x00\n" + good, Options{}, "after the priority, binary data", 1, 1},
		{"over-long line", good + "\n" + "Mar 11 22:55:33 host app: " + strings.Repeat("A", 300) + "\n" + good + "\n", Options{MaxLine: 200}, "line longer than 200 bytes", 1, 2},
		{"continuation of an over-long line", "Mar 11 22:55:33 host app: " + strings.Repeat("A", 300) + "\n  more of it\n" + good + "\n", Options{MaxLine: 200}, "line longer than 200 bytes", 2, 1},
		{"too many continuation lines", good + "\n" + strings.Repeat("continued "+strings.Repeat("x", 40)+"\n", 5) + good + "\n", Options{MaxLine: 200}, "continuation line would make its record longer than 200 bytes", 3, 2},
		// Each "<1>" might start a record; finding none must cost linear
		// time, not a scan of the rest of the line per candidate.
		{"many false record starts", strings.Repeat("<1>2021-01-01T", 2000) + "\n" + good, Options{}, "invalid syslog timestamp", 1, 1},
		{"forward line after junk", "junk<14>2021-03-06T04:07:33.196352+00:00 hostname log_tag this is info\n", Options{}, "no record precedes it", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseString(t, tt.in, "syslog", tt.opts)
			var bad, ok int
			var first error
			for _, r := range rs {
				if (r.Err == nil) == (r.Event == nil) {
					t.Fatalf("result with both or neither of Event and Err: %+v", r)
				}
				if len(r.Raw) == 0 {
					t.Errorf("result without Raw: %+v", r)
				}
				if r.Err != nil {
					if first == nil {
						first = r.Err
					}
					bad++
					continue
				}
				ok++
				if r.Event.Host != "" && r.Event.Class == event.ClassAuthentication && !strings.HasPrefix(string(r.Event.Raw), "Mar 11 22:55:32") {
					t.Errorf("good record damaged: %q", r.Event.Raw)
				}
			}
			if bad != tt.bad || ok != tt.good {
				for _, r := range rs {
					t.Logf("line %d err=%v raw=%q", r.Line, r.Err, truncate(string(r.Raw), 80))
				}
				t.Fatalf("%d quarantined and %d events, want %d and %d", bad, ok, tt.bad, tt.good)
			}
			if !strings.Contains(first.Error(), tt.reason) {
				t.Errorf("reason %q, want it to mention %q", first, tt.reason)
			}
		})
	}
}

// TestSyslogContinuation pins how lines that start no record join the
// record before them.
func TestSyslogContinuation(t *testing.T) {
	in := "Nov 18 01:15:20 host app[1]: first line\r\n\tsecond line\r\n\r\n  third after a blank\r\nNov 18 01:15:21 host app[1]: next\r\n\r\n"
	rs := parseString(t, in, "syslog", Options{})
	evs := events(t, rs)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	if want := "first line\n\tsecond line\n\n  third after a blank"; evs[0].Message != want {
		t.Errorf("message %q, want %q", evs[0].Message, want)
	}
	if want := "Nov 18 01:15:20 host app[1]: first line\r\n\tsecond line\r\n\r\n  third after a blank"; string(evs[0].Raw) != want {
		t.Errorf("raw %q, want %q", evs[0].Raw, want)
	}
	if string(evs[1].Raw) != "Nov 18 01:15:21 host app[1]: next" || rs[1].Line != 5 {
		t.Errorf("second record %q at line %d", evs[1].Raw, rs[1].Line)
	}
}

func TestSyslogDetect(t *testing.T) {
	for _, fx := range syslogFixtures {
		head := readHead(t, fx.path)
		if got := Detect(head); got != "syslog" {
			t.Errorf("Detect(%s) = %q, want syslog", fx.path, got)
		}
	}
	for _, in := range []string{
		"hello world\n",
		"just some words: with a colon\n",
		"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n",
	} {
		if got := Detect([]byte(in)); got == "syslog" {
			t.Errorf("Detect(%q) = syslog", in)
		}
	}
}

func readHead(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head, _ := bufio.NewReaderSize(f, sniffSize).Peek(sniffSize)
	return head
}
