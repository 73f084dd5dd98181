package ledger

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/event"
	"golang.org/x/mod/sumdb/note"
)

const stratusDir = "../../shared/testdata/stratus-red-team-detonation-logs/detonation-logs"

// stratusEvents returns the CloudTrail records of the Stratus Red Team
// detonation logs in the given files (all if none), each with its exact
// bytes as Raw and the normalized fields a parser would fill.
func stratusEvents(t testing.TB, files ...string) []*event.Event {
	t.Helper()
	if len(files) == 0 {
		var err error
		if files, err = filepath.Glob(filepath.Join(stratusDir, "*.json")); err != nil || len(files) == 0 {
			t.Fatalf("no test data in %s: %v", stratusDir, err)
		}
	} else {
		for i, f := range files {
			files[i] = filepath.Join(stratusDir, f)
		}
	}
	var out []*event.Event
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for i, raw := range raws {
			var r struct {
				EventTime, EventSource, EventName, AWSRegion, SourceIPAddress string
				UserAgent, EventID, RecipientAccountID, ErrorCode             string
				UserIdentity                                                  struct{ Type, ARN, AccessKeyID, UserName string }
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			tm, _ := time.Parse(time.RFC3339, r.EventTime)
			ip, _ := netip.ParseAddr(r.SourceIPAddress)
			e := &event.Event{
				Time: tm, Received: tm.Add(3 * time.Minute), Tenant: "acme", Source: "aws.cloudtrail",
				Class: event.ClassAPIActivity, ID: r.EventID,
				Cloud:   event.Cloud{Provider: "aws", Account: r.RecipientAccountID, Region: r.AWSRegion},
				Actor:   event.Actor{ID: r.UserIdentity.ARN, Type: r.UserIdentity.Type, Name: r.UserIdentity.UserName},
				Session: event.Session{ID: r.UserIdentity.AccessKeyID},
				SrcIP:   ip, UserAgent: r.UserAgent, Service: r.EventSource, Action: r.EventName,
				Outcome: event.Outcome{Result: event.OutcomeSuccess},
				Origin:  fmt.Sprintf("%s:%d", filepath.Base(file), i),
				Raw:     raw,
			}
			if r.ErrorCode != "" {
				e.Outcome = event.Outcome{Result: event.OutcomeFailure, Code: r.ErrorCode}
			}
			out = append(out, e)
		}
	}
	return out
}

// oddEvents are events unlike CloudTrail's: raw bytes that are not
// UTF-8, a document beside the raw line, an empty document, a time
// encoding/json cannot marshal, characters HTML escaping would mangle.
func oddEvents() []*event.Event {
	t := time.Date(2024, 7, 31, 13, 6, 24, 123456789, time.UTC)
	return []*event.Event{{
		Time: t, Received: t.Add(time.Hour), Skewed: true, Tenant: "acme", Source: "syslog",
		Class: event.ClassAuthentication, Host: "bastion-1", Service: "sshd", Action: "login",
		SrcIP: netip.MustParseAddr("2001:db8::1"), SrcPort: 50022, DstIP: netip.MustParseAddr("10.0.0.5"), DstPort: 22,
		Resources: []string{"host/bastion-1", "user/root"},
		Outcome:   event.Outcome{Result: event.OutcomeFailure, Code: "auth-failed"},
		Message:   "Failed password for root <script>&amp;",
		Raw:       []byte("<38>Jul 31 13:06:24 bastion-1 sshd[42]: Failed password for r\xffo\xfe\x00t"),
		Doc:       []byte(`{"user":"root","pid":42}`),
	}, {
		Time: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), Source: "json", Class: event.ClassOther,
		Raw: []byte(`{"note":"a date past 9999"}`), Doc: []byte{},
	}}
}

type bundleFixture struct {
	l        *Ledger
	signer   note.Signer
	verifier note.Verifier
	vkey     string
	witness  string // FileWitness path
	events   []*event.Event
	redacted int64 // index of the redacted event
	odd      int64 // index of the first odd event
}

// newBundleFixture opens a ledger that witnesses its checkpoints to a
// file, appends evs and the odd events, takes a checkpoint half way and
// redacts one CloudTrail event.
func newBundleFixture(t testing.TB, evs []*event.Event) *bundleFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &bundleFixture{witness: filepath.Join(dir, "witness")}
	var err error
	fx.signer, fx.verifier, fx.vkey, err = LoadOrCreateKey(filepath.Join(dir, "ledger.key"), "vigil-test")
	if err != nil {
		t.Fatal(err)
	}
	fx.l = openTest(t, filepath.Join(dir, "ledger"), Options{
		Signer: fx.signer, Witnesses: []Witness{FileWitness{Path: fx.witness}}, SegmentBytes: 64 << 10,
	})
	ctx := context.Background()
	half := len(evs) / 2
	if _, err := fx.l.Append(ctx, evs[:half]); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.l.Append(ctx, evs[half:]); err != nil {
		t.Fatal(err)
	}
	fx.odd, err = fx.l.Append(ctx, oddEvents())
	if err != nil {
		t.Fatal(err)
	}
	fx.events = append(slices.Clone(evs), oddEvents()...)
	fx.redacted = int64(half - 1)
	if err := fx.l.Redact(ctx, []int64{fx.redacted}, "GDPR erasure request #17"); err != nil {
		t.Fatal(err)
	}
	return fx
}

var testCustody = Custody{
	ExportedBy: "alice@example.com", ExportedAt: time.Date(2024, 8, 1, 9, 0, 0, 0, time.UTC),
	Query: `action:StopLogging OR src_ip:86.245.153.234`,
	From:  time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC),
	Tool: "vigil test", Host: "vigil-1", Reason: "case 42",
}

func (fx *bundleFixture) export(t testing.TB, indexes []int64) ([]byte, *BundleSummary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := WriteBundle(context.Background(), &buf, fx.l, indexes, testCustody, fx.signer, fx.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sum
}

func verifyBytes(b []byte, opts BundleVerifyOptions) (*BundleReport, error) {
	return VerifyBundle(bytes.NewReader(b), int64(len(b)), opts)
}

// bundleFails reports whether b fails verification, with why it did.
func bundleFails(b []byte, opts BundleVerifyOptions) (bool, string) {
	rep, err := verifyBytes(b, opts)
	if err != nil {
		return true, err.Error()
	}
	if !rep.OK() {
		return true, rep.Problems[0].String()
	}
	return false, ""
}

func TestBundleRoundTrip(t *testing.T) {
	fx := newBundleFixture(t, stratusEvents(t))
	var indexes []int64
	for i := range int64(len(fx.events)) {
		if i%3 == 0 || i == fx.redacted || i >= fx.odd {
			indexes = append(indexes, i)
		}
	}
	// Out of order and repeated: WriteBundle sorts and deduplicates.
	indexes = append(indexes, indexes[3], indexes[1])
	b, sum := fx.export(t, indexes)
	slices.Sort(indexes)
	indexes = slices.Compact(indexes)

	if sum.Events != len(indexes)-1 || sum.Redacted != 1 || sum.Bytes != int64(len(b)) || sum.SHA256 != sha256.Sum256(b) || sum.WitnessErr != nil {
		t.Errorf("summary %+v; want %d events, 1 redacted, %d bytes and their hash", sum, len(indexes)-1, len(b))
	}
	if sum.Checkpoint.Size != fx.l.Size() {
		t.Errorf("checkpoint of %d records; the ledger has %d", sum.Checkpoint.Size, fx.l.Size())
	}

	for _, opts := range []BundleVerifyOptions{{Key: fx.vkey}, {}} {
		rep, err := verifyBytes(b, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("fresh bundle: %v", rep.Problems)
		}
		if rep.Events != sum.Events || rep.Redacted != 1 || rep.Checkpoint != sum.Checkpoint || rep.Key != fx.vkey || rep.TrustedKey != (opts.Key != "") {
			t.Errorf("report %+v; summary %+v", rep, sum)
		}
		if !equalCustody(rep.Custody, testCustody) {
			t.Errorf("custody %+v, want %+v", rep.Custody, testCustody)
		}
	}

	// What a person reading the files sees.
	files := readBundle(t, b)
	if got := files.names(); !slices.Equal(got, bundleFiles) {
		t.Fatalf("files %q, want %q", got, bundleFiles)
	}
	evLines := strings.Split(strings.TrimSuffix(string(files.get(bundleEvents)), "\n"), "\n")
	recLines := strings.Split(strings.TrimSuffix(string(files.get(bundleRecords)), "\n"), "\n")
	if len(evLines) != len(indexes) || len(recLines) != len(indexes) {
		t.Fatalf("%d event lines and %d record lines for %d indexes", len(evLines), len(recLines), len(indexes))
	}
	for i, idx := range indexes {
		var ev map[string]any
		var rec recordLine
		if err := json.Unmarshal([]byte(evLines[i]), &ev); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(recLines[i]), &rec); err != nil {
			t.Fatal(err)
		}
		if ev["seq"] != float64(idx) || rec.Seq != idx {
			t.Fatalf("line %d: seq %v and %d, want %d", i, ev["seq"], rec.Seq, idx)
		}
		e := fx.events[idx]
		switch {
		case idx == fx.redacted:
			red, _ := ev["redacted"].(map[string]any)
			if rec.Kind != "redacted" || rec.Content != nil || rec.Redaction == nil || red["reason"] != "GDPR erasure request #17" || ev["raw"] != nil {
				t.Errorf("redacted record: %s / %s", evLines[i], recLines[i])
			}
			if want := fmt.Sprintf("%x", sha256.Sum256(EncodeEvent(e))); rec.ContentHash != want || ev["content_hash"] != want {
				t.Errorf("redacted record has content hash %s, want %s", rec.ContentHash, want)
			}
		case idx == fx.odd:
			if ev["raw_base64"] != base64.StdEncoding.EncodeToString(e.Raw) || ev["raw"] != nil || ev["doc"] != string(e.Doc) {
				t.Errorf("invalid UTF-8 raw: %s", evLines[i])
			}
			if !strings.Contains(evLines[i], `"message":"Failed password for root <script>&amp;"`) || ev["src_ip"] != "2001:db8::1" || ev["dst_port"] != float64(22) || ev["skewed"] != true {
				t.Errorf("syslog event: %s", evLines[i])
			}
		case idx == fx.odd+1:
			if ev["time"] != "12000-01-01T00:00:00Z" || ev["doc"] != "" {
				t.Errorf("event of year 12000 with an empty doc: %s", evLines[i])
			}
		default:
			if ev["raw"] != string(e.Raw) || ev["action"] != e.Action || ev["time"] != e.Time.Format(time.RFC3339Nano) {
				t.Errorf("CloudTrail event %d: %s", idx, evLines[i])
			}
			actor, _ := ev["actor"].(map[string]any)
			if actor["id"] != e.Actor.ID {
				t.Errorf("CloudTrail event %d: actor %v, want %q", idx, actor, e.Actor.ID)
			}
		}
		if idx != fx.redacted && !bytes.Equal(rec.Content, EncodeEvent(e)) {
			t.Errorf("record %d: content is not the ledger's bytes", idx)
		}
	}
	var cf custodyFile
	if err := json.Unmarshal(files.get(bundleCustody), &cf); err != nil || cf.Events != sum.Events || cf.Redacted != 1 || cf.Ledger != "vigil-test" {
		t.Errorf("custody.json: %s (%v)", files.get(bundleCustody), err)
	}
	if string(files.get(bundleKey)) != fx.vkey+"\n" {
		t.Errorf("key.pub is %q", files.get(bundleKey))
	}
}

func equalCustody(a, b Custody) bool {
	return a.ExportedBy == b.ExportedBy && a.ExportedAt.Equal(b.ExportedAt) && a.Query == b.Query &&
		a.From.Equal(b.From) && a.To.Equal(b.To) && a.Tool == b.Tool && a.Host == b.Host && a.Reason == b.Reason
}

// smallBundle is a bundle of three records, one of each kind of
// event: small enough to change every one of its bytes in turn.
func smallBundle(t testing.TB) (*bundleFixture, []byte) {
	t.Helper()
	fx := newBundleFixture(t, stratusEvents(t, "aws.defense-evasion.cloudtrail-stop.json", "aws.defense-evasion.cloudtrail-delete.json"))
	b, _ := fx.export(t, []int64{fx.redacted, fx.redacted + 1, fx.odd})
	return fx, b
}

// TestBundleEveryByte is the acceptance test of bundles: changing any
// byte of one makes it fail verification.
func TestBundleEveryByte(t *testing.T) {
	fx, b := smallBundle(t)
	opts := BundleVerifyOptions{Key: fx.vkey}
	if fails, why := bundleFails(b, opts); fails {
		t.Fatalf("intact bundle fails: %s", why)
	}
	mod := slices.Clone(b)
	check := func(i int, mask byte) {
		mod[i] ^= mask
		if fails, _ := bundleFails(mod, opts); !fails {
			t.Errorf("byte %d of %d changed from %#x to %#x: the bundle still verifies", i, len(b), b[i], mod[i])
		}
		mod[i] = b[i]
	}
	// One bit of every byte, a different one from byte to byte: the
	// subtlest change, and the one that finds bits a decoder ignores
	// (base64 and deflate padding, flags nobody reads).
	for i := range b {
		check(i, 1<<(i%8))
	}
	// And whole bytes, at intervals: verifying takes about half a
	// millisecond.
	for i := 0; i < len(b); i += 7 {
		check(i, 0xff)
	}
	t.Logf("changed each of %d bytes", len(b))
}

// bundleContent is the content of a bundle's files, in zip order.
type bundleContent []struct {
	name string
	data []byte
}

func readBundle(t testing.TB, b []byte) bundleContent {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var fs bundleContent
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, struct {
			name string
			data []byte
		}{f.Name, data})
	}
	return fs
}

func (fs bundleContent) names() []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.name)
	}
	return out
}

func (fs bundleContent) get(name string) []byte {
	for _, f := range fs {
		if f.name == name {
			return f.data
		}
	}
	return nil
}

func (fs bundleContent) set(name string, data []byte) bundleContent {
	for i, f := range fs {
		if f.name == name {
			fs[i].data = data
			return fs
		}
	}
	return append(fs, struct {
		name string
		data []byte
	}{name, data})
}

func (fs bundleContent) remove(name string) bundleContent {
	return slices.DeleteFunc(fs, func(f struct {
		name string
		data []byte
	}) bool {
		return f.name == name
	})
}

// How rezip treats the manifest.
type manifestMode int

const (
	keepManifest manifestMode = iota // manifest.json and manifest.sig as they are
	updateOnly                       // manifest.json updated, manifest.sig as it is
	resignLedger                     // both made anew, signed with the ledger's key
	resignOther                      // both made anew, signed with another key, which key.pub then names
)

// rezip writes fs as a bundle in canonical form, as someone editing a
// bundle would, with the manifest treated as mode says.
func (fx *bundleFixture) rezip(t testing.TB, fs bundleContent, mode manifestMode) []byte {
	t.Helper()
	signer, verifier := fx.signer, fx.verifier
	if mode == resignOther {
		var vkey string
		signer, verifier, vkey = otherKey(t)
		fs = fs.set(bundleKey, []byte(vkey+"\n"))
	}
	cp, err := parseUnverified(fs.get(bundleCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	bw := &bundleWriter{z: newZipWriter(&buf, cp.Time)}
	for _, f := range fs {
		if f.name != bundleManifest && f.name != bundleManifestSig {
			bw.file(f.name, writeBytes(f.data))
		}
	}
	switch mode {
	case keepManifest, updateOnly:
		m := fs.get(bundleManifest)
		if mode == updateOnly {
			if m, err = bw.manifest(); err != nil {
				t.Fatal(err)
			}
		}
		bw.stored(bundleManifest, m)
		bw.stored(bundleManifestSig, fs.get(bundleManifestSig))
		if bw.err == nil {
			bw.err = bw.z.close()
		}
		err = bw.err
	default:
		err = bw.finish(signer, verifier)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// otherKey is a key that is not the ledger's, with the same name.
func otherKey(t testing.TB) (note.Signer, note.Verifier, string) {
	t.Helper()
	s, v, vkey, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "other.key"), "vigil-test")
	if err != nil {
		t.Fatal(err)
	}
	return s, v, vkey
}

func TestBundleRezipUnchanged(t *testing.T) {
	fx, b := smallBundle(t)
	// The test's editor writes what WriteBundle writes, so that the
	// cases below fail for their edit and nothing else.
	if got := fx.rezip(t, readBundle(t, b), resignLedger); !bytes.Equal(got, b) {
		t.Fatal("rezipping an unchanged bundle gives other bytes")
	}
}

func TestBundleTampering(t *testing.T) {
	fx, b := smallBundle(t)
	lines := func(fs bundleContent, name string) []string {
		return strings.SplitAfter(strings.TrimSuffix(string(fs.get(name)), "\n"), "\n")
	}
	join := func(l []string) []byte { return []byte(strings.Join(l, "")) }
	editEvents := func(fs bundleContent) bundleContent {
		return fs.set(bundleEvents, bytes.Replace(fs.get(bundleEvents), []byte("DeleteTrail"), []byte("DescribeTrails"), 1))
	}
	for _, tc := range []struct {
		name string
		edit func(bundleContent) bundleContent
		mode manifestMode
		// raw, if set, edits the zip's bytes instead.
		raw  func([]byte) []byte
		want string // in the first problem or the error
	}{
		{name: "remove a file", edit: func(fs bundleContent) bundleContent { return fs.remove(bundleCustody) }, mode: keepManifest, want: "custody.json"},
		{name: "remove a file and re-sign", edit: func(fs bundleContent) bundleContent { return fs.remove(bundleConsistency) }, mode: resignLedger, want: "consistency.ndjson: missing"},
		{name: "add a file", edit: func(fs bundleContent) bundleContent { return fs.set("README.txt", []byte("hello")) }, mode: resignLedger, want: `unexpected file "README.txt"`},
		{name: "add a file with a path", edit: func(fs bundleContent) bundleContent { return fs.set("../../etc/passwd", []byte("x")) }, mode: keepManifest, want: "unexpected file"},
		{name: "edit events.ndjson", edit: editEvents, mode: keepManifest, want: "content differs from the manifest"},
		{name: "edit events.ndjson and the manifest", edit: editEvents, mode: updateOnly, want: "manifest.json: does not match its signature"},
		{name: "edit events.ndjson and re-sign with the ledger's key", edit: editEvents, mode: resignLedger, want: "events.ndjson: record 1: line 2 is not what the record's content says"},
		{name: "edit a record's content and re-sign", mode: resignLedger, want: "content does not match content_hash", edit: func(fs bundleContent) bundleContent {
			l := lines(fs, bundleRecords)
			var rl recordLine
			json.Unmarshal([]byte(l[1]), &rl)
			rl.Content = bytes.Replace(rl.Content, []byte("DeleteTrail"), []byte("DeleteTrai_"), 1)
			var enc lineEncoder
			enc.encode(rl)
			l[1] = string(enc.bytes())
			return fs.set(bundleRecords, join(l))
		}},
		{name: "swap two records and re-sign", mode: resignLedger, want: "increasing seq order", edit: func(fs bundleContent) bundleContent {
			for _, name := range []string{bundleEvents, bundleRecords} {
				l := lines(fs, name)
				l[0], l[1] = l[1], l[0]
				fs = fs.set(name, join(l))
			}
			return fs
		}},
		{name: "drop a record and re-sign", mode: resignLedger, want: "custody.json: counts 2 events", edit: func(fs bundleContent) bundleContent {
			for _, name := range []string{bundleEvents, bundleRecords} {
				fs = fs.set(name, join(lines(fs, name)[:2]))
			}
			return fs
		}},
		{name: "unredact a record and re-sign", mode: resignLedger, want: "", edit: func(fs bundleContent) bundleContent {
			var rl recordLine
			l := lines(fs, bundleRecords)
			json.Unmarshal([]byte(l[0]), &rl)
			rl.Kind, rl.Redaction, rl.Content = "event", nil, EncodeEvent(fx.events[fx.redacted])
			rl.Content[len(rl.Content)-1] ^= 1 // a guess at the erased content, not quite right
			var enc lineEncoder
			enc.encode(rl)
			l[0] = string(enc.bytes())
			return fs.set(bundleRecords, join(l))
		}},
		{name: "hostile record lines, re-signed", mode: resignLedger, want: "bad content_hash", edit: func(fs bundleContent) bundleContent {
			return fs.set(bundleRecords, []byte(`{"seq":-5,"kind":"","content_hash":"`+strings.Repeat("ab", 100)+`","proof":null}`+"\n"+
				`{"seq":9223372036854775807,"kind":"event","content_hash":"`+strings.Repeat("00", 32)+`","content":"AQ==","proof":["`+strings.Repeat("A", 43)+`="]}`+"\n"))
		}},
		{name: "edit custody and re-sign with another key", mode: resignOther, want: "manifest.sig: signature", edit: func(fs bundleContent) bundleContent {
			return fs.set(bundleCustody, bytes.Replace(fs.get(bundleCustody), []byte("alice"), []byte("mallory"), 1))
		}},
		{name: "append bytes", raw: func(b []byte) []byte { return append(b, 0) }, want: "not in the form WriteBundle writes"},
		{name: "prepend bytes", raw: func(b []byte) []byte { return append([]byte("MZ"), b...) }, want: "not in the form WriteBundle writes"},
		{name: "zip comment", raw: func(b []byte) []byte {
			b = append(b, "edited"...)
			b[len(b)-8] = 6 // the end record's comment length
			return b
		}, want: "not in the form WriteBundle writes"},
		{name: "rezip with archive/zip", raw: func(b []byte) []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			for _, f := range readBundle(t, b) {
				w, _ := zw.Create(f.name)
				w.Write(f.data)
			}
			zw.Close()
			return buf.Bytes()
		}, want: "not in the form WriteBundle writes"},
		{name: "signature base64 with its unused bits set", raw: func(b []byte) []byte {
			fs := readBundle(t, b)
			sig := slices.Clone(fs.get(bundleManifestSig))
			// The last digit before the padding of the 68 bytes of a
			// signature has 2 unused bits, which are 0.
			sig[bytes.LastIndexByte(sig, '=')-1]++
			return fx.rezip(t, fs.set(bundleManifestSig, sig), keepManifest)
		}, want: "manifest.sig: not in the form note.Sign writes"},
		{name: "a second signature", raw: func(b []byte) []byte {
			fs := readBundle(t, b)
			s, _, _ := otherKey(t)
			signed, err := note.Sign(&note.Note{Text: manifestSigText(fs.get(bundleManifest))}, fx.signer, s)
			if err != nil {
				t.Fatal(err)
			}
			return fx.rezip(t, fs.set(bundleManifestSig, signed), keepManifest)
		}, want: "manifest.sig: has 2 signatures"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mod []byte
			if tc.raw != nil {
				mod = tc.raw(slices.Clone(b))
			} else {
				mod = fx.rezip(t, tc.edit(readBundle(t, b)), tc.mode)
			}
			rep, err := verifyBytes(mod, BundleVerifyOptions{Key: fx.vkey})
			if err != nil {
				t.Fatalf("VerifyBundle: %v", err)
			}
			if rep.OK() {
				t.Fatal("tampered bundle verifies")
			}
			var all []string
			for _, p := range rep.Problems {
				all = append(all, p.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.want) {
				t.Errorf("problems:\n%s\nwant one saying %q", strings.Join(all, "\n"), tc.want)
			}
		})
	}
}

// TestBundleKey checks what a bundle proves about the key: nothing,
// unless the verifier brings the key.
func TestBundleKey(t *testing.T) {
	fx, b := smallBundle(t)
	// A ledger of the same events under another key, as a forger with
	// the events but not the ledger's key would make.
	forger := newBundleFixture(t, stratusEvents(t, "aws.defense-evasion.cloudtrail-stop.json", "aws.defense-evasion.cloudtrail-delete.json"))
	forged, _ := forger.export(t, []int64{forger.redacted, forger.redacted + 1, forger.odd})
	// The real bundle with key.pub replaced and the manifest re-signed.
	resigned := fx.rezip(t, readBundle(t, b), resignOther)

	for _, tc := range []struct {
		name   string
		bundle []byte
		key    string
		ok     bool
	}{
		{"real bundle, real key", b, fx.vkey, true},
		{"real bundle, no key", b, "", true},
		{"real bundle, another key", b, forger.vkey, false},
		{"forged bundle, real key", forged, fx.vkey, false},
		{"forged bundle, no key", forged, "", true}, // intact, but TrustedKey is false
		{"re-signed, real key", resigned, fx.vkey, false},
		{"re-signed, no key", resigned, "", false}, // the checkpoint is still the ledger's
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := verifyBytes(tc.bundle, BundleVerifyOptions{Key: tc.key})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tc.ok {
				t.Fatalf("OK = %v, want %v: %v", rep.OK(), tc.ok, rep.Problems)
			}
			if rep.TrustedKey != (tc.key != "") {
				t.Errorf("TrustedKey = %v with key %q", rep.TrustedKey, tc.key)
			}
		})
	}
	if _, err := verifyBytes(b, BundleVerifyOptions{Key: "not a key"}); err == nil {
		t.Error("a malformed key is not an error")
	}
}

// TestBundleTrusted checks bundles against a witness's checkpoints.
func TestBundleTrusted(t *testing.T) {
	fx := newBundleFixture(t, stratusEvents(t, "aws.persistence.iam-create-admin-user.json", "aws.defense-evasion.organizations-leave.json"))
	ctx := context.Background()
	if _, err := fx.l.Append(ctx, stratusEvents(t, "aws.defense-evasion.cloudtrail-stop.json")); err != nil {
		t.Fatal(err)
	}
	b, sum := fx.export(t, []int64{0, 2, 5})
	before, err := os.ReadFile(fx.witness)
	if err != nil {
		t.Fatal(err)
	}
	witnessed := SplitCheckpoints(before) // the first checkpoint and the bundle's
	if len(witnessed) != 2 {
		t.Fatalf("witness has %d checkpoints, want 2", len(witnessed))
	}
	// A checkpoint after the export cannot be compared offline.
	if _, err := fx.l.Append(ctx, stratusEvents(t, "aws.defense-evasion.cloudtrail-delete.json")); err != nil {
		t.Fatal(err)
	}
	later, err := fx.l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoints of a fork: the ledger's key signing another history,
	// one as long as the bundle's tree and one shorter.
	fork := openTest(t, t.TempDir(), Options{Signer: fx.signer})
	fill(t, fork, 3, 3) // as many records as the ledger's first checkpoint
	forkShort, err := fork.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, fork, int(sum.Checkpoint.Size-fork.Size()), 100)
	forkSame, err := fork.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := otherKey(t)
	foreign, err := note.Sign(&note.Note{Text: string(formatCheckpoint(sum.Checkpoint))}, other)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		trusted [][]byte
		checked int    // results with OK set
		want    string // in the problems; "" if none
	}{
		{"witness file", witnessed, 2, ""},
		{"the earlier checkpoint only", witnessed[:1], 1, ""},
		{"witness file and a later checkpoint", append(slices.Clone(witnessed), later), 2, ""},
		{"a later checkpoint only", [][]byte{later}, 0, "none of the 1 trusted checkpoints could be checked"},
		{"a fork of the same size", append(slices.Clone(witnessed), forkSame), 2, "contradicts trusted #2: root hash"},
		{"a shorter fork", [][]byte{forkShort}, 0, "contradicts trusted #0: the bundle's tree does not extend it"},
		{"signed by another key", [][]byte{foreign}, 0, "trusted #0: ledger: checkpoint signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := verifyBytes(b, BundleVerifyOptions{Key: fx.vkey, Trusted: tc.trusted})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != (tc.want == "") || tc.want != "" && !strings.Contains(fmt.Sprint(rep.Problems), tc.want) {
				t.Errorf("problems %v; want one saying %q", rep.Problems, tc.want)
			}
			checked := 0
			for _, r := range rep.Trusted {
				if r.OK {
					checked++
				}
			}
			if len(rep.Trusted) != len(tc.trusted) || checked != tc.checked {
				t.Errorf("trusted results %+v; want %d of %d checked", rep.Trusted, tc.checked, len(tc.trusted))
			}
		})
	}
}

func TestWriteBundleErrors(t *testing.T) {
	fx := newBundleFixture(t, stratusEvents(t, "aws.defense-evasion.cloudtrail-stop.json", "aws.defense-evasion.cloudtrail-delete.json"))
	ctx := context.Background()
	_, _, otherVkey := otherKey(t)
	for _, tc := range []struct {
		name    string
		indexes []int64
		vkey    string
		want    string
	}{
		{"index past the end", []int64{0, 1000}, fx.vkey, "indexes must be in 0.."},
		{"negative index", []int64{-1}, fx.vkey, "indexes must be in 0.."},
		{"another key", []int64{0}, otherVkey, "does not verify with the given key"},
		{"malformed key", []int64{0}, "vigil-test+1234+AAAA", "verifier key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := WriteBundle(ctx, &buf, fx.l, tc.indexes, testCustody, fx.signer, tc.vkey)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}

	// Records removed by retention and the ledger's own records.
	l := openTest(t, t.TempDir(), Options{Signer: fx.signer, SegmentBytes: 4 << 10})
	fill(t, l, 100, 10)
	rm, err := l.RemoveBefore(ctx, 50, "retention: 90 days")
	if err != nil || len(rm.Removed) == 0 {
		t.Fatalf("RemoveBefore = %+v, %v", rm, err)
	}
	var buf bytes.Buffer
	if _, err := WriteBundle(ctx, &buf, l, []int64{rm.Removed[0].First, 99}, testCustody, fx.signer, fx.vkey); !errors.Is(err, ErrRemoved) {
		t.Errorf("exporting a removed record: %v, want ErrRemoved", err)
	}
	if _, err := WriteBundle(ctx, &buf, l, []int64{rm.Index}, testCustody, fx.signer, fx.vkey); err == nil || !strings.Contains(err.Error(), "not an event") {
		t.Errorf("exporting a meta record: %v", err)
	}
	buf.Reset()
	if sum, err := WriteBundle(ctx, &buf, l, []int64{99}, testCustody, fx.signer, fx.vkey); err != nil || sum.Events != 1 {
		t.Fatalf("exporting a kept record after retention: %+v, %v", sum, err)
	}
	if rep, err := verifyBytes(buf.Bytes(), BundleVerifyOptions{Key: fx.vkey}); err != nil || !rep.OK() {
		t.Errorf("bundle after retention: %v, %v", err, rep.Problems)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := WriteBundle(cctx, &buf, l, []int64{99}, testCustody, fx.signer, fx.vkey); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled export: %v", err)
	}
}

func TestBundleEmpty(t *testing.T) {
	fx := newBundleFixture(t, stratusEvents(t, "aws.defense-evasion.cloudtrail-stop.json", "aws.defense-evasion.cloudtrail-delete.json"))
	b, sum := fx.export(t, nil)
	rep, err := verifyBytes(b, BundleVerifyOptions{Key: fx.vkey})
	if err != nil || !rep.OK() || rep.Events != 0 || sum.Events != 0 {
		t.Fatalf("empty bundle: %v, %+v", err, rep)
	}
}

func TestVerifyBundleLimits(t *testing.T) {
	fx, b := smallBundle(t)
	if _, err := verifyBytes(b, BundleVerifyOptions{Key: fx.vkey, MaxBytes: 1000}); err == nil || !strings.Contains(err.Error(), "MaxBytes") {
		t.Errorf("bundle over MaxBytes: %v", err)
	}
	if _, err := verifyBytes([]byte("not a zip"), BundleVerifyOptions{}); err == nil {
		t.Error("garbage verified without error")
	}
	// A deflate bomb: a file declaring a huge size is refused without
	// being inflated.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create(bundleEvents)
	zeros := make([]byte, 1<<20)
	for range 64 {
		w.Write(zeros)
	}
	zw.Close()
	if _, err := verifyBytes(buf.Bytes(), BundleVerifyOptions{MaxBytes: 16 << 20}); err == nil {
		t.Error("64 MiB of zeros in a bundle limited to 16 MiB verified")
	}
}

// FuzzVerifyBundle feeds VerifyBundle arbitrary bytes. It must report,
// never panic, and nothing but the bundle it was seeded with may verify.
func FuzzVerifyBundle(f *testing.F) {
	// One event: the smaller the seed, the faster the fuzzer minimizes
	// what it finds.
	fx := newBundleFixture(f, stratusEvents(f, "aws.defense-evasion.cloudtrail-stop.json", "aws.defense-evasion.cloudtrail-delete.json"))
	b, _ := fx.export(f, []int64{fx.odd})
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(fx.rezip(f, readBundle(f, b).remove(bundleConsistency), keepManifest))
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := verifyBytes(in, BundleVerifyOptions{Key: fx.vkey, MaxBytes: 1 << 20})
		if err != nil {
			return
		}
		if rep.OK() && !bytes.Equal(in, b) {
			t.Fatalf("a bundle other than the seed verifies")
		}
	})
}

// FuzzVerifyBundleSigned fuzzes the files of a bundle behind its
// signatures: what only the holder of the ledger's key could write, and
// what VerifyBundle parses only once the manifest's signature holds.
func FuzzVerifyBundleSigned(f *testing.F) {
	fx := newBundleFixture(f, stratusEvents(f, "aws.defense-evasion.cloudtrail-stop.json", "aws.defense-evasion.cloudtrail-delete.json"))
	b, _ := fx.export(f, []int64{fx.redacted, fx.odd})
	seed := readBundle(f, b)
	f.Add(seed.get(bundleEvents), seed.get(bundleRecords), seed.get(bundleConsistency), seed.get(bundleCustody))
	f.Fuzz(func(t *testing.T, events, records, consistency, custody []byte) {
		fs := slices.Clone(seed)
		fs = fs.set(bundleEvents, events).set(bundleRecords, records).set(bundleConsistency, consistency).set(bundleCustody, custody)
		mod := fx.rezip(t, fs, resignLedger)
		rep, err := verifyBytes(mod, BundleVerifyOptions{Key: fx.vkey, Trusted: SplitCheckpoints(mustRead(t, fx.witness))})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			return
		}
		// The key's holder can say anything about a redaction, which
		// the tree does not cover, but nothing else.
		for _, line := range bytes.SplitAfter(records, []byte("\n")) {
			var rl recordLine
			if len(line) == 0 || json.Unmarshal(line, &rl) != nil {
				continue
			}
			rec, err := fx.l.Read(rl.Seq)
			if err != nil {
				t.Fatalf("record %d verifies but the ledger has none: %v", rl.Seq, err)
			}
			if rl.ContentHash != fmt.Sprintf("%x", rec.ContentHash) || rl.Kind == "event" && !bytes.Equal(rl.Content, rec.Content) {
				t.Fatalf("record %d verifies but is not the ledger's:\n%s", rl.Seq, line)
			}
		}
	})
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkWriteBundle exports 10,000 CloudTrail events (the Stratus
// records, repeated) and verifies the bundle.
func BenchmarkWriteBundle(b *testing.B) {
	evs := stratusEvents(b)
	var all []*event.Event
	for len(all) < 10000 {
		for _, e := range evs {
			c := *e
			all = append(all, &c)
		}
	}
	fx := newBundleFixture(b, all[:10000])
	indexes := make([]int64, fx.l.Size())
	for i := range indexes {
		indexes[i] = int64(i)
	}
	var bundle []byte
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			bundle, _ = fx.export(b, indexes)
		}
		b.ReportMetric(float64(len(bundle)), "bundle-bytes")
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			rep, err := verifyBytes(bundle, BundleVerifyOptions{Key: fx.vkey})
			if err != nil || !rep.OK() {
				b.Fatal(err, rep.Problems)
			}
		}
	})
}
