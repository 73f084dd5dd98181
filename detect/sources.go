package detect

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/event"
)

// A target is where a rule's logsource points among vigil's sources: the
// event.Source it applies to, and for logsources narrower than a source
// (a Linux service, Entra ID audit versus sign-in logs) a test on the
// event.
type target struct {
	source string
	only   func(*event.Event) bool
}

// targets maps a rule's logsource to the sources it applies to. A
// logsource no vigil parser produces gets none: the rule loads, and
// Engine.Unmatched lists it, since no event can reach it yet.
func targets(l Logsource) []target {
	switch l.Product {
	case "aws":
		if l.Service == "" || l.Service == "cloudtrail" {
			return []target{{source: "aws.cloudtrail"}}
		}
	case "gcp":
		if l.Service == "" || l.Service == "gcp.audit" {
			return []target{{source: "gcp.audit"}}
		}
	case "azure":
		switch l.Service {
		case "activitylogs":
			return []target{{source: "azure.activity"}}
		case "signinlogs":
			return []target{{source: "azure.signin", only: isSignIn}}
		case "auditlogs":
			return []target{{source: "azure.signin", only: not(isSignIn)}}
		case "":
			return []target{{source: "azure.activity"}, {source: "azure.signin"}}
		}
	case "vigil":
		// vigil's own records: vigil.monitor (silent sources), vigil.probe.
		if l.Service != "" {
			return []target{{source: "vigil." + l.Service}}
		}
	case "linux":
		switch l.Service {
		case "", "syslog":
			return []target{{source: "syslog"}}
		case "auth":
			return []target{{source: "syslog", only: isAuthService}}
		default:
			svc := l.Service
			return []target{{source: "syslog", only: func(e *event.Event) bool { return strings.EqualFold(e.Service, svc) }}}
		}
	case "":
		if l.Service == "" && l.Category == "" {
			// A rule for any log.
			var ts []target
			for _, s := range knownSources {
				ts = append(ts, target{source: s})
			}
			return ts
		}
	}
	return nil
}

// knownSources are the event.Source values of vigil's parsers.
var knownSources = []string{"aws.cloudtrail", "gcp.audit", "azure.activity", "azure.signin", "syslog", "aws.vpcflow", "aws.elb", "json", "csv"}

func isSignIn(e *event.Event) bool { return e.Class == event.ClassAuthentication }

func not(f func(*event.Event) bool) func(*event.Event) bool {
	return func(e *event.Event) bool { return !f(e) }
}

// authServices are the programs whose messages go to auth.log on Debian
// and secure on Red Hat.
var authServices = map[string]bool{
	"sshd": true, "sudo": true, "su": true, "login": true, "passwd": true, "useradd": true, "userdel": true,
	"usermod": true, "groupadd": true, "chpasswd": true, "systemd-logind": true, "polkitd": true, "pkexec": true,
	"cron": true, "crond": true, "gdm-password": true, "unix_chkpwd": true,
}

func isAuthService(e *event.Event) bool { return authServices[strings.ToLower(e.Service)] }

// A docField is where a Sigma field name is found in a source's original
// document: one or several dotted paths (their values are pooled), and
// whether keys match whatever their case.
type docField struct {
	paths []string
	fold  bool
}

// docFieldOf maps a field name as rules write it to the document of
// source. CloudTrail's names are the record's own. GCP rules write
// gcp.audit.method_name for protoPayload.methodName, and data.… for
// entries as Pub/Sub delivered them. Azure rules are written against Log
// Analytics tables, whose column names differ in case and nesting from
// the exported JSON (ResultType, OperationNameValue, Status): names match
// whatever their case, at the top level or under properties, and the
// …Value columns also as the value of their object.
func docFieldOf(source, name string) docField {
	switch source {
	case "gcp.audit":
		if m, ok := gcpFields[name]; ok {
			return docField{paths: []string{m}}
		}
		if rest, ok := strings.CutPrefix(name, "data."); ok {
			return docField{paths: []string{rest}}
		}
	case "azure.activity", "azure.signin":
		paths := []string{name}
		if !strings.HasPrefix(strings.ToLower(name), "properties.") {
			paths = append(paths, "properties."+name)
		}
		if base, ok := strings.CutSuffix(name, "Value"); ok && base != "" && !strings.Contains(base, ".") {
			paths = append(paths, base+".value", base)
		}
		return docField{paths: paths, fold: true}
	}
	return docField{paths: []string{name}}
}

// knownFields are the document fields a source's parser copies to the
// event unchanged, by source: a rule reading them needs the document
// read only when the event's copy is empty (absent, null or "" alike).
var knownFields = map[string]map[string]normField{
	"aws.cloudtrail": {
		"eventName":         func(e *event.Event) string { return e.Action },
		"eventSource":       func(e *event.Event) string { return e.Service },
		"userAgent":         func(e *event.Event) string { return e.UserAgent },
		"userIdentity.type": func(e *event.Event) string { return e.Actor.Type },
		"userIdentity.arn": func(e *event.Event) string {
			// The actor's id is the principal id when there is no ARN.
			if strings.HasPrefix(e.Actor.ID, "arn:") {
				return e.Actor.ID
			}
			return ""
		},
	},
}

var gcpFields = map[string]string{
	"gcp.audit.method_name":     "protoPayload.methodName",
	"gcp.audit.service_name":    "protoPayload.serviceName",
	"gcp.audit.resource_name":   "protoPayload.resourceName",
	"gcp.audit.principal_email": "protoPayload.authenticationInfo.principalEmail",
}

// A normField is a normalized field of the event, which rules may name as
// vigil.<name> on any source: vigil.src_ip, vigil.account,
// vigil.environment, …
type normField func(e *event.Event) string

var normFields = map[string]normField{
	"tenant":         func(e *event.Event) string { return e.Tenant },
	"source":         func(e *event.Event) string { return e.Source },
	"class":          func(e *event.Event) string { return e.Class },
	"event_id":       func(e *event.Event) string { return e.ID },
	"provider":       func(e *event.Event) string { return e.Cloud.Provider },
	"account":        func(e *event.Event) string { return e.Cloud.Account },
	"region":         func(e *event.Event) string { return e.Cloud.Region },
	"environment":    func(e *event.Event) string { return e.Environment },
	"actor":          func(e *event.Event) string { return e.Actor.Name },
	"actor_id":       func(e *event.Event) string { return e.Actor.ID },
	"actor_type":     func(e *event.Event) string { return e.Actor.Type },
	"session":        func(e *event.Event) string { return e.Session.ID },
	"session_origin": func(e *event.Event) string { return e.Session.Origin },
	"origin_actor":   func(e *event.Event) string { return e.Session.Origin },
	"src_ip": func(e *event.Event) string {
		if !e.SrcIP.IsValid() {
			return ""
		}
		return e.SrcIP.String()
	},
	"dst_ip": func(e *event.Event) string {
		if !e.DstIP.IsValid() {
			return ""
		}
		return e.DstIP.String()
	},
	"host":       func(e *event.Event) string { return e.Host },
	"user_agent": func(e *event.Event) string { return e.UserAgent },
	"service":    func(e *event.Event) string { return e.Service },
	"action":     func(e *event.Event) string { return e.Action },
	"outcome":    func(e *event.Event) string { return e.Outcome.Result },
	"error_code": func(e *event.Event) string { return e.Outcome.Code },
	"message":    func(e *event.Event) string { return e.Message },

	"src_asset":   func(e *event.Event) string { return e.Context.Src.Asset },
	"src_owner":   func(e *event.Event) string { return e.Context.Src.Owner },
	"src_country": func(e *event.Event) string { return e.Context.Src.Country },
	"src_city":    func(e *event.Event) string { return e.Context.Src.City },
	"src_asn":     func(e *event.Event) string { return asn(e.Context.Src.ASN) },
	"src_as_org":  func(e *event.Event) string { return e.Context.Src.ASOrg },
	"src_cloud":   func(e *event.Event) string { return e.Context.Src.Cloud },
	"dst_asset":   func(e *event.Event) string { return e.Context.Dst.Asset },
	"dst_owner":   func(e *event.Event) string { return e.Context.Dst.Owner },
	"dst_country": func(e *event.Event) string { return e.Context.Dst.Country },
	"dst_city":    func(e *event.Event) string { return e.Context.Dst.City },
	"dst_asn":     func(e *event.Event) string { return asn(e.Context.Dst.ASN) },
	"dst_as_org":  func(e *event.Event) string { return e.Context.Dst.ASOrg },
	"dst_cloud":   func(e *event.Event) string { return e.Context.Dst.Cloud },
	"team":        func(e *event.Event) string { return e.Context.Team },
	// A rule reads a list of matches as one text: the lists' names (or
	// the indicators), comma-separated, for |contains.
	"intel": func(e *event.Event) string {
		return joinHits(e.Context.Intel, func(h event.IntelHit) string { return h.List })
	},
	"intel_indicator": func(e *event.Event) string {
		return joinHits(e.Context.Intel, func(h event.IntelHit) string { return h.Indicator })
	},
}

func asn(n uint32) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(n), 10)
}

func joinHits(hits []event.IntelHit, f func(event.IntelHit) string) string {
	var b strings.Builder
	for i, h := range hits {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f(h))
	}
	return b.String()
}

// actionFields are, per source, the field names whose value is the
// event's Action: rules that require certain values of them are indexed
// by those values.
// Normalized returns the value of one of vigil's normalized fields of
// ev, named as rules name it (vigil.actor), and whether there is such a
// field.
func Normalized(ev *event.Event, name string) (string, bool) {
	f := normFields[strings.TrimPrefix(name, "vigil.")]
	if f == nil || !strings.HasPrefix(name, "vigil.") {
		return "", false
	}
	return f(ev), true
}

// addrFields are the normalized fields that hold an address, read as one
// by cidr tests without rendering and parsing its text.
var addrFields = map[string]func(e *event.Event) netip.Addr{
	"src_ip": func(e *event.Event) netip.Addr { return e.SrcIP },
	"dst_ip": func(e *event.Event) netip.Addr { return e.DstIP },
}

var actionFields = map[string][]string{
	"aws.cloudtrail": {"eventName"},
	"gcp.audit":      {"gcp.audit.method_name", "protoPayload.methodName", "data.protoPayload.methodName"},
}
