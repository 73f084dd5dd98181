package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store"
)

// The S3 source is tested against s3Server (s3server_test.go), which
// checks each request as the S3 API reference documents it: path-style
// ListObjectsV2 and GetObject, their parameters, and the SigV4 signature,
// recomputed with the secret key.

// pullStratus holds real CloudTrail records (Stratus Red Team
// detonations; see its SOURCES.md), one JSON array per file.
const pullStratus = "../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs/"

// testAcceptor is the pipeline of the pull sources' tests. Like the
// Intake, it stores a batch once by its source and ID, and acknowledges
// it again without storing it when it is sent again.
type testAcceptor struct {
	mu          sync.Mutex
	ids         map[string]bool
	events      []*event.Event
	quarantined []store.Quarantined
	stored      []string // IDs of the batches stored, in order
	resent      []string // IDs of the batches sent again
	busy        int      // answer ErrBusy to this many more calls
	busyAnswers int
	err         error // answer this, if set
}

func (a *testAcceptor) Accept(ctx context.Context, b Batch) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	if a.busy > 0 {
		a.busy--
		a.busyAnswers++
		return ErrBusy
	}
	if b.ID == "" || b.Source == "" {
		panic(fmt.Sprintf("a pull source sent a batch without source or ID: %q %q", b.Source, b.ID))
	}
	if a.ids == nil {
		a.ids = make(map[string]bool)
	}
	key := b.Source + " " + b.ID
	if a.ids[key] {
		a.resent = append(a.resent, b.ID)
		return nil
	}
	a.ids[key] = true
	a.stored = append(a.stored, b.ID)
	a.events = append(a.events, b.Events...)
	a.quarantined = append(a.quarantined, b.Quarantined...)
	return nil
}

func (a *testAcceptor) counts() (events, quarantined int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.events), len(a.quarantined)
}

// testCursors is an in-memory CursorStore whose failAt-th SetCursor
// fails, as if the process had died before it.
type testCursors struct {
	mu     sync.Mutex
	m      map[string]string
	sets   int
	failAt int
}

func (c *testCursors) Cursor(ctx context.Context, source string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[source], nil
}

func (c *testCursors) SetCursor(ctx context.Context, source, cursor string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sets++
	if c.sets == c.failAt {
		return errors.New("cursor store down")
	}
	if c.m == nil {
		c.m = make(map[string]string)
	}
	c.m[source] = cursor
	return nil
}

// testClock is the sources' clock in tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cloudTrailFile returns a Stratus detonation log as CloudTrail delivers
// it, {"Records":[…]}, and how many records it holds.
func cloudTrailFile(t *testing.T, name string) ([]byte, int) {
	t.Helper()
	b, err := os.ReadFile(pullStratus + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		t.Fatal(err)
	}
	return doc, len(recs)
}

// jsonLines returns a Stratus detonation log as JSON lines.
func jsonLines(t *testing.T, technique string) []byte {
	t.Helper()
	b, err := os.ReadFile(pullStratus + technique + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, r := range recs {
		if err := json.Compact(&out, r); err != nil {
			t.Fatal(err)
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// ctKey is where CloudTrail delivers a file for account and region,
// written for the five minutes from at.
func ctKey(account, region string, at time.Time, random string) string {
	return fmt.Sprintf("AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%s.json.gz",
		account, region, at.Format("2006/01/02"), account, region, at.Format("20060102T1504Z"), random)
}

const (
	testBucket = "trail-bucket"
	testRegion = "eu-west-3"
	testKeyID  = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

type s3Test struct {
	srv     *s3Server
	acc     *testAcceptor
	cursors *testCursors
	clock   *testClock
	records map[string]int // records in each object put
}

func newS3Test(t *testing.T) *s3Test {
	return &s3Test{
		srv:     newS3Server(t, testBucket, testRegion, testKeyID, testSecret),
		acc:     &testAcceptor{},
		cursors: &testCursors{},
		clock:   &testClock{t: time.Date(2024, 7, 31, 14, 0, 0, 0, time.UTC)},
		records: make(map[string]int),
	}
}

// putTrail puts a Stratus log as a CloudTrail delivery at key.
func (st *s3Test) putTrail(t *testing.T, key, technique string, modified time.Time) {
	doc, n := cloudTrailFile(t, technique)
	st.srv.put(key, gzipBytes(t, doc), modified)
	st.records[key] = n
}

// source starts a source on the test's server and stores, as a restarted
// process would.
func (st *s3Test) source(t *testing.T, edit ...func(*S3Options)) (*S3Source, *prometheus.Registry) {
	t.Helper()
	opts := S3Options{
		Bucket: testBucket, Prefix: "AWSLogs/", Region: testRegion,
		Endpoint: st.srv.URL, PathStyle: true,
		AccessKeyID: testKeyID, SecretAccessKey: testSecret,
		RetryMaxAttempts: 1,
		Tenant:           "acme",
		Now:              st.clock.Now,
	}
	for _, e := range edit {
		e(&opts)
	}
	reg := prometheus.NewPedanticRegistry()
	s, err := NewS3Source(opts, st.acc, st.cursors, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// gets returns the keys of the GETs among reqs, in order.
func gets(reqs []string) []string {
	var g []string
	for _, r := range reqs {
		if k, ok := strings.CutPrefix(r, "GET "); ok {
			g = append(g, k)
		}
	}
	return g
}

func sortedKeys(s []string) []string { return slices.Sorted(slices.Values(s)) }

// eventsFrom counts the events stored from each object.
func (st *s3Test) eventsFrom() map[string]int {
	st.acc.mu.Lock()
	defer st.acc.mu.Unlock()
	n := make(map[string]int)
	for _, ev := range st.acc.events {
		// Origin is s3://bucket/key:line, and keys here have no colon.
		key := strings.TrimPrefix(ev.Origin, "s3://"+testBucket+"/")
		if i := strings.LastIndexByte(key, ':'); i >= 0 {
			key = key[:i]
		}
		n[key]++
	}
	return n
}

func TestS3ReadsEachObjectOnce(t *testing.T) {
	st := newS3Test(t)
	st.srv.pageSize = 2 // so that every listing pages
	t0 := time.Date(2024, 7, 31, 13, 5, 0, 0, time.UTC)
	keys := []string{
		ctKey("143434273843", "us-east-1", t0, "aBcD1234"),
		ctKey("143434273843", "us-east-1", t0.Add(5*time.Minute), "eFgH5678"),
		ctKey("143434273843", "us-west-2", t0, "iJkL9012"),
		ctKey("143434273843", "us-west-2", t0.Add(10*time.Minute), "mNoP3456"),
	}
	techniques := []string{
		"aws.defense-evasion.cloudtrail-stop",
		"aws.credential-access.ec2-get-password-data",
		"aws.persistence.iam-create-admin-user",
		"aws.initial-access.console-login-without-mfa",
	}
	for i, k := range keys {
		st.putTrail(t, k, techniques[i], t0.Add(time.Duration(i+1)*time.Minute))
	}
	// CloudTrail's integrity digests are not events, and a folder's
	// placeholder is no object.
	st.srv.put("AWSLogs/143434273843/CloudTrail-Digest/us-east-1/2024/07/31/143434273843_CloudTrail-Digest_us-east-1_trail_us-east-1_20240731T130500Z.json.gz",
		gzipBytes(t, []byte(`{"awsAccountId":"143434273843","digestStartTime":"2024-07-31T12:05:00Z"}`)), t0)
	st.srv.put("AWSLogs/143434273843/CloudTrail/", nil, t0)

	s, reg := st.source(t)
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := sortedKeys(gets(st.srv.takeRequests())), sortedKeys(keys); !slices.Equal(got, want) {
		t.Errorf("first poll read %q, want %q", got, want)
	}
	want := 0
	for _, k := range keys {
		want += st.records[k]
	}
	if ev, q := st.acc.counts(); ev != want || q != 0 {
		t.Fatalf("first poll stored %d events and %d quarantined, want %d and 0", ev, q, want)
	}
	for k, n := range st.eventsFrom() {
		if n != st.records[k] {
			t.Errorf("%s: %d events, want %d", k, n, st.records[k])
		}
	}
	for _, ev := range st.acc.events {
		if ev.Tenant != "acme" || ev.Source != "aws.cloudtrail" || !strings.HasPrefix(ev.Origin, "s3://trail-bucket/AWSLogs/143434273843/CloudTrail/") {
			t.Fatalf("event %s: tenant %q, source %q, origin %q", ev.ID, ev.Tenant, ev.Source, ev.Origin)
		}
	}
	for _, id := range st.acc.stored {
		if !strings.HasPrefix(id, "s3://trail-bucket/AWSLogs/") || !strings.Contains(id, ".json.gz@") || !strings.HasSuffix(id, "#0-"+fmt.Sprint(st.records[strings.TrimPrefix(id[:strings.Index(id, "@")], "s3://trail-bucket/")])) {
			t.Errorf("batch ID %q is not s3://bucket/key@etag#0-<records>", id)
		}
	}
	m := s.metrics
	if got := testutil.ToFloat64(m.objects); got != 4 {
		t.Errorf("objects read: %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.events); got != float64(want) {
		t.Errorf("events metric: %v, want %d", got, want)
	}
	// The newest object was last modified at 13:09; the clock says 14:00.
	if got := testutil.ToFloat64(m.lag); got != (51 * time.Minute).Seconds() {
		t.Errorf("lag: %vs, want %vs", got, (51 * time.Minute).Seconds())
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 6 {
		t.Errorf("metrics registered: %d (%v), want 6", n, err)
	}

	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gets(st.srv.takeRequests()); len(got) > 0 {
		t.Errorf("second poll read %q again", got)
	}
	restarted, _ := st.source(t)
	if err := restarted.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gets(st.srv.takeRequests()); len(got) > 0 {
		t.Errorf("after a restart, read %q again", got)
	}
	if ev, _ := st.acc.counts(); ev != want || len(st.acc.resent) > 0 {
		t.Errorf("after a restart: %d events, %d batches sent again; want %d and none", ev, len(st.acc.resent), want)
	}
}

// TestS3LateArrivals puts objects where a "start after the last key"
// cursor would never look: in a region and an account that sort before
// those read, and in a folder already read, under a key that sorts before
// the keys read there.
func TestS3LateArrivals(t *testing.T) {
	st := newS3Test(t)
	t0 := time.Date(2024, 7, 31, 13, 5, 0, 0, time.UTC)
	first := []string{
		ctKey("222222222222", "us-east-1", t0, "aaaa"),
		ctKey("222222222222", "us-west-2", t0.Add(5*time.Minute), "bbbb"),
	}
	st.putTrail(t, first[0], "aws.defense-evasion.cloudtrail-stop", t0.Add(6*time.Minute))
	st.putTrail(t, first[1], "aws.persistence.iam-create-admin-user", t0.Add(11*time.Minute))
	s, _ := st.source(t)
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	st.srv.takeRequests()

	late := []string{
		// An earlier region, delivered after us-west-2's file.
		ctKey("222222222222", "ap-southeast-2", t0, "cccc"),
		// An earlier account, new to the bucket.
		ctKey("111111111111", "eu-central-1", t0.Add(5*time.Minute), "dddd"),
		// us-west-2's file for the five minutes before the one read,
		// late: its key sorts before that one's.
		ctKey("222222222222", "us-west-2", t0, "eeee"),
		// The same five minutes, another file.
		ctKey("222222222222", "us-west-2", t0.Add(5*time.Minute), "aaaa"),
	}
	for i, k := range late {
		st.putTrail(t, k, "aws.persistence.sts-federation-token", t0.Add(time.Duration(12+i)*time.Minute))
	}
	// Last modified before the newest object read, but listed only now:
	// S3 stamps an object with the time its upload began, so a slow
	// upload appears after quicker ones that began later.
	slow := ctKey("222222222222", "eu-west-1", t0.Add(5*time.Minute), "ffff")
	st.putTrail(t, slow, "aws.defense-evasion.cloudtrail-stop", t0.Add(8*time.Minute))
	late = append(late, slow)
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := sortedKeys(gets(st.srv.takeRequests())), sortedKeys(late); !slices.Equal(got, want) {
		t.Errorf("second poll read %q, want %q", got, want)
	}
	for k, n := range st.records {
		if got := st.eventsFrom()[k]; got != n {
			t.Errorf("%s: %d events, want %d", k, got, n)
		}
	}
	restarted, _ := st.source(t)
	if err := restarted.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gets(st.srv.takeRequests()); len(got) > 0 {
		t.Errorf("after a restart, read %q again", got)
	}
}

// TestS3CursorBounded checks that the cursor holds only the keys of the
// lookback window, and that listings skip the day folders that can no
// longer receive objects.
func TestS3CursorBounded(t *testing.T) {
	st := newS3Test(t)
	start := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	var keys []string
	for day := range 31 {
		for _, h := range []int{3, 15} {
			at := start.AddDate(0, 0, day).Add(time.Duration(h) * time.Hour)
			k := ctKey("143434273843", "us-east-1", at, fmt.Sprintf("r%02d%02d", day, h))
			st.putTrail(t, k, "aws.defense-evasion.cloudtrail-stop", at.Add(5*time.Minute))
			keys = append(keys, k)
		}
	}
	s, _ := st.source(t, func(o *S3Options) { o.Lookback = 20 * time.Hour })
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gets(st.srv.takeRequests()); len(got) != len(keys) {
		t.Fatalf("first poll read %d objects, want %d", len(got), len(keys))
	}
	var c s3Cursor
	if err := json.Unmarshal([]byte(st.cursors.m[s.name]), &c); err != nil {
		t.Fatal(err)
	}
	// The mark is 07-31 15:05; 20 hours back keeps the files of 07-31
	// 03:05 and 15:05 only.
	seen := 0
	for _, names := range c.Seen {
		seen += len(names)
	}
	if want := time.Date(2024, 7, 31, 15, 5, 0, 0, time.UTC); !c.Mark.Equal(want) || seen != 2 {
		t.Errorf("cursor: mark %v and %d keys, want %v and 2:\n%s", c.Mark, seen, want, st.cursors.m[s.name])
	}

	// An object in an old day's folder, delivered now: more than a
	// lookback after its date, so a poll does not look there; with
	// ScanAll it does.
	old := ctKey("143434273843", "us-east-1", start.Add(3*time.Hour), "late")
	st.putTrail(t, old, "aws.defense-evasion.cloudtrail-stop", time.Date(2024, 7, 31, 16, 0, 0, 0, time.UTC))
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	reqs := st.srv.takeRequests()
	if got := gets(reqs); len(got) > 0 {
		t.Errorf("read %q", got)
	}
	wantList := "LIST AWSLogs/143434273843/CloudTrail/us-east-1/2024/ AWSLogs/143434273843/CloudTrail/us-east-1/2024/07/29"
	if !slices.Contains(reqs, wantList) {
		t.Errorf("listings %q, want one %q", reqs, wantList)
	}
	scanAll, _ := st.source(t, func(o *S3Options) { o.Lookback = 20 * time.Hour; o.ScanAll = true })
	if err := scanAll.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gets(st.srv.takeRequests()); !slices.Equal(got, []string{old}) {
		t.Errorf("with ScanAll, read %q, want %q", got, old)
	}
}

func TestS3BadObjects(t *testing.T) {
	st := newS3Test(t)
	t0 := time.Date(2024, 7, 31, 13, 5, 0, 0, time.UTC)
	truncated := ctKey("143434273843", "us-east-1", t0, "trunc")
	notJSON := ctKey("143434273843", "us-east-1", t0.Add(5*time.Minute), "notjson")
	good := ctKey("143434273843", "us-east-1", t0.Add(10*time.Minute), "good")
	plain := "AWSLogs/143434273843/CloudTrail/us-east-1/2024/07/31/exported.json"

	doc, n := cloudTrailFile(t, "aws.credential-access.ec2-get-password-data")
	z := gzipBytes(t, doc)
	st.srv.put(truncated, z[:len(z)/2], t0.Add(1*time.Minute))
	st.srv.put(notJSON, gzipBytes(t, []byte("\x00\x01 this is no log at all \xff\xfe")), t0.Add(2*time.Minute))
	st.putTrail(t, good, "aws.persistence.iam-create-admin-user", t0.Add(3*time.Minute))
	plainDoc, plainN := cloudTrailFile(t, "aws.defense-evasion.cloudtrail-stop")
	st.srv.put(plain, plainDoc, t0.Add(4*time.Minute))

	s, _ := st.source(t)
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := st.eventsFrom()[good]; got != st.records[good] {
		t.Errorf("the object after the bad ones: %d events, want %d", got, st.records[good])
	}
	if got := st.eventsFrom()[plain]; got != plainN {
		t.Errorf("plain object: %d events, want %d", got, plainN)
	}
	if got := st.eventsFrom()[truncated]; got >= n {
		t.Errorf("truncated object: %d events of %d", got, n)
	}
	reasons := map[string]string{}
	for _, q := range st.acc.quarantined {
		reasons[strings.TrimPrefix(q.Origin, "s3://"+testBucket+"/")] = q.Reason
		if q.Tenant != "acme" {
			t.Errorf("quarantined %s under tenant %q", q.Origin, q.Tenant)
		}
	}
	if r := reasons[truncated]; !strings.Contains(r, "unexpected EOF") {
		t.Errorf("truncated object quarantined with reason %q", r)
	}
	if r := reasons[notJSON]; !strings.Contains(r, "format not recognized") {
		t.Errorf("object that is not JSON quarantined with reason %q", r)
	}
	if len(reasons) != 2 {
		t.Errorf("quarantined %v, want the truncated and the not-JSON objects", reasons)
	}
	if got := testutil.ToFloat64(s.metrics.quarantined); got != 2 {
		t.Errorf("quarantined metric %v, want 2", got)
	}
	st.srv.takeRequests()
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gets(st.srv.takeRequests()); len(got) > 0 {
		t.Errorf("bad objects read again: %q", got)
	}
}

// TestS3Failures checks that failures talking to S3 are counted and
// retried without losing or repeating anything.
func TestS3Failures(t *testing.T) {
	st := newS3Test(t)
	t0 := time.Date(2024, 7, 31, 13, 5, 0, 0, time.UTC)
	// a holds JSON lines, so that what is read before the cut makes
	// batches.
	a := "AWSLogs/143434273843/export/2024/07/31/records.jsonl"
	b := ctKey("143434273843", "us-east-1", t0.Add(5*time.Minute), "bbbb")
	c := ctKey("143434273843", "us-east-1", t0.Add(10*time.Minute), "cccc")
	st.srv.put(a, jsonLines(t, "aws.credential-access.ec2-get-password-data"), t0.Add(1*time.Minute))
	_, st.records[a] = cloudTrailFile(t, "aws.credential-access.ec2-get-password-data")
	st.putTrail(t, b, "aws.persistence.iam-create-admin-user", t0.Add(2*time.Minute))
	st.putTrail(t, c, "aws.defense-evasion.cloudtrail-stop", t0.Add(3*time.Minute))
	s, _ := st.source(t, func(o *S3Options) { o.Batch = 10 })

	st.srv.failNext("LIST AWSLogs/", 1)
	if err := s.Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("poll with a failing listing: %v", err)
	}
	// a is cut short half-way, after some of its batches were accepted.
	st.srv.cutNext(a, 1)
	if err := s.Poll(t.Context()); err == nil {
		t.Error("poll reading an object cut short succeeded")
	}
	if _, q := st.acc.counts(); q != 0 {
		t.Errorf("an object cut short was quarantined: %v", st.acc.quarantined)
	}
	st.srv.failNext("GET "+b, 1)
	if err := s.Poll(t.Context()); err == nil {
		t.Error("poll with a failing GET succeeded")
	}
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(s.metrics.errors); got != 3 {
		t.Errorf("errors metric %v, want 3", got)
	}
	for _, k := range []string{a, b, c} {
		if got := st.eventsFrom()[k]; got != st.records[k] {
			t.Errorf("%s: %d events, want %d", k, got, st.records[k])
		}
	}
	if len(st.acc.resent) == 0 {
		t.Error("no batch of the object cut short was sent again")
	}

	// An object deleted between listing and reading is quarantined, so
	// the loss shows.
	d := ctKey("143434273843", "us-east-1", t0.Add(15*time.Minute), "dddd")
	st.putTrail(t, d, "aws.defense-evasion.cloudtrail-stop", t0.Add(4*time.Minute))
	st.srv.handled = func(r *http.Request) {
		if strings.HasSuffix(r.URL.Query().Get("prefix"), "/2024/") {
			st.srv.mu.Lock()
			delete(st.srv.objects, d)
			st.srv.mu.Unlock()
		}
	}
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	st.srv.handled = nil
	if len(st.acc.quarantined) != 1 || !strings.HasSuffix(st.acc.quarantined[0].Origin, d) || !strings.Contains(st.acc.quarantined[0].Reason, "deleted") {
		t.Errorf("quarantined %+v, want %s as deleted", st.acc.quarantined, d)
	}
}

func TestS3BadSignature(t *testing.T) {
	st := newS3Test(t)
	st.srv.allowBadSignatures = true
	st.putTrail(t, ctKey("143434273843", "us-east-1", time.Date(2024, 7, 31, 13, 5, 0, 0, time.UTC), "aaaa"),
		"aws.defense-evasion.cloudtrail-stop", time.Date(2024, 7, 31, 13, 6, 0, 0, time.UTC))
	s, _ := st.source(t, func(o *S3Options) { o.SecretAccessKey = "not the secret" })
	err := s.Poll(t.Context())
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("poll with the wrong secret: %v", err)
	}
	if st.srv.rejected == 0 {
		t.Error("the server accepted a signature made with the wrong secret")
	}
}

func TestS3Busy(t *testing.T) {
	st := newS3Test(t)
	t0 := time.Date(2024, 7, 31, 13, 5, 0, 0, time.UTC)
	k := ctKey("143434273843", "us-east-1", t0, "aaaa")
	st.putTrail(t, k, "aws.credential-access.ec2-get-password-data", t0.Add(time.Minute))
	st.acc.busy = 3
	s, _ := st.source(t, func(o *S3Options) { o.Batch = 50 })
	if err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st.acc.busyAnswers != 3 {
		t.Errorf("acceptor answered busy %d times, want 3", st.acc.busyAnswers)
	}
	if got := st.eventsFrom()[k]; got != st.records[k] {
		t.Errorf("%d events, want %d", got, st.records[k])
	}
}

// TestS3CrashBeforeCursor makes the cursor store fail after an object's
// batches were accepted, as if the process had died there: after a
// restart the object is read again, into the same batches under the same
// IDs, which the pipeline recognises.
func TestS3CrashBeforeCursor(t *testing.T) {
	st := newS3Test(t)
	t0 := time.Date(2024, 7, 31, 13, 5, 0, 0, time.UTC)
	a := ctKey("143434273843", "us-east-1", t0, "aaaa")
	b := ctKey("143434273843", "us-east-1", t0.Add(5*time.Minute), "bbbb")
	st.putTrail(t, a, "aws.persistence.iam-create-admin-user", t0.Add(1*time.Minute))
	st.putTrail(t, b, "aws.credential-access.ec2-get-password-data", t0.Add(2*time.Minute))
	st.cursors.failAt = 2 // after b
	s, _ := st.source(t, func(o *S3Options) { o.Batch = 7 })
	if err := s.Poll(t.Context()); err == nil {
		t.Fatal("poll succeeded with a failing cursor store")
	}
	var sentForB []string
	for _, id := range st.acc.stored {
		if strings.Contains(id, b) {
			sentForB = append(sentForB, id)
		}
	}
	if len(sentForB) < 2 {
		t.Fatalf("b went out in %d batches; the test wants several", len(sentForB))
	}
	st.srv.takeRequests()

	restarted, _ := st.source(t, func(o *S3Options) { o.Batch = 7 })
	if err := restarted.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gets(st.srv.takeRequests()); !slices.Equal(got, []string{b}) {
		t.Errorf("after the restart, read %q, want %q", got, b)
	}
	if !slices.Equal(st.acc.resent, sentForB) {
		t.Errorf("sent again %q, want %q", st.acc.resent, sentForB)
	}
	for _, k := range []string{a, b} {
		if got := st.eventsFrom()[k]; got != st.records[k] {
			t.Errorf("%s: %d events, want %d", k, got, st.records[k])
		}
	}
}

// TestS3Backlog reads a backlog larger than a poll takes, oldest first.
func TestS3Backlog(t *testing.T) {
	st := newS3Test(t)
	t0 := time.Date(2024, 7, 31, 13, 0, 0, 0, time.UTC)
	var order []string
	for i := range 5 {
		// Keys sort in the reverse of their arrival.
		k := ctKey("143434273843", "us-east-1", t0.Add(time.Duration(5-i)*5*time.Minute), "aaaa")
		st.putTrail(t, k, "aws.defense-evasion.cloudtrail-stop", t0.Add(time.Duration(i+1)*time.Hour))
		order = append(order, k)
	}
	s, _ := st.source(t)
	s.maxPerPoll = 2
	var read []string
	for range 3 {
		more, err := s.poll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		read = append(read, gets(st.srv.takeRequests())...)
		if !more {
			break
		}
	}
	if !slices.Equal(read, order) {
		t.Errorf("read %q, want %q", read, order)
	}
	var c s3Cursor
	if err := json.Unmarshal([]byte(st.cursors.m[s.name]), &c); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(5 * time.Hour); !c.Mark.Equal(want) {
		t.Errorf("mark %v, want %v", c.Mark, want)
	}
}

func TestS3Run(t *testing.T) {
	st := newS3Test(t)
	k := ctKey("143434273843", "us-east-1", time.Date(2024, 7, 31, 13, 5, 0, 0, time.UTC), "aaaa")
	st.putTrail(t, k, "aws.defense-evasion.cloudtrail-stop", time.Date(2024, 7, 31, 13, 6, 0, 0, time.UTC))
	s, _ := st.source(t, func(o *S3Options) { o.Poll = 5 * time.Millisecond })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ev, _ := st.acc.counts(); ev == st.records[k] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run read nothing")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	st.cursors.m[s.name] = "{not json"
	broken, _ := st.source(t)
	if err := broken.Run(t.Context()); !errors.Is(err, errBadCursor) {
		t.Errorf("Run with a corrupt cursor: %v", err)
	}
}
