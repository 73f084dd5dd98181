package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilsec/vigil/ingest"
	"github.com/vigilsec/vigil/ledger"
	"github.com/vigilsec/vigil/query"
	"github.com/vigilsec/vigil/store"
	"github.com/vigilsec/vigil/store/clickhouse"
	"github.com/vigilsec/vigil/store/duckdb"
)

func runKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("key", stderr)
	var d dataFlags
	d.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil key [--data DIR]\n\nPrints the public key that verifies the ledger's checkpoints (a scale-out's\npartitions' ledgers, with its config), creating the signing key on first use.\nKeep a copy outside the server: vigil verify --key and vigil verify-bundle\n--key check against it.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	// A scale-out's partitions' ledgers share one key, on their volume.
	dir := d.dir
	if cfg.Scale.configured() {
		dir = cfg.Scale.ledgers(&d)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	_, _, vkey, err := ledger.LoadOrCreateKey(filepath.Join(dir, keyFile), ledgerName)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, vkey)
	return nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	var d dataFlags
	d.register(fs)
	var trusted stringList
	fs.Var(&trusted, "from-checkpoint", "a checkpoint kept outside the server (a witness file, or a note); the ledger must still hold its tree (repeatable)")
	key := fs.String("key", "", "the public key the checkpoints must be signed with, as 'vigil key' printed it (default: the data directory's own key)")
	quiet := fs.Bool("q", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil verify [--data DIR] [--from-checkpoint FILE] [--key KEY]\n\nRecomputes the ledger's hash tree from its segments, checks every checkpoint's\nsignature and the consistency between them, and checks that the store holds\nexactly the ledger's events. Exit status 0 when everything is intact.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	if cfg.Scale.configured() {
		if len(trusted) > 0 {
			return errors.New("--from-checkpoint: a scale-out has a ledger per partition; check a witness's checkpoint against its partition's ledger with vigil verify --data on a copy of it")
		}
		ch, err := cfg.Scale.openClickHouse(ctx, "")
		if err != nil {
			return fmt.Errorf("the partitions' events are compared with ClickHouse: %w", err)
		}
		return verifyPartitions(ctx, cfg.Scale.ledgers(&d), cfg.Scale.Partitions, ch, *key, stdout)
	}
	if _, err := os.Stat(d.path(ledgerDir)); err != nil {
		return fmt.Errorf("no ledger in %s: %w", d.dir, err)
	}
	if err := d.noServer(ctx); err != nil {
		return err
	}
	v, keyNote, err := verifier(d.path(keyFile), "the data directory's", *key)
	if err != nil {
		return err
	}
	checkpoints, err := readCheckpoints(trusted)
	if err != nil {
		return err
	}

	// The store is compared with the ledger in the same pass, record by
	// record, when there is one.
	var cmp *duckdb.Comparison
	if _, err := os.Stat(d.path(storeFile)); err == nil {
		db, err := duckdb.Open(duckdb.Options{Path: d.path(storeFile), ReadOnly: true})
		if err != nil {
			return fmt.Errorf("opening the store: %w", err)
		}
		defer db.Close()
		cmp = db.Compare(ctx)
		defer cmp.Close()
	}
	opts := ledger.VerifyOptions{Verifier: v, Trusted: checkpoints}
	if cmp != nil {
		opts.Record = cmp.Record
	}
	var pb *progressBar
	if !*quiet && isTerminal(stderr) {
		pb = newProgressBar(stderr)
		opts.Progress = func(done, total int64) {
			pb.draw(done, total, humanBytes(done)+" of "+humanBytes(total))
		}
	}
	rep, err := ledger.Verify(ctx, d.path(ledgerDir), opts)
	if pb != nil {
		pb.done()
	}
	if err != nil {
		return err
	}
	var mismatches []store.Mismatch
	if cmp != nil {
		if mismatches, err = cmp.Finish(uint64(rep.Size)); err != nil {
			return err
		}
	}

	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "ledger: %s\n", p)
	}
	for _, c := range rep.Checkpoints {
		if c.OK {
			continue
		}
		if c.Size > 0 {
			fmt.Fprintf(stdout, "checkpoint %s (size %d): %s\n", c.Source, c.Size, c.Detail)
		} else { // one that could not be read or whose signature failed
			fmt.Fprintf(stdout, "checkpoint %s: %s\n", c.Source, c.Detail)
		}
	}
	for _, m := range mismatches {
		fmt.Fprintln(stdout, m)
	}
	for _, r := range rep.Redacted {
		fmt.Fprintf(stdout, "redacted %s: %q on %s (not tampering: the hashes are kept)\n", seqRange(r.First, r.Last), r.Reason, r.Time.Format("2006-01-02T15:04:05Z"))
	}
	for _, r := range rep.Removed {
		signed := "recorded in a signed checkpoint"
		if !r.Signed {
			signed = "NOT covered by a signed checkpoint yet"
		}
		fmt.Fprintf(stdout, "removed by retention %s: %q on %s (record %d, %s)\n", seqRange(r.First, r.Last), r.Reason, r.Time.Format("2006-01-02T15:04:05Z"), r.Record, signed)
	}
	// Every failed checkpoint is also a problem of the report; the lines
	// above only detail them.
	bad := len(rep.Problems) + len(mismatches)
	store := "no store"
	if cmp != nil {
		store = "store in sync"
		if len(mismatches) > 0 {
			store = fmt.Sprintf("store out of sync in %d ranges", len(mismatches))
		}
	}
	sigs := fmt.Sprintf("signatures checked against %s", keyNote)
	if !rep.SignaturesChecked {
		sigs = "signatures NOT checked (no key)"
	}
	summary := fmt.Sprintf("%d records in %d segments, root %s, %d checkpoints (%s), %d trusted; %s",
		rep.Size, rep.Segments, rep.Root, len(rep.Checkpoints), sigs, len(checkpoints), store)
	if bad > 0 {
		fmt.Fprintf(stdout, "NOT INTACT: %d problems; %s\n", bad, summary)
		return &exitError{1, fmt.Errorf("%d problems found", bad)}
	}
	fmt.Fprintf(stdout, "intact: %s\n", summary)
	return nil
}

// verifyPartitions verifies the ledger of each partition of a scale-out
// (those of dir that exist: a partition that has had no event has
// none), against key or the ledgers' own key, and compares each with
// the partition's events in ClickHouse: every event below the
// partition's stored mark there, as it is in the ledger, and nothing
// else.
func verifyPartitions(ctx context.Context, dir string, partitions int, ch *clickhouse.Store, key string, stdout io.Writer) error {
	v, keyNote, err := verifier(filepath.Join(dir, keyFile), "the ledgers'", key)
	if err != nil {
		return err
	}
	var records int64
	ledgers, checkpoints, bad := 0, 0, 0
	for p := range partitions {
		pdir := ingest.PartitionLedger(dir, p)
		stored, err := ingest.PartitionStored(dir, p)
		if err != nil {
			return err
		}
		cmp := ch.Compare(ctx, uint16(p), ingest.PartitionSeq(p, 0), stored)
		// Without a ledger, ClickHouse should hold none of the
		// partition's events.
		rep := &ledger.Report{}
		if _, err := os.Stat(pdir); err == nil {
			rep, err = ledger.Verify(ctx, pdir, ledger.VerifyOptions{Verifier: v, Record: cmp.Record})
			if err != nil {
				cmp.Close()
				return fmt.Errorf("partition %d: %w", p, err)
			}
			ledgers++
		} else if !errors.Is(err, os.ErrNotExist) {
			cmp.Close()
			return fmt.Errorf("partition %d: %w", p, err)
		}
		mismatches, unstored, err := cmp.Finish(rep.Size)
		if err != nil {
			return fmt.Errorf("partition %d: comparing with ClickHouse: %w", p, err)
		}
		for _, pr := range rep.Problems {
			fmt.Fprintf(stdout, "partition %d: ledger: %s\n", p, pr)
		}
		for _, m := range mismatches {
			fmt.Fprintf(stdout, "partition %d: %s\n", p, m)
		}
		if rep.Size == 0 && len(mismatches) == 0 {
			continue
		}
		for _, r := range rep.Redacted {
			fmt.Fprintf(stdout, "partition %d: redacted %s: %q on %s (not tampering: the hashes are kept)\n", p,
				seqRange(int64(ingest.PartitionSeq(p, r.First)), int64(ingest.PartitionSeq(p, r.Last))), r.Reason, r.Time.Format("2006-01-02T15:04:05Z"))
		}
		if unstored > 0 {
			fmt.Fprintf(stdout, "partition %d: %d events past the stored mark not in ClickHouse yet (their process node stores them in batches)\n", p, unstored)
		}
		fmt.Fprintf(stdout, "partition %d: %d records in %d segments, root %s, %d checkpoints\n", p, rep.Size, rep.Segments, rep.Root, len(rep.Checkpoints))
		records += rep.Size
		checkpoints += len(rep.Checkpoints)
		bad += len(rep.Problems) + len(mismatches)
	}
	if ledgers == 0 && bad == 0 {
		return fmt.Errorf("no partition's ledger in %s", dir)
	}
	sigs := "signatures checked against " + keyNote
	if v == nil {
		sigs = "signatures NOT checked (no key)"
	}
	summary := fmt.Sprintf("%d records in the ledgers of %d partitions, %d checkpoints (%s); ClickHouse's events compared with them", records, ledgers, checkpoints, sigs)
	if bad > 0 {
		fmt.Fprintf(stdout, "NOT INTACT: %d problems; %s\n", bad, summary)
		return &exitError{1, fmt.Errorf("%d problems found", bad)}
	}
	fmt.Fprintf(stdout, "intact: %s\n", summary)
	return nil
}

// verifier returns the verifier of the ledger's checkpoints: for key, or
// else for the key at keyPath (whose says whose it is), and says which.
func verifier(keyPath, whose, key string) (note.Verifier, string, error) {
	if key != "" {
		v, err := note.NewVerifier(strings.TrimSpace(key))
		if err != nil {
			return nil, "", fmt.Errorf("--key: %w", err)
		}
		return v, "the given key", nil
	}
	if _, err := os.Stat(keyPath); err != nil {
		return nil, "", nil
	}
	_, v, _, err := ledger.LoadOrCreateKey(keyPath, ledgerName)
	if err != nil {
		return nil, "", err
	}
	return v, whose + " key (pass --key to check against a copy kept elsewhere)", nil
}

func seqRange(first, last int64) string {
	if first == last {
		return fmt.Sprintf("seq %d", first)
	}
	return fmt.Sprintf("seq %d-%d", first, last)
}

// readCheckpoints reads the checkpoints of --from-checkpoint files:
// witness files or single notes. A file without one is an error, not a
// check that silently checks nothing.
func readCheckpoints(paths []string) ([][]byte, error) {
	var checkpoints [][]byte
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading trusted checkpoint: %w", err)
		}
		notes := ledger.SplitCheckpoints(b)
		if len(notes) == 0 {
			return nil, fmt.Errorf("%s holds no checkpoint", path)
		}
		checkpoints = append(checkpoints, notes...)
	}
	return checkpoints, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rebuild", stderr)
	var d dataFlags
	d.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil rebuild [--data DIR]\n\nDrops the store and rebuilds it from the ledger. Quarantined records and the\norigins found after their events were stored, which are not in the ledger, are\ncarried over when the old store can be read.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	if err := d.embedded(cfg); err != nil {
		return err
	}
	if err := d.noServer(ctx); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The new store is built beside the old one and replaces it only
	// when complete, so that a failed rebuild loses nothing.
	old, fresh := d.path(storeFile), d.path(storeFile+".rebuild")
	for _, p := range []string{fresh, fresh + ".wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	db, err := duckdb.Open(duckdb.Options{Path: fresh, Logger: logger})
	if err != nil {
		return err
	}
	if _, err := os.Stat(old); err == nil {
		if n, err := db.CopyQuarantine(ctx, old); err != nil {
			logger.Warn("the old store's quarantined records could not be read; they are not carried over", "err", err)
		} else if n > 0 {
			fmt.Fprintf(stdout, "carried over %d quarantined records\n", n)
		}
	}
	l, _, err := openLedger(&d, cfg, logger)
	if err != nil {
		db.Close()
		return err
	}
	p := pipelineFor(l, db, logger)
	n, err := p.CatchUp(ctx)
	if _, serr := os.Stat(old); err == nil && serr == nil {
		// Origins learned after ingest are not in the ledger.
		if c, err := db.CopyOrigins(ctx, old); err != nil {
			logger.Warn("the old store's backfilled origins could not be read; the events have the origins known when they were ingested", "err", err)
		} else if c > 0 {
			fmt.Fprintf(stdout, "carried over %d origins found after their events were stored\n", c)
		}
	}
	err = errors.Join(err, db.Close(), l.Close())
	if err != nil {
		return err
	}
	for _, p := range []string{old + ".wal", old} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(fresh, old); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuilt the store from the ledger: %d events\n", n)
	return nil
}

func runRedact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("redact", stderr)
	var d dataFlags
	d.register(fs)
	q := fs.String("query", "", "the events to erase, as a search (required)")
	reason := fs.String("reason", "", "why, recorded in the ledger with each erased event (required)")
	dryRun := fs.Bool("n", false, "show how many events match, erase nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil redact [--data DIR] --query Q --reason R [-n]\n\nErases the content of the matching events from the ledger and the store,\nkeeping each one's hash, so that the ledger's tree, its checkpoints and every\nother event's proof still verify. For a data-protection request, or a secret\nlogged by mistake. It cannot be undone.\n\nOn one node, stop vigil serve first. On a scale-out (a data directory whose\nconfig has a scale section), the servers run on: the redaction is filed in the\nmetadata database, each process node applies it to its partitions, erasing\nwhat they were sent before it (still on the bus included), and the command\nwaits until all have. The query is then a filter, without commands.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *q == "" || strings.TrimSpace(*reason) == "" {
		fs.Usage()
		return errUsage
	}
	parsed, err := query.Parse(*q)
	if err != nil {
		return err
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	if cfg.Scale.configured() {
		return scaleRedact(ctx, cfg, *q, *reason, *dryRun, stdout, stderr)
	}
	dd, logger, err := d.offline(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer dd.Close()
	seqs, err := dd.db.Seqs(ctx, query.Request{Query: parsed, Scope: query.Scope{All: true}, Limit: math.MaxInt32})
	if err != nil {
		return err
	}
	if *dryRun || len(seqs) == 0 {
		fmt.Fprintf(stdout, "%d events match; nothing erased\n", len(seqs))
		return nil
	}
	if err := dd.pipeline.Erase(ctx, seqs, *reason); err != nil {
		return err
	}
	if _, err := dd.ledger.Checkpoint(ctx); err != nil {
		logger.Warn("signing a checkpoint after the redaction", "err", err)
	}
	// The store file still holds the deleted rows' bytes until it is
	// rewritten.
	if err := dd.Close(); err != nil {
		return err
	}
	if err := duckdb.Compact(ctx, d.path(storeFile), logger); err != nil {
		return fmt.Errorf("the events are erased from the ledger and no longer searchable, but their bytes may remain in the store file until 'vigil rebuild': %w", err)
	}
	fmt.Fprintf(stdout, "erased %d events (%s); their hashes stay in the ledger\n", len(seqs), seqRange(int64(seqs[0]), int64(seqs[len(seqs)-1])))
	return nil
}

func runRetention(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("retention", stderr)
	var d dataFlags
	d.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil retention [--data DIR]\n\nApplies the retention of the config file now (vigil serve does it daily):\nerases the events past their tenant's retention, except those under a legal\nhold, and removes the ledger segments that hold nothing else, recording each\nremoval in the ledger.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	if !cfg.Retention.configured() {
		fmt.Fprintln(stdout, "no retention configured: events are kept forever")
		return nil
	}
	dd, _, err := d.offline(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer dd.Close()
	res, err := dd.pipeline.ApplyRetention(ctx, cfg.Retention.policy, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "erased %d expired events; removed %d ledger segments (%d kept by a legal hold)\n",
		res.Erased, len(res.Removal.Removed), len(res.Removal.Held))
	return nil
}

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", stderr)
	var d dataFlags
	d.registerClient(fs)
	fromArg := fs.String("from", "", "events from this time: RFC 3339, a date, or relative (-30d) (required)")
	toArg := fs.String("to", "now", "events before this time")
	q := fs.String("query", "*", "the events to export, as a search")
	tenant := fs.String("tenant", "", "only this tenant's events")
	out := fs.String("out", "", "the bundle to write, a .zip (required)")
	reason := fs.String("reason", "", "why: a case or ticket number, recorded in the chain of custody (required through a server)")
	hours := fs.Int("link-hours", 0, "through a server: how long the export's link opens the bundle (default 24, at most 168)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil export [--data DIR | --server URL] --from T [--to T] [--query Q] [--tenant T] [--reason R] --out FILE.zip\n\nWrites an evidence bundle: the matching events (raw and normalized), an\ninclusion proof for each against a checkpoint the ledger signs now, the\ncheckpoint and public key, a signed manifest and a chain-of-custody record.\n'vigil verify-bundle' checks it offline.\n\nThrough a server (a login, VIGIL_SERVER, --server, or the vigil serve on the\ndata directory) the server writes the bundle of the events you may read, and\nanswers with a signed link that opens it for --link-hours; the bundle is\ndownloaded to --out and the link printed, to hand on.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *fromArg == "" || *out == "" {
		fs.Usage()
		return errUsage
	}
	c, err := d.client(ctx)
	if err != nil {
		return err
	}
	if c != nil {
		return serverExport(ctx, c, exportRequest{Query: *q, From: *fromArg, To: *toArg, Tenant: *tenant, Reason: *reason, Hours: *hours}, *out, stdout)
	}
	now := time.Now()
	from, err := query.ParseTimeArg(*fromArg, now)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := query.ParseTimeArg(*toArg, now)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	parsed, err := query.Parse(*q)
	if err != nil {
		return err
	}
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	dd, logger, err := d.offline(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer dd.Close()
	scope := query.Scope{All: true}
	if *tenant != "" {
		scope = scope.Narrow(*tenant)
	}
	host, _ := os.Hostname()
	custody := ledger.Custody{
		ExportedBy: exporter(),
		ExportedAt: now.UTC(),
		Query:      *q,
		From:       from,
		To:         to,
		Tool:       "vigil " + version,
		Host:       host,
		Reason:     *reason,
	}
	sum, vkey, err := writeEvidence(ctx, dd, d.path(keyFile), query.Request{Query: parsed, Scope: scope, From: from, To: to}, custody, *out)
	if errors.Is(err, errNoEvents) {
		return &exitError{1, fmt.Errorf("%w; nothing written", err)}
	}
	if err != nil {
		return err
	}
	if sum.WitnessErr != nil {
		logger.Warn("a witness did not take the bundle's checkpoint", "err", sum.WitnessErr)
	}
	fmt.Fprintf(stdout, "wrote %s: %d events (%d redacted), checkpoint of %d records, sha256 %x\nverify it with: vigil verify-bundle --key %s %s\n",
		*out, sum.Events, sum.Redacted, sum.Checkpoint.Size, sum.SHA256, vkey, *out)
	return nil
}

var errNoEvents = errors.New("no event matches")

// writeEvidence writes the evidence bundle of the events req selects to
// out, signed with the ledger's key (at keyPath), and returns its summary
// and the key's public half.
func writeEvidence(ctx context.Context, dd *data, keyPath string, req query.Request, custody ledger.Custody, out string) (*ledger.BundleSummary, string, error) {
	req.Limit = math.MaxInt32
	seqs, err := dd.db.Seqs(ctx, req)
	if err != nil {
		return nil, "", err
	}
	if len(seqs) == 0 {
		return nil, "", errNoEvents
	}
	indexes := make([]int64, len(seqs))
	for i, s := range seqs {
		indexes[i] = int64(s)
	}
	signer, _, vkey, err := ledger.LoadOrCreateKey(keyPath, ledgerName)
	if err != nil {
		return nil, "", err
	}
	var sum *ledger.BundleSummary
	err = writeBeside(out, func(w io.Writer) error {
		sum, err = ledger.WriteBundle(ctx, w, dd.ledger, indexes, custody, signer, vkey)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return sum, vkey, nil
}

// writeBeside writes a file whole or not at all: fill writes it beside
// its name, and it is renamed once synced, so that a failed export
// leaves no half bundle to be mistaken for one.
func writeBeside(out string, fill func(io.Writer) error) error {
	tmp := out + ".part"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// exporter names who runs an export, for the chain of custody: the local
// user, since the command runs with access to the data directory.
func exporter() string {
	for _, v := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if u := os.Getenv(v); u != "" {
			return "local user " + u
		}
	}
	return fmt.Sprintf("local uid %d", os.Getuid())
}

func runVerifyBundle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify-bundle", stderr)
	key := fs.String("key", "", "the public key the bundle must be signed with, as 'vigil key' printed it on the server")
	var trusted stringList
	fs.Var(&trusted, "from-checkpoint", "a checkpoint from a witness the bundle's must be consistent with (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil verify-bundle [--key KEY] [--from-checkpoint FILE] BUNDLE.zip\n\nChecks an evidence bundle offline: its signed manifest, the checkpoint's\nsignature, and each event's inclusion proof. Exit status 0 when it verifies.\n\nFlags:")
		fs.PrintDefaults()
	}
	arg, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	checkpoints, err := readCheckpoints(trusted)
	if err != nil {
		return err
	}
	f, err := os.Open(arg)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	opts := ledger.BundleVerifyOptions{Key: strings.TrimSpace(*key), Trusted: checkpoints}
	// A scale-out's export is a set: a bundle per partition's ledger.
	set, err := ledger.VerifyBundleSet(f, fi.Size(), opts)
	if errors.Is(err, ledger.ErrNotBundleSet) {
		rep, err := ledger.VerifyBundle(f, fi.Size(), opts)
		if err != nil {
			return &exitError{1, fmt.Errorf("%s: %w", arg, err)}
		}
		return reportBundle(stdout, "", rep)
	}
	if err != nil {
		return &exitError{1, fmt.Errorf("%s: %w", arg, err)}
	}
	for _, p := range set.Problems {
		fmt.Fprintln(stdout, p)
	}
	failed := len(set.Problems)
	for _, p := range set.Parts {
		if err := reportBundle(stdout, p.Name+": ", p.BundleReport); err != nil {
			failed++
		}
	}
	if !set.OK() {
		fmt.Fprintf(stdout, "NOT VERIFIED: set %s of %d bundles, %d with problems or missing\n", set.Set, len(set.Parts), failed)
		return &exitError{1, fmt.Errorf("the set does not verify")}
	}
	fmt.Fprintf(stdout, "verified: set %s, %d bundles, %d events\n", set.Set, len(set.Parts), set.Events())
	return nil
}

// reportBundle prints what VerifyBundle found of a bundle (of a set's
// part, prefixed), and fails if it did not verify.
func reportBundle(stdout io.Writer, prefix string, rep *ledger.BundleReport) error {
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, prefix+p.String())
	}
	c := rep.Custody
	fmt.Fprintf(stdout, "%sexported by %s on %s from %s (%s); query %q, %s to %s", prefix,
		c.ExportedBy, c.ExportedAt.Format(time.RFC3339), c.Host, c.Tool, c.Query, c.From.Format(time.RFC3339), c.To.Format(time.RFC3339))
	if c.Reason != "" {
		fmt.Fprintf(stdout, "; reason %q", c.Reason)
	}
	if c.Set != "" {
		fmt.Fprintf(stdout, "; part %d of %d of set %s", c.Part, c.Parts, c.Set)
	}
	fmt.Fprintln(stdout)
	keyNote := "the given key"
	if !rep.TrustedKey {
		keyNote = "the key inside the bundle, " + rep.Key + " (pass --key: a bundle proves nothing about which ledger it came from without it)"
	}
	summary := fmt.Sprintf("%d events, %d redacted, against a checkpoint of %d records signed %s with %s",
		rep.Events, rep.Redacted, rep.Checkpoint.Size, rep.Checkpoint.Time.Format(time.RFC3339), keyNote)
	if !rep.OK() {
		fmt.Fprintf(stdout, "%sNOT VERIFIED: %d problems; %s\n", prefix, len(rep.Problems), summary)
		return &exitError{1, fmt.Errorf("%d problems found", len(rep.Problems))}
	}
	fmt.Fprintf(stdout, "%sverified: %s\n", prefix, summary)
	return nil
}

// noServer fails when 'vigil serve' runs on the data directory: it holds
// the ledger and the store, which the command needs to itself.
func (d *dataFlags) noServer(ctx context.Context) error {
	if base, _ := d.server(ctx); base != "" {
		return fmt.Errorf("'vigil serve' is running on %s (%s); stop it first", d.dir, base)
	}
	return nil
}

// offline opens the data directory for a command that needs it to itself,
// with a logger for warnings on stderr.
func (d *dataFlags) offline(ctx context.Context, cfg *config, stderr io.Writer) (*data, *slog.Logger, error) {
	if err := d.noServer(ctx); err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dd, err := openData(ctx, d, cfg, logger, nil, nil)
	return dd, logger, err
}

// parseNoArgs parses flags for a command that takes no other arguments.
// parseOneArg parses flags around exactly one argument, which it
// returns; anything else prints the usage.
func parseOneArg(fs *flag.FlagSet, args []string) (string, error) {
	rest, err := parseFlags(fs, args)
	if err != nil {
		return "", err
	}
	if len(rest) != 1 {
		fs.Usage()
		return "", errUsage
	}
	return rest[0], nil
}

func parseNoArgs(fs *flag.FlagSet, args []string) error {
	rest, err := parseFlags(fs, args)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected arguments %q", rest)
	}
	return err
}
