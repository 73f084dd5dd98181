// Package clickhouse keeps events in ClickHouse, for a deployment that
// outgrows one machine: a table on each shard, ordered by (tenant, time)
// and partitioned by day, behind a Distributed table over the shards,
// written and read over ClickHouse's HTTP interface.
//
// The oldest server it supports is 18.16, Debian 12's clickhouse-server,
// and it asks of it only what that release has:
//   - no DateTime64: times are Int64 nanoseconds since the epoch (time,
//     received), beside a Date for the partitions;
//   - no JSONExtract: the fields of the original document are kept
//     flattened too, as parallel arrays of paths and values (see
//     Flatten), which a query reads with indexOf;
//   - no deduplication of inserts outside replicated tables: each event
//     goes to the shard its identity (tenant, ledger, seq) hashes to, so
//     a retried batch lands where its first try did, and the tables are
//     ReplacingMergeTree, whose sorting key holds that identity: a
//     duplicate is collapsed at the next merge; statistics read with
//     FINAL, and plain events searches keep each seq once themselves
//     (search.go).
package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/vigilsec/vigil/event"
)

// Options say where the cluster is.
type Options struct {
	// Shards are the HTTP interfaces of the cluster's shards, one server
	// each (http://127.0.0.1:8123), in the order of the cluster's
	// remote_servers.
	Shards []string
	// Cluster is the cluster's name in the servers' remote_servers, which
	// the Distributed table spans.
	Cluster string
	// Database holds the tables; default "vigil".
	Database string
	// Client sends the requests; default http.DefaultClient.
	Client *http.Client
	// Writer names the process that writes, when several do (a
	// scale-out's node): the identity of a batch of samples is its
	// writer's and its content's, so that a call one process makes again
	// is stored once, and two processes storing the same samples (two
	// nodes' equal parts of a flow-log bucket) store both.
	Writer string
}

// A Store is a ClickHouse cluster holding events. It is safe for
// concurrent use.
type Store struct {
	opts   Options
	client *http.Client
	words  *wordIndex // words.go
}

// Open makes the database and tables on every shard, where they are
// missing, and returns the store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Shards) == 0 {
		return nil, errors.New("clickhouse: no shard given")
	}
	if opts.Cluster == "" {
		return nil, errors.New("clickhouse: no cluster named")
	}
	if opts.Database == "" {
		opts.Database = "vigil"
	}
	if !identifier(opts.Database) || !identifier(opts.Cluster) {
		return nil, fmt.Errorf("clickhouse: %q and %q: a database and a cluster are named with letters, digits and _", opts.Database, opts.Cluster)
	}
	s := &Store{opts: opts, client: opts.Client, words: &wordIndex{shards: make([]shardLoad, len(opts.Shards))}}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	for i := range opts.Shards {
		for _, stmt := range s.schema() {
			if _, err := s.exec(ctx, i, stmt, nil); err != nil {
				return nil, fmt.Errorf("clickhouse: making the tables on shard %d: %w", i+1, err)
			}
		}
	}
	return s, nil
}

func identifier(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// columns are the events table's, in the order of row's fields: those of
// the DuckDB store, but for times (nanoseconds), the raw bytes that are
// not UTF-8 and the 16-byte addresses (raw_bin in base64, *_ip_bin in
// hex, since JSON carries text), the ledger the event is in (0 for the
// single ledger of one node), and the document's fields (Flatten).
const columns = `day Date,
	time Int64,
	received Int64,
	skewed UInt8,
	ledger UInt16,
	seq UInt64,
	tenant String,
	source String,
	class String,
	event_id Nullable(String),
	provider Nullable(String),
	account Nullable(String),
	region Nullable(String),
	environment Nullable(String),
	actor Nullable(String),
	actor_id Nullable(String),
	actor_type Nullable(String),
	session_id Nullable(String),
	session_origin Nullable(String),
	src_ip Nullable(String),
	src_ip_bin Nullable(String),
	dst_ip Nullable(String),
	dst_ip_bin Nullable(String),
	src_port Nullable(UInt16),
	dst_port Nullable(UInt16),
	host Nullable(String),
	user_agent Nullable(String),
	service Nullable(String),
	action Nullable(String),
	resources Array(String),
	outcome Nullable(String),
	error_code Nullable(String),
	message Nullable(String),
	origin Nullable(String),
	raw String,
	raw_bin Nullable(String),
	doc Nullable(String),
	src_asset Nullable(String),
	src_owner Nullable(String),
	src_country Nullable(String),
	src_city Nullable(String),
	src_asn Nullable(UInt32),
	src_as_org Nullable(String),
	src_cloud Nullable(String),
	dst_asset Nullable(String),
	dst_owner Nullable(String),
	dst_country Nullable(String),
	dst_city Nullable(String),
	dst_asn Nullable(UInt32),
	dst_as_org Nullable(String),
	dst_cloud Nullable(String),
	team Nullable(String),
	intel Array(String),
	intel_indicator Array(String),
	intel_type Array(String),
	doc_keys Array(String),
	doc_values Array(String)`

// schema is the statements that make the tables of one shard.
func (s *Store) schema() []string {
	db := s.opts.Database
	return append([]string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE TABLE IF NOT EXISTS " + db + ".events_local (" + columns + ")" +
			" ENGINE = ReplacingMergeTree() PARTITION BY day ORDER BY (tenant, time, ledger, seq)",
		// The sharding key is the one Append routes by, for whoever
		// inserts through the Distributed table.
		"CREATE TABLE IF NOT EXISTS " + db + ".events AS " + db + ".events_local" +
			" ENGINE = Distributed(" + s.opts.Cluster + ", " + db + ", events_local, cityHash64(tenant, ledger, seq))",
		// Quarantined records have no identity to collapse duplicates by
		// (see Quarantine), so a plain MergeTree.
		"CREATE TABLE IF NOT EXISTS " + db + ".quarantine_local (" + quarantineColumns + ")" +
			" ENGINE = MergeTree() PARTITION BY day ORDER BY (tenant, received)",
		// Quarantine picks no shard by content, and neither does this
		// key, for whoever inserts through the Distributed table.
		"CREATE TABLE IF NOT EXISTS " + db + ".quarantine AS " + db + ".quarantine_local" +
			" ENGINE = Distributed(" + s.opts.Cluster + ", " + db + ", quarantine_local, rand())",
	}, slices.Concat(s.bloomsSchema(), s.samplesSchema())...)
}

// row is one event as the events table's JSONEachRow.
type row struct {
	Day         string   `json:"day"`
	Time        int64    `json:"time"`
	Received    int64    `json:"received"`
	Skewed      uint8    `json:"skewed"`
	Ledger      uint16   `json:"ledger"`
	Seq         uint64   `json:"seq"`
	Tenant      string   `json:"tenant"`
	Source      string   `json:"source"`
	Class       string   `json:"class"`
	EventID     *string  `json:"event_id"`
	Provider    *string  `json:"provider"`
	Account     *string  `json:"account"`
	Region      *string  `json:"region"`
	Environment *string  `json:"environment"`
	Actor       *string  `json:"actor"`
	ActorID     *string  `json:"actor_id"`
	ActorType   *string  `json:"actor_type"`
	SessionID   *string  `json:"session_id"`
	Origin      *string  `json:"session_origin"`
	SrcIP       *string  `json:"src_ip"`
	SrcIPBin    *string  `json:"src_ip_bin"`
	DstIP       *string  `json:"dst_ip"`
	DstIPBin    *string  `json:"dst_ip_bin"`
	SrcPort     *uint16  `json:"src_port"`
	DstPort     *uint16  `json:"dst_port"`
	Host        *string  `json:"host"`
	UserAgent   *string  `json:"user_agent"`
	Service     *string  `json:"service"`
	Action      *string  `json:"action"`
	Resources   []string `json:"resources"`
	Outcome     *string  `json:"outcome"`
	ErrorCode   *string  `json:"error_code"`
	Message     *string  `json:"message"`
	From        *string  `json:"origin"`
	Raw         string   `json:"raw"`
	RawBin      *string  `json:"raw_bin"`
	Doc         *string  `json:"doc"`
	SrcAsset    *string  `json:"src_asset"`
	SrcOwner    *string  `json:"src_owner"`
	SrcCountry  *string  `json:"src_country"`
	SrcCity     *string  `json:"src_city"`
	SrcASN      *uint32  `json:"src_asn"`
	SrcASOrg    *string  `json:"src_as_org"`
	SrcCloud    *string  `json:"src_cloud"`
	DstAsset    *string  `json:"dst_asset"`
	DstOwner    *string  `json:"dst_owner"`
	DstCountry  *string  `json:"dst_country"`
	DstCity     *string  `json:"dst_city"`
	DstASN      *uint32  `json:"dst_asn"`
	DstASOrg    *string  `json:"dst_as_org"`
	DstCloud    *string  `json:"dst_cloud"`
	Team        *string  `json:"team"`
	Intel       []string `json:"intel"`
	IntelInd    []string `json:"intel_indicator"`
	IntelType   []string `json:"intel_type"`
	DocKeys     []string `json:"doc_keys"`
	DocValues   []string `json:"doc_values"`
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func port(p uint16) *uint16 {
	if p == 0 {
		return nil
	}
	return &p
}

func asn(n uint32) *uint32 {
	if n == 0 {
		return nil
	}
	return &n
}

func ip(a netip.Addr) *string {
	if !a.IsValid() {
		return nil
	}
	return str(a.String())
}

// ipHex is an address's 16-byte form (IPv4-mapped for IPv4), as the
// *_ip_bin columns hold it: lowercase hex, which sorts as the bytes do,
// so that a network is a range of it.
func ipHex(a netip.Addr) *string {
	if !a.IsValid() {
		return nil
	}
	b := a.As16()
	return str(hex.EncodeToString(b[:]))
}

func rowOf(e *event.Event, ledger uint16) row {
	r := row{
		Day: e.Time.UTC().Format("2006-01-02"), Time: e.Time.UnixNano(), Received: e.Received.UnixNano(),
		Ledger: ledger, Seq: e.Seq, Tenant: e.Tenant, Source: e.Source, Class: e.Class, EventID: str(e.ID),
		Provider: str(e.Cloud.Provider), Account: str(e.Cloud.Account), Region: str(e.Cloud.Region), Environment: str(e.Environment),
		Actor: str(e.Actor.Name), ActorID: str(e.Actor.ID), ActorType: str(e.Actor.Type),
		SessionID: str(e.Session.ID), Origin: str(e.Session.Origin),
		SrcIP: ip(e.SrcIP), SrcIPBin: ipHex(e.SrcIP), DstIP: ip(e.DstIP), DstIPBin: ipHex(e.DstIP),
		SrcPort: port(e.SrcPort), DstPort: port(e.DstPort),
		Host: str(e.Host), UserAgent: str(e.UserAgent), Service: str(e.Service), Action: str(e.Action),
		Resources: orEmpty(e.Resources), Outcome: str(e.Outcome.Result), ErrorCode: str(e.Outcome.Code),
		Message: str(e.Message), From: str(e.Origin),
		Intel: []string{}, IntelInd: []string{}, IntelType: []string{},
	}
	if e.Skewed {
		r.Skewed = 1
	}
	r.Raw = string(e.Raw)
	if !utf8.Valid(e.Raw) {
		// JSON carries text: the exact bytes go beside it, in base64.
		r.Raw = strings.ToValidUTF8(r.Raw, "\uFFFD")
		r.RawBin = str(base64.StdEncoding.EncodeToString(e.Raw))
	}
	if e.Doc != nil {
		d := strings.ToValidUTF8(string(e.Doc), "\uFFFD")
		r.Doc = &d
	}
	c := &e.Context
	r.SrcAsset, r.SrcOwner, r.SrcCountry, r.SrcCity, r.SrcASN, r.SrcASOrg, r.SrcCloud =
		str(c.Src.Asset), str(c.Src.Owner), str(c.Src.Country), str(c.Src.City), asn(c.Src.ASN), str(c.Src.ASOrg), str(c.Src.Cloud)
	r.DstAsset, r.DstOwner, r.DstCountry, r.DstCity, r.DstASN, r.DstASOrg, r.DstCloud =
		str(c.Dst.Asset), str(c.Dst.Owner), str(c.Dst.Country), str(c.Dst.City), asn(c.Dst.ASN), str(c.Dst.ASOrg), str(c.Dst.Cloud)
	r.Team = str(c.Team)
	for _, h := range c.Intel {
		r.Intel, r.IntelInd, r.IntelType = append(r.Intel, h.List), append(r.IntelInd, h.Indicator), append(r.IntelType, h.Type)
	}
	doc := e.Doc
	if doc == nil {
		doc = e.Raw
	}
	r.DocKeys, r.DocValues = Flatten(doc)
	return r
}

// Flatten returns the fields of a JSON document as parallel lists of
// paths and values, for a server without JSONExtract to read a field of
// the original document as `doc_values[indexOf(doc_keys, PATH)]`:
//   - a path is the JSON array of its keys (["userIdentity","type"]),
//     which no key can make ambiguous, whatever it holds;
//   - a value is the text of a string, a number's literal as written,
//     true or false, and an array's JSON, as DuckDB's
//     json_extract_string gives them; an object's fields are listed
//     under it, but the object itself has no value (DuckDB's is its
//     JSON), and null is left out (a missing field, as there);
//   - keys are walked in order, so that the lists are the same for the
//     same document.
//
// A document that is not JSON (a syslog line) has no fields: both lists
// are empty.
func Flatten(doc []byte) (paths, values []string) {
	paths, values = []string{}, []string{}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return paths, values
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return paths, values
	}
	var walk func(prefix []string, m map[string]any)
	walk = func(prefix []string, m map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			path := append(prefix[:len(prefix):len(prefix)], k)
			var text string
			switch x := m[k].(type) {
			case nil:
				continue
			case map[string]any:
				walk(path, x)
				continue
			case string:
				text = x
			case json.Number:
				text = x.String()
			case bool:
				text = strconv.FormatBool(x)
			default: // an array
				b, err := json.Marshal(x)
				if err != nil {
					continue
				}
				text = string(b)
			}
			p, _ := json.Marshal(path)
			paths, values = append(paths, string(p)), append(values, text)
		}
	}
	walk(nil, obj)
	return paths, values
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// shardOf is the shard an event goes to, by its identity: the same
// event always goes to the same shard.
func (s *Store) shardOf(tenant string, ledger uint16, seq uint64) int {
	h := fnv.New64a()
	h.Write([]byte(tenant))
	var b [10]byte
	b[0], b[1] = byte(ledger>>8), byte(ledger)
	for i := range 8 {
		b[2+i] = byte(seq >> (8 * (7 - i)))
	}
	h.Write(b[:])
	return int(h.Sum64() % uint64(len(s.opts.Shards)))
}

// Append stores events of ledger, each on the shard its identity hashes
// to, one insert per shard, after the word index's filters of the
// shard's events (words.go). An insert that fails fails the batch, which
// the caller sends again: what the first try stored is collapsed with
// the second by the tables' merges (read with FINAL to count it once).
func (s *Store) Append(ctx context.Context, ledger uint16, evs []*event.Event) error {
	shards := make([][]*event.Event, len(s.opts.Shards))
	for _, e := range evs {
		if e.Tenant == "" {
			return fmt.Errorf("clickhouse: event %d has no tenant", e.Seq)
		}
		i := s.shardOf(e.Tenant, ledger, e.Seq)
		shards[i] = append(shards[i], e)
	}
	// The shards take their inserts at once, each encoded as it is sent:
	// a batch costs its slowest shard, not the sum, and no more memory
	// than the events themselves.
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, evs := range shards {
		if len(evs) == 0 {
			continue
		}
		wg.Go(func() {
			if err := s.storeBlooms(ctx, i, evs); err != nil {
				errs[i] = fmt.Errorf("clickhouse: storing %d events on shard %d: %w", len(evs), i+1, err)
				return
			}
			if err := s.insert(ctx, i, ledger, evs); err != nil {
				errs[i] = fmt.Errorf("clickhouse: storing %d events on shard %d: %w", len(evs), i+1, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// insert sends evs to a shard as one INSERT, its rows encoded while the
// request is under way.
func (s *Store) insert(ctx context.Context, shard int, ledger uint16, evs []*event.Event) error {
	pr, pw := io.Pipe()
	encoded := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		enc := json.NewEncoder(w)
		var err error
		for _, e := range evs {
			if err = enc.Encode(rowOf(e, ledger)); err != nil {
				err = fmt.Errorf("encoding event %d: %w", e.Seq, err)
				break
			}
		}
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
		encoded <- err
	}()
	_, err := s.exec(ctx, shard, "INSERT INTO "+s.opts.Database+".events_local FORMAT JSONEachRow", pr)
	// Whatever became of the request, the encoder stops writing.
	pr.Close()
	if encErr := <-encoded; encErr != nil && !errors.Is(encErr, io.ErrClosedPipe) && err == nil {
		err = encErr
	}
	return err
}

// Count returns how many events of the tenant (every tenant's for "")
// the cluster holds, each counted once.
func (s *Store) Count(ctx context.Context, tenant string) (int64, error) {
	q := "SELECT count() FROM " + s.opts.Database + ".events FINAL"
	if tenant != "" {
		q += " WHERE tenant = " + quote(tenant)
	}
	out, err := s.exec(ctx, 0, q, nil)
	if err != nil {
		return 0, fmt.Errorf("clickhouse: counting events: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("clickhouse: counting events: %q: %w", out, err)
	}
	return n, nil
}

// quote is a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// maxAnswer bounds what exec reads of an answer.
const maxAnswer = 64 << 20

// exec sends a statement to a shard, with body as the data of an
// INSERT, and returns the answer. ClickHouse answers an error with a
// status other than 200 and its text.
func (s *Store) exec(ctx context.Context, shard int, stmt string, body io.Reader) ([]byte, error) {
	return s.send(ctx, shard, url.Values{"query": {stmt}}, body)
}

// query runs a statement that names the tables without their database
// (the query compiler's) on a shard.
func (s *Store) query(ctx context.Context, shard int, stmt string) ([]byte, error) {
	return s.send(ctx, shard, url.Values{"query": {stmt}, "database": {s.opts.Database}}, nil)
}

func (s *Store) send(ctx context.Context, shard int, params url.Values, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.Shards[shard]+"/?"+params.Encode(), body)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return out, nil
}
