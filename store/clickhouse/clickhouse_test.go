package clickhouse

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/demo"
	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store/clickhouse/chtest"
)

// demoEvents parses the demo's CloudTrail (Stratus Red Team's
// detonations), every other file in tenant team-a and the rest in
// team-b, numbered from 1.
func demoEvents(t *testing.T) []*event.Event {
	t.Helper()
	files, err := fs.Glob(demo.Files(), "*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("the demo's files: %v", err)
	}
	var evs []*event.Event
	for i, name := range files {
		f, err := demo.Files().Open(name)
		if err != nil {
			t.Fatal(err)
		}
		tenant := []string{"team-a", "team-b"}[i%2]
		_, err = parse.Parse(f, "aws.cloudtrail", parse.Options{Tenant: tenant, Backfill: true, Received: time.Now()}, func(r parse.Result) error {
			if r.Err != nil {
				return fmt.Errorf("%s: %w", name, r.Err)
			}
			r.Event.Seq = uint64(len(evs) + 1)
			evs = append(evs, r.Event)
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

func open(t *testing.T, shards []*chtest.Shard) *Store {
	t.Helper()
	var urls []string
	for _, s := range shards {
		urls = append(urls, s.URL)
	}
	s, err := Open(context.Background(), Options{Shards: urls, Cluster: chtest.Cluster})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAppendTwoShards: events spread over both shards, the Distributed
// table sees them all, a batch sent twice (an insert retried after a
// lost answer) is counted once, and what is stored reads back as it was
// sent, hostile bytes included.
func TestAppendTwoShards(t *testing.T) {
	ctx := context.Background()
	shards := chtest.Start(t, 2)
	// Opening twice: the second finds the tables made.
	open(t, shards)
	s := open(t, shards)

	evs := demoEvents(t)
	hostile := &event.Event{Seq: uint64(len(evs) + 1), Time: time.Date(2024, 7, 31, 12, 0, 0, 123456789, time.UTC), Received: time.Now(),
		Tenant: `team-'a\`, Source: "json", Class: "api_activity", Action: "x'); DROP TABLE vigil.events_local; --",
		Message: "line one\nline two\t\"quoted\"", Raw: []byte("{\"k\":\"\xff\xfe\"}")}
	evs = append(evs, hostile)
	if err := s.Append(ctx, 0, evs); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, e := range evs {
		want[e.Tenant]++
	}
	// The retried batch: its first half again.
	if err := s.Append(ctx, 0, evs[:len(evs)/2]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctx, ""); err != nil || n != int64(len(evs)) {
		t.Errorf("count = %d, %v; want %d", n, err, len(evs))
	}
	for tenant, n := range want {
		if got, err := s.Count(ctx, tenant); err != nil || got != n {
			t.Errorf("count of %q = %d, %v; want %d", tenant, got, err, n)
		}
	}
	// Both shards hold some: the events are spread.
	for i := range shards {
		out, err := s.exec(ctx, i, "SELECT count() FROM vigil.events_local FINAL", nil)
		if err != nil || strings.TrimSpace(string(out)) == "0" {
			t.Errorf("shard %d holds %q events, %v", i+1, out, err)
		}
	}
	// The hostile event reads back byte for byte.
	out, err := s.exec(ctx, 0, fmt.Sprintf("SELECT tenant, action, message, raw_bin, time FROM vigil.events FINAL WHERE seq = %d FORMAT JSONEachRow", hostile.Seq), nil)
	if err != nil {
		t.Fatal(err)
	}
	// 18.16 writes an Int64 in JSON as a string.
	var got struct {
		Tenant, Action, Message string
		RawBinBase64            *string `json:"raw_bin"`
		TimeNS                  int64   `json:"time,string"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	var raw []byte
	if got.RawBinBase64 != nil {
		raw, _ = base64.StdEncoding.DecodeString(*got.RawBinBase64)
	}
	if got.Tenant != hostile.Tenant || got.Action != hostile.Action || got.Message != hostile.Message || string(raw) != string(hostile.Raw) ||
		got.TimeNS != hostile.Time.UnixNano() {
		t.Errorf("the hostile event read back as %s", out)
	}
}

// TestAppendShardDown: an insert to a shard that is down fails the
// batch, naming the shard, and the retry once it is back stores each
// event once.
func TestAppendShardDown(t *testing.T) {
	ctx := context.Background()
	shards := chtest.Start(t, 2)
	s := open(t, shards)
	evs := demoEvents(t)[:60]
	shards[1].Stop()
	err := s.Append(ctx, 0, evs)
	if err == nil || !strings.Contains(err.Error(), "shard 2") {
		t.Fatalf("an append with shard 2 down: %v", err)
	}
	shards[1].Restart(t)
	if err := s.Append(ctx, 0, evs); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if n, err := s.Count(ctx, ""); err != nil || n != int64(len(evs)) {
		t.Errorf("after the retry: %d events, %v; want %d", n, err, len(evs))
	}
}
