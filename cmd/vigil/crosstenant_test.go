package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// crossAccountRule is the built-in "One Source Address Active in Three
// or More Cloud Accounts".
const crossAccountRule = "b95e4d5e-13d3-400d-80c6-2a01b16621b8"

// TestCrossTenantCorrelation runs a server where one public address acts
// in two of team-a's accounts and one of team-b's, which the built-in
// cross-account correlation turns into one alert across the two
// tenants. The CSIRT sees it whole; team-a's analyst sees team-a's part
// (its events, its count) and nothing of team-b, and may not work it;
// team-c's analyst, and a partner who only has a grant of team-a's
// events, see nothing of it.
func TestCrossTenantCorrelation(t *testing.T) {
	srv := serve(t, t.TempDir())
	admin := srv.token
	const ip = "198.51.100.20"
	base := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Second)
	record := func(at time.Duration, account, user string) map[string]any {
		return map[string]any{
			"eventVersion": "1.09", "eventTime": base.Add(at).Format(time.RFC3339), "eventSource": "sts.amazonaws.com",
			"eventName": "GetCallerIdentity", "awsRegion": "eu-west-1", "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0",
			"eventID": fmt.Sprintf("%s-%d", account, at), "eventType": "AwsApiCall", "recipientAccountId": account,
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDA" + account, "arn": "arn:aws:iam::" + account + ":user/" + user,
				"accountId": account, "userName": user, "accessKeyId": "AKIA" + account},
		}
	}
	ingest := func(tenant string, recs ...map[string]any) {
		b, _ := json.Marshal(map[string]any{"Records": recs})
		srv.call("POST", "/api/v1/ingest?format=aws.cloudtrail&tenant="+tenant, b)
	}
	// team-b's account, user and name must not reach team-a.
	const bAccount, bUser = "333333333333", "deploy-bravo"
	ingest("team-a", record(0, "111111111111", "deploy-alpha"), record(5*time.Minute, "222222222222", "deploy-alpha"))
	ingest("team-c", map[string]any{
		"eventVersion": "1.09", "eventTime": base.Format(time.RFC3339), "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
		"awsRegion": "eu-west-1", "sourceIPAddress": "10.1.2.3", "eventID": "c-1", "eventType": "AwsApiCall", "recipientAccountId": "777777777777",
		"userIdentity": map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::777777777777:user/carl", "accountId": "777777777777", "userName": "carl"},
	})
	ingest("team-b", record(10*time.Minute, bAccount, bUser))

	mustAPI := func(method, path string, body any) map[string]any {
		t.Helper()
		code, out := srv.apiAs(admin, method, path, body)
		if code/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, code, out)
		}
		var v map[string]any
		json.Unmarshal(out, &v)
		return v
	}
	principal := func(name string) string {
		return mustAPI("POST", "/api/v1/access/principals", map[string]any{"name": name})["id"].(string)
	}
	tokenOf := func(id string) string {
		return mustAPI("POST", "/api/v1/access/tokens", map[string]any{"principal": id, "days": 1})["secret"].(string)
	}
	bind := func(id, tenant, role string) {
		mustAPI("POST", "/api/v1/access/bindings", map[string]any{"subject": "principal:" + id, "tenant": tenant, "role": role})
	}
	carolID, chrisID, aliceID, cyrilID, partnerID := principal("carol"), principal("chris"), principal("alice"), principal("cyril"), principal("partner")
	bind(carolID, "*", "viewer")  // the CSIRT, reading
	bind(chrisID, "*", "analyst") // the CSIRT, working
	bind(aliceID, "team-a", "analyst")
	bind(cyrilID, "team-c", "analyst")
	mustAPI("POST", "/api/v1/grants", map[string]any{"owner": "team-a", "grantee": "principal:" + partnerID,
		"reason": "incident 7 with the MSSP", "expires": time.Now().Add(24 * time.Hour)})
	carol, chris, alice, cyril, partner := tokenOf(carolID), tokenOf(chrisID), tokenOf(aliceID), tokenOf(cyrilID), tokenOf(partnerID)

	type part struct {
		Tenant string   `json:"tenant"`
		Seqs   []uint64 `json:"seqs"`
		Count  int64    `json:"count"`
	}
	type alertView struct {
		ID      string            `json:"id"`
		Tenant  string            `json:"tenant"`
		RuleID  string            `json:"rule_id"`
		Count   int64             `json:"count"`
		Seqs    []uint64          `json:"seqs"`
		Tenants []string          `json:"tenants"`
		Partial bool              `json:"partial"`
		Parts   []part            `json:"parts"`
		Group   map[string]string `json:"group"`
	}
	list := func(token string) ([]alertView, string) {
		t.Helper()
		code, out := srv.apiAs(token, "GET", "/api/v1/alerts", nil)
		if code != 200 {
			t.Fatalf("listing alerts: %d %s", code, out)
		}
		var as []alertView
		if err := json.Unmarshal(out, &as); err != nil {
			t.Fatal(err)
		}
		return as, string(out)
	}
	cross := func(as []alertView) *alertView {
		for i := range as {
			if as[i].RuleID == crossAccountRule {
				return &as[i]
			}
		}
		return nil
	}
	srv.wait("the alert across tenants", func() bool {
		as, _ := list(admin)
		return cross(as) != nil
	})

	// The CSIRT: the whole of it.
	as, _ := list(carol)
	whole := cross(as)
	if whole == nil || whole.Tenant != "" || whole.Partial || !slices.Equal(whole.Tenants, []string{"team-a", "team-b"}) || len(whole.Seqs) != 3 ||
		len(whole.Parts) != 2 || whole.Parts[0].Count != 2 || whole.Parts[1].Count != 1 || whole.Group["vigil.src_ip"] != ip {
		t.Fatalf("the CSIRT's view: %+v", whole)
	}
	aSeqs, bSeqs := whole.Parts[0].Seqs, whole.Parts[1].Seqs
	id := whole.ID

	// team-a's analyst: team-a's part, nothing of team-b.
	noB := func(what, body string) {
		t.Helper()
		for _, s := range []string{"team-b", bAccount, bUser, "AKIA" + bAccount} {
			if strings.Contains(body, s) {
				t.Errorf("%s names %q: %s", what, s, body)
			}
		}
	}
	as, body := list(alice)
	a := cross(as)
	if a == nil || a.ID != id || a.Tenant != "" || !a.Partial || !slices.Equal(a.Tenants, []string{"team-a"}) || !slices.Equal(a.Seqs, aSeqs) ||
		a.Count != 2 || len(a.Parts) != 1 || a.Group["vigil.src_ip"] != ip {
		t.Fatalf("team-a's view: %+v", a)
	}
	for _, s := range bSeqs {
		if slices.Contains(a.Seqs, s) {
			t.Errorf("team-a's view holds team-b's event %d", s)
		}
	}
	noB("team-a's list of alerts", body)
	code, out := srv.apiAs(alice, "GET", "/api/v1/alerts/"+id, nil)
	if code != 200 || !strings.Contains(string(out), `"partial":true`) || !strings.Contains(string(out), `"deliveries":[]`) {
		t.Errorf("team-a reading the alert: %d %s", code, out)
	}
	noB("team-a's alert", string(out))
	code, out = srv.apiAs(alice, "GET", "/api/v1/detections?since=-24h", nil)
	var ds []struct {
		RuleID  string   `json:"rule_id"`
		Events  []uint64 `json:"events"`
		Partial bool     `json:"partial"`
	}
	json.Unmarshal(out, &ds)
	found := false
	for _, d := range ds {
		if d.RuleID == crossAccountRule {
			found = true
			if !d.Partial || !slices.Equal(d.Events, aSeqs) {
				t.Errorf("team-a's detection: %+v", d)
			}
		}
	}
	if code != 200 || !found {
		t.Errorf("team-a's detections: %d %s", code, out)
	}
	noB("team-a's detections", string(out))

	// team-a may not work it: that is the CSIRT's.
	if code, out := srv.apiAs(alice, "POST", "/api/v1/alerts/"+id+"/ack", map[string]string{}); code != 403 || !strings.Contains(string(out), "CSIRT") {
		t.Errorf("team-a acknowledged the alert: %d %s", code, out)
	}
	if code, out := srv.apiAs(alice, "POST", "/api/v1/cases", map[string]any{"title": "shared IP", "alerts": []string{id}}); code != 403 {
		t.Errorf("team-a opened a case of the alert: %d %s", code, out)
	}

	// team-c, and a partner with a grant of team-a's events, see nothing
	// of it.
	for who, token := range map[string]string{"team-c's analyst": cyril, "the partner": partner} {
		as, body := list(token)
		if cross(as) != nil || strings.Contains(body, id) {
			t.Errorf("%s lists it: %s", who, body)
		}
		if code, out := srv.apiAs(token, "GET", "/api/v1/alerts/"+id, nil); code != 404 {
			t.Errorf("%s reads it: %d %s", who, code, out)
		}
		if code, out := srv.apiAs(token, "GET", "/api/v1/detections?since=-24h", nil); strings.Contains(string(out), crossAccountRule) {
			t.Errorf("%s lists its detection: %d %s", who, code, out)
		}
	}
	if code, out := srv.apiAs(cyril, "POST", "/api/v1/alerts/"+id+"/ack", map[string]string{}); code != 404 {
		t.Errorf("team-c acknowledged it: %d %s", code, out)
	}

	// The CSIRT works it; team-a sees that it does, without its words.
	if code, out := srv.apiAs(chris, "POST", "/api/v1/alerts/"+id+"/ack", map[string]string{"reason": "team-b's egress, " + bAccount}); code != 200 {
		t.Fatalf("the CSIRT acknowledging: %d %s", code, out)
	}
	code, out = srv.apiAs(alice, "GET", "/api/v1/alerts/"+id, nil)
	if code != 200 || !strings.Contains(string(out), `"status":"acknowledged"`) || !strings.Contains(string(out), `"actor":"chris"`) {
		t.Errorf("team-a reading the acknowledged alert: %d %s", code, out)
	}
	noB("team-a's acknowledged alert", string(out))
}
