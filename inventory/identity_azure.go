package inventory

// This file reads the tokens Azure's logs show issued to managed
// identities.
//
// A managed identity is a service principal Azure keeps for a resource:
// a system-assigned one belongs to one resource (a VM, a function app)
// and lives and dies with it, like an EC2 instance's profile; a
// user-assigned one is a resource of its own
// (Microsoft.ManagedIdentity/userAssignedIdentities), which any number
// of resources may be given. Two logs show a token issued to one:
//   - an activity log record of a call made with it, whose claims carry
//     xms_mirid, the managed identity's resource id, with idtyp "app",
//     uti (the token's id), oid (the identity's object id), iat and exp;
//   - the sign-in log of category ManagedIdentitySignInLogs, whose
//     managedServiceIdentity names the resource (associatedResourceId)
//     and whose uniqueTokenIdentifier is the uti every call made with
//     the token carries.
// The Issue is keyed by the token's uti, so that Identities.Enrich gives
// each call made with it (its session id) the identity's origin: the
// resource a system-assigned identity belongs to, or the user-assigned
// identity itself, since which of its resources asked is not logged.
// That origin is certain: it is in the token, or in the log of its
// issue. Calls by users and by applications with their own secrets carry
// no xms_mirid, and are given none.

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/event"
)

// azureResourceType is the Type of a Principal that is an Azure
// resource, named by its resource id in Name.
const azureResourceType = "AzureResource"

func azureIssue(ev *event.Event) (Issue, bool) {
	// Most records are no managed identity's: look before decoding each
	// again.
	doc := ev.Document()
	switch {
	case ev.Source == "azure.signin" && bytes.Contains(doc, []byte("associatedResourceId")):
		return azureSignInIssue(ev)
	case ev.Source == "azure.activity" && bytes.Contains(doc, []byte("xms_mirid")):
		return azureActivityIssue(ev)
	}
	return Issue{}, false
}

// azureTokenClaims are the claims of a managed identity's token that
// name it. Exports write the numeric ones as strings or numbers.
type azureTokenClaims struct {
	ResourceID claimText `json:"xms_mirid"`
	IDType     claimText `json:"idtyp"`
	OID        claimText `json:"oid"`
	ObjectID   claimText `json:"http://schemas.microsoft.com/identity/claims/objectidentifier"`
	UTI        claimText `json:"uti"`
	IssuedAt   claimText `json:"iat"`
	Expires    claimText `json:"exp"`
}

// azureActivityIssue reads the token an activity log record's call was
// made with, if it was a managed identity's. Diagnostic settings put the
// claims under identity; the REST API and the CLI at the top level.
func azureActivityIssue(ev *event.Event) (Issue, bool) {
	var r struct {
		Identity struct {
			Claims azureTokenClaims `json:"claims"`
		} `json:"identity"`
		Claims azureTokenClaims `json:"claims"`
	}
	if err := json.Unmarshal(ev.Document(), &r); err != nil && !isTypeError(err) {
		return Issue{}, false
	}
	c := &r.Identity.Claims
	if c.ResourceID == "" {
		c = &r.Claims
	}
	mirid, uti, oid := string(c.ResourceID), string(c.UTI), cmpOr(string(c.ObjectID), string(c.OID))
	switch {
	case subscriptionOf(mirid) == "", uti == "" && oid == "":
		return Issue{}, false
	case c.IDType != "" && !strings.EqualFold(string(c.IDType), "app"):
		// A managed identity's token is an app token; a claim of another
		// kind beside xms_mirid is not one to trust.
		return Issue{}, false
	}
	is := Issue{
		Kind: ManagedIdentity, Time: ev.Time, Account: subscriptionOf(mirid), Key: uti, Session: oid,
		Caller: Principal{Type: azureResourceType, Name: mirid}, Event: ev.ID, Seq: ev.Seq,
	}
	// The token was issued at iat, before this call; one token serves
	// many calls, each of which then names the same issue.
	if t, ok := unixClaim(c.IssuedAt); ok && !t.After(ev.Time) {
		is.Time = t
	}
	if t, ok := unixClaim(c.Expires); ok && t.After(is.Time) {
		is.Expires = t
	}
	return is, true
}

// entraSignIn is what a managed identity's sign-in says of the token it
// issued: the Graph API's signIn resource, which diagnostic settings
// export under properties.
type entraSignIn struct {
	Category               string `json:"category"`
	UniqueTokenIdentifier  string `json:"uniqueTokenIdentifier"`
	ServicePrincipalID     string `json:"servicePrincipalId"`
	ManagedServiceIdentity struct {
		MSIType              string `json:"msiType"` // none, userAssigned, systemAssigned
		AssociatedResourceID string `json:"associatedResourceId"`
	} `json:"managedServiceIdentity"`
}

// azureSignInIssue reads the token a managed identity's successful
// sign-in issued. A sign-in that does not name the identity's resource
// (older exports, other categories) issues nothing known.
func azureSignInIssue(ev *event.Event) (Issue, bool) {
	if ev.Outcome.Result != event.OutcomeSuccess {
		return Issue{}, false
	}
	var r struct {
		entraSignIn
		Properties entraSignIn `json:"properties"`
	}
	if err := json.Unmarshal(ev.Document(), &r); err != nil && !isTypeError(err) {
		return Issue{}, false
	}
	p, top := &r.Properties, &r.entraSignIn
	msi := p.ManagedServiceIdentity
	if msi.AssociatedResourceID == "" {
		msi = top.ManagedServiceIdentity
	}
	uti := cmpOr(p.UniqueTokenIdentifier, top.UniqueTokenIdentifier)
	managed := strings.EqualFold(cmpOr(top.Category, p.Category), "ManagedIdentitySignInLogs") ||
		strings.EqualFold(msi.MSIType, "systemAssigned") || strings.EqualFold(msi.MSIType, "userAssigned")
	if !managed || uti == "" || subscriptionOf(msi.AssociatedResourceID) == "" {
		return Issue{}, false
	}
	return Issue{
		Kind: ManagedIdentity, Time: ev.Time, Account: subscriptionOf(msi.AssociatedResourceID), Key: uti,
		Session: cmpOr(p.ServicePrincipalID, top.ServicePrincipalID),
		Caller:  Principal{Type: azureResourceType, Name: msi.AssociatedResourceID},
		SrcIP:   ev.SrcIP, Event: ev.ID, Seq: ev.Seq,
	}, true
}

// azureResourceString names a resource holding a managed identity, or a
// user-assigned identity, for people.
func azureResourceString(id string) string {
	if strings.Contains(strings.ToLower(id), "/providers/microsoft.managedidentity/userassignedidentities/") {
		return "the user-assigned managed identity " + id
	}
	return "the Azure resource " + id + ", through its managed identity"
}

// subscriptionOf returns the subscription of an ARM resource id
// /subscriptions/ID/…, lower-cased as the parser writes accounts, or "".
func subscriptionOf(id string) string {
	const prefix = "/subscriptions/"
	if len(id) <= len(prefix) || !strings.EqualFold(id[:len(prefix)], prefix) {
		return ""
	}
	sub, _, _ := strings.Cut(id[len(prefix):], "/")
	return strings.ToLower(sub)
}

// unixClaim reads a time claim, seconds since the epoch.
func unixClaim(c claimText) (time.Time, bool) {
	n, err := strconv.ParseInt(string(c), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

// claimText is a claim that exports write as a JSON string or number;
// other JSON types read as "".
type claimText string

func (c *claimText) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			*c = claimText(s)
		}
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		*c = claimText(b)
	}
	return nil
}
