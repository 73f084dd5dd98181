package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirstAdmin: a new data directory's server makes an administrator
// of every tenant, with a password readable by the owner only, who logs
// in to the console; a restart keeps it, and makes no other.
func TestFirstAdmin(t *testing.T) {
	data := t.TempDir()
	srv := serve(t, data)
	path := filepath.Join(data, passwordFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, info.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	login := func() int {
		body, _ := json.Marshal(map[string]string{"name": "admin", "password": strings.TrimSpace(string(b))})
		resp, err := http.Post(srv.base+"/api/v1/login", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var who struct {
			Identity struct {
				Name     string
				Bindings []struct{ Role, Tenant string }
			}
		}
		json.NewDecoder(resp.Body).Decode(&who)
		if resp.StatusCode == 200 && (who.Identity.Name != "admin" || len(who.Identity.Bindings) != 1 ||
			who.Identity.Bindings[0].Role != "admin" || who.Identity.Bindings[0].Tenant != "*") {
			t.Errorf("the first administrator is %+v", who.Identity)
		}
		return resp.StatusCode
	}
	if code := login(); code != 200 {
		t.Fatalf("login as the first administrator: %d", code)
	}
	srv.stop()
	srv = serve(t, data)
	var ps []map[string]any
	json.Unmarshal(srv.call("GET", "/api/v1/access/principals", nil), &ps)
	if len(ps) != 1 {
		t.Errorf("after a restart, %d principals: %v", len(ps), ps)
	}
	if code := login(); code != 200 {
		t.Errorf("login after a restart: %d", code)
	}
}
