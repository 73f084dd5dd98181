package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

func TestFlatten(t *testing.T) {
	tests := []struct {
		doc  string
		want string // path=value, one a line
	}{
		{`{"eventName":"StopLogging","userIdentity":{"type":"IAMUser","sessionContext":{"mfa":false}},"n":1.50,"z":null}`,
			`["eventName"]=StopLogging
["n"]=1.50
["userIdentity","sessionContext","mfa"]=false
["userIdentity","type"]=IAMUser`},
		{`{"resources":[{"ARN":"a"},"b"],"e":[]}`, `["e"]=[]
["resources"]=[{"ARN":"a"},"b"]`},
		// Keys holding dots, quotes and brackets stay apart from nested ones.
		{`{"a.b":"dot","a":{"b":"nested"},"q\"]":"hostile"}`, `["a","b"]=nested
["a.b"]=dot
["q\"]"]=hostile`},
		{`<38>Aug  1 web1 sshd[77]: Failed password`, ``},
		{`["not","an","object"]`, ``},
		{`{"a":1} {"b":2}`, ``},
		{`{"a":`, ``},
		{``, ``},
	}
	for _, tt := range tests {
		paths, values := Flatten([]byte(tt.doc))
		var lines []string
		for i := range paths {
			lines = append(lines, paths[i]+"="+values[i])
		}
		if got := strings.Join(lines, "\n"); got != tt.want || paths == nil || values == nil {
			t.Errorf("Flatten(%.40q):\n%s\nwant\n%s", tt.doc, got, tt.want)
		}
	}
}

func FuzzFlatten(f *testing.F) {
	for _, s := range []string{`{"a":{"b":[1,{"c":null}]},"d":"e"}`, `{"":""}`, `{"a":1e400}`, "{\"\xff\":1}", `[]`, `x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		paths, values := Flatten(doc)
		if len(paths) != len(values) {
			t.Fatalf("%d paths, %d values", len(paths), len(values))
		}
		for _, p := range paths {
			var keys []string
			if err := json.Unmarshal([]byte(p), &keys); err != nil || len(keys) == 0 {
				t.Fatalf("path %q: %v", p, err)
			}
		}
		if !sortedWalk(paths) {
			t.Fatalf("paths out of order: %q", paths)
		}
	})
}

// sortedWalk reports whether paths are in the walk's order: by key at
// each level, which is not always the order of their JSON texts.
func sortedWalk(paths []string) bool {
	keys := make([][]string, len(paths))
	for i, p := range paths {
		json.Unmarshal([]byte(p), &keys[i])
	}
	return slices.IsSortedFunc(keys, func(a, b []string) int { return slices.Compare(a, b) })
}

// TestDocFields: a field of the original document reads back from the
// flattened lists as the document has it, for every demo event.
func TestDocFields(t *testing.T) {
	ctx := context.Background()
	s := open(t, chtest.Start(t, 1))
	evs := demoEvents(t)
	if err := s.Append(ctx, 0, evs); err != nil {
		t.Fatal(err)
	}
	for _, path := range [][]string{{"userIdentity", "type"}, {"eventName"}, {"requestParameters", "instanceId"}} {
		key, _ := json.Marshal(path)
		out, err := s.exec(ctx, 0, fmt.Sprintf("SELECT seq, doc_values[indexOf(doc_keys, %s)] FROM vigil.events FINAL ORDER BY seq FORMAT TSV", quote(string(key))), nil)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != len(evs) {
			t.Fatalf("%s: %d rows, want %d", key, len(lines), len(evs))
		}
		found := 0
		for i, l := range lines {
			var doc map[string]any
			json.Unmarshal(evs[i].Raw, &doc)
			var want any = doc
			for _, k := range path {
				m, _ := want.(map[string]any)
				want = m[k]
			}
			w, _ := want.(string)
			if got := strings.SplitN(l, "\t", 2)[1]; got != w {
				t.Errorf("event %d, %s: %q, want %q", evs[i].Seq, key, got, w)
			}
			if w != "" {
				found++
			}
		}
		if found == 0 {
			t.Errorf("%s: in no demo event", key)
		}
	}
}
