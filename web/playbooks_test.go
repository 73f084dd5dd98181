package web

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/vigilsec/vigil/alert"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/meta"
	"github.com/vigilsec/vigil/playbook"
)

// recExec records the actions it is asked to do.
type recExec struct {
	mu    sync.Mutex
	calls []string
}

func (r *recExec) Run(_ context.Context, action string, in map[string]string) (map[string]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, action+" "+in["principal"])
	return map[string]string{"policy": "vigil-deny-all"}, nil
}

// TestPlaybooksAPI: responders start and approve runs on their own
// tenant's alerts only; readers read their tenant's runs; the kill
// switch is the administrators'.
func TestPlaybooksAPI(t *testing.T) {
	exec := &recExec{}
	var runner *playbook.Runner
	f := newAlertsFixture(t, func(mdb *meta.DB, am *alert.Manager, o *Options) {
		runner = playbook.NewRunner(playbook.Options{DB: mdb, Cases: am, Executors: map[string]playbook.Executor{"aws.iam.deny_all": exec}})
		p, err := playbook.Parse("lock.yml", []byte(`
name: lock
trigger: {manual: true}
steps:
  - name: deny
    action: aws.iam.deny_all
    with: {principal: 'user/{{ index .Alert.Group "vigil.actor" }}'}
`))
		if err != nil {
			t.Fatal(err)
		}
		runner.SetPlaybooks([]*playbook.Playbook{p})
		o.Playbooks = runner
	})
	call := func(method, path, token, body string, want int) string {
		t.Helper()
		code, out := f.call(method, path, token, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, out, want)
		}
		return out
	}
	a, b := f.ids["team-a"], f.ids["team-b"]
	call("POST", "/api/v1/playbooks/lock/run", f.viewerA, `{"alert_id":"`+a+`"}`, 403)
	call("POST", "/api/v1/playbooks/lock/run", f.analystA, `{"alert_id":"`+a+`"}`, 403)
	call("POST", "/api/v1/playbooks/lock/run", f.responderA, `{"alert_id":"`+b+`"}`, 404)
	call("POST", "/api/v1/playbooks/none/run", f.responderA, `{"alert_id":"`+a+`"}`, 400)
	// An alert across team-a and team-b is the CSIRT's to act on: team-a
	// sees its part only.
	ref := func(seq uint64, tenant string) detect.EventRef {
		return detect.EventRef{Seq: seq, Tenant: tenant, Time: f.at, Rule: "p1"}
	}
	f.alerts.Detected([]detect.Detection{{Rule: &detect.Rule{ID: "c1", Title: "One source in several accounts", Level: "medium"},
		Group: map[string]string{"vigil.src_ip": "198.51.100.20"}, Events: []detect.EventRef{ref(11, "team-a"), ref(12, "team-b")}}})
	if out := call("POST", "/api/v1/playbooks/lock/run", f.responderA, `{"alert_id":"`+f.ids[""]+`"}`, 403); !strings.Contains(out, "CSIRT") {
		t.Errorf("starting a playbook on a partial alert: %s", out)
	}
	var run meta.Run
	json.Unmarshal([]byte(call("POST", "/api/v1/playbooks/lock/run", f.responderA, `{"alert_id":"`+a+`"}`, 202)), &run)
	runner.Wait()
	if !strings.Contains(call("GET", "/api/v1/playbook-runs/"+run.ID, f.viewerA, "", 200), `"status":"waiting"`) {
		t.Fatal("the run does not wait for approval")
	}
	if out := call("GET", "/api/v1/playbook-runs", f.analystB, "", 200); out != "[]\n" {
		t.Errorf("team-b sees runs: %s", out)
	}
	call("GET", "/api/v1/playbook-runs/"+run.ID, f.analystB, "", 404)
	call("POST", "/api/v1/playbook-runs/"+run.ID+"/approve", f.viewerA, "", 403)
	call("POST", "/api/v1/playbook-runs/"+run.ID+"/approve", f.analystA, "", 403)
	call("POST", "/api/v1/playbooks/kill-switch", f.responderA, `{"on":true}`, 403)
	call("POST", "/api/v1/playbooks/kill-switch", "admin-secret", `{}`, 400)
	if out := call("POST", "/api/v1/playbooks/kill-switch", "admin-secret", `{"on":false}`, 200); !strings.Contains(out, `"on":false`) {
		t.Errorf("kill switch: %s", out)
	}
	call("POST", "/api/v1/playbook-runs/"+run.ID+"/approve", f.responderA, "", 200)
	runner.Wait()
	out := call("GET", "/api/v1/playbook-runs?status=done", f.viewerA, "", 200)
	if !strings.Contains(out, run.ID) || !strings.Contains(out, `"approver":"rex"`) {
		t.Errorf("runs: %s", out)
	}
	if len(exec.calls) != 1 || exec.calls[0] != "aws.iam.deny_all user/root" {
		t.Errorf("calls %q", exec.calls)
	}
	call("POST", "/api/v1/playbook-runs/"+run.ID+"/approve", f.responderA, "", 409)
	call("POST", "/api/v1/playbook-runs/"+run.ID+"/snooze", f.responderA, "", 404)
	if out := call("GET", "/api/v1/playbooks", f.viewerA, "", 200); !strings.Contains(out, `"name":"lock"`) {
		t.Errorf("playbooks: %s", out)
	}
}
