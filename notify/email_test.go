package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// An smtpEvent is a command the test server took, and whether the
// connection was encrypted when it did.
type smtpEvent struct {
	Cmd, Arg string
	TLS      bool
}

// smtpBackend is a go-smtp backend that records what clients do, and
// answers MAIL and RCPT as its hooks say.
type smtpBackend struct {
	mu       sync.Mutex
	events   []smtpEvent
	password string // what AUTH PLAIN got
	data     [][]byte
	onMail   func() error
	onRcpt   func(to string) error
}

func (b *smtpBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.record(c, "EHLO", c.Hostname())
	return &smtpSession{b: b, c: c}, nil
}

func (b *smtpBackend) record(c *gosmtp.Conn, cmd, arg string) {
	_, tls := c.TLSConnectionState()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, smtpEvent{cmd, arg, tls})
}

// Events returns the events of the commands named, all if none.
func (b *smtpBackend) Events(cmds ...string) []smtpEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []smtpEvent
	for _, e := range b.events {
		if len(cmds) == 0 || slices.Contains(cmds, e.Cmd) {
			out = append(out, e)
		}
	}
	return out
}

// Password returns the password AUTH PLAIN got last.
func (b *smtpBackend) Password() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.password
}

// Mails returns the messages taken.
func (b *smtpBackend) Mails() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.data)
}

type smtpSession struct {
	b *smtpBackend
	c *gosmtp.Conn
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		s.b.record(s.c, "AUTH", username)
		s.b.mu.Lock()
		s.b.password = password
		s.b.mu.Unlock()
		if username != "vigil" || password != "s3cret-pw" {
			return gosmtp.ErrAuthFailed
		}
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.b.record(s.c, "MAIL", from)
	if s.b.onMail != nil {
		return s.b.onMail()
	}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.b.record(s.c, "RCPT", to)
	if s.b.onRcpt != nil {
		return s.b.onRcpt(to)
	}
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.record(s.c, "DATA", "")
	s.b.mu.Lock()
	s.b.data = append(s.b.data, data)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// smtpServer options.
type smtpServerOpts struct {
	startTLS    bool // offer STARTTLS
	implicitTLS bool // TLS from the start
}

// newSMTPServer runs an SMTP server on loopback, returning its backend,
// its address and a pool trusting its certificate. It takes AUTH even
// without TLS, so that the tests see whether the client would send it.
func newSMTPServer(t *testing.T, opts smtpServerOpts) (*smtpBackend, string, *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	be := &smtpBackend{}
	srv := gosmtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	if opts.startTLS {
		srv.TLSConfig = tlsConfig
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.implicitTLS {
		l = tls.NewListener(l, tlsConfig)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return be, l.Addr().String(), pool
}

// selfSigned returns a certificate for 127.0.0.1 and localhost, and a
// pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vigil test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// testEmail is a channel to the server at addr, trusting pool.
func testEmail(addr string, pool *x509.CertPool) *Email {
	return &Email{
		Addr:      addr,
		From:      "Vigil <vigil@alerts.example.com>",
		To:        []string{"Ops Team <ops@example.com>", "oncall@example.org"},
		Username:  "vigil",
		Password:  "s3cret-pw",
		TLSConfig: &tls.Config{RootCAs: pool},
	}
}

var emailMessage = Message{
	Key:      "alert-42",
	Action:   Trigger,
	Title:    "Root Account Used",
	Severity: "high",
	Fields: []Field{
		{"Actor", "arn:aws:iam::123456789012:root"},
		{"Source", "203.0.113.7"},
		{"Note", "größer = " + strings.Repeat("long value ", 12)},
	},
	Link: "https://vigil.example.com/alerts/42",
	Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
}

// parseMail parses a message the server took, checking the headers
// every message has, and returns it with its decoded body.
func parseMail(t *testing.T, data []byte) (*mail.Message, string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("parsing the mail: %v\n%s", err, data)
	}
	h := msg.Header
	for name, want := range map[string]string{
		"From":                      `"Vigil" <vigil@alerts.example.com>`,
		"To":                        `"Ops Team" <ops@example.com>, <oncall@example.org>`,
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-generated",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if d, err := h.Date(); err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Minute {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if _, err := mail.ParseAddressList(h.Get("To")); err != nil {
		t.Errorf("To %q: %v", h.Get("To"), err)
	}
	id := h.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@alerts.example.com>") {
		t.Errorf("Message-ID = %q, want <…@alerts.example.com>", id)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("decoding the body: %v", err)
	}
	return msg, string(body)
}

func subjectOf(t *testing.T, msg *mail.Message) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decoding Subject %q: %v", msg.Header.Get("Subject"), err)
	}
	return s
}

func TestEmailStartTLS(t *testing.T) {
	be, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
	e := testEmail(addr, pool)
	if err := e.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if e.Name() != "email" {
		t.Errorf("Name = %q, want email", e.Name())
	}
	ctx := t.Context()
	for _, act := range []Action{Trigger, Acknowledge, Resolve} {
		m := emailMessage
		m.Action = act
		if err := e.Send(ctx, m); err != nil {
			t.Fatalf("Send %s: %v", act, err)
		}
	}

	// The first EHLO is in clear text; everything after STARTTLS is not.
	events := be.Events()
	if len(events) == 0 || events[0].Cmd != "EHLO" || events[0].TLS {
		t.Errorf("first event %+v, want EHLO before TLS", events[:min(1, len(events))])
	}
	var auths, mails, rcpts []string
	for _, ev := range events {
		if ev.Cmd != "EHLO" && !ev.TLS {
			t.Errorf("%s %s without TLS", ev.Cmd, ev.Arg)
		}
		switch ev.Cmd {
		case "AUTH":
			auths = append(auths, ev.Arg)
		case "MAIL":
			mails = append(mails, ev.Arg)
		case "RCPT":
			rcpts = append(rcpts, ev.Arg)
		}
	}
	if want := []string{"vigil", "vigil", "vigil"}; !slices.Equal(auths, want) {
		t.Errorf("AUTH users %q, want %q", auths, want)
	}
	if pw := be.Password(); pw != "s3cret-pw" {
		t.Errorf("AUTH password %q", pw)
	}
	if want := slices.Repeat([]string{"vigil@alerts.example.com"}, 3); !slices.Equal(mails, want) {
		t.Errorf("MAIL FROM %q, want %q", mails, want)
	}
	if want := slices.Repeat([]string{"ops@example.com", "oncall@example.org"}, 3); !slices.Equal(rcpts, want) {
		t.Errorf("RCPT TO %q, want %q", rcpts, want)
	}

	mails2 := be.Mails()
	if len(mails2) != 3 {
		t.Fatalf("%d mails, want 3", len(mails2))
	}
	var triggerID string
	ids := map[string]bool{}
	for i, want := range []struct {
		subject string
		action  Action
	}{
		{"[vigil high] Root Account Used", Trigger},
		{"[vigil high] [acknowledge] Root Account Used", Acknowledge},
		{"[vigil high] [resolve] Root Account Used", Resolve},
	} {
		msg, body := parseMail(t, mails2[i])
		if got := subjectOf(t, msg); got != want.subject {
			t.Errorf("Subject = %q, want %q", got, want.subject)
		}
		id := msg.Header.Get("Message-ID")
		if ids[id] {
			t.Errorf("Message-ID %s repeated", id)
		}
		ids[id] = true
		if want.action == Trigger {
			triggerID = id
			if got := msg.Header.Get("References") + msg.Header.Get("In-Reply-To"); got != "" {
				t.Errorf("trigger refers to %q", got)
			}
		} else {
			for _, h := range []string{"References", "In-Reply-To"} {
				if got := msg.Header.Get(h); got != triggerID {
					t.Errorf("%s %s = %q, want the trigger's %q", want.action, h, got, triggerID)
				}
			}
		}
		for _, f := range emailMessage.Fields {
			if !strings.Contains(body, f.Name+": "+f.Value+"\r\n") {
				t.Errorf("body lacks field %q:\n%s", f.Name, body)
			}
		}
		for _, s := range []string{emailMessage.Link, "Alert: alert-42", "2026-03-04T05:06:07Z"} {
			if !strings.Contains(body, s) {
				t.Errorf("body lacks %q:\n%s", s, body)
			}
		}
	}

	// The trigger's Message-ID comes from the key alone, so that the
	// later messages find it; another key gets another.
	m := emailMessage
	m.Key = "alert-43"
	if err := e.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := e.Send(ctx, emailMessage); err != nil {
		t.Fatal(err)
	}
	all := be.Mails()
	other, _ := parseMail(t, all[3])
	again, _ := parseMail(t, all[4])
	if id := other.Header.Get("Message-ID"); id == triggerID {
		t.Errorf("alert-43's trigger has alert-42's Message-ID %s", id)
	}
	if id := again.Header.Get("Message-ID"); id != triggerID {
		t.Errorf("alert-42's trigger Message-ID = %s, then %s", triggerID, id)
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	be, addr, pool := newSMTPServer(t, smtpServerOpts{implicitTLS: true})
	e := testEmail(addr, pool)
	e.ImplicitTLS = true
	if err := e.Send(t.Context(), emailMessage); err != nil {
		t.Fatal(err)
	}
	for _, ev := range be.Events() {
		if !ev.TLS {
			t.Errorf("%s %s without TLS", ev.Cmd, ev.Arg)
		}
	}
	if n := len(be.Mails()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
}

func TestEmailNoStartTLS(t *testing.T) {
	be, addr, pool := newSMTPServer(t, smtpServerOpts{})
	err := testEmail(addr, pool).Send(t.Context(), emailMessage)
	var perm *PermanentError
	if !errors.As(err, &perm) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want a PermanentError about STARTTLS", err)
	}
	if evs := be.Events("AUTH", "MAIL", "RCPT", "DATA"); len(evs) > 0 {
		t.Errorf("sent in clear text: %+v", evs)
	}
}

func TestEmailAllowPlaintext(t *testing.T) {
	t.Run("loopback", func(t *testing.T) {
		be, addr, pool := newSMTPServer(t, smtpServerOpts{})
		e := testEmail(addr, pool)
		e.AllowPlaintext = true
		if err := e.Send(t.Context(), emailMessage); err != nil {
			t.Fatal(err)
		}
		if evs := be.Events("AUTH"); len(evs) != 1 || evs[0].Arg != "vigil" || evs[0].TLS {
			t.Errorf("AUTH events %+v, want one, in clear text", evs)
		}
		if n := len(be.Mails()); n != 1 {
			t.Errorf("%d mails, want 1", n)
		}
	})
	t.Run("STARTTLS still used", func(t *testing.T) {
		be, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
		e := testEmail(addr, pool)
		e.AllowPlaintext = true
		if err := e.Send(t.Context(), emailMessage); err != nil {
			t.Fatal(err)
		}
		for _, ev := range be.Events("AUTH", "MAIL", "RCPT", "DATA") {
			if !ev.TLS {
				t.Errorf("%s %s without TLS", ev.Cmd, ev.Arg)
			}
		}
	})
	t.Run("no credentials in clear text beyond localhost", func(t *testing.T) {
		be, addr, pool := newSMTPServer(t, smtpServerOpts{})
		_, port, _ := net.SplitHostPort(addr)
		// 127.0.0.1 still, but not spelled as localhost, as a remote
		// relay would not be.
		e := testEmail(net.JoinHostPort("::ffff:127.0.0.1", port), pool)
		e.AllowPlaintext = true
		err := e.Send(t.Context(), emailMessage)
		var perm *PermanentError
		if !errors.As(err, &perm) || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("Send = %v, want a PermanentError about credentials", err)
		}
		if evs := be.Events("AUTH", "MAIL"); len(evs) > 0 {
			t.Errorf("sent %+v", evs)
		}
	})
}

func TestEmailReplies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rcpt      error
		permanent bool
		code      int
	}{
		{"550", &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, true, 550},
		{"451", &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}, false, 451},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
			be.onRcpt = func(to string) error {
				if to == "oncall@example.org" {
					return tc.rcpt
				}
				return nil
			}
			err := testEmail(addr, pool).Send(t.Context(), emailMessage)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			var perm *PermanentError
			if errors.As(err, &perm) != tc.permanent {
				t.Errorf("Send = %v (%T), want permanent %v", err, err, tc.permanent)
			}
			var reply *textproto.Error
			if !errors.As(err, &reply) || reply.Code != tc.code {
				t.Errorf("Send = %v, want the server's %d", err, tc.code)
			}
			if !strings.Contains(err.Error(), "oncall@example.org") {
				t.Errorf("Send = %v, does not name the recipient", err)
			}
			if n := len(be.Mails()); n != 0 {
				t.Errorf("%d mails sent despite a refused recipient", n)
			}
		})
	}
}

func TestEmailAuthFailed(t *testing.T) {
	_, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
	e := testEmail(addr, pool)
	e.Password = "wrong-password"
	err := e.Send(t.Context(), emailMessage)
	var perm *PermanentError
	if !errors.As(err, &perm) {
		t.Fatalf("Send = %v, want a PermanentError", err)
	}
	if strings.Contains(err.Error(), e.Password) {
		t.Errorf("error %q holds the password", err)
	}
}

func TestEmailUntrustedCertificate(t *testing.T) {
	be, addr, _ := newSMTPServer(t, smtpServerOpts{startTLS: true})
	e := testEmail(addr, x509.NewCertPool())
	err := e.Send(t.Context(), emailMessage)
	var perm *PermanentError
	if !errors.As(err, &perm) {
		t.Fatalf("Send = %v, want a PermanentError", err)
	}
	if evs := be.Events("AUTH", "MAIL"); len(evs) > 0 {
		t.Errorf("sent %+v", evs)
	}
}

func TestEmailHeaderInjection(t *testing.T) {
	be, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
	m := emailMessage
	m.Title = "Root Account Used\r\nBcc: evil@x"
	m.Severity = "high\nX-Evil: 1"
	m.Key = "alert-42\r\nBcc: evil@x"
	m.Action = Resolve
	if err := testEmail(addr, pool).Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	data := be.Mails()[0]
	msg, _ := parseMail(t, data)
	for _, h := range []string{"Bcc", "X-Evil"} {
		if v, ok := msg.Header[h]; ok {
			t.Errorf("injected header %s: %q", h, v)
		}
	}
	if want := "[vigil high X-Evil: 1] [resolve] Root Account Used Bcc: evil@x"; subjectOf(t, msg) != want {
		t.Errorf("Subject = %q, want %q", subjectOf(t, msg), want)
	}
	if strings.Contains(msg.Header.Get("References"), "evil") {
		t.Errorf("References = %q", msg.Header.Get("References"))
	}
	for _, ev := range be.Events("RCPT") {
		if strings.Contains(ev.Arg, "evil") {
			t.Errorf("RCPT TO %s", ev.Arg)
		}
	}
}

func TestEmailSubjectEncoding(t *testing.T) {
	be, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
	m := emailMessage
	m.Title = "Größe überschritten: " + strings.Repeat("Übergroße Anmeldung ", 8)
	if err := testEmail(addr, pool).Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	data := be.Mails()[0]
	msg, _ := parseMail(t, data)
	if want := "[vigil high] " + strings.TrimSpace(m.Title); subjectOf(t, msg) != want {
		t.Errorf("Subject = %q, want %q", subjectOf(t, msg), want)
	}
	for line := range strings.Lines(string(data)) {
		if len(line) > 998 {
			t.Errorf("a line of %d bytes", len(line))
		}
		for _, c := range []byte(line) {
			if c >= 0x80 {
				t.Fatalf("8-bit line %q", line)
			}
		}
	}
}

func TestEmailContextCancelled(t *testing.T) {
	be, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
	stall := make(chan struct{})
	defer close(stall)
	mailed := make(chan struct{})
	be.onMail = func() error {
		close(mailed)
		<-stall
		return nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-mailed
		cancel()
	}()
	start := time.Now()
	err := testEmail(addr, pool).Send(ctx, emailMessage)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	var perm *PermanentError
	if errors.As(err, &perm) {
		t.Errorf("Send = %v, a PermanentError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v after the cancel", d)
	}
}

func TestEmailDeadline(t *testing.T) {
	be, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
	stall := make(chan struct{})
	defer close(stall)
	be.onMail = func() error { <-stall; return nil }
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := testEmail(addr, pool).Send(ctx, emailMessage)
	if err == nil {
		t.Fatal("Send succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v with a 200ms deadline", d)
	}
}

func TestEmailCheck(t *testing.T) {
	_, addr, pool := newSMTPServer(t, smtpServerOpts{startTLS: true})
	for _, tc := range []struct {
		name   string
		change func(*Email)
	}{
		{"bad From", func(e *Email) { e.From = "not an address" }},
		{"bad To", func(e *Email) { e.To = []string{"ops@example.com", "evil@x\r\nBcc: more@x"} }},
		{"no To", func(e *Email) { e.To = nil }},
		{"no port", func(e *Email) { e.Addr = "127.0.0.1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEmail(addr, pool)
			tc.change(e)
			if err := e.Check(); err == nil {
				t.Error("Check passed")
			}
			err := e.Send(t.Context(), emailMessage)
			var perm *PermanentError
			if !errors.As(err, &perm) {
				t.Errorf("Send = %v, want a PermanentError", err)
			}
		})
	}
	if n := (&Email{ChannelName: "ops-mail"}).Name(); n != "ops-mail" {
		t.Errorf("Name = %q", n)
	}
}
