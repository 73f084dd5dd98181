package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
)

// S3Options configure an S3Source.
type S3Options struct {
	Bucket string
	// Prefix limits the source to the keys that begin with it, such as
	// "AWSLogs/" or "AWSLogs/123456789012/CloudTrail/".
	Prefix string
	// Region is the bucket's region. Empty means the standard chain's
	// (AWS_REGION, the shared config file), or us-east-1 when Endpoint is
	// set, since S3-compatible stores mostly ignore it but SigV4 needs one.
	Region string
	// Endpoint is the base URL of an S3-compatible store (MinIO, Ceph, …)
	// or of a VPC endpoint; empty means AWS's own.
	Endpoint string
	// PathStyle puts the bucket in the path (https://host/bucket/key)
	// rather than in the host name, as most S3-compatible stores need.
	PathStyle bool
	// AccessKeyID and SecretAccessKey, with SessionToken for temporary
	// credentials, are static credentials. Empty means the standard
	// chain: environment, shared files, web identity, instance role.
	AccessKeyID, SecretAccessKey, SessionToken string
	// RetryMaxAttempts bounds the SDK's retries of one request; zero
	// means the SDK's default. Whatever it says, a poll that fails is
	// tried again later.
	RetryMaxAttempts int

	// Poll is the time between listings; zero means a minute.
	Poll time.Duration
	// Lookback bounds how late an object may arrive: how long after its
	// LastModified it may first be listed, and how long after the date
	// in its key's path (…/YYYY/MM/DD/…) it may be written. Objects that
	// arrive later than that are not read. Zero means an hour; CloudTrail
	// delivers within about five minutes.
	Lookback time.Duration
	// ScanAll lists every key under Prefix at every poll, instead of
	// skipping the date folders older than twice Lookback: for buckets
	// into which old logs are copied after the fact.
	ScanAll bool

	Tenant string
	Format string        // a parse format name, or parse.Auto (the default)
	Parse  parse.Options // Tenant, Origin and Received are set per object
	Batch  int           // records per batch; zero means 5000
	Now    func() time.Time
}

// An S3Source reads the log files that arrive in a bucket, under a
// prefix, in S3 or in an S3-compatible store: CloudTrail's deliveries, or
// what any other tool writes there. Each object is read once, whole, and
// handed to the pipeline in batches; the source's cursor remembers which
// objects it has read, so that after a restart it neither skips nor
// repeats one.
//
// Keys do not arrive in key order. CloudTrail writes
// AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>, so a file for a
// region or account that sorts early arrives after files that sort late,
// and within one folder files arrive out of order by minutes. So the
// cursor is not a key. It is a mark, the newest LastModified read, and
// the keys read whose LastModified is within Lookback of the mark; an
// object is new when it is younger than mark−Lookback and not among those
// keys. Those keys are a Lookback's worth of deliveries, so the cursor
// stays small however large the bucket. New objects are read oldest
// first, so the mark never passes one that is still to be read.
//
// A listing walks the folders under Prefix. A folder named after a year
// (YYYY/, with MM/DD/ below it, as AWS and GCP deliver logs) is listed
// only from the day twice Lookback before the mark, since an object in an
// older day's folder was written more than Lookback after its date, or
// has already been read; this keeps a poll of years of CloudTrail to a
// few requests per region. CloudTrail-Digest folders are skipped: they
// hold the trail's integrity digests, not events.
type S3Source struct {
	opts    S3Options
	client  *s3.Client
	send    pullSender
	cursors CursorStore
	logger  *slog.Logger
	metrics *pullMetrics
	name    string // the batches' Source and the cursor's key

	cursor *s3Cursor // nil until read from cursors
	dirty  bool      // cursor holds more than cursors has
	// maxPerPoll bounds the objects one poll reads, and so the memory
	// the new objects of a long backlog take while they are sorted.
	maxPerPoll int
}

// cloudTrailDigests is the folder CloudTrail writes its digest files to.
const cloudTrailDigests = "CloudTrail-Digest"

// NewS3Source returns a source that reads opts.Bucket into a. It reads
// the credentials but makes no request: Run does.
func NewS3Source(opts S3Options, a Acceptor, cursors CursorStore, logger *slog.Logger, reg prometheus.Registerer) (*S3Source, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3 source: no bucket")
	}
	if (opts.AccessKeyID == "") != (opts.SecretAccessKey == "") {
		return nil, errors.New("s3 source: static credentials need both an access key id and a secret access key")
	}
	opts.Poll = cmp.Or(opts.Poll, time.Minute)
	opts.Lookback = cmp.Or(opts.Lookback, time.Hour)
	opts.Format = cmp.Or(opts.Format, parse.Auto)
	opts.Batch = cmp.Or(opts.Batch, 5000)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client, err := newS3Client(opts)
	if err != nil {
		return nil, err
	}
	name := "s3/" + opts.Bucket + "/" + opts.Prefix
	m, err := newPullMetrics(reg, name, true)
	if err != nil {
		return nil, err
	}
	return &S3Source{
		opts:       opts,
		client:     client,
		send:       pullSender{source: name, acceptor: a, batch: opts.Batch, metrics: m},
		cursors:    cursors,
		logger:     logger.With("source", name),
		metrics:    m,
		name:       name,
		maxPerPoll: 10_000,
	}, nil
}

func newS3Client(opts S3Options) (*s3.Client, error) {
	var load []func(*config.LoadOptions) error
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.AccessKeyID != "" {
		creds := credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)
		load = append(load, config.WithCredentialsProvider(creds))
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), load...)
	if err != nil {
		return nil, fmt.Errorf("s3 source: loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if opts.Endpoint == "" {
			return nil, errors.New("s3 source: no region; name the bucket's")
		}
		cfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		if opts.RetryMaxAttempts > 0 {
			o.RetryMaxAttempts = opts.RetryMaxAttempts
		}
	}), nil
}

// Run polls the bucket until ctx is done. Failures are logged, counted
// and retried with growing pauses; Run returns early only if the stored
// cursor cannot be read.
func (s *S3Source) Run(ctx context.Context) error {
	return pullRun(ctx, s.opts.Poll, s.logger, s.poll)
}

// Poll lists the bucket once and reads the objects that are new, oldest
// first. Run calls it every Options.Poll; it must not be called while Run
// runs.
func (s *S3Source) Poll(ctx context.Context) error {
	_, err := s.poll(ctx)
	return err
}

// poll is Poll, reporting whether it left new objects for the next poll.
func (s *S3Source) poll(ctx context.Context) (more bool, err error) {
	defer func() {
		if err != nil && ctx.Err() == nil {
			s.metrics.errors.Inc()
		}
	}()
	if err := s.load(ctx); err != nil {
		return false, err
	}
	objs, more, err := s.list(ctx)
	if err != nil {
		return false, err
	}
	for _, o := range objs {
		if err := s.read(ctx, o); err != nil {
			return false, err
		}
	}
	s.setLag()
	return more, nil
}

// An s3Object is an object a listing found.
type s3Object struct {
	key      string
	etag     string // as listed, quoted
	size     int64
	modified time.Time
}

// list returns the objects under Prefix not yet read, oldest first, and
// whether there were more than maxPerPoll.
func (s *S3Source) list(ctx context.Context) ([]s3Object, bool, error) {
	c := s3Candidates{max: s.maxPerPoll}
	if err := s.walk(ctx, s.opts.Prefix, &c); err != nil {
		return nil, false, err
	}
	c.trim()
	return c.objs, c.cut, nil
}

// walk lists folder, one level at a time, and the folders below it.
func (s *S3Source) walk(ctx context.Context, folder string, c *s3Candidates) error {
	var dated, sub []string
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(folder), Delimiter: aws.String("/")}
	err := s.listPages(ctx, in, c, func(prefix string) {
		name := strings.TrimSuffix(prefix[len(folder):], "/")
		switch {
		case name == cloudTrailDigests:
		case isYear(name) && (folder == "" || strings.HasSuffix(folder, "/")):
			dated = append(dated, prefix)
		default:
			sub = append(sub, prefix)
		}
	})
	if err != nil {
		return err
	}
	for _, p := range sub {
		if err := s.walk(ctx, p, c); err != nil {
			return err
		}
	}
	for _, p := range dated {
		if err := s.listYear(ctx, p, c); err != nil {
			return err
		}
	}
	return nil
}

// listYear lists a year's folder, ".../YYYY/", whole: from the first day
// that may still receive objects, or all of it for ScanAll or a first
// poll.
func (s *S3Source) listYear(ctx context.Context, folder string, c *s3Candidates) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(folder)}
	if !s.opts.ScanAll && !s.cursor.Mark.IsZero() {
		from := s.cursor.Mark.Add(-2 * s.opts.Lookback).UTC()
		switch year := folder[len(folder)-5 : len(folder)-1]; {
		case year < from.Format("2006"):
			return nil
		case year == from.Format("2006"):
			// "…/2024/07/29" sorts before every key of that day.
			in.StartAfter = aws.String(folder + from.Format("01/02"))
		}
	}
	return s.listPages(ctx, in, c, nil)
}

// listPages runs a listing to its end, passing its new objects to c and
// its folders, if it has a delimiter, to folder.
func (s *S3Source) listPages(ctx context.Context, in *s3.ListObjectsV2Input, c *s3Candidates, folder func(prefix string)) error {
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing s3://%s/%s: %w", s.opts.Bucket, aws.ToString(in.Prefix), err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			modified := aws.ToTime(o.LastModified)
			if strings.HasSuffix(key, "/") || s.cursor.done(key, modified, s.opts.Lookback) {
				continue // a folder's placeholder, or read
			}
			c.add(s3Object{key: key, etag: aws.ToString(o.ETag), size: aws.ToInt64(o.Size), modified: modified})
		}
		if folder != nil {
			for _, p := range page.CommonPrefixes {
				folder(aws.ToString(p.Prefix))
			}
		}
	}
	return nil
}

func isYear(name string) bool {
	return len(name) == 4 && strings.Trim(name, "0123456789") == ""
}

// s3Candidates collects the new objects of a listing, keeping the
// maxPerPoll oldest.
type s3Candidates struct {
	objs []s3Object
	max  int
	cut  bool // some were dropped, for the next poll
}

func (c *s3Candidates) add(o s3Object) {
	c.objs = append(c.objs, o)
	if len(c.objs) >= 2*c.max {
		c.trim()
	}
}

func (c *s3Candidates) trim() {
	slices.SortFunc(c.objs, func(a, b s3Object) int {
		return cmp.Or(a.modified.Compare(b.modified), strings.Compare(a.key, b.key))
	})
	if len(c.objs) > c.max {
		c.objs = c.objs[:c.max]
		c.cut = true
	}
}

// read reads an object into the pipeline and then records it in the
// cursor.
func (s *S3Source) read(ctx context.Context, o s3Object) error {
	origin := "s3://" + s.opts.Bucket + "/" + o.key
	// The ETag is in the ID so that an object written again under the
	// same key is not taken for the one already read.
	id := origin + "@" + strings.Trim(o.etag, `"`)
	opts := s.opts.Parse
	opts.Tenant, opts.Origin, opts.Received = s.opts.Tenant, origin, s.opts.Now()
	if o.size > 0 {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String(s.opts.Bucket),
			Key:    aws.String(o.key),
			// The version listed, whose ETag the batch IDs carry.
			IfMatch: aws.String(o.etag),
		})
		var gone *types.NoSuchKey
		switch {
		case errors.As(err, &gone):
			s.logger.Warn("object deleted before it could be read", "key", o.key)
			err := s.send.quarantine(ctx, id, store.Quarantined{
				Received: opts.Received, Tenant: opts.Tenant, Format: s.opts.Format, Origin: origin,
				Reason: "object deleted before it could be read",
			})
			if err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("reading %s: %w", origin, err)
		default:
			_, err = s.send.send(ctx, out.Body, s.opts.Format, opts, id)
			out.Body.Close()
			if err != nil {
				return err
			}
		}
	}
	s.metrics.objects.Inc()
	s.cursor.add(o.key, o.modified, s.opts.Lookback)
	s.setLag()
	return s.save(ctx)
}

func (s *S3Source) setLag() {
	if !s.cursor.Mark.IsZero() {
		s.metrics.lag.Set(s.opts.Now().Sub(s.cursor.Mark).Seconds())
	}
}

// load reads the cursor on the first poll, and on later ones stores it
// again if the last attempt failed.
func (s *S3Source) load(ctx context.Context) error {
	if s.cursor != nil {
		if s.dirty {
			return s.save(ctx)
		}
		return nil
	}
	raw, err := s.cursors.Cursor(ctx, s.name)
	if err != nil {
		return fmt.Errorf("reading the cursor of %s: %w", s.name, err)
	}
	c := &s3Cursor{V: s3CursorVersion}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), c); err != nil {
			return fmt.Errorf("%w of %s: %w", errBadCursor, s.name, err)
		}
		if c.V != s3CursorVersion {
			return fmt.Errorf("%w of %s: version %d, want %d", errBadCursor, s.name, c.V, s3CursorVersion)
		}
	}
	s.cursor = c
	return nil
}

func (s *S3Source) save(ctx context.Context) error {
	b, err := json.Marshal(s.cursor)
	if err == nil {
		err = s.cursors.SetCursor(ctx, s.name, string(b))
	}
	// What the cursor holds was acknowledged, so it stays; a source that
	// dies before storing it reads those objects again, into batches with
	// the same IDs, which the pipeline recognises.
	s.dirty = err != nil
	if err != nil {
		return fmt.Errorf("saving the cursor of %s: %w", s.name, err)
	}
	return nil
}

const s3CursorVersion = 1

// An s3Cursor is what an S3Source has read: every object whose
// LastModified is before Mark−Lookback, and those in Seen.
type s3Cursor struct {
	V int `json:"v"`
	// Mark is the newest LastModified read, on S3's clock.
	Mark time.Time `json:"mark"`
	// Seen holds the objects read whose LastModified is within Lookback
	// of Mark, by folder and name, with their LastModified in
	// milliseconds since the epoch: an object written again is read
	// again.
	Seen map[string]map[string]int64 `json:"seen,omitempty"`
}

func (c *s3Cursor) done(key string, modified time.Time, lookback time.Duration) bool {
	if modified.Before(c.Mark.Add(-lookback)) {
		return true
	}
	folder, name := splitKey(key)
	ms, ok := c.Seen[folder][name]
	return ok && ms == modified.UnixMilli()
}

// add records an object read, and forgets those that fell out of the
// lookback window.
func (c *s3Cursor) add(key string, modified time.Time, lookback time.Duration) {
	if modified.After(c.Mark) {
		c.Mark = modified
	}
	if c.Seen == nil {
		c.Seen = make(map[string]map[string]int64)
	}
	folder, name := splitKey(key)
	if c.Seen[folder] == nil {
		c.Seen[folder] = make(map[string]int64)
	}
	c.Seen[folder][name] = modified.UnixMilli()
	cutoff := c.Mark.Add(-lookback).UnixMilli()
	for folder, names := range c.Seen {
		for name, ms := range names {
			if ms < cutoff {
				delete(names, name)
			}
		}
		if len(names) == 0 {
			delete(c.Seen, folder)
		}
	}
}

// splitKey splits a key after its last slash: a folder's keys share it,
// so the cursor stores it once.
func splitKey(key string) (folder, name string) {
	i := strings.LastIndexByte(key, '/')
	return key[:i+1], key[i+1:]
}

// What follows is shared by the pull sources, S3Source and DirSource.

// errBadCursor marks a stored cursor that cannot be read: retrying will
// not mend it, and starting afresh would read everything again, so the
// source stops and says so.
var errBadCursor = errors.New("unreadable cursor")

// pullMaxPause bounds the pause between failed polls.
const pullMaxPause = 5 * time.Minute

// pullRun calls poll until ctx is done: at once again when poll left
// more to read, after interval when it has caught up, and after a pause
// that doubles with each failure in a row, so that a store or pipeline
// that is down is not hammered.
func pullRun(ctx context.Context, interval time.Duration, logger *slog.Logger, poll func(context.Context) (bool, error)) error {
	var pause time.Duration
	for {
		more, err := poll(ctx)
		wait := interval
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errBadCursor):
			return err
		case err != nil:
			pause = min(max(2*pause, time.Second), pullMaxPause)
			wait = pause
			logger.Warn("poll failed; trying again", "in", pause, "err", err)
		case more:
			pause = 0
			continue
		default:
			pause = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// A pullSender hands what a pull source reads to the pipeline. A batch's
// ID is the ID of the input it came from (an object's key and ETag, a
// chunk of a file) followed by the range of records it holds, so reading
// the same input again yields the same batches under the same IDs, which
// the pipeline recognises and does not store twice.
type pullSender struct {
	source   string
	acceptor Acceptor
	batch    int
	metrics  *pullMetrics
}

// pullHeadSize is how much of an unrecognised input goes to quarantine.
const pullHeadSize = 4 << 10

// send parses r and hands what it yields to the pipeline, waiting while
// the pipeline is busy. It returns the format used, and an error if r
// could not be read or a batch was not accepted: the caller reads the
// input again later. Input that is bad rather than unreadable (a record
// that does not parse, a truncated gzip stream, a format not recognised)
// is quarantined with the reason, and is not an error.
func (s *pullSender) send(ctx context.Context, r io.Reader, want string, opts parse.Options, id string) (string, error) {
	in := &pullInput{r: r, bytes: s.metrics.bytes}
	var (
		b         Batch
		n, first  int // records parsed, and the first of b
		acceptErr error
	)
	flush := func() error {
		if len(b.Events)+len(b.Quarantined) == 0 {
			return nil
		}
		b.Source, b.ID = s.source, fmt.Sprintf("%s#%d-%d", id, first, n)
		if err := AcceptWait(ctx, s.acceptor, b); err != nil {
			return fmt.Errorf("handing batch %s of %s to the pipeline: %w", b.ID, s.source, err)
		}
		s.metrics.events.Add(float64(len(b.Events)))
		s.metrics.quarantined.Add(float64(len(b.Quarantined)))
		b, first = Batch{}, n
		return nil
	}
	format, err := parse.Parse(in, want, opts, func(res parse.Result) error {
		if res.Err != nil {
			b.Quarantined = append(b.Quarantined, quarantined(res, opts))
		} else {
			b.Events = append(b.Events, res.Event)
		}
		n++
		if n-first >= s.batch {
			acceptErr = flush()
		}
		return acceptErr
	})
	bad := store.Quarantined{Received: opts.Received, Tenant: opts.Tenant, Format: cmp.Or(format, want), Origin: opts.Origin}
	switch {
	case acceptErr != nil:
		return format, acceptErr
	case in.err != nil:
		return format, &pullInputError{fmt.Errorf("reading %s: %w", opts.Origin, in.err)}
	case errors.Is(err, parse.ErrUnknownFormat):
		bad.Reason, bad.Raw = "format not recognized; name one in the source's options", in.head
		b.Quarantined = append(b.Quarantined, bad)
		n++
	case err != nil:
		bad.Reason = fmt.Sprintf("%v (after %d bytes; the records before were kept)", err, in.n)
		b.Quarantined = append(b.Quarantined, bad)
		n++
	}
	return format, flush()
}

// quarantine hands a single quarantine record to the pipeline, for an
// input that could not be read at all.
func (s *pullSender) quarantine(ctx context.Context, id string, q store.Quarantined) error {
	b := Batch{Source: s.source, ID: id + "#0-1", Quarantined: []store.Quarantined{q}}
	if err := AcceptWait(ctx, s.acceptor, b); err != nil {
		return fmt.Errorf("handing batch %s of %s to the pipeline: %w", b.ID, s.source, err)
	}
	s.metrics.quarantined.Inc()
	return nil
}

// A pullInputError is a failure to read one input (an object, a file),
// as opposed to a failure of the pipeline or the cursor store: the source
// may go on to the next input.
type pullInputError struct{ err error }

func (e *pullInputError) Error() string { return e.err.Error() }
func (e *pullInputError) Unwrap() error { return e.err }

// pullInput wraps what a pull source reads, so that send can tell the
// input failing (a connection reset: read it again) from the data being
// bad (a truncated gzip stream: quarantine it), and show the start of
// input it does not recognise.
type pullInput struct {
	r     io.Reader
	n     int64
	head  []byte
	err   error // the first error of r other than io.EOF
	bytes prometheus.Counter
}

func (in *pullInput) Read(p []byte) (int, error) {
	n, err := in.r.Read(p)
	if len(in.head) < pullHeadSize {
		in.head = append(in.head, p[:min(n, pullHeadSize-len(in.head))]...)
	}
	in.n += int64(n)
	in.bytes.Add(float64(n))
	if err != nil && err != io.EOF && in.err == nil {
		in.err = err
	}
	return n, err
}

// pullMetrics are the metrics of one pull source, labelled with its name.
type pullMetrics struct {
	objects, bytes, events, quarantined, errors prometheus.Counter
	lag                                         prometheus.Gauge // nil but for S3
}

func newPullMetrics(reg prometheus.Registerer, source string, withLag bool) (*pullMetrics, error) {
	labels := prometheus.Labels{"source": source}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	m := &pullMetrics{
		objects: counter("vigil_pull_objects_total",
			"Objects (S3) or files (directories) read; a tailed file counts when its reading starts, or starts again after a truncation."),
		bytes: counter("vigil_pull_read_bytes_total",
			"Bytes read, as stored (compressed for gzip files), counting what was read again after a failure."),
		events: counter("vigil_pull_events_total", "Events handed to the pipeline."),
		quarantined: counter("vigil_pull_quarantined_total",
			"Records quarantined: records that do not parse, and inputs that broke off, were not recognised, or were deleted before they were read."),
		errors: counter("vigil_pull_errors_total",
			"Failed polls and reads: listing, reading, handing over or storing the cursor. Each is tried again."),
	}
	cs := []prometheus.Collector{m.objects, m.bytes, m.events, m.quarantined, m.errors}
	if withLag {
		m.lag = prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "vigil_pull_lag_seconds",
			Help:        "Age of the newest object read: how far behind the source is, or how long nothing has arrived.",
			ConstLabels: labels,
		})
		cs = append(cs, m.lag)
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, c := range cs[:i] {
				reg.Unregister(c)
			}
			return nil, fmt.Errorf("registering the metrics of %s: %w", source, err)
		}
	}
	return m, nil
}
