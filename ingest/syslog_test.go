package ingest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilsec/vigil/event"
	"github.com/vigilsec/vigil/store"
)

// fakeAcceptor records the batches it accepts. While busy it answers
// ErrBusy; while stalled, Accept waits until it is not.
type fakeAcceptor struct {
	mu      sync.Mutex
	busy    bool
	stall   chan struct{} // closed to end a stall
	batches []Batch
	// onBatch, if set, receives accepted batches instead of the record.
	onBatch func(Batch)
}

func (a *fakeAcceptor) Accept(ctx context.Context, b Batch) error {
	a.mu.Lock()
	stall := a.stall
	a.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy {
		return ErrBusy
	}
	if a.onBatch != nil {
		a.onBatch(b)
	} else {
		a.batches = append(a.batches, b)
	}
	return nil
}

func (a *fakeAcceptor) setBusy(busy bool) {
	a.mu.Lock()
	a.busy = busy
	a.mu.Unlock()
}

func (a *fakeAcceptor) events() []*event.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var evs []*event.Event
	for _, b := range a.batches {
		evs = append(evs, b.Events...)
	}
	return evs
}

func (a *fakeAcceptor) quarantined() []store.Quarantined {
	a.mu.Lock()
	defer a.mu.Unlock()
	var qs []store.Quarantined
	for _, b := range a.batches {
		qs = append(qs, b.Quarantined...)
	}
	return qs
}

// messages returns the Message of each event accepted.
func (a *fakeAcceptor) messages() []string {
	var ms []string
	for _, e := range a.events() {
		ms = append(ms, e.Message)
	}
	return ms
}

// syslogTest is a server running on loopback for one test.
type syslogTest struct {
	*SyslogServer
	acceptor *fakeAcceptor
	reg      *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error
}

// startSyslog starts a server on 127.0.0.1 with opts, over the transports
// named in opts (their addresses are replaced).
func startSyslog(t *testing.T, opts SyslogOptions, a *fakeAcceptor) *syslogTest {
	t.Helper()
	for _, addr := range []*string{&opts.ListenUDP, &opts.ListenTCP, &opts.ListenTLS} {
		if *addr != "" {
			*addr = "127.0.0.1:0"
		}
	}
	if opts.Linger == 0 {
		opts.Linger = 5 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	s, err := NewSyslogServer(opts, a, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &syslogTest{SyslogServer: s, acceptor: a, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { st.done <- s.Run(ctx) }()
	t.Cleanup(func() { st.stop(t) })
	return st
}

// stop stops the server and returns what Run returned.
func (st *syslogTest) stop(t *testing.T) error {
	t.Helper()
	st.cancel()
	select {
	case err := <-st.done:
		st.done <- err // for the next caller
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was done")
		return nil
	}
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counter returns the value of one series of a metric of the server.
func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func (st *syslogTest) received(t transport) float64 {
	return counter(st.metrics.received.WithLabelValues(string(t)))
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// octets frames msg with octet counting.
func octets(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

// closedByServer checks that the server closes c, without a message.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open: read %d bytes, err %v", n, err)
	}
}

func TestSyslogLogger(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		if os.Getenv("VIGIL_REQUIRE_ALL") == "1" {
			t.Fatal("logger (util-linux) is not installed, and VIGIL_REQUIRE_ALL=1")
		}
		t.Skip("logger (util-linux) is not installed: skipping the end-to-end syslog test with a real client")
	}
	st := startSyslog(t, SyslogOptions{ListenUDP: "on", ListenTCP: "on"}, &fakeAcceptor{})
	cases := []struct {
		args      []string
		transport transport
	}{
		{[]string{"--udp", "--rfc5424"}, transportUDP},
		{[]string{"--udp", "--rfc3164"}, transportUDP},
		{[]string{"--tcp", "--rfc5424"}, transportTCP},
		{[]string{"--tcp", "--rfc3164"}, transportTCP},
		{[]string{"--tcp", "--octet-count", "--rfc5424"}, transportTCP},
		{[]string{"--tcp", "--octet-count", "--rfc3164"}, transportTCP},
	}
	for i, tc := range cases {
		addr := st.UDPAddr()
		if tc.transport == transportTCP {
			addr = st.TCPAddr()
		}
		_, port, _ := net.SplitHostPort(addr.String())
		msg := fmt.Sprintf("hello from logger %s", strings.Join(tc.args, " "))
		args := append([]string{"--server", "127.0.0.1", "--port", port, "-t", "app"}, tc.args...)
		if out, err := exec.Command("logger", append(args, msg)...).CombinedOutput(); err != nil {
			t.Fatalf("logger %s: %v\n%s", args, err, out)
		}
		waitFor(t, msg, func() bool { return len(st.acceptor.events()) == i+1 })
		e := st.acceptor.events()[i]
		origin := fmt.Sprintf("syslog/%s:127.0.0.1", tc.transport)
		if e.Message != msg || e.Service != "app" || e.Tenant != "default" || e.Origin != origin || e.Source != "syslog" || e.Time.IsZero() {
			t.Errorf("%s: got message %q, service %q, tenant %q, origin %q, source %q, time %v",
				tc.args, e.Message, e.Service, e.Tenant, e.Origin, e.Source, e.Time)
		}
	}
	// sshd's lines become authentication events, whatever the transport.
	_, port, _ := net.SplitHostPort(st.TCPAddr().String())
	line := "Failed password for invalid user admin from 203.0.113.9 port 42424 ssh2"
	if out, err := exec.Command("logger", "--server", "127.0.0.1", "--port", port, "--tcp", "--octet-count", "-t", "sshd", line).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}
	waitFor(t, "the sshd event", func() bool { return len(st.acceptor.events()) == len(cases)+1 })
	e := st.acceptor.events()[len(cases)]
	if e.Class != event.ClassAuthentication || e.SrcIP.String() != "203.0.113.9" || e.Outcome.Result != event.OutcomeFailure {
		t.Errorf("sshd: got class %q, src %v, outcome %q", e.Class, e.SrcIP, e.Outcome.Result)
	}
	for _, b := range st.acceptor.batches {
		if b.Source != "syslog/udp" && b.Source != "syslog/tcp" {
			t.Errorf("batch source %q", b.Source)
		}
	}
}

// testCA issues certificates for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vigil test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for a server (on 127.0.0.1) or a client.
func (ca *testCA) issue(t *testing.T, cn string, dnsNames []string, server bool) tls.Certificate {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestSyslogTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	serverCert := ca.issue(t, "vigil", nil, true)
	tlsConfig := func(auth tls.ClientAuthType) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: ca.pool, ClientAuth: auth}
	}
	tenants := map[string]string{"collector.team-a.example": "team-a", "relay-b": "team-b"}
	clients := map[string]*tls.Certificate{
		"none": nil,
		// Mapped by a DNS name, and by its common name.
		"team-a": new(ca.issue(t, "collector-01", []string{"www.example", "collector.team-a.example"}, false)),
		"team-b": new(ca.issue(t, "relay-b", nil, false)),
		// Mapped by nothing, or to two tenants.
		"stranger":  new(ca.issue(t, "stranger", []string{"stranger.example"}, false)),
		"ambiguous": new(ca.issue(t, "relay-b", []string{"collector.team-a.example"}, false)),
		// Issued by a CA the server does not trust.
		"untrusted": new(other.issue(t, "collector.team-a.example", nil, false)),
	}
	send := func(t *testing.T, st *syslogTest, client, msg string) net.Conn {
		t.Helper()
		cfg := &tls.Config{RootCAs: ca.pool}
		if c := clients[client]; c != nil {
			cfg.Certificates = []tls.Certificate{*c}
		}
		c, err := tls.Dial("tcp", st.TLSAddr().String(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", client, err)
		}
		t.Cleanup(func() { c.Close() })
		// A refused client learns it on reading, in TLS 1.3: its
		// handshake ends before the server has checked its certificate.
		c.Write([]byte(octets("<13>1 2024-05-01T10:00:00Z host app - - - " + msg)))
		return c
	}

	t.Run("VerifyClientCertIfGiven", func(t *testing.T) {
		st := startSyslog(t, SyslogOptions{ListenTLS: "on", TLS: tlsConfig(tls.VerifyClientCertIfGiven), CertTenants: tenants, DefaultTenant: "shared"}, &fakeAcceptor{})
		want := map[string]string{"team-a": "team-a", "team-b": "team-b", "none": "shared"}
		for _, client := range []string{"team-a", "team-b", "none"} {
			send(t, st, client, "from "+client)
		}
		refused := map[string]string{"stranger": "certificate", "ambiguous": "certificate", "untrusted": "handshake"}
		for _, client := range []string{"stranger", "ambiguous", "untrusted"} {
			closedByServer(t, send(t, st, client, "from "+client))
		}
		waitFor(t, "three events", func() bool { return len(st.acceptor.events()) == 3 })
		got := map[string]string{}
		for _, e := range st.acceptor.events() {
			got[strings.TrimPrefix(e.Message, "from ")] = e.Tenant
			if e.Origin != "syslog/tls:127.0.0.1" {
				t.Errorf("origin %q", e.Origin)
			}
		}
		for client, tenant := range want {
			if got[client] != tenant {
				t.Errorf("%s: tenant %q, want %q", client, got[client], tenant)
			}
		}
		for _, reason := range []string{"certificate", "handshake"} {
			n := 0
			for _, r := range refused {
				if r == reason {
					n++
				}
			}
			c := st.metrics.refused.WithLabelValues("tls", reason)
			waitFor(t, reason+" refusals counted", func() bool { return counter(c) == float64(n) })
		}
		if b := st.acceptor.batches[0]; b.Source != "syslog/tls" {
			t.Errorf("batch source %q", b.Source)
		}
	})

	t.Run("RequireAndVerifyClientCert", func(t *testing.T) {
		st := startSyslog(t, SyslogOptions{ListenTLS: "on", TLS: tlsConfig(tls.RequireAndVerifyClientCert), CertTenants: tenants}, &fakeAcceptor{})
		closedByServer(t, send(t, st, "none", "without a certificate"))
		send(t, st, "team-a", "with one")
		waitFor(t, "the event", func() bool { return len(st.acceptor.events()) == 1 })
		if e := st.acceptor.events()[0]; e.Tenant != "team-a" || e.Message != "with one" {
			t.Errorf("got %q from tenant %q", e.Message, e.Tenant)
		}
		if n := counter(st.metrics.refused.WithLabelValues("tls", "handshake")); n != 1 {
			t.Errorf("%v handshakes refused, want 1", n)
		}
	})
}

func TestSyslogNeedsTLSCertificate(t *testing.T) {
	_, err := NewSyslogServer(SyslogOptions{ListenTLS: "127.0.0.1:0", TLS: &tls.Config{}}, &fakeAcceptor{}, nil, nil)
	if err == nil {
		t.Fatal("listening on TLS without a certificate: no error")
	}
}

func TestSyslogFraming(t *testing.T) {
	st := startSyslog(t, SyslogOptions{ListenTCP: "on", MaxMessage: 1024}, &fakeAcceptor{})
	long := "<13>May  1 10:00:00 host app: " + strings.Repeat("x", 5000)
	c := dial(t, st.TCPAddr())
	write(t, c, octets("<13>1 2024-05-01T10:00:00Z host app - - - line one\nline two")+
		"<13>May  1 10:00:00 host app: newline\n"+
		"<13>May  1 10:00:00 host app: crlf\r\n"+
		"<13>May  1 10:00:00 host app: nul\x00"+
		"\n\r\n"+ // empty frames
		octets(long)+
		long+"\n"+
		"\xff\xfe not UTF-8\n"+
		octets("\x00\x01\x02\x03\x04\x05")+
		"<13>May  1 10:00:00 host app: last\n")
	waitFor(t, "the last message", func() bool {
		ms := st.acceptor.messages()
		return len(ms) > 0 && ms[len(ms)-1] == "last"
	})
	want := []string{"line one\nline two", "newline", "crlf", "nul", "last"}
	if got := st.acceptor.messages(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages %q, want %q", got, want)
	}
	qs := st.acceptor.quarantined()
	wantQ := []struct {
		reason string
		raw    string
		line   int64
	}{
		{"message of 5030 bytes is longer than the maximum of 1024; its first 1024 bytes are kept", long[:1024], 5},
		{"message of 5030 bytes is longer than the maximum of 1024; its first 1024 bytes are kept", long[:1024], 6},
		{"not syslog: invalid UTF-8 (byte 0xff at column 1)", "\xff\xfe not UTF-8", 7},
		{"not syslog: binary data (byte 0x00 at column 1)", "\x00\x01\x02\x03\x04\x05", 8},
	}
	if len(qs) != len(wantQ) {
		t.Fatalf("%d quarantined, want %d: %+v", len(qs), len(wantQ), qs)
	}
	for i, w := range wantQ {
		q := qs[i]
		if q.Reason != w.reason || string(q.Raw) != w.raw || q.Line != w.line || q.Tenant != "default" || q.Origin != "syslog/tcp:127.0.0.1" || q.Format != "syslog" || q.Received.IsZero() {
			t.Errorf("quarantined %d: reason %q, raw %.40q (%d bytes), line %d, tenant %q, origin %q; want %q, %.40q, %d",
				i, q.Reason, q.Raw, len(q.Raw), q.Line, q.Tenant, q.Origin, w.reason, w.raw, w.line)
		}
	}
	if n := counter(st.metrics.quarantined.WithLabelValues("tcp")); n != 4 {
		t.Errorf("%v quarantined counted, want 4", n)
	}
	if n := st.received(transportTCP); n != 9 {
		t.Errorf("%v messages received counted, want 9", n)
	}
}

func TestSyslogBrokenFraming(t *testing.T) {
	st := startSyslog(t, SyslogOptions{ListenTCP: "on"}, &fakeAcceptor{})
	good, bad := dial(t, st.TCPAddr()), dial(t, st.TCPAddr())
	write(t, good, "<13>May  1 10:00:00 host app: before\n")
	fine := "<13>May  1 10:00:00 host app: fine so far\n"
	write(t, bad, fine+"12x is not a count\nnor is this\n")
	closedByServer(t, bad)
	write(t, good, "<13>May  1 10:00:00 host app: after\n")
	waitFor(t, "three events", func() bool { return len(st.acceptor.events()) == 3 })
	ms := st.acceptor.messages()
	if !strings.Contains(strings.Join(ms, "|"), "fine so far") || ms[2] != "after" {
		t.Errorf("messages %q", ms)
	}
	waitFor(t, "the broken frame quarantined", func() bool { return len(st.acceptor.quarantined()) == 1 })
	q := st.acceptor.quarantined()[0]
	reason := fmt.Sprintf(`syslog framing: octet count "12" ends in 'x', not a space, at byte %d of the stream; the connection was closed`, len(fine))
	if q.Reason != reason || string(q.Raw) != "12x is not a count" || q.Line != 2 || q.Offset != int64(len(fine)) {
		t.Errorf("quarantined %q (raw %q, line %d, offset %d)", q.Reason, q.Raw, q.Line, q.Offset)
	}
	if n := counter(st.metrics.framingErrors.WithLabelValues("tcp")); n != 1 {
		t.Errorf("%v framing errors counted, want 1", n)
	}
}

// TestSyslogHugeLine sends a 100 MB line: it is quarantined with its
// first bytes, without the server holding it whole, and the line after
// it, and other clients, are served.
func TestSyslogHugeLine(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 100 MB")
	}
	st := startSyslog(t, SyslogOptions{ListenTCP: "on"}, &fakeAcceptor{})
	head := "<13>May  1 10:00:00 host app: "
	huge := make([]byte, 100<<20)
	copy(huge, head)
	for i := len(head); i < len(huge)-1; i++ {
		huge[i] = 'a' + byte(i%26)
	}
	huge[len(huge)-1] = '\n'
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	c, other := dial(t, st.TCPAddr()), dial(t, st.TCPAddr())
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(huge)
		if err == nil {
			_, err = io.WriteString(c, "<13>May  1 10:00:00 host app: after the huge line\n")
		}
		sent <- err
	}()
	write(t, other, "<13>May  1 10:00:00 host app: meanwhile\n")
	waitFor(t, "the other client's message", func() bool { return len(st.acceptor.events()) >= 1 })
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the line after the huge one", func() bool { return len(st.acceptor.events()) == 2 })
	runtime.ReadMemStats(&after)
	if ms := st.acceptor.messages(); ms[0] != "meanwhile" || ms[1] != "after the huge line" {
		t.Errorf("messages %q", ms)
	}
	qs := st.acceptor.quarantined()
	if len(qs) != 1 {
		t.Fatalf("%d quarantined, want 1", len(qs))
	}
	want := fmt.Sprintf("message of %d bytes is longer than the maximum of 65536; its first 4096 bytes are kept", len(huge)-1)
	if qs[0].Reason != want || !bytes.Equal(qs[0].Raw, huge[:4096]) {
		t.Errorf("quarantined %q with %d bytes, want %q", qs[0].Reason, len(qs[0].Raw), want)
	}
	// The server allocates per message, not per byte: far less than the
	// line, though the test's goroutines and the runtime allocate too.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("%d MB allocated while serving a 100 MB line", alloc>>20)
	}
}

func TestSyslogTCPBackpressure(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 80 MB")
	}
	const n = 20000 // 4 KB messages: more than the socket buffers hold
	var (
		mu   sync.Mutex
		seen = make([]int, n)
	)
	a := &fakeAcceptor{busy: true, onBatch: func(b Batch) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b.Events {
			i, err := strconv.Atoi(strings.Fields(e.Message)[0])
			if err != nil {
				t.Errorf("message %.20q: %v", e.Message, err)
				continue
			}
			seen[i]++
		}
	}}
	st := startSyslog(t, SyslogOptions{ListenTCP: "on", BatchSize: 100}, a)
	pad := strings.Repeat("p", 4000)
	msg := func(i int) []byte {
		return fmt.Appendf(nil, "<13>May  1 10:00:00 host app: %06d %s\n", i, pad)
	}

	c := dial(t, st.TCPAddr())
	// The server stops reading: the writes stop completing.
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	i, written := 0, 0
	for ; i < n; i++ {
		w, err := c.Write(msg(i))
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			written = w
			break
		}
	}
	if i == n {
		t.Fatal("all messages written while the pipeline was busy: the server did not push back")
	}
	if got := st.received(transportTCP); got >= float64(i) {
		t.Errorf("%v messages received of the %d written while busy", got, i)
	}
	t.Logf("%d messages written before the writes blocked; %v read by the server", i, st.received(transportTCP))

	a.setBusy(false)
	c.SetWriteDeadline(time.Time{})
	if _, err := c.Write(msg(i)[written:]); err != nil {
		t.Fatal(err)
	}
	for i++; i < n; i++ {
		if _, err := c.Write(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		sum := 0
		for _, k := range seen {
			sum += k
		}
		return sum
	}
	waitFor(t, "every message", func() bool { return total() >= n })
	mu.Lock()
	defer mu.Unlock()
	for i, k := range seen {
		if k != 1 {
			t.Fatalf("message %d accepted %d times", i, k)
		}
	}
}

func TestSyslogUDPDrops(t *testing.T) {
	t.Run("busy", func(t *testing.T) {
		a := &fakeAcceptor{busy: true}
		st := startSyslog(t, SyslogOptions{ListenUDP: "on"}, a)
		c := dial(t, st.UDPAddr())
		const n = 50
		for i := range n {
			write(t, c, fmt.Sprintf("<13>May  1 10:00:00 host app: datagram %d\n", i))
		}
		busy := st.metrics.dropped.WithLabelValues("udp", "busy")
		waitFor(t, "the datagrams dropped", func() bool { return counter(busy) == n })
		const want = `
# HELP vigil_syslog_messages_dropped_total Syslog messages received and dropped: UDP datagrams that found the queue full (queue_full), the pipeline busy (busy) or failing (error), and messages the pipeline did not accept before shutdown (shutdown).
# TYPE vigil_syslog_messages_dropped_total counter
vigil_syslog_messages_dropped_total{reason="busy",transport="udp"} 50
vigil_syslog_messages_dropped_total{reason="queue_full",transport="udp"} 0
`
		if err := testutil.GatherAndCompare(st.reg, strings.NewReader(want), "vigil_syslog_messages_dropped_total"); err != nil {
			t.Error(err)
		}
		if st.received(transportUDP) != n || len(a.events()) != 0 {
			t.Errorf("%v received, %d accepted", st.received(transportUDP), len(a.events()))
		}
		a.setBusy(false)
		write(t, c, "<13>May  1 10:00:00 host app: no longer busy")
		waitFor(t, "the event", func() bool { return len(a.events()) == 1 })
		if e := a.events()[0]; e.Origin != "syslog/udp:127.0.0.1" || e.Message != "no longer busy" {
			t.Errorf("got %q from %q", e.Message, e.Origin)
		}
	})
	t.Run("queue_full", func(t *testing.T) {
		a := &fakeAcceptor{stall: make(chan struct{})}
		// One message in the pipeline and one in the queue: the others
		// find it full.
		st := startSyslog(t, SyslogOptions{ListenUDP: "on", BatchSize: 1}, a)
		c := dial(t, st.UDPAddr())
		const n = 10
		for i := range n {
			write(t, c, fmt.Sprintf("<13>May  1 10:00:00 host app: datagram %d", i))
		}
		full := st.metrics.dropped.WithLabelValues("udp", "queue_full")
		waitFor(t, "the datagrams read", func() bool { return st.received(transportUDP) == n })
		waitFor(t, "the datagrams dropped", func() bool { return counter(full) >= n-2 })
		close(a.stall)
		waitFor(t, "every datagram accepted or dropped", func() bool { return len(a.events())+int(counter(full)) == n })
	})
}

func TestSyslogShutdown(t *testing.T) {
	t.Run("drains", func(t *testing.T) {
		a := &fakeAcceptor{busy: true}
		st := startSyslog(t, SyslogOptions{ListenTCP: "on", ListenUDP: "on"}, a)
		c := dial(t, st.TCPAddr())
		const n = 20
		var msgs strings.Builder
		for i := range n {
			fmt.Fprintf(&msgs, "<13>May  1 10:00:00 host app: message %d\n", i)
		}
		// Half a message, which the server has read (it comes in the same
		// write as the whole ones) but cannot complete once it stops
		// reading: it is quarantined, not lost.
		write(t, c, msgs.String()+"<13>May  1 10:00:00 host app: half")
		waitFor(t, "the messages read", func() bool { return st.received(transportTCP) == n })
		st.cancel()
		a.setBusy(false)
		if err := st.stop(t); err != nil {
			t.Fatal(err)
		}
		if got := len(a.events()); got != n {
			t.Errorf("%d events accepted, want %d", got, n)
		}
		qs := a.quarantined()
		if len(qs) != 1 || string(qs[0].Raw) != "<13>May  1 10:00:00 host app: half" || !strings.Contains(qs[0].Reason, "message cut short after 34 bytes") {
			t.Errorf("quarantined %+v", qs)
		}
		closedByServer(t, c)
	})
	t.Run("lost", func(t *testing.T) {
		a := &fakeAcceptor{busy: true}
		st := startSyslog(t, SyslogOptions{ListenTCP: "on", DrainTimeout: 50 * time.Millisecond}, a)
		c := dial(t, st.TCPAddr())
		for i := range 5 {
			write(t, c, fmt.Sprintf("<13>May  1 10:00:00 host app: message %d\n", i))
		}
		waitFor(t, "the messages read", func() bool { return st.received(transportTCP) == 5 })
		err := st.stop(t)
		if err == nil || !strings.Contains(err.Error(), "5 messages read were not accepted") {
			t.Errorf("Run: %v", err)
		}
		if n := counter(st.metrics.dropped.WithLabelValues("tcp", "shutdown")); n != 5 {
			t.Errorf("%v dropped at shutdown, want 5", n)
		}
	})
}

func TestSyslogConnectionLimits(t *testing.T) {
	t.Run("max", func(t *testing.T) {
		st := startSyslog(t, SyslogOptions{ListenTCP: "on", MaxConns: 1}, &fakeAcceptor{})
		first := dial(t, st.TCPAddr())
		write(t, first, "<13>May  1 10:00:00 host app: first\n")
		waitFor(t, "the first message", func() bool { return len(st.acceptor.events()) == 1 })
		closedByServer(t, dial(t, st.TCPAddr()))
		if n := counter(st.metrics.refused.WithLabelValues("tcp", "max_connections")); n != 1 {
			t.Errorf("%v refused, want 1", n)
		}
		if n := counter(st.metrics.connections.WithLabelValues("tcp")); n != 1 {
			t.Errorf("%v connections open, want 1", n)
		}
		first.Close()
		waitFor(t, "the first connection to end", func() bool { return counter(st.metrics.connections.WithLabelValues("tcp")) == 0 })
		write(t, dial(t, st.TCPAddr()), "<13>May  1 10:00:00 host app: second\n")
		waitFor(t, "the second message", func() bool { return len(st.acceptor.events()) == 2 })
	})
	t.Run("idle", func(t *testing.T) {
		st := startSyslog(t, SyslogOptions{ListenTCP: "on", IdleTimeout: 50 * time.Millisecond}, &fakeAcceptor{})
		c := dial(t, st.TCPAddr())
		// One write, so that the server reads the half message before it
		// idles.
		write(t, c, "<13>May  1 10:00:00 host app: then nothing\n<13>May  1 10:00:00 host app: cut")
		closedByServer(t, c)
		waitFor(t, "the messages", func() bool { return len(st.acceptor.events()) == 1 && len(st.acceptor.quarantined()) == 1 })
		if q := st.acceptor.quarantined()[0]; !strings.Contains(q.Reason, "message cut short after 33 bytes") {
			t.Errorf("quarantined %q", q.Reason)
		}
	})
}

func TestSyslogFrameReader(t *testing.T) {
	type fr struct {
		msg string
		cut string // part of the reason, or ""
	}
	cases := []struct {
		name, in string
		max      int
		want     []fr
		err      string // part of the final error; "" means io.EOF
	}{
		{"newline", "a\nb\r\nc\x00d", 64, []fr{{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}}, ""},
		{"empty frames", "\n\r\n\x00a\n\n", 64, []fr{{"a", ""}}, ""},
		{"octet counting", "3 a\nb1 x", 64, []fr{{"a\nb", ""}, {"x", ""}}, ""},
		{"mixed", "<1>a\n3 <2>\n<3>c\r\n", 64, []fr{{"<1>a", ""}, {"<2>", ""}, {"<3>c", ""}}, ""},
		{"zero starts a line", "0 a\n", 64, []fr{{"0 a", ""}}, ""},
		{"line at max", "abcd\r\nabcde\n", 4, []fr{{"abcd", ""}, {"abcd", "message of 5 bytes is longer than the maximum of 4"}}, ""},
		{"octets over max", "5 abcde1 x", 4, []fr{{"abcd", "message of 5 bytes is longer than the maximum of 4"}, {"x", ""}}, ""},
		{"octets cut", "5 abc", 64, []fr{{"abc", "cut short after 3 of its 5 bytes: the stream ended"}}, ""},
		{"octets over max cut", "9 abcdef", 4, []fr{{"abcd", "cut short after 6 bytes: the stream ended"}}, ""},
		{"count cut", "12", 64, []fr{{"12", "octet count cut short"}}, ""},
		{"long last line", "abcdef", 4, []fr{{"abcd", "message of 6 bytes is longer than the maximum of 4"}}, ""},
		{"garbage count", "1a b\n", 64, nil, `octet count "1" ends in 'a', not a space, at byte 0`},
		{"garbage after frames", "a\n12\n", 64, []fr{{"a", ""}}, `octet count "12" ends in '\n'`},
		{"count too long", "1234567890 x", 1 << 30, nil, "octet count longer than 9 digits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newFrameReader(strings.NewReader(tc.in), tc.max)
			var got []fr
			var err error
			for {
				var f frame
				if f, err = r.next(); err != nil {
					break
				}
				g := fr{msg: string(f.msg)}
				if f.cut != nil {
					g.cut = f.cut.Error()
				}
				got = append(got, g)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("frames %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if got[i].msg != w.msg || !strings.Contains(got[i].cut, w.cut) || (w.cut == "") != (got[i].cut == "") {
					t.Errorf("frame %d: %q, want %q", i, got[i], w)
				}
			}
			if tc.err == "" && err != io.EOF || tc.err != "" && !strings.Contains(fmt.Sprint(err), tc.err) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// endless is an endless line of a's.
type endless struct{}

func (endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'a'
	}
	return len(b), nil
}

// TestSyslogFrameReaderMemory checks that a line far longer than the
// maximum is skipped in a bounded buffer.
func TestSyslogFrameReaderMemory(t *testing.T) {
	const size = 100 << 20
	r := newFrameReader(io.MultiReader(io.LimitReader(endless{}, size), strings.NewReader("\nnext\n")), 64<<10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := r.next()
	runtime.ReadMemStats(&after)
	if err != nil || f.cut == nil || f.size != size || len(f.msg) != frameSample {
		t.Fatalf("frame of %d bytes (%d kept), cut %v, err %v", f.size, len(f.msg), f.cut, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("%d KB allocated to skip a 100 MB line", alloc>>10)
	}
	if f, err := r.next(); err != nil || string(f.msg) != "next" {
		t.Errorf("after the long line: %q, %v", f.msg, err)
	}
}
