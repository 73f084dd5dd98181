package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/awstest"
	"github.com/vigilsec/vigil/notify"
)

// localIAM is a local stand-in for IAM that checks calls as AWS
// documents them, and the test credentials it takes, which the AWS SDK
// in the process under test finds in the environment.
func localIAM(t *testing.T) (*awstest.QueryServer, awstest.Credentials) {
	t.Helper()
	creds := awstest.Credentials{KeyID: "AKIDVIGILTEST0000001", Secret: "test-secret", Region: "us-east-1", Service: "iam"}
	iam := awstest.NewQueryServer(t, awstest.IAM, creds, nil)
	// The standard chain finds the key in the environment, and never
	// looks further (no shared files, no instance metadata).
	t.Setenv("AWS_ACCESS_KEY_ID", creds.KeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.Secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return iam, creds
}

// TestServePlaybooks, end to end: the Stratus "create an access key for
// another user" trail, sent to a running vigil, opens an alert whose
// playbook waits for approval and asks for it (with a link) on a
// webhook; approved through the API, it calls IAM's UpdateAccessKey with
// Status=Inactive and the key the trail created, on a local stand-in for
// IAM that checks the call as AWS documents it (the Query API's form,
// SigV4 recomputed with the test credentials: the real IAM is out of a
// test's reach). The run, its steps and its records are in the API, the
// case timeline and the ledger; a principal on the deny list is never
// acted on.
func TestServePlaybooks(t *testing.T) {
	needFixtures(t)
	iam, creds := localIAM(t)

	var hook hookLog
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if got := r.Header.Get("X-Vigil-Signature"); got != notify.Sign("hook secret", r.Header.Get("X-Vigil-Timestamp"), body) {
			t.Errorf("webhook signature %q", got)
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		hook.add(m)
	}))
	defer hookSrv.Close()

	data := t.TempDir()
	books := filepath.Join(data, "playbooks")
	if err := os.MkdirAll(books, 0o700); err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile("../../playbook/testdata/deactivate-backdoor-key.yml")
	if err != nil {
		t.Fatal(err)
	}
	pb = append(pb, []byte("approval: {channels: [soar]}\n")...)
	if err := os.WriteFile(filepath.Join(books, "backdoor.yml"), pb, 0o600); err != nil {
		t.Fatal(err)
	}
	// One a person starts.
	manual := `name: lock the creator
trigger: {manual: true}
steps:
  - name: deny
    action: aws.iam.deny_all
    with: {principal: "{{ .Event.Raw.userIdentity.arn }}"}
`
	if err := os.WriteFile(filepath.Join(books, "lock.yml"), []byte(manual), 0o600); err != nil {
		t.Fatal(err)
	}
	// And one a search triggers, rehearsed.
	searched := `name: watch keys
mode: dry-run
trigger: {search: "action:CreateAccessKey outcome:success"}
steps:
  - {name: note, action: notify, with: {channel: oncall, text: "{{ .Event.Raw.responseElements.accessKey.accessKeyId }}"}}
`
	if err := os.WriteFile(filepath.Join(books, "watch.yml"), []byte(searched), 0o600); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { searchEvery = d }(searchEvery)
	searchEvery = 50 * time.Millisecond
	conf := fmt.Sprintf(`notify:
  link: https://vigil.example.com
  channels:
    - {name: soar, type: webhook, url: %q, secret: "hook secret"}
    - {name: oncall, type: webhook, url: %q, secret: "hook secret"}
playbooks:
  dir: %s
  deny: [break-glass-*]
  aws:
    region: us-east-1
    endpoints: {iam: %q}
`, hookSrv.URL+"/soar", hookSrv.URL+"/oncall", books, iam.URL)
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, data)
	call, wait, ctx, base, token := srv.call, srv.wait, srv.ctx, srv.base, srv.token
	type step struct {
		Name, Action, Status, Error, Approver string
		Inputs, Outputs                       map[string]string
	}
	type runJSON struct {
		ID, Status, Playbook string
		CaseID               string `json:"case_id"`
		Steps                []step
	}
	runs := func() []runJSON {
		var rs []runJSON
		if err := json.Unmarshal(call("GET", "/api/v1/playbook-runs?playbook="+url.QueryEscape("Deactivate a key created for another user"), nil), &rs); err != nil {
			t.Fatal(err)
		}
		return rs
	}

	trail, err := os.ReadFile(filepath.Join(stratus, "aws.persistence.iam-backdoor-user.json"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // search-triggered playbooks take the events stored after their first tick
	call("POST", "/api/v1/ingest?format=aws.cloudtrail", trail)
	var rs []runJSON
	wait("a run waiting for approval", func() bool { rs = runs(); return len(rs) == 1 && rs[0].Status == "waiting" })
	r := rs[0]
	if len(iam.TakeCalls()) != 0 {
		t.Fatal("IAM was called before approval")
	}
	if r.Steps[0].Status != "done" || r.Steps[1].Status != "waiting" || r.Steps[1].Inputs["access_key_id"] != "AKIAL80DWDVKKM0UXEER" {
		t.Fatalf("steps %+v", r.Steps)
	}
	wait("the approval request", func() bool {
		for _, m := range hook.get() {
			if strings.HasPrefix(fmt.Sprint(m["title"]), "Approve aws.iam.deactivate_access_key") {
				return m["link"] == "https://vigil.example.com/playbook-runs/"+r.ID
			}
		}
		return false
	})

	call("POST", "/api/v1/playbook-runs/"+r.ID+"/approve", nil)
	wait("the run done", func() bool { rs = runs(); return rs[0].Status == "done" })
	calls := iam.TakeCalls()
	if len(calls) != 1 {
		t.Fatalf("%d IAM calls, want 1: %v", len(calls), calls)
	}
	want := url.Values{"Action": {"UpdateAccessKey"}, "Version": {"2010-05-08"}, "UserName": {"stratus-red-team-backdoor-u-user"},
		"AccessKeyId": {"AKIAL80DWDVKKM0UXEER"}, "Status": {"Inactive"}}
	if calls[0].Encode() != want.Encode() {
		t.Errorf("IAM call %v, want %v", calls[0], want)
	}
	if s := rs[0].Steps[1]; s.Approver != "admin" {
		t.Errorf("approver %q", s.Approver)
	}
	if _, err := serverDo(ctx, http.MethodPost, base, token, "/api/v1/playbook-runs/"+r.ID+"/approve", nil); err == nil || !strings.Contains(err.Error(), "not waiting") {
		t.Errorf("approving again: %v", err)
	}

	// Each approval, given or refused, is one record in the audit trail.
	for q, n := range map[string]int{"action:playbook.decide outcome:success": 1, "action:playbook.decide outcome:failure": 1} {
		wait("the approvals in the audit trail", func() bool {
			var res struct{ Rows [][]any }
			json.Unmarshal(call("GET", "/api/v1/search?q="+url.QueryEscape("source:vigil.audit "+q), nil), &res)
			return len(res.Rows) == n
		})
	}

	// The case of the run tells the story.
	var c struct {
		Timeline []struct{ Kind, Text string } `json:"timeline"`
	}
	json.Unmarshal(call("GET", "/api/v1/cases/"+rs[0].CaseID, nil), &c)
	var tl strings.Builder
	for _, e := range c.Timeline {
		fmt.Fprintf(&tl, "%s: %s\n", e.Kind, e.Text)
	}
	for _, want := range []string{"waits for approval of step deactivate", "approved step deactivate", "deactivate (aws.iam.deactivate_access_key", "ended done"} {
		if !strings.Contains(tl.String(), want) {
			t.Errorf("case timeline lacks %q:\n%s", want, tl.String())
		}
	}
	// And the ledger keeps every record, searchable.
	var res struct{ Rows [][]any }
	wait("the run's records in the store", func() bool {
		json.Unmarshal(call("GET", "/api/v1/search?q="+url.QueryEscape("source:vigil.playbook account:946986569305")+"&from=-30d", nil), &res)
		return len(res.Rows) >= 6
	})

	// The search found the event too, and rehearsed its step on it.
	var watched []runJSON
	wait("the search-triggered run", func() bool {
		json.Unmarshal(call("GET", "/api/v1/playbook-runs?playbook=watch+keys", nil), &watched)
		return len(watched) == 1 && watched[0].Status == "done"
	})
	if s := watched[0].Steps[0]; s.Status != "dry-run" || s.Inputs["text"] != "AKIAL80DWDVKKM0UXEER" {
		t.Errorf("search-triggered step %+v", s)
	}

	if log := srv.log.String(); strings.Contains(log, creds.Secret) || strings.Contains(log, "hook secret") {
		t.Error("a secret is in the server's log")
	}

	// vigil playbooks runs and show read the same.
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"playbooks", "show", "--data", data, r.ID}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "2. deactivate: aws.iam.deactivate_access_key (approve) done") || !strings.Contains(out.String(), "→ status: Inactive") {
		t.Errorf("playbooks show: %d\n%s%s", code, out.String(), errOut.String())
	}

	// A responder starts the manual playbook on the alert from the
	// command line, and approves it there: the creator of the key is
	// denied everything.
	var as []struct{ ID string }
	json.Unmarshal(call("GET", "/api/v1/alerts", nil), &as)
	vigilOK := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(ctx, args, &out, &errOut); code != 0 {
			t.Fatalf("vigil %s: %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
		return out.String()
	}
	started := vigilOK("playbooks", "run", "--data", data, "--alert", as[0].ID, "lock the creator")
	id := strings.Fields(started)[1]
	var lock runJSON
	wait("the manual run waiting", func() bool {
		json.Unmarshal(call("GET", "/api/v1/playbook-runs/"+id, nil), &lock)
		return lock.Status == "waiting"
	})
	if got := vigilOK("approve", "--data", data, id); !strings.Contains(got, "running") {
		t.Errorf("vigil approve: %s", got)
	}
	wait("the manual run done", func() bool {
		json.Unmarshal(call("GET", "/api/v1/playbook-runs/"+id, nil), &lock)
		return lock.Status == "done"
	})
	calls = iam.TakeCalls()
	if len(calls) != 1 || calls[0].Get("Action") != "PutUserPolicy" || calls[0].Get("UserName") != "christophe" || calls[0].Get("PolicyName") != "vigil-deny-all" {
		t.Errorf("IAM calls %v", calls)
	}
	if got := vigilOK("playbooks", "runs", "--data", data, "--status", "done"); !strings.Contains(got, id) || !strings.Contains(got, "deny:done") {
		t.Errorf("playbooks runs:\n%s", got)
	}

	// A playbook file written while vigil runs is loaded; a broken one is
	// left out, and the others stay.
	if err := os.WriteFile(filepath.Join(books, "new.yml"), []byte(strings.Replace(manual, "lock the creator", "lock again", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(books, "broken.yml"), []byte("name: broken\ntrigger: {manual: true}\nsteps: [{action: nuke}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait("the new playbook loaded", func() bool {
		var l struct{ Playbooks []struct{ Name string } }
		json.Unmarshal(call("GET", "/api/v1/playbooks", nil), &l)
		return len(l.Playbooks) == 4 && slices.ContainsFunc(l.Playbooks, func(p struct{ Name string }) bool { return p.Name == "lock again" })
	})
	if !strings.Contains(srv.log.String(), `broken.yml:3: step \"step1\": unknown action \"nuke\"`) {
		t.Errorf("the broken playbook is not logged with its line:\n%s", srv.log.String())
	}
}
