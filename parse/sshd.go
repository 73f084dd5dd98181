package parse

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/event"
)

// sshd's messages are read here into authentication events, so that
// password guessing (many failures from one address) and the login that
// follows it can be found by field rather than by text.
//
// User names in these messages are chosen by whoever connects, and may
// hold spaces or even " from 1.2.3.4": what sshd itself writes after the
// user (address, port, protocol) is therefore read from the right.

// isSSHD reports whether a service name is OpenSSH's server. OpenSSH 9.8
// split it into sshd-session and sshd-auth.
func isSSHD(service string) bool {
	return service == "sshd" || service == "sshd-session" || service == "sshd-auth"
}

// sshdFields are the fields an sshd message adds to the syslog document.
type sshdFields struct {
	User           string `json:"user,omitempty"`
	SrcIP          string `json:"src_ip,omitempty"` // as sshd wrote it, when it is an address
	SrcPort        int    `json:"src_port,omitempty"`
	Rhost          string `json:"rhost,omitempty"` // a host name where an address would be
	AuthMethod     string `json:"auth_method,omitempty"`
	InvalidUser    bool   `json:"invalid_user,omitempty"`
	Key            string `json:"key,omitempty"` // key type and fingerprint of a public-key login
	DisconnectCode int    `json:"disconnect_code,omitempty"`
	Reason         string `json:"reason,omitempty"`
	Failures       int    `json:"failures,omitempty"` // PAM's "N more authentication failures"
	Preauth        bool   `json:"preauth,omitempty"`
}

// sshdActivity is what one sshd message says happened.
type sshdActivity struct {
	action string
	result string
	code   string
	ip     netip.Addr
	fields sshdFields
}

func (a *sshdActivity) apply(ev *event.Event) {
	ev.Class = event.ClassAuthentication
	ev.Action = a.action
	ev.Actor.Name = a.fields.User
	ev.SrcIP = a.ip
	if p := a.fields.SrcPort; p > 0 && p <= 65535 {
		ev.SrcPort = uint16(p)
	}
	ev.Outcome = event.Outcome{Result: a.result, Code: a.code}
	if ev.Outcome.Result == "" {
		ev.Outcome.Result = event.OutcomeUnknown
	}
}

// setAddr records the source address as written: an IP, or a host name
// when sshd was configured to look names up.
func (a *sshdActivity) setAddr(s string) {
	if ip, err := netip.ParseAddr(s); err == nil {
		a.ip = ip.Unmap()
		a.fields.SrcIP = s
		return
	}
	a.fields.Rhost = s
}

// parseSSHD reads an sshd message. It reports false for messages that
// say nothing about who connects (startup, key exchange details), which
// stay system_log events.
func parseSSHD(msg string) (sshdActivity, bool) {
	var a sshdActivity
	msg = strings.TrimRight(msg, " \r\n")
	if m, ok := strings.CutSuffix(msg, " [preauth]"); ok {
		msg, a.fields.Preauth = m, true
	}
	if m, ok := strings.CutPrefix(msg, "pam_unix(sshd:"); ok {
		// pam_unix(sshd:auth): … and pam_unix(sshd:session): …, the
		// messages Linux_2k's sshd(pam_unix) tag writes without prefix.
		if _, rest, ok := strings.Cut(m, "): "); ok {
			return parsePAM(rest)
		}
		return a, false
	}
	switch {
	case strings.HasPrefix(msg, "Accepted "), strings.HasPrefix(msg, "Failed "):
		// Accepted publickey for fred from 192.0.2.60 port 60594 ssh2: RSA SHA256:…
		// Failed password for invalid user admin from 1.2.3.4 port 22 ssh2
		f := strings.SplitN(msg, " ", 4)
		if len(f) < 4 || f[2] != "for" || !a.userFrom(f[3]) {
			return a, false
		}
		a.action = "login"
		method := f[1]
		a.fields.AuthMethod = method
		if f[0] == "Accepted" {
			a.result = event.OutcomeSuccess
		} else {
			a.result, a.code = event.OutcomeFailure, failureCode(method)
			if a.fields.InvalidUser {
				a.code = "invalid_user"
			}
		}
		return a, true
	case strings.HasPrefix(msg, "Invalid user "):
		// Invalid user webmaster from 173.234.31.186[ port 38926]
		if !a.userFrom(msg[len("Invalid "):]) {
			return a, false
		}
		a.fields.InvalidUser = true
		a.action, a.result, a.code = "invalid_user", event.OutcomeFailure, "invalid_user"
		return a, true
	case strings.HasPrefix(msg, "input_userauth_request: invalid user "):
		a.fields.User = msg[len("input_userauth_request: invalid user "):]
		a.fields.InvalidUser = true
		a.action, a.result, a.code = "invalid_user", event.OutcomeFailure, "invalid_user"
		return a, true
	case strings.HasPrefix(msg, "error: maximum authentication attempts exceeded for "):
		if !a.userFrom(msg[len("error: maximum authentication attempts exceeded for "):]) {
			return a, false
		}
		a.action, a.result, a.code = "login", event.OutcomeFailure, "max_attempts"
		return a, true
	case strings.HasPrefix(msg, "User ") && strings.Contains(msg, " not allowed because "):
		// User root from 1.2.3.4 not allowed because not listed in AllowUsers
		m, reason, _ := cutLast(msg[len("User "):], " not allowed because ")
		if !a.userFrom(m) {
			return a, false
		}
		a.fields.Reason = reason
		a.action, a.result, a.code = "login", event.OutcomeFailure, "not_allowed"
		return a, true
	case strings.HasSuffix(msg, "POSSIBLE BREAK-IN ATTEMPT!"):
		return a.breakIn(msg)
	case strings.HasPrefix(msg, "Received disconnect from "), strings.HasPrefix(msg, "error: Received disconnect from "):
		return a.disconnect(msg[strings.Index(msg, "from ")+len("from "):])
	case strings.HasPrefix(msg, "Disconnecting"):
		return a.disconnecting(msg)
	case strings.HasPrefix(msg, "Disconnected from "):
		// Disconnected from [invalid |authenticating ]user root 1.2.3.4 port 22
		if !a.userAddr(msg[len("Disconnected from "):]) {
			return a, false
		}
		a.action = "disconnect"
		return a, true
	case strings.HasPrefix(msg, "Connection closed by "), strings.HasPrefix(msg, "Connection reset by "):
		// Connection closed by 1.2.3.4[ port 22] / by invalid user x 1.2.3.4 port 22
		_, who, _ := strings.Cut(msg, " by ")
		if !a.userAddr(who) {
			return a, false
		}
		a.action = "connection_closed"
		return a, true
	case strings.HasPrefix(msg, "Connection from "):
		// Connection from 1.2.3.4 port 22[ on 10.0.0.1 port 22]
		if !a.addrPort(strings.Fields(msg[len("Connection from "):])) {
			return a, false
		}
		a.action = "connect"
		return a, true
	case strings.HasPrefix(msg, "Did not receive identification string from "):
		if !a.addrPort(strings.Fields(msg[len("Did not receive identification string from "):])) {
			return a, false
		}
		a.action, a.code = "connect", "no_identification"
		return a, true
	case strings.HasPrefix(msg, "PAM ") && strings.Contains(msg, " more authentication failure"):
		return parsePAM(msg)
	case strings.HasPrefix(msg, "authentication failure;"), strings.HasPrefix(msg, "check pass;"),
		strings.HasPrefix(msg, "session opened for user "), strings.HasPrefix(msg, "session closed for user "):
		return parsePAM(msg)
	}
	return a, false
}

// failureCode names why a login with method failed.
func failureCode(method string) string {
	switch {
	case method == "password", strings.HasPrefix(method, "keyboard-interactive"):
		return "bad_password"
	case method == "publickey":
		return "bad_publickey"
	}
	return "auth_failed"
}

// userFrom reads "[invalid user ]USER from ADDR[ port N][ ssh2][: KEY]".
func (a *sshdActivity) userFrom(s string) bool {
	user, rest, ok := cutLast(s, " from ")
	if !ok {
		return false
	}
	if u, ok := strings.CutPrefix(user, "invalid user "); ok {
		user, a.fields.InvalidUser = u, true
	} else if u, ok := strings.CutPrefix(user, "user "); ok {
		user = u
	}
	a.fields.User = user
	if r, key, ok := strings.Cut(rest, ": "); ok {
		// "ssh2: RSA SHA256:…": what follows the colon is the key.
		rest, a.fields.Key = r, key
	}
	return a.addrPort(strings.Fields(rest))
}

// userAddr reads "[invalid |authenticating ]user USER ADDR port N" or
// "ADDR[ port N]", as in sshd's connection-closed messages.
func (a *sshdActivity) userAddr(s string) bool {
	f := strings.Fields(s)
	if len(f) >= 3 && f[len(f)-2] == "port" {
		u, ok := strings.CutSuffix(s, " "+f[len(f)-3]+" port "+f[len(f)-1])
		if ok && u != "" {
			switch {
			case strings.HasPrefix(u, "invalid user "):
				a.fields.User, a.fields.InvalidUser = u[len("invalid user "):], true
			case strings.HasPrefix(u, "authenticating user "):
				a.fields.User = u[len("authenticating user "):]
			case strings.HasPrefix(u, "user "):
				a.fields.User = u[len("user "):]
			default:
				return false
			}
		}
		return a.addrPort(f[len(f)-3:])
	}
	return a.addrPort(f)
}

// addrPort reads "ADDR[ port N][ …]" from fields.
func (a *sshdActivity) addrPort(f []string) bool {
	if len(f) == 0 {
		return false
	}
	a.setAddr(f[0])
	if len(f) >= 3 && f[1] == "port" {
		if p, err := strconv.Atoi(f[2]); err == nil && p >= 0 && p <= 65535 {
			a.fields.SrcPort = p
		}
	}
	return true
}

// breakIn reads sshd's reverse-DNS warnings:
//
//	reverse mapping checking getaddrinfo for HOST [ADDR] failed - POSSIBLE BREAK-IN ATTEMPT!
//	Address ADDR maps to HOST, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!
func (a sshdActivity) breakIn(msg string) (sshdActivity, bool) {
	switch {
	case strings.HasPrefix(msg, "reverse mapping checking getaddrinfo for "):
		i, j := strings.LastIndexByte(msg, '['), strings.LastIndexByte(msg, ']')
		if i < 0 || j < i {
			return a, false
		}
		a.setAddr(msg[i+1 : j])
		if a.fields.Rhost == "" {
			a.fields.Rhost = strings.TrimSpace(msg[len("reverse mapping checking getaddrinfo for "):i])
		}
	case strings.HasPrefix(msg, "Address "):
		f := strings.Fields(msg)
		if len(f) < 5 || f[2] != "maps" || f[3] != "to" {
			return a, false
		}
		a.setAddr(f[1])
		if a.fields.Rhost == "" {
			a.fields.Rhost = strings.TrimSuffix(f[4], ",")
		}
	default:
		return a, false
	}
	a.action, a.result, a.code = "reverse_mapping_check", event.OutcomeFailure, "possible_break_in"
	return a, true
}

// disconnect reads what follows "Received disconnect from ":
// "ADDR: CODE: TEXT" (OpenSSH before 7.3) or "ADDR port N:CODE: TEXT".
// An IPv6 address holds colons, so the address is the first word.
func (a sshdActivity) disconnect(s string) (sshdActivity, bool) {
	addr, _ := token([]byte(s), 0)
	rest := s[len(addr):]
	if a0, ok := strings.CutSuffix(string(addr), ":"); ok {
		a.setAddr(a0)
	} else {
		a.setAddr(string(addr))
		p, ok := strings.CutPrefix(rest, " port ")
		if !ok {
			return a, false
		}
		num, r, ok := strings.Cut(p, ":")
		if !ok {
			return a, false
		}
		if n, err := strconv.Atoi(num); err == nil && n >= 0 && n <= 65535 {
			a.fields.SrcPort = n
		}
		rest = r
	}
	rest = strings.TrimSpace(rest)
	if code, text, ok := strings.Cut(rest, ":"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(code)); err == nil {
			a.fields.DisconnectCode = n
			rest = strings.TrimSpace(text)
		}
	}
	a.fields.Reason = rest
	a.action = "disconnect"
	if a.fields.DisconnectCode == 14 { // SSH2_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE
		a.result, a.code = event.OutcomeFailure, "no_more_auth_methods"
	}
	return a, true
}

// disconnecting reads sshd's own disconnects for too many failures:
//
//	Disconnecting: Too many authentication failures for root
//	Disconnecting invalid user admin 1.2.3.4 port 22: Too many authentication failures
//	Disconnecting authenticating user root 1.2.3.4 port 22: Too many authentication failures
func (a sshdActivity) disconnecting(msg string) (sshdActivity, bool) {
	var reason string
	if r, ok := strings.CutPrefix(msg, "Disconnecting: "); ok {
		reason = r
		if i := strings.LastIndex(r, " for "); i >= 0 && strings.HasPrefix(r, "Too many authentication failures") {
			reason, a.fields.User = r[:i], r[i+len(" for "):]
		}
	} else {
		who, r, ok := cutLast(strings.TrimPrefix(msg, "Disconnecting "), ": ")
		if !ok || !a.userAddr(who) {
			return a, false
		}
		reason = r
	}
	a.fields.Reason = reason
	a.action = "disconnect"
	if strings.HasPrefix(reason, "Too many authentication failures") {
		a.result, a.code = event.OutcomeFailure, "too_many_failures"
	}
	return a, true
}

// parsePAM reads pam_unix's messages for sshd:
//
//	authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root
//	PAM 5 more authentication failures; logname= … rhost=1.2.3.4  user=root
//	check pass; user unknown
//	session opened for user fztu by (uid=0)
//	session closed for user fztu
func parsePAM(msg string) (sshdActivity, bool) {
	var a sshdActivity
	msg = strings.TrimRight(msg, " ")
	switch {
	case strings.HasPrefix(msg, "authentication failure;"), strings.HasPrefix(msg, "PAM "):
		head, kv, ok := strings.Cut(msg, "; ")
		if !ok {
			return a, false
		}
		if n, ok := strings.CutPrefix(head, "PAM "); ok {
			num, _, _ := strings.Cut(n, " ")
			a.fields.Failures, _ = strconv.Atoi(num)
		}
		// user= comes last and is the client's choice, so it is taken
		// whole; rhost= is a single word.
		if i := strings.LastIndex(kv, " user="); i >= 0 {
			a.fields.User = kv[i+len(" user="):]
			kv = kv[:i]
		}
		for _, f := range strings.Fields(kv) {
			if h, ok := strings.CutPrefix(f, "rhost="); ok && h != "" {
				a.setAddr(h)
			}
		}
		a.fields.AuthMethod = "password"
		a.action, a.result, a.code = "pam_auth", event.OutcomeFailure, "auth_failure"
		return a, true
	case strings.HasPrefix(msg, "check pass; user unknown"):
		a.action, a.result, a.code = "pam_auth", event.OutcomeFailure, "unknown_user"
		return a, true
	case strings.HasPrefix(msg, "session opened for user "):
		// "for user fztu by (uid=0)"; newer PAM writes "user fztu(uid=1000)".
		u, _, _ := cutLast(msg[len("session opened for user "):], " by ")
		if i := strings.LastIndex(u, "(uid="); i > 0 {
			u = u[:i]
		}
		a.fields.User = u
		a.action, a.result = "session_open", event.OutcomeSuccess
		return a, true
	case strings.HasPrefix(msg, "session closed for user "):
		a.fields.User = msg[len("session closed for user "):]
		a.action, a.result = "session_close", event.OutcomeSuccess
		return a, true
	}
	return a, false
}

// cutLast is strings.Cut around the last occurrence of sep.
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
