package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/access"
)

// teamBAccount is the AWS account of team-b's events: no answer to a
// caller who may not read team-b may name it.
const teamBAccount = "457448411975"

// TestAccessReads goes on from TestAccessMatrix over the rest of the API
// that reads data (identities, inventory, coverage, proofs, hunts,
// playbook runs, exports and their links) and over credentials that no
// longer hold (an expired token): each caller gets what its roles allow,
// another tenant's data is absent in the same words as missing data,
// and each action is one audit record.
func TestAccessReads(t *testing.T) {
	w := newAccessWorld(t)
	srv := w.srv
	get := func(token, path string) (int, string) {
		t.Helper()
		code, out := srv.apiAs(token, "GET", path, nil)
		return code, string(out)
	}

	// A token's whoami has no CSRF token: it needs none.
	if code, body := get(w.alice, "/api/v1/whoami"); code != 200 || strings.Contains(body, "csrf") || !strings.Contains(body, w.aliceID) {
		t.Errorf("whoami of a token: %d %s", code, body)
	}

	// Reads of one thing, by each caller: team-b's data, for its own
	// viewer and the CSIRT, and for no one else. team-b also made an
	// IAM user, for the inventory to know.
	b, err := os.ReadFile(filepath.Join(stratus, "aws.persistence.iam-create-admin-user.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv.call("POST", "/api/v1/ingest?format=aws.cloudtrail&tenant=team-b", b)
	srv.call("POST", "/api/v1/ingest?format=aws.cloudtrail&tenant=team-b", []byte(`{"Records": [{"eventName": "`+teamBAccount))
	srv.wait("team-b's quarantined record", func() bool {
		_, body := get(w.admin, "/api/v1/search?quarantine=1&q=*")
		return strings.Contains(body, teamBAccount)
	})
	srv.wait("team-b's IAM user", func() bool {
		_, body := get(w.admin, "/api/v1/inventory?q=malicious-iam-user")
		return strings.Contains(body, "malicious-iam-user")
	})
	_, rows, _ := srv.searchAs(w.admin, "tenant:team-b eventName:GetPasswordData | fields seq")
	if len(rows) == 0 {
		t.Fatal("no team-b event to prove")
	}
	// As an integer: a scale-out's seqs (partition << 40 | index) print
	// in exponent form as floats.
	bSeq := strconv.FormatFloat(rows[0]["seq"].(float64), 'f', -1, 64)
	for _, tc := range []struct{ path, marker string }{
		{"/api/v1/identities/ASIANQQHHS551LWULIWD", teamBAccount},
		{"/api/v1/inventory?q=malicious-iam-user", "malicious-iam-user"},
		{"/api/v1/coverage", "team-b"},
		{"/api/v1/search?quarantine=1&q=*", teamBAccount},
		{"/api/v1/events/" + bSeq + "/proof", `"seq":` + bSeq},
	} {
		t.Run(tc.path, func(t *testing.T) {
			for _, who := range []struct {
				name, token string
				sees        bool
			}{{"team-b's viewer", w.bob, true}, {"the CSIRT", w.carol, true}, {"team-a's analyst", w.alice, false},
				{"the partner", w.partner, false}, {"team-a's auditor", w.dave, false}} {
				code, body := get(who.token, tc.path)
				if who.sees && (code != 200 || !strings.Contains(body, tc.marker)) {
					t.Errorf("%s: %d %.300s", who.name, code, body)
				}
				if !who.sees && (strings.Contains(body, tc.marker) || strings.Contains(body, teamBAccount)) {
					t.Errorf("%s reads team-b's data: %d %.300s", who.name, code, body)
				}
			}
		})
	}
	// A proof of another tenant's event is refused as one of no event.
	code, body := get(w.alice, "/api/v1/events/"+bSeq+"/proof")
	code2, body2 := get(w.alice, "/api/v1/events/987654321/proof")
	if code != 404 || code != code2 || strings.ReplaceAll(body, bSeq, "N") != strings.ReplaceAll(body2, "987654321", "N") {
		t.Errorf("a proof of team-b's event for team-a: %d %s; of none: %d %s", code, body, code2, body2)
	}

	// Hunts with the built-in rules find only what the hunter reads.
	hunt := func(token string) (int, []string) {
		t.Helper()
		code, out := srv.apiAs(token, "POST", "/api/v1/hunt", map[string]any{"builtin": true, "from": "2000-01-01"})
		if code != 200 {
			return code, nil
		}
		var ts []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var hit struct {
				Tenant string `json:"tenant"`
				Error  string `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &hit); err != nil || hit.Error != "" {
				t.Fatalf("hunt answer line %q: %v", sc.Text(), err)
			}
			if !slices.Contains(ts, hit.Tenant) {
				ts = append(ts, hit.Tenant)
			}
		}
		slices.Sort(ts)
		if bytes.Contains(out, []byte(teamBAccount)) && !slices.Contains(ts, "team-b") {
			t.Errorf("a hunt without team-b's hits names its account: %s", out)
		}
		return code, ts
	}
	if code, ts := hunt(w.alice); code != 200 || !slices.Equal(ts, []string{"team-a"}) {
		t.Errorf("team-a's analyst hunted tenants %v (%d)", ts, code)
	}
	if code, ts := hunt(w.bob); code != 403 || len(ts) != 0 {
		t.Errorf("a viewer hunted: %d %v", code, ts)
	}

	// Playbook runs: none of another tenant's.
	if code, body := get(w.bob, "/api/v1/playbook-runs"); code != 200 || strings.Contains(body, "team-a") {
		t.Errorf("team-b's viewer lists runs: %d %s", code, body)
	}

	// An export: the analyst's evidence bundle of its tenant's events,
	// opened by its link with no other credential, holds team-a's events
	// only, and verifies offline with the ledger's key.
	var x struct {
		ID, Link string
		Events   int
	}
	code, out := srv.apiAs(w.alice, "POST", "/api/v1/exports", map[string]any{"from": "2000-01-01", "reason": "case 7"})
	if err := json.Unmarshal(out, &x); err != nil || code != 201 || x.Link == "" || x.Events != 1 {
		t.Fatalf("export: %d %s", code, out)
	}
	resp, err := http.Get(srv.base + x.Link)
	if err != nil {
		t.Fatal(err)
	}
	zipped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the link: %s %s", resp.Status, zipped)
	}
	bundle := filepath.Join(t.TempDir(), "case-7.zip")
	if err := os.WriteFile(bundle, zipped, 0o600); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != "events.ndjson" && f.Name != "custody.json" {
			continue
		}
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, []byte(teamBAccount)) || bytes.Contains(b, []byte("team-b")) || !bytes.Contains(b, []byte("team-a")) && f.Name == "events.ndjson" {
			t.Errorf("%s of team-a's export: %.500s", f.Name, b)
		}
		if f.Name == "custody.json" && (!bytes.Contains(b, []byte(`"alice (token `)) || !bytes.Contains(b, []byte("case 7"))) {
			t.Errorf("custody: %s", b)
		}
	}
	key := strings.TrimSpace(mustVigil(t, "key", "--data", w.data))
	if out := mustVigil(t, "verify-bundle", "--key", key, bundle); !strings.Contains(out, "verified: 1 events") {
		t.Errorf("verify-bundle: %s", out)
	}
	for _, tc := range []struct {
		name, token string
		body        map[string]any
		status      int
	}{
		{"another tenant's events", w.bob, map[string]any{"from": "2000-01-01", "reason": "x", "tenant": "team-a"}, 422},
		{"a grant that hides fields", w.partner, map[string]any{"from": "2000-01-01", "reason": "x"}, 403},
		{"an auditor", w.dave, map[string]any{"from": "2000-01-01", "reason": "x"}, 403},
	} {
		if code, out := srv.apiAs(tc.token, "POST", "/api/v1/exports", tc.body); code != tc.status {
			t.Errorf("%s exported: %d %s", tc.name, code, out)
		}
	}
	if code, body := get(w.bob, "/api/v1/exports"); code != 200 || strings.Contains(body, x.ID) {
		t.Errorf("team-b's viewer lists team-a's export: %d %s", code, body)
	}

	// An expired token, made with a clock two days back, is refused and
	// the refusal audited; so is a revoked one.
	// As the server does: its data directory's, or a scale-out's PostgreSQL.
	mdb, err := openMeta(context.Background(), &dataFlags{dir: w.data}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	back := access.NewTokens(mdb, access.Options{Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	expired, _, err := back.Create(context.Background(), access.Spec{Principal: w.aliceID, Expires: time.Now().Add(-24 * time.Hour)})
	mdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	if code, _, body := srv.searchAs(expired, "*"); code != 401 || strings.Contains(body, "team-a") {
		t.Errorf("an expired token searched: %d %s", code, body)
	}

	// Each action above is one audit record.
	w.auditCounts(map[string]int{
		`action:authenticate detail:"refused: expired token"`: 1,
		"action:hunt actor:alice":                             1,
		"action:hunt actor:bob outcome:failure":               1,
		"action:export actor:alice outcome:success":           1,
		"action:export outcome:failure":                       3,
		"action:export.download outcome:success":              1,
		"action:proof actor:alice":                            3, // one in the table, two above
	})
	srv.stop()
	if code, out := verifyData(t, w.data); code != 0 {
		t.Errorf("vigil verify:\n%s", out)
	}
	// No one erases the trail, the operator included (on a scale-out,
	// vigil redact counts in ClickHouse what it would file).
	if out := mustVigil(t, "redact", "--data", w.data, "--query", "source:vigil.audit OR tenant:_system", "--reason", "cover tracks"); !strings.HasPrefix(out, "0 events match") {
		t.Errorf("vigil redact on the audit trail: %s", out)
	}
}
