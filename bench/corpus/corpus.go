// Package corpus builds large, deterministic CloudTrail corpora for the
// benchmarks from a few hundred real records.
//
// Each generated event is one of the fixture records with the fields that
// make records distinct in real logs replaced: eventID and requestID (new
// UUIDs), eventTime (spread over the corpus' time span), sourceIPAddress,
// the account id, the region and the user name. Everything else — the
// shape, the nesting, the request parameters, the size — is the real
// record's, so that parsing costs what it costs on real logs.
//
// The corpus is written the way CloudTrail delivers to S3: gzip-compressed
// files of one {"Records":[…]} document, each of one account and region,
// under AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/. A few "needle"
// source addresses (NeedleIPs) are planted rarely, for needle searches.
//
// The same Options always give the same bytes.
package corpus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// NeedleIPs are the rare source addresses planted in a corpus, all in
// 203.0.113.0/24 (TEST-NET-3), which no other event uses.
var NeedleIPs = []string{"203.0.113.66", "203.0.113.99", "203.0.113.201"}

// NeedleCIDR holds every needle address and no other source address.
const NeedleCIDR = "203.0.113.0/24"

// Options describe a corpus.
type Options struct {
	// Fixtures is a directory of CloudTrail JSON files, each an array of
	// records or a {"Records":[…]} document.
	Fixtures string
	Events   int    // events in the corpus
	Seed     uint64 // the same seed gives the same corpus

	MinPerFile, MaxPerFile int // events per file; 0 means 1000 and 5000

	Start time.Time     // first event time; zero means 2024-07-01T00:00:00Z
	Span  time.Duration // event times lie in [Start, Start+Span); 0 means 30 days

	Accounts int // distinct account ids; 0 means 36
	Users    int // distinct user names; 0 means 200
	IPs      int // distinct (non-needle) source addresses; 0 means 5000

	// NeedleEvery plants a needle address in one event in NeedleEvery on
	// average; 0 means 100000.
	NeedleEvery int

	Workers int // files written at once; 0 means GOMAXPROCS
}

func (o *Options) defaults() {
	if o.MinPerFile <= 0 {
		o.MinPerFile = 1000
	}
	if o.MaxPerFile < o.MinPerFile {
		o.MaxPerFile = max(o.MinPerFile, 5000)
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Span <= 0 {
		o.Span = 30 * 24 * time.Hour
	}
	if o.Accounts <= 0 {
		o.Accounts = 36
	}
	if o.Users <= 0 {
		o.Users = 200
	}
	if o.IPs <= 0 {
		o.IPs = 5000
	}
	if o.NeedleEvery <= 0 {
		o.NeedleEvery = 100000
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
}

// Addresses returns the source addresses a corpus of these options
// draws its events' from, the needles aside: a benchmark that enriches
// the corpus lists some of them, as a user's inventory and feeds would.
func Addresses(o Options) []string {
	o.defaults()
	return newGenerator(o, nil).ips
}

// Manifest describes a written corpus. It is written last, as
// manifest.json, so that its presence says the corpus is complete.
type Manifest struct {
	Events     int            `json:"events"`
	Seed       uint64         `json:"seed"`
	Files      int            `json:"files"`
	Bytes      int64          `json:"bytes"`      // on disk, compressed
	JSONBytes  int64          `json:"json_bytes"` // uncompressed
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Needles    map[string]int `json:"needles"`     // needle address → events carrying it
	EventNames map[string]int `json:"event_names"` // eventName → events
	Templates  int            `json:"templates"`   // fixture records used
}

const manifestName = "manifest.json"

// ReadManifest reads the manifest of the corpus in dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, fmt.Errorf("reading corpus manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading corpus manifest %s: %w", filepath.Join(dir, manifestName), err)
	}
	return &m, nil
}

// Ensure returns the corpus in dir, building it first unless dir already
// holds a complete corpus of the same size and seed.
func Ensure(dir string, opts Options) (m *Manifest, built bool, err error) {
	if m, err := ReadManifest(dir); err == nil && m.Events == opts.Events && m.Seed == opts.Seed {
		return m, false, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, false, fmt.Errorf("removing incomplete corpus: %w", err)
	}
	m, err = Build(dir, opts)
	return m, err == nil, err
}

// Build writes a corpus into dir, which must not exist or be empty.
func Build(dir string, opts Options) (*Manifest, error) {
	opts.defaults()
	if opts.Events <= 0 {
		return nil, errors.New("building corpus: no events asked for")
	}
	tmpls, err := loadTemplates(opts.Fixtures)
	if err != nil {
		return nil, fmt.Errorf("building corpus: %w", err)
	}
	g := newGenerator(opts, tmpls)
	plans := g.plan()

	m := &Manifest{
		Events: opts.Events, Seed: opts.Seed, Files: len(plans),
		Start: opts.Start, End: opts.Start.Add(opts.Span),
		Needles: map[string]int{}, EventNames: map[string]int{}, Templates: len(tmpls),
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan *filePlan)
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &fileWriter{g: g, needles: map[string]int{}, names: map[string]int{}}
			for p := range work {
				if err := w.write(dir, p); err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
				}
			}
			mu.Lock()
			m.Bytes += w.bytes
			m.JSONBytes += w.jsonBytes
			for k, v := range w.needles {
				m.Needles[k] += v
			}
			for k, v := range w.names {
				m.EventNames[k] += v
			}
			mu.Unlock()
		}()
	}
	for _, p := range plans {
		work <- p
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, manifestName), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("writing corpus manifest: %w", err)
	}
	return m, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// The slots of a template: the values each generated event replaces.
const (
	slotEventID = 'E'
	slotRequest = 'Q'
	slotTime    = 'T'
	slotIP      = 'I'
	slotAccount = 'A'
	slotRegion  = 'R'
	slotUser    = 'U'
)

// A template is a fixture record cut at its slots: parts[0] slots[0]
// parts[1] … slots[n-1] parts[n].
type template struct {
	name  string // eventName
	parts [][]byte
	slots []byte
}

// fixtureUser is the user name of the Stratus Red Team detonations,
// which every generated event replaces with one of its own.
const fixtureUser = "christophe"

func loadTemplates(dir string) ([]*template, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.json fixtures in %s", dir)
	}
	slices.Sort(files)
	var out []*template
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading fixtures: %w", err)
		}
		recs, err := fixtureRecords(b)
		if err != nil {
			return nil, fmt.Errorf("reading fixtures from %s: %w", f, err)
		}
		for i, rec := range recs {
			t, err := newTemplate(rec)
			if err != nil {
				return nil, fmt.Errorf("fixture %s record %d: %w", f, i, err)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

func fixtureRecords(b []byte) ([]json.RawMessage, error) {
	var recs []json.RawMessage
	if err := json.Unmarshal(b, &recs); err == nil {
		return recs, nil
	}
	var w struct{ Records []json.RawMessage }
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	return w.Records, nil
}

func newTemplate(rec []byte) (*template, error) {
	var r struct {
		EventID, RequestID, EventTime, EventName string
		SourceIPAddress                          string
		AWSRegion                                string `json:"awsRegion"`
		RecipientAccountID                       string `json:"recipientAccountId"`
		UserIdentity                             struct {
			AccountID string `json:"accountId"`
		} `json:"userIdentity"`
	}
	if err := json.Unmarshal(rec, &r); err != nil {
		return nil, err
	}
	if r.EventName == "" || r.EventTime == "" {
		return nil, errors.New("not a CloudTrail record")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, rec); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	// Compact JSON holds no control characters, so NUL marks a slot.
	mark := func(slot byte) []byte { return []byte{0, slot, 0} }
	field := func(key, val string, slot byte) {
		if val == "" {
			return
		}
		v, _ := json.Marshal(val)
		k, _ := json.Marshal(key)
		old := append(append(k, ':'), v...)
		b = bytes.ReplaceAll(b, old, append(append(append(k, ':', '"'), mark(slot)...), '"'))
	}
	every := func(val string, slot byte) {
		if val != "" {
			b = bytes.ReplaceAll(b, []byte(val), mark(slot))
		}
	}
	field("eventID", r.EventID, slotEventID)
	field("requestID", r.RequestID, slotRequest)
	field("eventTime", r.EventTime, slotTime)
	if strings.Trim(r.SourceIPAddress, "0123456789.") == "" { // not a service name
		field("sourceIPAddress", r.SourceIPAddress, slotIP)
	}
	every(r.RecipientAccountID, slotAccount)
	every(r.UserIdentity.AccountID, slotAccount)
	every(r.AWSRegion, slotRegion)
	every(fixtureUser, slotUser)

	t := &template{name: r.EventName}
	for {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			t.parts = append(t.parts, b)
			return t, nil
		}
		t.parts = append(t.parts, b[:i])
		t.slots = append(t.slots, b[i+1])
		b = b[i+3:]
	}
}

// A generator holds what every file draws from.
type generator struct {
	opts     Options
	tmpls    []*template
	accounts []string
	regions  []string
	users    []string
	ips      []string
}

// regions are real AWS regions, in rough order of how busy they are.
var regions = []string{"us-east-1", "eu-west-1", "us-west-2", "eu-central-1", "ap-southeast-2", "us-east-2", "ap-northeast-1", "sa-east-1"}

var firstNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "karl", "laura", "mike", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "ursula", "victor", "wendy", "xavier", "yolanda", "zoe"}

func newGenerator(opts Options, tmpls []*template) *generator {
	r := rand.New(rand.NewPCG(opts.Seed, 0x636f72707573)) // "corpus"
	g := &generator{opts: opts, tmpls: tmpls, regions: regions}
	for range opts.Accounts {
		g.accounts = append(g.accounts, fmt.Sprintf("%012d", r.Int64N(1e12)))
	}
	for i := range opts.Users {
		g.users = append(g.users, fmt.Sprintf("%s.%s%d", firstNames[i%len(firstNames)], firstNames[r.IntN(len(firstNames))][:1], i))
	}
	for len(g.ips) < opts.IPs {
		a := 1 + r.IntN(222)
		b, c, d := r.IntN(256), r.IntN(256), 1+r.IntN(254)
		if a == 10 || a == 127 || (a == 203 && b == 0 && c == 113) {
			continue
		}
		g.ips = append(g.ips, fmt.Sprintf("%d.%d.%d.%d", a, b, c, d))
	}
	return g
}

// A filePlan is one file to write.
type filePlan struct {
	index    int
	events   int
	account  string
	region   string
	from, to time.Time // the file's events lie in [from, to)
}

// plan divides the events into files, in time order.
func (g *generator) plan() []*filePlan {
	r := rand.New(rand.NewPCG(g.opts.Seed, 0x706c616e)) // "plan"
	var plans []*filePlan
	for left := g.opts.Events; left > 0; {
		n := min(left, g.opts.MinPerFile+r.IntN(g.opts.MaxPerFile-g.opts.MinPerFile+1))
		left -= n
		plans = append(plans, &filePlan{
			index:   len(plans),
			events:  n,
			account: g.accounts[r.IntN(len(g.accounts))],
			region:  g.regions[min(r.IntN(len(g.regions)), r.IntN(len(g.regions)))],
		})
	}
	slot := g.opts.Span / time.Duration(len(plans))
	for i, p := range plans {
		p.from = g.opts.Start.Add(time.Duration(i) * slot)
		p.to = p.from.Add(max(slot, time.Second))
	}
	return plans
}

// A fileWriter writes files, one at a time.
type fileWriter struct {
	g         *generator
	buf       bytes.Buffer
	zbuf      bytes.Buffer
	zw        *gzip.Writer
	bytes     int64
	jsonBytes int64
	needles   map[string]int
	names     map[string]int
}

func (w *fileWriter) write(dir string, p *filePlan) error {
	g := w.g
	r := rand.New(rand.NewPCG(g.opts.Seed, uint64(p.index)+1<<32))
	times := make([]time.Time, p.events)
	width := int64(p.to.Sub(p.from) / time.Second)
	for i := range times {
		times[i] = p.from.Add(time.Duration(r.Int64N(width)) * time.Second)
	}
	// CloudTrail writes a file's records roughly in time order.
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })

	w.buf.Reset()
	w.buf.WriteString(`{"Records":[`)
	var tb [32]byte
	for i, ts := range times {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		t := g.tmpls[r.IntN(len(g.tmpls))]
		w.names[t.name]++
		for j, slot := range t.slots {
			w.buf.Write(t.parts[j])
			switch slot {
			case slotEventID, slotRequest:
				writeUUID(&w.buf, r)
			case slotTime:
				w.buf.Write(ts.AppendFormat(tb[:0], "2006-01-02T15:04:05Z"))
			case slotIP:
				if r.IntN(g.opts.NeedleEvery) == 0 {
					ip := NeedleIPs[r.IntN(len(NeedleIPs))]
					w.needles[ip]++
					w.buf.WriteString(ip)
				} else {
					w.buf.WriteString(g.ips[r.IntN(len(g.ips))])
				}
			case slotAccount:
				w.buf.WriteString(p.account)
			case slotRegion:
				w.buf.WriteString(p.region)
			case slotUser:
				w.buf.WriteString(g.users[r.IntN(len(g.users))])
			}
		}
		w.buf.Write(t.parts[len(t.parts)-1])
	}
	w.buf.WriteString("]}\n")

	w.zbuf.Reset()
	if w.zw == nil {
		w.zw = gzip.NewWriter(&w.zbuf)
	} else {
		w.zw.Reset(&w.zbuf)
	}
	if _, err := w.zw.Write(w.buf.Bytes()); err != nil {
		return fmt.Errorf("compressing corpus file: %w", err)
	}
	if err := w.zw.Close(); err != nil {
		return fmt.Errorf("compressing corpus file: %w", err)
	}
	name := filepath.Join(dir, "AWSLogs", p.account, "CloudTrail", p.region, p.from.Format("2006/01/02"),
		fmt.Sprintf("%s_CloudTrail_%s_%s_%016x.json.gz", p.account, p.region, p.from.Format("20060102T1504Z"), r.Uint64()))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("writing corpus: %w", err)
	}
	if err := os.WriteFile(name, w.zbuf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing corpus: %w", err)
	}
	w.bytes += int64(w.zbuf.Len())
	w.jsonBytes += int64(w.buf.Len())
	return nil
}

// writeUUID writes a random (version 4) UUID drawn from r.
func writeUUID(b *bytes.Buffer, r *rand.Rand) {
	const hex = "0123456789abcdef"
	var u [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		u[i], u[8+i] = byte(hi>>(8*i)), byte(lo>>(8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	b.Write(s[:])
}
