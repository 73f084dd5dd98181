package inventory

// This file reads the credentials GCP's audit logs show issued.
//
// A service account is impersonated in two ways the logs show. The
// Service Account Credentials API (iamcredentials.googleapis.com) logs
// each short-lived credential it makes — GenerateAccessToken,
// GenerateIdToken, SignJwt, SignBlob — with its caller, the account it
// is for and the accounts delegated through (request.delegates). And a
// call made with such a credential lists, in
// authenticationInfo.serviceAccountDelegationInfo, the authorities behind
// the account it acts as, the original first. Each hop of either is an
// Issue.
//
// A GCP principal is named by its email, or without one by its
// principalSubject (a federated identity). An account's issues are keyed
// by its email in Issue.Session, as sessions are by their ARN in AWS. A
// Principal carries its name in ARN where Chain is to follow it back to
// the issue it acted under, and in Name where the chain ends with it.
//
// The rule for attribution: an account is followed back to whoever
// impersonated it only on the word of a log line, never by name and time
// alone. A service account also acts on its own — a VM's attached
// account, a key — and nothing in a call names the token it was made
// with (GCP logs no token id where AWS logs the access key id). So:
//   - a call without delegation info is the account's own: it issues
//     nothing, and Identities.Enrich gives it no origin, even while a
//     token someone made for the account is in force (Enrich follows only
//     credentials it can match by key, and GCP issues have none);
//   - a call with delegation info keeps the origin the parser reads from
//     it, the first authority listed, which its chain here ends with too;
//   - in a chain, whoever acted on their own (the first authority of a
//     delegation list, a token requester that lists none) ends it: the
//     chain does not go on to whoever last impersonated them.
// Only Chain asked for an account by name (ParseRef("sa@…")), as a person
// investigating asks, looks it up by time: the latest issue to it still
// in force then, who may have been behind it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

const (
	// gcpDefaultLifetime is how long a short-lived credential lives when
	// its request names no lifetime (ID tokens always), and how long a
	// delegation seen in a call is taken to hold: the token's own
	// lifetime is not logged with its uses, and each further use logs the
	// delegation again.
	gcpDefaultLifetime = time.Hour
	// gcpMaxLifetime is the longest an access token may be asked for,
	// where an organization policy allows more than the default.
	gcpMaxLifetime = 12 * time.Hour
)

// gcpRecord is what an audit log entry says of who acted, and for the
// Service Account Credentials API of the credential made.
type gcpRecord struct {
	Resource struct {
		Labels struct {
			EmailID string `json:"email_id"` // the account a credential was made for
		} `json:"labels"`
	} `json:"resource"`
	ProtoPayload struct {
		ServiceName        string `json:"serviceName"`
		MethodName         string `json:"methodName"`
		ResourceName       string `json:"resourceName"`
		AuthenticationInfo struct {
			PrincipalEmail               string `json:"principalEmail"`
			PrincipalSubject             string `json:"principalSubject"`
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
		AuthorizationInfo []struct {
			Granted *bool `json:"granted"`
		} `json:"authorizationInfo"`
		Request struct {
			Name      string   `json:"name"`      // projects/-/serviceAccounts/EMAIL_OR_UNIQUE_ID
			Delegates []string `json:"delegates"` // the same form, the caller's side first
			Lifetime  string   `json:"lifetime"`  // a Duration: "3600s"
		} `json:"request"`
		Response struct {
			ExpireTime string `json:"expireTime"`
		} `json:"response"`
	} `json:"protoPayload"`
}

// gcpCredentialKinds are the Service Account Credentials API's methods
// that make a credential, by the last part of their name.
var gcpCredentialKinds = map[string]string{
	"GenerateAccessToken": GCPAccessToken,
	"GenerateIdToken":     GCPIDToken,
	"SignJwt":             GCPSignJWT,
	"SignBlob":            GCPSignBlob,
}

// gcpIssue reads the credential a GCP audit log entry shows issued: its
// chain of hops collapsed into one issue, from the first authority to
// the account the credential acts as. FromEvent returns one issue an
// event, and a Graph built from them must still end each chain at its
// origin; Hops keeps every hop.
func gcpIssue(ev *event.Event) (Issue, bool) {
	hops := gcpHops(ev)
	if len(hops) == 0 {
		return Issue{}, false
	}
	is := hops[len(hops)-1]
	is.Caller = hops[0].Caller
	return is, true
}

// Hops returns every credential an event shows issued, one Issue a hop,
// in the order they were issued. For a GCP call through a chain of
// service accounts (serviceAccountDelegationInfo, or a token request
// naming delegates) that is each hop, where FromEvent collapses the chain
// to one issue; for other events it is what FromEvent returns. A Graph
// built from Hops walks a chain through each account.
func Hops(ev *event.Event) []Issue {
	if ev.Source == "gcp.audit" {
		return gcpHops(ev)
	}
	if is, ok := FromEvent(ev); ok {
		return []Issue{is}
	}
	return nil
}

// A gcpLink is one identity of a chain and the kind of the hop that made
// it acted as (none for the first).
type gcpLink struct {
	p    Principal // its name in Name
	kind string
}

func gcpHops(ev *event.Event) []Issue {
	// Most entries show no credential: look before decoding each again.
	doc := ev.Document()
	if ev.Service != "iamcredentials.googleapis.com" && !bytes.Contains(doc, []byte("elegationInfo")) {
		return nil
	}
	var r gcpRecord
	if err := json.Unmarshal(doc, &r); err != nil && !isTypeError(err) {
		return nil
	}
	pp := &r.ProtoPayload
	auth := &pp.AuthenticationInfo

	var links []gcpLink
	add := func(p Principal, kind string) {
		// An account acting as itself (SignJwt for its own key) is no hop.
		if n := len(links); n > 0 && strings.EqualFold(links[n-1].p.Name, p.Name) {
			return
		}
		links = append(links, gcpLink{p, kind})
	}
	for _, d := range auth.ServiceAccountDelegationInfo {
		if p, ok := gcpPrincipal(d.FirstPartyPrincipal.PrincipalEmail, cmpOr(d.PrincipalSubject, d.ThirdPartyPrincipal.ThirdPartyClaims.Subject)); ok {
			add(p, GCPDelegation)
		}
	}
	// The caller; for privacy, failed calls may not name it.
	caller, known := gcpPrincipal(auth.PrincipalEmail, auth.PrincipalSubject)
	if known {
		add(caller, GCPDelegation)
	}

	kind := gcpCredentialKind(pp.ServiceName, pp.MethodName)
	target := gcpTarget(&r)
	if kind != "" && known && target != "" && ev.Outcome.Result != event.OutcomeFailure && granted(&r) {
		for _, d := range pp.Request.Delegates {
			if sa := serviceAccountIn(d); sa != "" {
				add(Principal{Type: "serviceAccount", Name: sa}, kind)
			}
		}
		add(Principal{Type: "serviceAccount", Name: target}, kind)
	}

	var hops []Issue
	for i := 1; i < len(links); i++ {
		from := links[i-1].p
		if i > 1 {
			// It acted as an account through the hop before: follow it.
			from = Principal{Type: from.Type, ARN: from.Name}
		}
		is := Issue{
			Kind: links[i].kind, Time: ev.Time, Account: ev.Cloud.Account, Session: links[i].p.Name,
			Caller: from, Event: ev.ID, Seq: ev.Seq,
		}
		if links[i].kind == GCPDelegation {
			// Seen in use: the token was issued earlier, from an address
			// the call does not tell.
			is.Expires = ev.Time.Add(gcpDefaultLifetime)
		} else {
			is.SrcIP = ev.SrcIP
			is.Expires = gcpExpiry(ev.Time, pp.Request.Lifetime, pp.Response.ExpireTime)
		}
		hops = append(hops, is)
	}
	return hops
}

// gcpCredentialKind returns the kind of credential a method of the
// Service Account Credentials API makes, or "" for other methods. The
// method is named GenerateAccessToken, or in full
// google.iam.credentials.v1.IAMCredentials.GenerateAccessToken.
func gcpCredentialKind(service, method string) string {
	if service != "iamcredentials.googleapis.com" {
		return ""
	}
	return gcpCredentialKinds[method[strings.LastIndexByte(method, '.')+1:]]
}

// granted reports whether no permission the call needed was denied.
func granted(r *gcpRecord) bool {
	for _, a := range r.ProtoPayload.AuthorizationInfo {
		if a.Granted != nil && !*a.Granted {
			return false
		}
	}
	return true
}

// gcpTarget returns the email of the account a credential was made for:
// the request names it by email or unique id, the resource labels and
// resourceName by either.
func gcpTarget(r *gcpRecord) string {
	for _, s := range []string{serviceAccountIn(r.ProtoPayload.Request.Name), r.Resource.Labels.EmailID, serviceAccountIn(r.ProtoPayload.ResourceName)} {
		if strings.Contains(s, "@") {
			return s
		}
	}
	return ""
}

// serviceAccountIn returns the account of a resource name
// projects/-/serviceAccounts/ACCOUNT: an email or a unique id.
func serviceAccountIn(name string) string {
	const sep = "/serviceAccounts/"
	if i := strings.LastIndex(name, sep); i >= 0 {
		return name[i+len(sep):]
	}
	if strings.Contains(name, "@") && !strings.Contains(name, "/") {
		return name
	}
	return ""
}

// gcpPrincipal names who an audit log names by an email or, without one,
// a principalSubject: principal://… for a federated identity, or an IAM
// member (user:EMAIL, serviceAccount:EMAIL), which is read as its email
// so that an account is one name in every hop.
func gcpPrincipal(email, subject string) (Principal, bool) {
	name := email
	if name == "" {
		name = subject
		for _, prefix := range []string{"user:", "serviceAccount:"} {
			if rest, ok := strings.CutPrefix(subject, prefix); ok && strings.Contains(rest, "@") {
				name = rest
			}
		}
	}
	switch {
	case name == "":
		return Principal{}, false
	case strings.HasSuffix(strings.ToLower(name), ".gserviceaccount.com"):
		return Principal{Type: "serviceAccount", Name: name}, true
	case strings.Contains(name, "@") && !strings.ContainsAny(name, "/:["):
		return Principal{Type: "user", Name: name}, true
	}
	// A workload or workforce pool's subject, a GKE workload
	// (serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA]), a third party.
	return Principal{Type: "federated", Name: name}, true
}

// gcpExpiry is when a credential made at t expires: at the response's
// expireTime if logged, else after the lifetime asked for, else after an
// hour; never after the longest GCP allows.
func gcpExpiry(t time.Time, lifetime, expireTime string) time.Time {
	latest := t.Add(gcpMaxLifetime)
	if e, err := time.Parse(time.RFC3339Nano, expireTime); err == nil && e.After(t) {
		if e.After(latest) {
			return latest
		}
		return e.UTC()
	}
	d, err := time.ParseDuration(lifetime)
	if err != nil || d <= 0 {
		d = gcpDefaultLifetime
	}
	return t.Add(min(d, gcpMaxLifetime))
}

// isTypeError reports whether a decoding error is only a field of an
// unexpected JSON type, which leaves that field zero and fills the rest:
// exports differ in the types of fields that add detail.
func isTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}
