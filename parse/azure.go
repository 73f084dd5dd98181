package parse

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/event"
)

func init() {
	registerJSON("azure.activity", "Azure Monitor activity and resource logs: diagnostic settings and Event Hub ({\"records\": […]}), Activity Log REST API and CLI exports", parseAzureActivity)
	registerJSON("azure.signin", "Entra ID (Azure AD) sign-in and audit logs: diagnostic settings exports and Graph API records", parseEntra)
}

// azureActivityRecord holds the fields of an Azure activity or resource
// log record that normalization reads, in each shape it is exported in;
// the rest stays in the raw document.
type azureActivityRecord struct {
	// Diagnostic settings and Event Hub.
	Time            json.RawMessage `json:"time"`
	ResourceID      string          `json:"resourceId"`
	OperationName   azureValue      `json:"operationName"`
	Category        azureValue      `json:"category"`
	ResultType      jsonText        `json:"resultType"`
	ResultSignature jsonText        `json:"resultSignature"`
	CallerIPAddress string          `json:"callerIpAddress"`
	Location        string          `json:"location"`
	TenantID        string          `json:"tenantId"`
	Identity        struct {
		Type          string      `json:"type"` // storage logs: SAS, AccountKey, OAuth
		Claims        azureClaims `json:"claims"`
		Authorization struct {
			Evidence struct {
				PrincipalID   string `json:"principalId"`
				PrincipalType string `json:"principalType"`
			} `json:"evidence"`
		} `json:"authorization"`
	} `json:"identity"`
	// Storage resource logs.
	StatusCode jsonText `json:"statusCode"`
	StatusText string   `json:"statusText"`
	Properties struct {
		Entity             string   `json:"entity"`
		ObjectKey          string   `json:"objectKey"`
		UserAgentHeader    string   `json:"userAgentHeader"`
		MetricResponseType string   `json:"metricResponseType"`
		StatusCode         jsonText `json:"statusCode"`
	} `json:"properties"`

	// The Activity Log REST API, and the Azure CLI that prints it.
	EventTimestamp       json.RawMessage `json:"eventTimestamp"`
	EventDataID          string          `json:"eventDataId"`
	Caller               string          `json:"caller"`
	Claims               azureClaims     `json:"claims"`
	SubscriptionID       string          `json:"subscriptionId"`
	Status               azureValue      `json:"status"`
	SubStatus            azureValue      `json:"subStatus"`
	ResourceProviderName azureValue      `json:"resourceProviderName"`
	HTTPRequest          struct {
		ClientIPAddress string `json:"clientIpAddress"`
	} `json:"httpRequest"`
	Authorization struct {
		Scope string `json:"scope"`
	} `json:"authorization"`

	// The same fields in snake_case, as the Azure SDK for Python's
	// as_dict() writes them.
	EventTimestampSnake       json.RawMessage `json:"event_timestamp"`
	EventDataIDSnake          string          `json:"event_data_id"`
	OperationNameSnake        azureValue      `json:"operation_name"`
	ResourceIDSnake           string          `json:"resource_id"`
	SubscriptionIDSnake       string          `json:"subscription_id"`
	TenantIDSnake             string          `json:"tenant_id"`
	SubStatusSnake            azureValue      `json:"sub_status"`
	ResourceProviderNameSnake azureValue      `json:"resource_provider_name"`
	HTTPRequestSnake          struct {
		ClientIPAddress string `json:"client_ip_address"`
	} `json:"http_request"`

	// Datadog's log pipeline moves operationName, category and resultType
	// under evt, and time to @timestamp.
	Evt struct {
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
	} `json:"evt"`
	Timestamp   json.RawMessage `json:"@timestamp"`
	PantherTime json.RawMessage `json:"p_event_time"`
}

// azureClaims are the claims of the token a call was made with.
type azureClaims struct {
	UPN       string `json:"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"`
	UPNShort  string `json:"upn"`
	Name      string `json:"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"`
	Email     string `json:"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"`
	NameShort string `json:"name"`
	ObjectID  string `json:"http://schemas.microsoft.com/identity/claims/objectidentifier"`
	OID       string `json:"oid"`
	AppID     string `json:"appid"`
	IDType    string `json:"idtyp"`
	// uti identifies the token; a sign-in log names the token it issued
	// by the same value (uniqueTokenIdentifier).
	UTI    string `json:"uti"`
	IPAddr string `json:"ipaddr"`
}

// azureValue is a field that diagnostic settings write as a string and
// the REST API as {"value": …, "localizedValue": …}.
type azureValue struct {
	Value string
	// bad names the JSON type of a value of neither shape.
	bad string
}

func (v *azureValue) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		json.Unmarshal(b, &v.Value)
	case '{':
		var o struct {
			Value jsonText `json:"value"`
		}
		json.Unmarshal(b, &o)
		v.Value = string(o.Value)
	case 'n':
	default:
		v.bad = jsonKind(b)
	}
	return nil
}

func (v azureValue) or(w azureValue) azureValue {
	if v.Value == "" && v.bad == "" {
		return w
	}
	return v
}

func parseAzureActivity(rec []byte, ev *event.Event) error {
	if !isJSONObject(rec) {
		return notThis("Microsoft Azure activity", "not a JSON object")
	}
	var r azureActivityRecord
	if err := decodeLenient(rec, &r); err != nil {
		return err
	}
	op := r.OperationName.or(r.OperationNameSnake)
	resourceID := firstNonEmpty(r.ResourceID, r.ResourceIDSnake)
	switch {
	case op.bad != "":
		return fmt.Errorf("operationName of an Azure activity record is %s, not a string or {\"value\": …}", op.bad)
	case isEntra(r.Category.Value, resourceID):
		return notThis("Microsoft Azure activity", fmt.Sprintf("an Entra ID record (category %q)", truncate(r.Category.Value, 64)))
	case op.Value == "" && r.Evt.Name == "" && subscriptionIn(resourceID) == "":
		return notThis("Microsoft Azure activity", "no operationName, and no resourceId in a subscription")
	}
	t, err := firstTime(
		timeSource{name: "time", raw: r.Time},
		timeSource{name: "eventTimestamp", raw: r.EventTimestamp},
		timeSource{name: "event_timestamp", raw: r.EventTimestampSnake},
		timeSource{name: "@timestamp", raw: r.Timestamp, approx: true},
		timeSource{name: "p_event_time", raw: r.PantherTime, approx: true})
	if err != nil {
		return fmt.Errorf("%s: %w", recordName("Azure activity record", firstNonEmpty(r.EventDataID, r.EventDataIDSnake)), err)
	}
	ev.Time = t
	ev.ID = firstNonEmpty(r.EventDataID, r.EventDataIDSnake)
	ev.Source = "azure.activity"
	ev.Action = firstNonEmpty(op.Value, r.Evt.Name)
	ev.Class = azureActivityClass(ev.Action)

	resource := firstNonEmpty(resourceID, r.Properties.Entity, r.Authorization.Scope)
	account := subscriptionIn(resource)
	if account == "" {
		account = strings.ToLower(firstNonEmpty(r.SubscriptionID, r.SubscriptionIDSnake))
	}
	if account == "" {
		// Tenant-level operations (elevateAccess, management groups)
		// belong to no subscription.
		account = firstNonEmpty(r.TenantID, r.TenantIDSnake)
	}
	ev.Cloud = event.Cloud{Provider: "azure", Account: account, Region: r.Location}
	ev.Actor = r.actor()
	ev.Session.ID = firstNonEmpty(r.Identity.Claims.UTI, r.Claims.UTI)
	ev.SrcIP, ev.SrcPort = parseCallerIP(firstNonEmpty(r.CallerIPAddress, r.HTTPRequest.ClientIPAddress, r.HTTPRequestSnake.ClientIPAddress, r.Identity.Claims.IPAddr, r.Claims.IPAddr))
	ev.UserAgent = r.Properties.UserAgentHeader
	ev.Service = azureProvider(firstNonEmpty(r.ResourceProviderName.Value, r.ResourceProviderNameSnake.Value), ev.Action,
		resourceID, r.Properties.Entity, r.Authorization.Scope)
	if resource != "" {
		ev.Resources = append(ev.Resources, resource)
	}
	if r.Properties.ObjectKey != "" {
		ev.Resources = append(ev.Resources, r.Properties.ObjectKey)
	}
	ev.Outcome = r.outcome()
	return nil
}

func (r *azureActivityRecord) actor() event.Actor {
	c := &r.Identity.Claims
	if *c == (azureClaims{}) {
		c = &r.Claims
	}
	// The evidence is the role assignment that let the call through: its
	// principal is the caller, unless the role was granted to a group.
	evd := r.Identity.Authorization.Evidence
	if strings.EqualFold(evd.PrincipalType, "Group") {
		evd.PrincipalID, evd.PrincipalType = "", ""
	}
	a := event.Actor{
		Name: firstNonEmpty(r.Caller, c.UPN, c.UPNShort, c.Name, c.Email, c.NameShort),
		ID:   firstNonEmpty(c.ObjectID, c.OID, evd.PrincipalID),
	}
	// Tokens say what they were issued to in idtyp, when they are recent
	// enough; before that, only user tokens name a person.
	switch {
	case evd.PrincipalType != "":
		a.Type = azurePrincipalType(evd.PrincipalType)
	case c.IDType != "":
		a.Type = azurePrincipalType(c.IDType)
	case c.UPN != "" || c.UPNShort != "" || c.Name != "" || c.Email != "" || c.NameShort != "":
		a.Type = "user"
	case c.AppID != "":
		a.Type = "servicePrincipal"
	default:
		a.Type = r.Identity.Type
	}
	if a.Name == "" {
		a.Name = c.AppID
	}
	return a
}

// azurePrincipalType spells the principal types of role assignment
// evidence ("User", "ServicePrincipal") and of the idtyp claim ("app",
// "user") alike.
func azurePrincipalType(t string) string {
	switch strings.ToLower(t) {
	case "user":
		return "user"
	case "app", "serviceprincipal":
		return "servicePrincipal"
	}
	return t
}

// outcome reads resultType (diagnostic settings), status (REST API),
// evt.outcome (Datadog) or, in storage logs, the HTTP status code.
func (r *azureActivityRecord) outcome() event.Outcome {
	o := event.Outcome{Result: event.OutcomeUnknown}
	code := firstNonEmpty(string(r.StatusCode), string(r.Properties.StatusCode))
	switch strings.ToLower(firstNonEmpty(string(r.ResultType), r.Status.Value, r.Evt.Outcome)) {
	case "success", "succeeded":
		o.Result = event.OutcomeSuccess
	case "failure", "failed":
		o.Result = event.OutcomeFailure
	case "":
		switch mrt := r.Properties.MetricResponseType; {
		case len(code) == 3 && code[0] >= '1' && code[0] <= '5':
			o.Result = event.OutcomeSuccess
			if code[0] >= '4' {
				o.Result = event.OutcomeFailure
			}
		case mrt == "Success":
			o.Result = event.OutcomeSuccess
		case mrt != "": // ClientOtherError, AuthorizationError, ServerTimeoutError, …
			o.Result = event.OutcomeFailure
			code = mrt
		}
	}
	o.Code = firstNonEmpty(string(r.ResultSignature), r.SubStatus.Value, r.SubStatusSnake.Value, r.StatusText, code)
	if o.Code == "None" {
		o.Code = ""
	}
	return o
}

// azureActivityClass sorts operations: granting roles and creating
// identities are account changes.
func azureActivityClass(op string) string {
	lop := strings.ToLower(op)
	if strings.HasSuffix(lop, "/read") {
		return event.ClassAPIActivity
	}
	for _, prefix := range []string{
		"microsoft.authorization/roleassignments/",
		"microsoft.authorization/roledefinitions/",
		"microsoft.authorization/elevateaccess/",
		"microsoft.managedidentity/",
	} {
		if strings.HasPrefix(lop, prefix) {
			return event.ClassAccountChange
		}
	}
	return event.ClassAPIActivity
}

// azureProvider names the resource provider (Microsoft.Compute) from,
// in order, the record's own field, the operation and the resource ids.
// Some exports upper- or lowercase it; a source that spells it in mixed
// case, as Azure documents it, is preferred.
func azureProvider(named, op string, resources ...string) string {
	cands := []string{named}
	if p, _, ok := strings.Cut(op, "/"); ok && strings.Contains(p, ".") {
		cands = append(cands, p)
	}
	for _, id := range resources {
		if i := lastIndexFold(id, "/providers/"); i >= 0 {
			p, _, _ := strings.Cut(id[i+len("/providers/"):], "/")
			cands = append(cands, p)
		}
	}
	p := firstNonEmpty(cands...)
	if p == strings.ToUpper(p) || p == strings.ToLower(p) {
		for _, c := range cands {
			if strings.EqualFold(c, p) && c != strings.ToUpper(c) && c != strings.ToLower(c) {
				return c
			}
		}
	}
	return p
}

// lastIndexFold is strings.LastIndex ignoring case. Unlike an index into
// strings.ToLower(s), which may differ from s in length, it indexes s.
func lastIndexFold(s, sub string) int {
	for i := len(s) - len(sub); i >= 0; i-- {
		if hasPrefixFold(s[i:], sub) {
			return i
		}
	}
	return -1
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// subscriptionIn returns the subscription id of an ARM resource id
// (/subscriptions/<id>/…), lowercased: Azure writes resource ids in
// either case, and an account must compare equal to itself.
func subscriptionIn(id string) string {
	const prefix = "/subscriptions/"
	if !hasPrefixFold(id, prefix) {
		return ""
	}
	sub, _, _ := strings.Cut(id[len(prefix):], "/")
	return strings.ToLower(sub)
}

// tenantIn returns the tenant id of a resource id /tenants/<id>/….
func tenantIn(id string) string {
	const prefix = "/tenants/"
	if !hasPrefixFold(id, prefix) {
		return ""
	}
	t, _, _ := strings.Cut(id[len(prefix):], "/")
	return t
}

// entraCategories are the diagnostic-settings categories of Entra ID's
// sign-in and audit logs.
var entraCategories = map[string]bool{
	"SignInLogs": true, "NonInteractiveUserSignInLogs": true, "ServicePrincipalSignInLogs": true,
	"ManagedIdentitySignInLogs": true, "ADFSSignInLogs": true, "AuditLogs": true,
}

// isEntra reports whether a record of this category and resource id is
// an Entra ID log rather than an Azure activity log.
func isEntra(category, resourceID string) bool {
	return entraCategories[category] || strings.Contains(strings.ToLower(resourceID), "/providers/microsoft.aadiam")
}

// entraRecord holds the fields of an Entra ID sign-in or audit record, as
// diagnostic settings export it, that normalization reads.
type entraRecord struct {
	Time            json.RawMessage `json:"time"`
	PantherTime     json.RawMessage `json:"p_event_time"`
	OperationName   azureValue      `json:"operationName"`
	Category        azureValue      `json:"category"`
	TenantID        string          `json:"tenantId"`
	ResourceID      string          `json:"resourceId"`
	ResultType      jsonText        `json:"resultType"`
	Result          string          `json:"result"` // Graph API audits; some of Panther's
	CallerIPAddress string          `json:"callerIpAddress"`
	CorrelationID   string          `json:"correlationId"`
	// Identity is the display name of who signed in or acted.
	Identity   jsonText        `json:"identity"`
	Properties json.RawMessage `json:"properties"`
}

// entraProperties are the properties of a sign-in or audit record: the
// Graph API's signIn and directoryAudit resources.
type entraProperties struct {
	ID               string          `json:"id"`
	TenantID         string          `json:"tenantId"`
	Category         string          `json:"category"`
	CreatedDateTime  json.RawMessage `json:"createdDateTime"`
	ActivityDateTime json.RawMessage `json:"activityDateTime"`

	// Sign-ins.
	UserPrincipalName     string `json:"userPrincipalName"`
	UserID                string `json:"userId"`
	AppDisplayName        string `json:"appDisplayName"`
	AppID                 string `json:"appId"`
	ResourceDisplayName   string `json:"resourceDisplayName"`
	ServicePrincipalName  string `json:"servicePrincipalName"`
	ServicePrincipalID    string `json:"servicePrincipalId"`
	IPAddress             string `json:"ipAddress"`
	UserAgent             string `json:"userAgent"`
	UniqueTokenIdentifier string `json:"uniqueTokenIdentifier"`
	SessionID             string `json:"sessionId"`
	CorrelationID         string `json:"correlationId"`
	Status                *struct {
		ErrorCode jsonText `json:"errorCode"`
	} `json:"status"`

	// Audits.
	ActivityDisplayName string `json:"activityDisplayName"`
	OperationName       string `json:"operationName"`
	LoggedByService     string `json:"loggedByService"`
	Result              string `json:"result"`
	ResultReason        string `json:"resultReason"`
	InitiatedBy         struct {
		User struct {
			ID                string `json:"id"`
			UserPrincipalName string `json:"userPrincipalName"`
			DisplayName       string `json:"displayName"`
			IPAddress         string `json:"ipAddress"`
		} `json:"user"`
		App struct {
			AppID                string `json:"appId"`
			DisplayName          string `json:"displayName"`
			ServicePrincipalID   string `json:"servicePrincipalId"`
			ServicePrincipalName string `json:"servicePrincipalName"`
		} `json:"app"`
	} `json:"initiatedBy"`
	TargetResources []struct {
		ID                string `json:"id"`
		DisplayName       string `json:"displayName"`
		UserPrincipalName string `json:"userPrincipalName"`
	} `json:"targetResources"`
	AdditionalDetails []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"additionalDetails"`
}

func parseEntra(rec []byte, ev *event.Event) error {
	if !isJSONObject(rec) {
		return notThis("Microsoft Entra ID", "not a JSON object")
	}
	var r entraRecord
	if err := decodeLenient(rec, &r); err != nil {
		return err
	}
	if r.OperationName.bad != "" {
		return fmt.Errorf("operationName of an Entra ID record is %s, not a string", r.OperationName.bad)
	}
	var p entraProperties
	switch {
	case len(r.Properties) > 0 && r.Properties[0] == '{':
		if err := decodeLenient(r.Properties, &p); err != nil {
			return fmt.Errorf("properties of an Entra ID record: %w", err)
		}
	case len(r.Properties) > 0 && r.Properties[0] != 'n':
		return notThis("Microsoft Entra ID", "properties is "+jsonKind(r.Properties)+", not an object")
	default:
		// The Graph API's records have at the top level what
		// diagnostic settings put under properties. (rec has been
		// decoded once, so this cannot fail.)
		decodeLenient(rec, &p)
	}
	category := firstNonEmpty(r.Category.Value, p.Category)
	op := firstNonEmpty(r.OperationName.Value, p.OperationName)
	signIn := strings.HasSuffix(category, "SignInLogs") || strings.EqualFold(op, "Sign-in activity") ||
		p.ActivityDisplayName == "" && len(p.CreatedDateTime) > 0 && p.Status != nil
	audit := !signIn && (isEntra(category, r.ResourceID) || p.ActivityDisplayName != "" || p.InitiatedBy.User.ID != "" ||
		p.InitiatedBy.User.UserPrincipalName != "" || p.InitiatedBy.App.AppID != "" || p.InitiatedBy.App.DisplayName != "")
	if !signIn && !audit {
		if category == "" && op == "" && len(r.Properties) == 0 {
			return notThis("Microsoft Entra ID", "no category, operationName or properties")
		}
		return notThis("Microsoft Entra ID", fmt.Sprintf("neither a sign-in nor a directory audit (category %q, resourceId %q)", truncate(category, 64), truncate(r.ResourceID, 128)))
	}

	pt := timeSource{name: "properties.createdDateTime", raw: p.CreatedDateTime}
	if !signIn {
		pt = timeSource{name: "properties.activityDateTime", raw: p.ActivityDateTime}
	}
	t, err := firstTime(
		timeSource{name: "time", raw: r.Time},
		pt,
		timeSource{name: "p_event_time", raw: r.PantherTime, approx: true})
	if err != nil {
		return fmt.Errorf("%s: %w", recordName("Entra ID record", p.ID), err)
	}
	ev.Time = t
	ev.ID = p.ID
	ev.Source = "azure.signin"
	ev.Cloud = event.Cloud{Provider: "azure", Account: firstNonEmpty(r.TenantID, p.TenantID, tenantIn(r.ResourceID))}
	if signIn {
		r.signIn(&p, category, op, ev)
	} else {
		r.audit(&p, category, op, ev)
	}
	return nil
}

func (r *entraRecord) signIn(p *entraProperties, category, op string, ev *event.Event) {
	ev.Class = event.ClassAuthentication
	ev.Action = firstNonEmpty(op, "Sign-in activity")
	if category == "ServicePrincipalSignInLogs" || category == "ManagedIdentitySignInLogs" ||
		p.UserPrincipalName == "" && p.UserID == "" && p.ServicePrincipalID != "" {
		ev.Actor = event.Actor{
			ID:   firstNonEmpty(p.ServicePrincipalID, p.AppID),
			Type: "servicePrincipal",
			Name: firstNonEmpty(p.ServicePrincipalName, p.AppDisplayName),
		}
	} else {
		ev.Actor = event.Actor{ID: p.UserID, Type: "user", Name: firstNonEmpty(p.UserPrincipalName, string(r.Identity))}
	}
	// Every call made with the token this sign-in issued carries its
	// uniqueTokenIdentifier as the uti claim: activity logs lead back
	// here through the session id.
	ev.Session.ID = firstNonEmpty(p.UniqueTokenIdentifier, p.SessionID, p.CorrelationID, r.CorrelationID)
	ev.SrcIP, ev.SrcPort = parseCallerIP(firstNonEmpty(p.IPAddress, r.CallerIPAddress))
	ev.UserAgent = p.UserAgent
	ev.Service = firstNonEmpty(p.AppDisplayName, p.ResourceDisplayName)
	if p.ResourceDisplayName != "" {
		ev.Resources = []string{p.ResourceDisplayName}
	}

	code := string(r.ResultType)
	if p.Status != nil && p.Status.ErrorCode != "" {
		code = string(p.Status.ErrorCode)
	}
	switch {
	case code == "0" || strings.EqualFold(code, "success"):
		ev.Outcome.Result = event.OutcomeSuccess
	case code == "":
		ev.Outcome.Result = event.OutcomeUnknown
	case strings.EqualFold(code, "failure"):
		ev.Outcome.Result = event.OutcomeFailure
	default:
		ev.Outcome = event.Outcome{Result: event.OutcomeFailure, Code: code}
	}
}

// entraAccountCategories are the audit categories of changes to users,
// groups, roles and applications.
var entraAccountCategories = map[string]bool{
	"UserManagement": true, "GroupManagement": true, "RoleManagement": true, "ApplicationManagement": true,
}

func (r *entraRecord) audit(p *entraProperties, category, op string, ev *event.Event) {
	ev.Class = event.ClassAPIActivity
	if entraAccountCategories[firstNonEmpty(p.Category, category)] {
		ev.Class = event.ClassAccountChange
	}
	ev.Action = firstNonEmpty(p.ActivityDisplayName, op)
	ev.Service = p.LoggedByService

	by := &p.InitiatedBy
	switch {
	case by.User.UserPrincipalName != "" || by.User.ID != "":
		ev.Actor = event.Actor{ID: by.User.ID, Type: "user", Name: firstNonEmpty(by.User.UserPrincipalName, by.User.DisplayName)}
	case by.App.DisplayName != "" || by.App.ServicePrincipalID != "" || by.App.AppID != "":
		ev.Actor = event.Actor{
			ID:   firstNonEmpty(by.App.ServicePrincipalID, by.App.AppID),
			Type: "servicePrincipal",
			Name: firstNonEmpty(by.App.DisplayName, by.App.ServicePrincipalName),
		}
	default:
		ev.Actor.Name = string(r.Identity)
	}
	ev.SrcIP, ev.SrcPort = parseCallerIP(firstNonEmpty(by.User.IPAddress, r.CallerIPAddress))
	ev.UserAgent = p.UserAgent
	for _, d := range p.AdditionalDetails {
		if ev.UserAgent == "" && strings.EqualFold(d.Key, "User-Agent") {
			ev.UserAgent = d.Value
		}
	}
	for _, t := range p.TargetResources {
		if s := firstNonEmpty(t.UserPrincipalName, t.DisplayName, t.ID); s != "" {
			ev.Resources = append(ev.Resources, s)
		}
	}

	switch result := firstNonEmpty(p.Result, r.Result); strings.ToLower(result) {
	case "success":
		ev.Outcome.Result = event.OutcomeSuccess
	case "failure", "failed", "timeout":
		ev.Outcome = event.Outcome{Result: event.OutcomeFailure, Code: firstNonEmpty(p.ResultReason, result)}
	default:
		ev.Outcome.Result = event.OutcomeUnknown
	}
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
