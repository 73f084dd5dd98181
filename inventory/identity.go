// Package inventory answers "what was this, then, and who is behind it":
// the identity behind a temporary credential, reassembled from the audit
// logs that issued it.
//
// This file reassembles identities: each AWS STS call that issues a
// credential (AssumeRole and its SAML and web-identity forms,
// GetSessionToken, GetFederationToken, and the AssumeRole EC2 makes for
// an instance profile) is an Issue, linking the credential (its access
// key id, the session it acts as) to the caller that asked for it. A
// Graph of them walks any key, session or ARN back to the identity that
// started the chain.
package inventory

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

// The kinds of an Issue.
const (
	AssumeRole         = "AssumeRole"
	AssumeRoleSAML     = "AssumeRoleWithSAML"
	AssumeRoleWeb      = "AssumeRoleWithWebIdentity"
	SessionToken       = "GetSessionToken"
	FederationToken    = "GetFederationToken"
	AccessKey          = "CreateAccessKey" // a long-term key made for a user, by whoever asked
	InstanceProfile    = "InstanceProfile" // AssumeRole by ec2.amazonaws.com for an instance
	ServiceRole        = "ServiceRole"     // AssumeRole by another AWS service (Lambda, ECS, …)
	maxChain           = 16                // links followed, at most: role chains are short
	MaxSessionDuration = 36 * time.Hour    // the longest a temporary credential lives (GetSessionToken)
)

// The kinds of an Issue in GCP and Azure: a short-lived credential of a
// service account, named for the iamcredentials method that made it; a
// hop of a delegation chain a call lists (identity_gcp.go); an Entra ID
// token issued to a managed identity (identity_azure.go).
const (
	GCPAccessToken  = "GenerateAccessToken"
	GCPIDToken      = "GenerateIdToken"
	GCPSignJWT      = "SignJwt"
	GCPSignBlob     = "SignBlob"
	GCPDelegation   = "ServiceAccountDelegation"
	ManagedIdentity = "ManagedIdentity"
)

// A Principal is who asked for a credential, or acts with one.
type Principal struct {
	Type string `json:"type"` // IAMUser, AssumedRole, Root, FederatedUser, AWSService, EC2Instance, SAMLUser, WebIdentityUser
	ARN  string `json:"arn,omitempty"`
	Key  string `json:"key,omitempty"` // the access key id it signed with
	Name string `json:"name,omitempty"`
	// Service is the AWS service acting for it (invokedBy).
	Service string `json:"service,omitempty"`
	// Provider and Subject name a federated caller: the SAML or OIDC
	// provider and the user it vouched for.
	Provider string `json:"provider,omitempty"`
	Subject  string `json:"subject,omitempty"`
}

// String names the principal for people.
func (p Principal) String() string {
	switch {
	case p.Provider != "":
		return p.Type + " " + p.Subject + " via " + p.Provider
	case p.Type == "AWSService":
		return "the AWS service " + p.Service
	case p.Type == "EC2Instance":
		return "the instance " + p.Name + ", through its instance profile"
	case p.Type == azureResourceType:
		return azureResourceString(p.Name)
	case p.ARN != "":
		return p.ARN
	}
	return p.Type + " " + p.Name
}

// An Issue is a credential issued: the key, the session it acts as, and
// the caller that asked for it.
type Issue struct {
	Kind    string    `json:"kind"`
	Time    time.Time `json:"time"`
	Account string    `json:"account"`
	// Key is the temporary access key id (ASIA…); Session the ARN the
	// credential acts as (assumed-role/ROLE/SESSION, federated-user/NAME;
	// the caller's own ARN for GetSessionToken).
	Key     string    `json:"key,omitempty"`
	Session string    `json:"session"`
	Role    string    `json:"role,omitempty"`
	Name    string    `json:"session_name,omitempty"`
	Source  string    `json:"source_identity,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	Caller  Principal `json:"caller"`
	// SrcIP is the address the call came from, if an address.
	SrcIP netip.Addr `json:"src_ip,omitzero"`
	// Event and Seq name the event that issued it.
	Event string `json:"event_id,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
}

// Issuing reports whether an event's action may issue a credential: the
// events to read to build a Graph.
func Issuing(action string) bool {
	switch action {
	case "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "GetSessionToken", "GetFederationToken", "CreateAccessKey":
		return true
	}
	return false
}

// IssuingQuery is the search that selects the events that may issue a
// credential: AWS STS calls; GCP's Service Account Credentials calls and
// the calls that list a delegation (the parser names its origin); Azure
// calls made with a managed identity's token and its sign-ins.
const IssuingQuery = "(source:aws.cloudtrail (action:AssumeRole OR action:AssumeRoleWithSAML OR action:AssumeRoleWithWebIdentity OR action:GetSessionToken OR action:GetFederationToken OR action:CreateAccessKey) outcome:success)" +
	" OR (source:gcp.audit (service:iamcredentials.googleapis.com OR session_origin:*))" +
	" OR (source:azure.activity xms_mirid) OR (source:azure.signin ManagedIdentitySignInLogs)"

// stsRecord is what an issuing CloudTrail record says.
type stsRecord struct {
	EventSource  string `json:"eventSource"`
	ErrorCode    string `json:"errorCode"`
	UserIdentity struct {
		Type             string `json:"type"`
		ARN              string `json:"arn"`
		AccessKeyID      string `json:"accessKeyId"`
		UserName         string `json:"userName"`
		InvokedBy        string `json:"invokedBy"`
		PrincipalID      string `json:"principalId"`
		IdentityProvider string `json:"identityProvider"`
	} `json:"userIdentity"`
	RequestParameters struct {
		RoleARN         string `json:"roleArn"`
		UserName        string `json:"userName"` // CreateAccessKey
		RoleSessionName string `json:"roleSessionName"`
		SourceIdentity  string `json:"sourceIdentity"`
		Name            string `json:"name"` // GetFederationToken
		PrincipalARN    string `json:"principalArn"`
	} `json:"requestParameters"`
	ResponseElements struct {
		Credentials struct {
			AccessKeyID string `json:"accessKeyId"`
			Expiration  string `json:"expiration"`
		} `json:"credentials"`
		AssumedRoleUser struct {
			ARN string `json:"arn"`
		} `json:"assumedRoleUser"`
		FederatedUser struct {
			ARN string `json:"arn"`
		} `json:"federatedUser"`
		AccessKey struct {
			AccessKeyID string `json:"accessKeyId"`
		} `json:"accessKey"`
		SourceIdentity              string `json:"sourceIdentity"`
		Subject                     string `json:"subject"`
		Issuer                      string `json:"issuer"`
		Provider                    string `json:"provider"`
		SubjectFromWebIdentityToken string `json:"subjectFromWebIdentityToken"`
	} `json:"responseElements"`
}

// FromEvent reads the credential an event issued, if it is a successful
// STS call that issued one.
func FromEvent(ev *event.Event) (Issue, bool) {
	switch ev.Source {
	case "gcp.audit":
		return gcpIssue(ev)
	case "azure.activity", "azure.signin":
		return azureIssue(ev)
	}
	if ev.Source != "aws.cloudtrail" || !Issuing(ev.Action) || ev.Outcome.Result == event.OutcomeFailure {
		return Issue{}, false
	}
	var r stsRecord
	want := "sts.amazonaws.com"
	if ev.Action == "CreateAccessKey" {
		want = "iam.amazonaws.com"
	}
	if json.Unmarshal(ev.Document(), &r) != nil || r.ErrorCode != "" || r.EventSource != want {
		return Issue{}, false
	}
	u, req, resp := &r.UserIdentity, &r.RequestParameters, &r.ResponseElements
	is := Issue{
		Kind: ev.Action, Time: ev.Time, Account: ev.Cloud.Account, Key: resp.Credentials.AccessKeyID,
		Role: req.RoleARN, Name: req.RoleSessionName, Source: cmpOr(resp.SourceIdentity, req.SourceIdentity),
		Caller: Principal{Type: u.Type, ARN: u.ARN, Key: u.AccessKeyID, Name: u.UserName, Service: u.InvokedBy},
		SrcIP:  ev.SrcIP, Event: ev.ID, Seq: ev.Seq,
	}
	is.Expires = expiration(resp.Credentials.Expiration)
	switch ev.Action {
	case "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity":
		is.Session = resp.AssumedRoleUser.ARN
		if is.Session == "" {
			is.Session = sessionARN(req.RoleARN, req.RoleSessionName)
		}
	case "GetFederationToken":
		is.Session, is.Name = resp.FederatedUser.ARN, req.Name
	case "GetSessionToken":
		is.Session = u.ARN // the same principal, with a temporary key
	case "CreateAccessKey":
		// A key for the user named, or for the caller itself.
		is.Key, is.Session = resp.AccessKey.AccessKeyID, u.ARN
		if name := req.UserName; name != "" && !strings.EqualFold(name, u.UserName) {
			is.Session, is.Name = "arn:aws:iam::"+ev.Cloud.Account+":user/"+name, name
		}
	}
	switch {
	case ev.Action == "AssumeRoleWithSAML":
		is.Caller = Principal{Type: "SAMLUser", Provider: cmpOr(resp.Issuer, req.PrincipalARN), Subject: resp.Subject}
	case ev.Action == "AssumeRoleWithWebIdentity":
		is.Caller = Principal{Type: "WebIdentityUser", Provider: cmpOr(resp.Provider, u.IdentityProvider), Subject: resp.SubjectFromWebIdentityToken}
	case u.Type == "AWSService" && u.InvokedBy == "ec2.amazonaws.com" && instanceID.MatchString(req.RoleSessionName):
		is.Kind = InstanceProfile
	case u.Type == "AWSService":
		is.Kind = ServiceRole
	}
	if is.Session == "" && is.Key == "" {
		return Issue{}, false
	}
	return is, true
}

var instanceID = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sessionARN is the ARN a role's session acts as:
// arn:aws:iam::1:role/path/NAME → arn:aws:sts::1:assumed-role/NAME/SESSION.
func sessionARN(role, session string) string {
	parts := strings.SplitN(role, ":", 6)
	if len(parts) != 6 || !strings.HasPrefix(parts[5], "role/") || session == "" {
		return ""
	}
	name := parts[5][strings.LastIndexByte(parts[5], '/')+1:]
	return "arn:" + parts[1] + ":sts::" + parts[4] + ":assumed-role/" + name + "/" + session
}

// expiration reads STS's expiration, which CloudTrail writes as
// "Aug 1, 2024, 11:45:22 AM" (or RFC 3339 in newer records).
func expiration(s string) time.Time {
	for _, layout := range []string{"Jan 2, 2006, 3:04:05 PM", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// A Graph holds the credentials issued, by key and by session, to walk
// chains back. It is not safe for concurrent use.
type Graph struct {
	byKey     map[string][]*Issue
	bySession map[string][]*Issue // lower-cased session ARN
	n         int
}

// NewGraph returns an empty Graph.
func NewGraph() *Graph {
	return &Graph{byKey: map[string][]*Issue{}, bySession: map[string][]*Issue{}}
}

// Add adds an issued credential.
func (g *Graph) Add(is Issue) {
	if g.has(&is) {
		return // read again: from the store, after ingest saw it
	}
	p := &is
	g.n++
	if is.Key != "" {
		g.byKey[is.Key] = insertByTime(g.byKey[is.Key], p)
	}
	// A session token acts as its caller, whose ARN it shares, and a
	// user has several keys: their ARN says nothing of which key it used.
	if is.Session != "" && is.Kind != SessionToken && is.Kind != AccessKey {
		k := strings.ToLower(is.Session)
		g.bySession[k] = insertByTime(g.bySession[k], p)
	}
}

// has reports whether the graph holds the issue of the same event for
// the same credential.
func (g *Graph) has(is *Issue) bool {
	if is.Event == "" {
		return false
	}
	l := g.byKey[is.Key]
	if is.Key == "" {
		l = g.bySession[strings.ToLower(is.Session)]
	}
	i, _ := slices.BinarySearchFunc(l, is.Time, func(x *Issue, t time.Time) int { return x.Time.Compare(t) })
	for ; i < len(l) && l[i].Time.Equal(is.Time); i++ {
		if l[i].Event == is.Event && l[i].Key == is.Key && l[i].Session == is.Session {
			return true
		}
	}
	return false
}

func insertByTime(list []*Issue, is *Issue) []*Issue {
	i, _ := slices.BinarySearchFunc(list, is.Time, func(x *Issue, t time.Time) int { return x.Time.Compare(t) })
	return slices.Insert(list, i, is)
}

// Len is how many issues the graph holds.
func (g *Graph) Len() int { return g.n }

// issuer returns the issue that created a credential used at time at:
// by its key if known, else the latest issue of its session at or before
// at and still valid. A session ARN's name is sometimes reused (an
// instance's profile is renewed every few hours); the latest before use
// is the one in force.
func (g *Graph) issuer(key, session string, at time.Time) *Issue {
	if key != "" {
		if l := g.byKey[key]; len(l) > 0 {
			return latestBefore(l, at)
		}
	}
	if session == "" {
		return nil
	}
	return latestBefore(g.bySession[strings.ToLower(session)], at)
}

// latestBefore returns the latest issue at or before at that may still
// be valid then, or for a zero at the latest of all.
func latestBefore(l []*Issue, at time.Time) *Issue {
	if len(l) == 0 {
		return nil
	}
	if at.IsZero() {
		return l[len(l)-1]
	}
	for i := len(l) - 1; i >= 0; i-- {
		is := l[i]
		if is.Time.After(at) {
			continue
		}
		end := is.Expires
		if end.IsZero() {
			end = is.Time.Add(MaxSessionDuration)
		}
		if at.Before(end) {
			return is
		}
		break
	}
	// Clock skew between sources: a use logged just before its issue.
	if first := l[0]; first.Time.Sub(at) < 5*time.Minute && first.Time.After(at) {
		return first
	}
	return nil
}

// A Link is one step of a chain: the identity acting, and the issue
// that created its credential (nil for the identity the chain starts
// with).
type Link struct {
	As    Principal `json:"as"`
	Issue *Issue    `json:"issued_by,omitempty"`
}

// Chain walks a credential back to its origin: p names it by its access
// key id, its session's ARN (assumed-role, federated-user), or both,
// used at time at (zero: its latest). The first link is p; each next
// link is the caller that issued the one before; the last is the origin
// (a user, root, a federated user, an AWS service), or the first
// identity whose issue is not in the graph.
func (g *Graph) Chain(p Principal, at time.Time) []Link {
	var (
		chain []Link
		seen  [maxChain]*Issue
	)
	for i := range maxChain {
		is := g.issuer(p.Key, p.ARN, at)
		if is == nil || slices.Contains(seen[:i], is) {
			return append(chain, Link{As: p})
		}
		seen[i] = is
		if p.ARN == "" {
			p.ARN = is.Session
		}
		chain = append(chain, Link{As: p, Issue: is})
		switch {
		case is.Kind == InstanceProfile:
			// EC2 asked for the instance: the instance is who holds it.
			return append(chain, Link{As: Principal{Type: "EC2Instance", Name: is.Name, Service: is.Caller.Service}})
		case is.Caller.Type == "AWSService" || is.Caller.Provider != "":
			return append(chain, Link{As: is.Caller})
		}
		p, at = is.Caller, is.Time
	}
	return chain
}

// ParseRef reads what a person names a credential by: an access key id
// (AKIA…, ASIA…), an ARN, or a GCP service account's email, which Graph
// keys that account's issues by as it keys sessions by their ARN.
func ParseRef(ref string) Principal {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, "arn:") || strings.Contains(ref, "@") {
		return Principal{ARN: ref}
	}
	return Principal{Key: ref}
}

// Origin is the identity a chain starts with: its last link's.
func Origin(chain []Link) Principal {
	if len(chain) == 0 {
		return Principal{}
	}
	return chain[len(chain)-1].As
}

// InstanceOf returns the instance whose profile's credential signed an
// event, if one did: its session is named for the instance
// (assumed-role/ROLE/i-…), as EC2 names the sessions it assumes.
func InstanceOf(ev *event.Event) (string, bool) {
	if ev.Actor.Type != "AssumedRole" {
		return "", false
	}
	i := strings.LastIndexByte(ev.Actor.ID, '/')
	if i < 0 || !instanceID.MatchString(ev.Actor.ID[i+1:]) {
		return "", false
	}
	return ev.Actor.ID[i+1:], true
}

// OffInstance says why an event signed with an instance's credential
// looks made off the instance, or "". addrs are the instance's known
// addresses: a call from any other is off the instance. With none known,
// a call from a public address is flagged, since an instance's calls
// come from its own address inside AWS; calls AWS services make for it
// (an address that is a service's name) are not.
func OffInstance(ev *event.Event, addrs []netip.Addr) string {
	inst, ok := InstanceOf(ev)
	if !ok || !ev.SrcIP.IsValid() {
		return ""
	}
	switch {
	case len(addrs) > 0 && !slices.Contains(addrs, ev.SrcIP):
		return "the credential of instance " + inst + " was used from " + ev.SrcIP.String() + ", not one of the instance's addresses"
	case len(addrs) == 0 && ev.SrcIP.IsGlobalUnicast() && !ev.SrcIP.IsPrivate():
		return "the credential of instance " + inst + " was used from the public address " + ev.SrcIP.String() +
			" (the instance's own addresses are not known: check that it is one of them)"
	}
	return ""
}
