package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/vigilsec/vigil/notify"
)

// mailbox is an SMTP backend that keeps the messages it is sent.
type mailbox struct {
	mu   sync.Mutex
	mail []string
}

func (b *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{b: b}, nil }

func (b *mailbox) get() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.mail...)
}

type mailSession struct {
	b        *mailbox
	from, to string
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = to; return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.mail = append(s.b.mail, "From "+s.from+" to "+s.to+"\n"+string(b))
	s.b.mu.Unlock()
	return err
}
func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

// hookLog keeps what a local receiver got.
type hookLog struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (h *hookLog) add(b map[string]any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, b)
}

func (h *hookLog) get() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.bodies...)
}

// TestServeNotifies: events a rule matches, ingested through the API,
// make one alert per group, notified once to a signed webhook, a real
// SMTP server and a local server that checks PagerDuty's Events API v2
// requests;
// acknowledging the alert sends PagerDuty an acknowledge, resolving it a
// resolve, each with the alert's dedup key; every delivery is recorded.
func TestServeNotifies(t *testing.T) {
	needFixtures(t)
	var hook, pd hookLog
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if got := r.Header.Get("X-Vigil-Signature"); got != notify.Sign("hook secret", r.Header.Get("X-Vigil-Timestamp"), body) {
			t.Errorf("webhook signature %q", got)
			w.WriteHeader(401)
			return
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		hook.add(m)
	}))
	defer hookSrv.Close()
	// PagerDuty's Events API v2: POST /v2/enqueue, JSON, 202.
	pdSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if r.Method != "POST" || r.URL.Path != "/v2/enqueue" || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&m) != nil {
			t.Errorf("PagerDuty request %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			w.WriteHeader(400)
			return
		}
		if m["routing_key"] != "R0UT1NGKEY00000000000000000000AB" || m["dedup_key"] == "" {
			t.Errorf("PagerDuty event %v", m)
		}
		pd.add(m)
		w.WriteHeader(202)
		io.WriteString(w, `{"status":"success","message":"Event processed"}`)
	}))
	defer pdSrv.Close()
	// A real SMTP server on loopback: a relay on the same host, so in
	// clear text (the email channel's TLS is tested in package notify).
	var box mailbox
	mailSrv := smtp.NewServer(&box)
	mailSrv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go mailSrv.Serve(ln)
	defer mailSrv.Close()

	data := t.TempDir()
	conf := fmt.Sprintf(`alerts:
  window: 1h
notify:
  link: https://vigil.example.com
  channels:
    - {name: soar, type: webhook, url: %q, secret: "env:VIGIL_TEST_HOOK_SECRET"}
    - {name: oncall, type: pagerduty, routing_key: R0UT1NGKEY00000000000000000000AB, url: %q}
    - {name: soc-mail, type: email, addr: %q, from: vigil@example.com, to: [soc@example.com], allow_plaintext: true}
  routes:
    - {min_severity: medium, channels: [soar, oncall, soc-mail]}
`, hookSrv.URL+"/hook", pdSrv.URL+"/v2/enqueue", ln.Addr().String())
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TEST_HOOK_SECRET", "hook secret")
	srv := serve(t, data)
	call, wait := srv.call, srv.wait

	// The same trail twice: the same actor stops logging twice, one
	// alert, notified once.
	trail, err := os.ReadFile(filepath.Join(stratus, "aws.defense-evasion.cloudtrail-stop.json"))
	if err != nil {
		t.Fatal(err)
	}
	call("POST", "/api/v1/ingest?format=aws.cloudtrail", trail)
	call("POST", "/api/v1/ingest?format=aws.cloudtrail", trail)
	var alerts []map[string]any
	wait("an alert of two hits", func() bool {
		json.Unmarshal(call("GET", "/api/v1/alerts", nil), &alerts)
		return len(alerts) == 1 && alerts[0]["count"] == 2.0
	})
	id := alerts[0]["id"].(string)
	wait("notifications", func() bool { return len(hook.get()) >= 1 && len(pd.get()) >= 1 && len(box.get()) >= 1 })
	time.Sleep(300 * time.Millisecond) // a second notification would have come by now
	if h, p, m := hook.get(), pd.get(), box.get(); len(h) != 1 || len(p) != 1 || len(m) != 1 {
		t.Fatalf("%d webhook, %d PagerDuty and %d email notifications, want one each", len(h), len(p), len(m))
	}
	if m := box.get()[0]; !strings.Contains(m, "From vigil@example.com to soc@example.com") || !strings.Contains(m, "Subject: [vigil high] CloudTrail") {
		t.Errorf("mail:\n%s", m)
	}
	h, p := hook.get()[0], pd.get()[0]
	if h["key"] != id || h["action"] != "trigger" || !strings.Contains(h["title"].(string), "CloudTrail") || h["link"] != "https://vigil.example.com/alerts/"+id {
		t.Errorf("webhook body %v", h)
	}
	if p["event_action"] != "trigger" || p["dedup_key"] != id {
		t.Errorf("PagerDuty trigger %v", p)
	}

	call("POST", "/api/v1/alerts/"+id+"/ack", nil)
	wait("PagerDuty acknowledge", func() bool { return len(pd.get()) >= 2 })
	call("POST", "/api/v1/alerts/"+id+"/resolve", []byte(`{"reason":"trail restarted"}`))
	wait("PagerDuty resolve", func() bool { return len(pd.get()) >= 3 })
	if ev := pd.get(); ev[1]["event_action"] != "acknowledge" || ev[1]["dedup_key"] != id || ev[2]["event_action"] != "resolve" || ev[2]["dedup_key"] != id {
		t.Errorf("PagerDuty events %v", ev)
	}
	var detail struct {
		Deliveries []struct{ Channel, Action, Status string }
	}
	wait("nine deliveries recorded", func() bool {
		json.Unmarshal(call("GET", "/api/v1/alerts/"+id, nil), &detail)
		return len(detail.Deliveries) == 9
	})
	for _, d := range detail.Deliveries {
		if d.Status != "delivered" {
			t.Errorf("delivery %+v", d)
		}
	}
	if strings.Contains(srv.log.String(), "R0UT1NGKEY") || strings.Contains(srv.log.String(), "hook secret") {
		t.Error("a secret is in the server's log")
	}
}
