package ingest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/parse"
	"github.com/vigilsec/vigil/store"
)

// SyslogOptions configure a SyslogServer.
type SyslogOptions struct {
	// ListenUDP, ListenTCP and ListenTLS are the addresses to listen on,
	// such as ":514", ":601" and ":6514"; a transport whose address is
	// empty is not listened on.
	ListenUDP, ListenTCP, ListenTLS string
	// TLS configures the TLS listener: its certificate and, in
	// ClientAuth, whether clients must present one of their own
	// (VerifyClientCertIfGiven or RequireAndVerifyClientCert).
	TLS *tls.Config
	// CertTenants maps the identity of a verified client certificate,
	// its subject common name or one of its DNS names, to the tenant its
	// messages belong to. A client whose certificate maps to no tenant,
	// or to more than one, is refused.
	CertTenants map[string]string
	// DefaultTenant is the tenant of messages received over UDP and TCP,
	// and over TLS from clients without a certificate; "" means "default".
	DefaultTenant string
	// MaxMessage bounds one message; a longer one is quarantined with
	// its first bytes. 0 means 64 KiB (RFC 5425 asks for at least 8 KiB).
	MaxMessage int
	// BatchSize is how many messages of a transport are handed to the
	// pipeline at once, and how many more may wait for it; 0 means 1000.
	BatchSize int
	// Linger bounds how long a message waits for its batch to fill; 0
	// means 100ms.
	Linger time.Duration
	// MaxConns bounds the TCP and TLS connections open at once; clients
	// beyond it are refused. 0 means 1024.
	MaxConns int
	// IdleTimeout closes a connection that completes no message for this
	// long; 0 means never. Senders such as rsyslog keep a connection open
	// for days and may lose the message they write into one closed under
	// them, and TCP keep-alives find dead peers without it.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds a TLS handshake; 0 means 10s.
	HandshakeTimeout time.Duration
	// DrainTimeout bounds how long Run, once its context is done, waits
	// for the pipeline to accept what was read; 0 means 10s.
	DrainTimeout time.Duration
	// Parse is the template of each message's parse options; Tenant,
	// Origin, Received and MaxLine are set per message.
	Parse parse.Options
	// Now stamps the receipt of messages; nil means time.Now.
	Now func() time.Time
}

// A SyslogServer receives syslog over UDP, TCP and TLS, and hands the
// events it parses, and the messages it cannot, to an Acceptor.
//
// Over TCP and TLS it pushes back: a connection is not read from while
// its messages wait for the pipeline, so a sender that outruns the
// pipeline fills its socket buffer and blocks, and rsyslog or syslog-ng
// queue on their side. UDP cannot push back: datagrams that find the
// queue full or the pipeline busy are dropped and counted.
type SyslogServer struct {
	opts     SyslogOptions
	acceptor Acceptor
	logger   *slog.Logger
	metrics  *syslogMetrics

	udp      *net.UDPConn
	tcp, tls net.Listener

	conns    atomic.Int64 // TCP and TLS connections open
	batchID  string       // prefix of the IDs of TCP and TLS batches
	batches  atomic.Uint64
	lost     atomic.Int64 // messages read that the pipeline never accepted
	lastWarn atomic.Int64 // when drops were last logged, in Unix nanoseconds
}

// transport names a listener in metrics and in the Source of a Batch.
type transport string

const (
	transportUDP transport = "udp"
	transportTCP transport = "tcp"
	transportTLS transport = "tls"
)

// syslogRecord is a message on its way to the pipeline: an event, or a
// quarantined record when ev is nil.
type syslogRecord struct {
	ev *event.Event
	q  store.Quarantined
}

// NewSyslogServer listens on the addresses opts names, so that their
// ports are known (UDPAddr, TCPAddr, TLSAddr) before Run serves them.
// Run closes them when it returns; to release a server that will not
// serve, run it with a context that is already done.
func NewSyslogServer(opts SyslogOptions, a Acceptor, logger *slog.Logger, reg prometheus.Registerer) (*SyslogServer, error) {
	if opts.DefaultTenant == "" {
		opts.DefaultTenant = "default"
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = 64 << 10
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.Linger <= 0 {
		opts.Linger = 100 * time.Millisecond
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 1024
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.ListenTLS != "" && (opts.TLS == nil || len(opts.TLS.Certificates) == 0 && opts.TLS.GetCertificate == nil && opts.TLS.GetConfigForClient == nil) {
		return nil, errors.New("syslog: listening on TLS needs a TLS configuration with a certificate")
	}
	s := &SyslogServer{opts: opts, acceptor: a, logger: logger, batchID: "syslog-" + rand.Text() + "-"}
	if err := s.listen(); err != nil {
		s.close()
		return nil, err
	}
	var ts []transport
	if s.udp != nil {
		ts = append(ts, transportUDP)
	}
	if s.tcp != nil {
		ts = append(ts, transportTCP)
	}
	if s.tls != nil {
		ts = append(ts, transportTLS)
	}
	s.metrics = newSyslogMetrics(reg, ts)
	return s, nil
}

func (s *SyslogServer) listen() error {
	if addr := s.opts.ListenUDP; addr != "" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("syslog: listening on UDP %s: %w", addr, err)
		}
		s.udp = c.(*net.UDPConn)
	}
	var err error
	if addr := s.opts.ListenTCP; addr != "" {
		if s.tcp, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("syslog: listening on TCP %s: %w", addr, err)
		}
	}
	if addr := s.opts.ListenTLS; addr != "" {
		// Not a tls.Listener: each connection shakes hands in its own
		// goroutine, under a deadline, so that a slow client cannot hold
		// up the others.
		if s.tls, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("syslog: listening on TLS %s: %w", addr, err)
		}
	}
	return nil
}

// close closes the listeners, which ends their read and accept loops.
func (s *SyslogServer) close() {
	if s.udp != nil {
		s.udp.Close()
	}
	for _, l := range []net.Listener{s.tcp, s.tls} {
		if l != nil {
			l.Close()
		}
	}
}

// UDPAddr returns the address the UDP listener is bound to, or nil.
func (s *SyslogServer) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// TCPAddr returns the address the TCP listener is bound to, or nil.
func (s *SyslogServer) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// TLSAddr returns the address the TLS listener is bound to, or nil.
func (s *SyslogServer) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// Run serves until ctx is done. It then stops reading, hands what was
// read to the pipeline, waiting up to DrainTimeout for it, closes the
// listeners and connections, and returns. The error says how many
// messages read were not accepted, if any. Run must be called once.
func (s *SyslogServer) Run(ctx context.Context) error {
	// Accepting outlives ctx, so that what was read before shutdown is
	// not lost with it.
	acceptCtx, cancelAccept := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAccept()
	var wg sync.WaitGroup
	serve := func(t transport, read func(queue chan<- syslogRecord)) {
		queue := make(chan syslogRecord, s.opts.BatchSize)
		wg.Go(func() {
			read(queue)
			close(queue)
		})
		wg.Go(func() { s.batch(acceptCtx, t, queue) })
	}
	if s.udp != nil {
		serve(transportUDP, func(q chan<- syslogRecord) { s.serveUDP(ctx, q) })
	}
	if s.tcp != nil {
		serve(transportTCP, func(q chan<- syslogRecord) { s.serveStream(ctx, s.tcp, transportTCP, q) })
	}
	if s.tls != nil {
		serve(transportTLS, func(q chan<- syslogRecord) { s.serveStream(ctx, s.tls, transportTLS, q) })
	}
	<-ctx.Done()
	drain := time.AfterFunc(s.opts.DrainTimeout, cancelAccept)
	defer drain.Stop()
	s.close()
	wg.Wait()
	if n := s.lost.Load(); n > 0 {
		return fmt.Errorf("syslog: %d messages read were not accepted by the pipeline", n)
	}
	return nil
}

// serveUDP reads datagrams, one message each (RFC 5426), until the
// socket is closed.
func (s *SyslogServer) serveUDP(ctx context.Context, queue chan<- syslogRecord) {
	// The largest datagram, so that none is cut without a word: a longer
	// message than MaxMessage is quarantined by the parser.
	buf := make([]byte, 64<<10)
	var pause backoff
	for {
		n, peer, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.logger.Error("syslog: reading a UDP datagram", "err", err)
			if !pause.wait(ctx) {
				return
			}
			continue
		}
		pause.reset()
		if n == 0 {
			continue
		}
		s.count(transportUDP, n)
		r := s.parse(buf[:n], transportUDP, s.opts.DefaultTenant, "syslog/udp:"+peer.Addr().Unmap().String())
		select {
		case queue <- r:
		default:
			s.drop(transportUDP, "queue_full", 1)
		}
	}
}

// serveStream accepts TCP or TLS connections until the listener is
// closed, and returns once their goroutines have.
func (s *SyslogServer) serveStream(ctx context.Context, ln net.Listener, t transport, queue chan<- syslogRecord) {
	var conns sync.WaitGroup
	defer conns.Wait()
	var pause backoff
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, most likely: connections that
			// end free some.
			s.logger.Error("syslog: accepting a connection", "transport", t, "err", err)
			if !pause.wait(ctx) {
				return
			}
			continue
		}
		pause.reset()
		if s.conns.Add(1) > int64(s.opts.MaxConns) {
			s.conns.Add(-1)
			s.refuse(t, "max_connections", c, fmt.Errorf("already %d connections open", s.opts.MaxConns))
			c.Close()
			continue
		}
		conns.Go(func() {
			defer s.conns.Add(-1)
			defer c.Close()
			s.serveConn(ctx, c, t, queue)
		})
	}
}

// serveConn reads messages from a connection until it ends or ctx is
// done. It hands each to the queue before it reads the next, which is
// how a connection is pushed back on.
func (s *SyslogServer) serveConn(ctx context.Context, c net.Conn, t transport, queue chan<- syslogRecord) {
	gauge := s.metrics.connections.WithLabelValues(string(t))
	gauge.Inc()
	defer gauge.Dec()
	// A read deadline in the past stops reading, at shutdown or when the
	// connection idles: the frame reader then returns the messages it has
	// buffered, and the connection ends.
	stopReading := func() { c.SetReadDeadline(time.Unix(1, 0)) }
	stop := context.AfterFunc(ctx, stopReading)
	defer stop()
	tenant := s.opts.DefaultTenant
	var rd net.Conn = c
	if t == transportTLS {
		tc, tn, ok := s.handshake(ctx, c)
		if !ok {
			return
		}
		rd, tenant = tc, tn
	}
	origin := fmt.Sprintf("syslog/%s:%s", t, peerIP(c.RemoteAddr()))
	var (
		idle    *time.Timer
		idleOut atomic.Bool
	)
	if d := s.opts.IdleTimeout; d > 0 {
		idle = time.AfterFunc(d, func() {
			idleOut.Store(true)
			stopReading()
		})
		defer idle.Stop()
	}
	fr := newFrameReader(rd, s.opts.MaxMessage)
	for num := int64(1); ; num++ {
		if idle != nil {
			idle.Reset(s.opts.IdleTimeout)
		}
		f, err := fr.next()
		if idle != nil {
			idle.Stop()
		}
		if err != nil {
			s.endConn(ctx, c, t, tenant, origin, num, err, idleOut.Load(), queue)
			return
		}
		s.count(t, int(f.size))
		var r syslogRecord
		if f.cut != nil {
			r = s.quarantine(t, store.Quarantined{Tenant: tenant, Origin: origin, Reason: f.cut.Error(), Raw: bytes.Clone(f.msg)})
		} else {
			r = s.parse(f.msg, t, tenant, origin)
		}
		if r.ev == nil {
			r.q.Line, r.q.Offset = num, f.offset
		}
		queue <- r
	}
}

// endConn logs why a connection ended and quarantines what broke its
// framing.
func (s *SyslogServer) endConn(ctx context.Context, c net.Conn, t transport, tenant, origin string, num int64, err error, idle bool, queue chan<- syslogRecord) {
	log := s.logger.With("transport", t, "peer", c.RemoteAddr().String(), "tenant", tenant)
	var fe *framingError
	switch {
	case errors.As(err, &fe):
		s.metrics.framingErrors.WithLabelValues(string(t)).Inc()
		log.Warn("syslog: closing a connection whose framing is broken", "err", err)
		r := s.quarantine(t, store.Quarantined{
			Tenant: tenant, Origin: origin, Line: num, Offset: fe.offset,
			Reason: err.Error() + "; the connection was closed", Raw: fe.sample,
		})
		queue <- r
	case errors.Is(err, net.ErrClosed), ctx.Err() != nil:
	case idle:
		log.Info("syslog: closing an idle connection", "idle", s.opts.IdleTimeout)
	case errors.Is(err, io.EOF):
	default:
		log.Warn("syslog: reading a connection", "err", err)
	}
}

// handshake shakes hands with a TLS client and finds its tenant. A
// client it refuses is logged and counted.
func (s *SyslogServer) handshake(ctx context.Context, c net.Conn) (*tls.Conn, string, bool) {
	tc := tls.Server(c, s.opts.TLS)
	hctx, cancel := context.WithTimeout(ctx, s.opts.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if ctx.Err() == nil {
			s.refuse(transportTLS, "handshake", c, fmt.Errorf("TLS handshake: %w", err))
		}
		return nil, "", false
	}
	tenant, err := s.certTenant(tc.ConnectionState())
	if err != nil {
		s.refuse(transportTLS, "certificate", c, err)
		return nil, "", false
	}
	return tc, tenant, true
}

// certTenant returns the tenant of a TLS client: that of its certificate,
// or the default one when it has none.
func (s *SyslogServer) certTenant(st tls.ConnectionState) (string, error) {
	if len(st.PeerCertificates) == 0 {
		return s.opts.DefaultTenant, nil
	}
	if len(st.VerifiedChains) == 0 {
		// ClientAuth asked for a certificate without verifying it: its
		// names prove nothing.
		return "", errors.New("the client certificate is not verified (set TLS.ClientAuth to VerifyClientCertIfGiven or RequireAndVerifyClientCert)")
	}
	cert := st.PeerCertificates[0]
	names := append([]string{cert.Subject.CommonName}, cert.DNSNames...)
	var tenant, by string
	for _, name := range names {
		t, ok := s.opts.CertTenants[name]
		switch {
		case !ok || name == "" || t == tenant:
		case tenant != "":
			return "", fmt.Errorf("the client certificate maps to two tenants: %q by %q and %q by %q", tenant, by, t, name)
		default:
			tenant, by = t, name
		}
	}
	if tenant == "" {
		return "", fmt.Errorf("the client certificate (subject %q, DNS names %q) maps to no tenant", cert.Subject.String(), cert.DNSNames)
	}
	return tenant, nil
}

// refuse logs and counts a connection refused.
func (s *SyslogServer) refuse(t transport, reason string, c net.Conn, err error) {
	s.metrics.refused.WithLabelValues(string(t), reason).Inc()
	s.logger.Warn("syslog: refusing a connection", "transport", t, "peer", c.RemoteAddr().String(), "reason", reason, "err", err)
}

// count counts a message of n bytes received.
func (s *SyslogServer) count(t transport, n int) {
	s.metrics.received.WithLabelValues(string(t)).Inc()
	s.metrics.bytes.WithLabelValues(string(t)).Add(float64(n))
}

// parse parses one message received now.
func (s *SyslogServer) parse(msg []byte, t transport, tenant, origin string) syslogRecord {
	po := s.opts.Parse
	po.Tenant, po.Origin, po.Received, po.MaxLine = tenant, origin, s.opts.Now().UTC(), s.opts.MaxMessage
	res := parse.SyslogMessage(msg, po)
	if res.Err != nil {
		return s.quarantine(t, quarantined(res, po))
	}
	return syslogRecord{ev: res.Event}
}

// quarantine counts q and makes it a record, stamped now if it is not.
func (s *SyslogServer) quarantine(t transport, q store.Quarantined) syslogRecord {
	s.metrics.quarantined.WithLabelValues(string(t)).Inc()
	if q.Received.IsZero() {
		q.Received = s.opts.Now().UTC()
	}
	q.Format = "syslog"
	return syslogRecord{q: q}
}

// batch gathers the records of a transport's queue into batches and
// hands them to the pipeline, until the queue is closed.
func (s *SyslogServer) batch(ctx context.Context, t transport, queue <-chan syslogRecord) {
	var b Batch
	linger := time.NewTimer(s.opts.Linger)
	linger.Stop()
	flush := func() {
		linger.Stop()
		if len(b.Events)+len(b.Quarantined) > 0 {
			s.hand(ctx, t, b)
		}
		b = Batch{}
	}
	for {
		select {
		case r, ok := <-queue:
			if !ok {
				flush()
				return
			}
			if len(b.Events)+len(b.Quarantined) == 0 {
				linger.Reset(s.opts.Linger)
			}
			if r.ev != nil {
				b.Events = append(b.Events, r.ev)
			} else {
				b.Quarantined = append(b.Quarantined, r.q)
			}
			if len(b.Events)+len(b.Quarantined) >= s.opts.BatchSize {
				flush()
			}
		case <-linger.C:
			flush()
		}
	}
}

// hand gives b to the pipeline. A UDP batch the pipeline is too busy for
// is dropped; a TCP or TLS batch waits, which stops the reading of the
// connections whose records fill the queue behind it.
func (s *SyslogServer) hand(ctx context.Context, t transport, b Batch) {
	b.Source = "syslog/" + string(t)
	n := len(b.Events) + len(b.Quarantined)
	if t == transportUDP {
		err := s.acceptor.Accept(ctx, b)
		switch {
		case err == nil:
		case errors.Is(err, ErrBusy):
			s.drop(t, "busy", n)
		default:
			s.drop(t, "error", n)
			s.logger.Error("syslog: the pipeline failed to accept UDP messages; they are dropped", "messages", n, "err", err)
		}
		return
	}
	// The pipeline may have stored part of a batch it failed on: the ID
	// makes a retry store the batch once.
	b.ID = s.batchID + strconv.FormatUint(s.batches.Add(1), 10)
	pause := backoff{min: 100 * time.Millisecond, max: 5 * time.Second}
	for {
		err := AcceptWait(ctx, s.acceptor, b)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			s.lost.Add(int64(n))
			s.drop(t, "shutdown", n)
			s.logger.Error("syslog: the pipeline did not accept messages read before shutdown in time; they are lost",
				"transport", t, "messages", n, "err", err)
			return
		}
		s.logger.Error("syslog: the pipeline failed to accept messages; retrying", "transport", t, "messages", n, "err", err)
		pause.wait(ctx)
	}
}

// drop counts n messages dropped, and warns, but not more than every few
// seconds, so that an overload does not flood the log as well.
func (s *SyslogServer) drop(t transport, reason string, n int) {
	s.metrics.dropped.WithLabelValues(string(t), reason).Add(float64(n))
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last >= int64(5*time.Second) && s.lastWarn.CompareAndSwap(last, now) {
		s.logger.Warn("syslog: dropping messages; see vigil_syslog_messages_dropped_total for how many",
			"transport", t, "reason", reason, "messages", n)
	}
}

// peerIP returns the IP address of a connection's peer.
func peerIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().String()
	}
	return a.String()
}

// backoff paces retries of an operation that keeps failing.
type backoff struct {
	min, max time.Duration // 0 means 5ms and 1s
	next     time.Duration
}

// wait waits before the next retry, longer each time, and reports
// whether ctx is still alive.
func (b *backoff) wait(ctx context.Context) bool {
	if b.next == 0 {
		b.next = cmp.Or(b.min, 5*time.Millisecond)
	}
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next = min(2*b.next, cmp.Or(b.max, time.Second))
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *backoff) reset() { b.next = 0 }

// syslogMetrics are the metrics of a SyslogServer.
type syslogMetrics struct {
	received      *prometheus.CounterVec // by transport
	bytes         *prometheus.CounterVec // by transport
	quarantined   *prometheus.CounterVec // by transport
	dropped       *prometheus.CounterVec // by transport and reason
	framingErrors *prometheus.CounterVec // by transport
	connections   *prometheus.GaugeVec   // by transport
	refused       *prometheus.CounterVec // by transport and reason
}

func newSyslogMetrics(reg prometheus.Registerer, ts []transport) *syslogMetrics {
	by := []string{"transport"}
	byReason := []string{"transport", "reason"}
	m := &syslogMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_syslog_messages_received_total", Help: "Syslog messages received, quarantined ones included.",
		}, by),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_syslog_received_bytes_total", Help: "Bytes of the syslog messages received, framing excluded.",
		}, by),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_syslog_messages_quarantined_total", Help: "Syslog messages quarantined: unparseable, too long, cut short or breaking the framing.",
		}, by),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_syslog_messages_dropped_total",
			Help: "Syslog messages received and dropped: UDP datagrams that found the queue full (queue_full), the pipeline busy (busy) or failing (error), and messages the pipeline did not accept before shutdown (shutdown).",
		}, byReason),
		framingErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_syslog_framing_errors_total", Help: "TCP and TLS syslog connections closed because their framing was broken.",
		}, by),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_syslog_connections", Help: "TCP and TLS syslog connections open.",
		}, by),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_syslog_connections_refused_total",
			Help: "TCP and TLS syslog connections refused: beyond the limit (max_connections), failing the TLS handshake (handshake), or with a client certificate that maps to no tenant (certificate).",
		}, byReason),
	}
	// Series that are zero are shown, so that a dashboard can tell
	// "none" from "not listening".
	for _, t := range ts {
		l := string(t)
		m.received.WithLabelValues(l)
		m.bytes.WithLabelValues(l)
		m.quarantined.WithLabelValues(l)
		if t == transportUDP {
			m.dropped.WithLabelValues(l, "queue_full")
			m.dropped.WithLabelValues(l, "busy")
			continue
		}
		m.framingErrors.WithLabelValues(l)
		m.connections.WithLabelValues(l)
		m.refused.WithLabelValues(l, "max_connections")
		if t == transportTLS {
			m.refused.WithLabelValues(l, "handshake")
			m.refused.WithLabelValues(l, "certificate")
		}
	}
	if reg != nil {
		reg.MustRegister(m.received, m.bytes, m.quarantined, m.dropped, m.framingErrors, m.connections, m.refused)
	}
	return m
}
