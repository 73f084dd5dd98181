package notify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
	"unicode"
)

// An Email sends messages as plain-text mail through an SMTP server.
//
// It refuses to send credentials or mail in clear text: unless
// ImplicitTLS is set it requires the server to offer STARTTLS, and a
// server that does not is a permanent failure, since retrying will not
// make it offer TLS and falling back would let anyone on the path strip
// the offer and read the mail.
//
// The messages about one alert (one Message.Key) form a thread: the
// trigger's Message-ID is derived from the key, and the acknowledge and
// resolve messages refer to it.
type Email struct {
	// ChannelName is the channel's name (default "email").
	ChannelName string
	// Addr is the SMTP server's host:port, e.g. smtp.example.com:587.
	Addr string
	// From is the sender, as in "Vigil <vigil@example.com>"; its domain
	// also names the Message-IDs.
	From string
	// To are the recipients, each as From.
	To []string
	// Username and Password, if Username is set, authenticate with AUTH
	// PLAIN, which is only ever sent over TLS or to localhost.
	Username string
	Password string
	// TLSConfig configures TLS. If nil, or if its ServerName is empty,
	// the server's certificate is verified for the host of Addr.
	TLSConfig *tls.Config
	// ImplicitTLS starts TLS when connecting (SMTPS, usually port 465)
	// rather than with STARTTLS.
	ImplicitTLS bool
	// AllowPlaintext lets a message go in clear text to a server that
	// does not offer STARTTLS: for a trusted relay on loopback. STARTTLS
	// is still used when offered, and its certificate must then verify.
	AllowPlaintext bool
}

// emailMaxSubject bounds the title in the subject, in characters, so
// that a runaway title cannot make a header longer than a server takes.
const emailMaxSubject = 200

// Name returns the channel's name.
func (e *Email) Name() string { return cmp.Or(e.ChannelName, "email") }

// Check reports whether the configuration is usable: a server address
// and valid sender and recipient addresses.
func (e *Email) Check() error {
	_, _, _, err := e.config()
	return err
}

// config checks the configuration and returns the server's host name
// and the parsed addresses.
func (e *Email) config() (host string, from *mail.Address, to []*mail.Address, err error) {
	host, _, err = net.SplitHostPort(e.Addr)
	if err != nil {
		return "", nil, nil, fmt.Errorf("email: server address %q: %w", e.Addr, err)
	}
	if host == "" {
		return "", nil, nil, fmt.Errorf("email: server address %q has no host", e.Addr)
	}
	from, err = mail.ParseAddress(e.From)
	if err != nil {
		return "", nil, nil, fmt.Errorf("email: sender %q: %w", e.From, err)
	}
	if len(e.To) == 0 {
		return "", nil, nil, errors.New("email: no recipients")
	}
	for _, s := range e.To {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return "", nil, nil, fmt.Errorf("email: recipient %q: %w", s, err)
		}
		to = append(to, a)
	}
	return host, from, to, nil
}

// Send mails m to every recipient. A 5xx reply is a PermanentError,
// a 4xx reply or a network failure a retryable error. A refused
// recipient fails the whole delivery before the message is sent, so
// that a retry never mails the other recipients twice.
func (e *Email) Send(ctx context.Context, m Message) error {
	host, from, to, err := e.config()
	if err != nil {
		return &PermanentError{Err: err}
	}
	msg := emailCompose(m, from, to, time.Now())
	err = e.deliver(ctx, host, from, to, msg)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// Closing the connection is how a done ctx stops the exchange,
		// so the step failed with "use of closed network connection";
		// say why.
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 {
		return &PermanentError{Err: err}
	}
	return err
}

// deliver runs one SMTP exchange.
func (e *Email) deliver(ctx context.Context, host string, from *mail.Address, to []*mail.Address, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return fmt.Errorf("email: connecting to %s: %w", e.Addr, err)
	}
	defer conn.Close()
	// net/smtp takes no context: the deadline and closing the connection
	// when ctx is done are what keep a stalled server from holding us.
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return fmt.Errorf("email: connection to %s: %w", e.Addr, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	cfg := &tls.Config{}
	if e.TLSConfig != nil {
		cfg = e.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}

	var c *smtp.Client
	if e.ImplicitTLS {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return emailTLSError(e.Addr, err)
		}
		// net/smtp sees the *tls.Conn and knows the session is encrypted,
		// which PlainAuth requires.
		c, err = smtp.NewClient(tc, host)
	} else {
		c, err = smtp.NewClient(conn, host)
	}
	if err != nil {
		return fmt.Errorf("email: greeting from %s: %w", e.Addr, err)
	}
	defer c.Close()

	if !e.ImplicitTLS {
		ok, _ := c.Extension("STARTTLS")
		switch {
		case ok:
			if err := c.StartTLS(cfg); err != nil {
				return emailTLSError(e.Addr, err)
			}
		case !e.AllowPlaintext:
			return &PermanentError{Err: fmt.Errorf("email: %s does not offer STARTTLS, and mail is not sent in clear text unless AllowPlaintext is set", e.Addr)}
		}
	}
	_, encrypted := c.TLSConnectionState()

	if e.Username != "" {
		// PlainAuth refuses this too, but with an error that looks
		// retryable; a configuration that sends a password in clear
		// text is not. The test mirrors PlainAuth's own.
		if !encrypted && host != "localhost" && host != "127.0.0.1" && host != "::1" {
			return &PermanentError{Err: fmt.Errorf("email: %s: not sending credentials over an unencrypted connection to a host other than localhost", e.Addr)}
		}
		if ok, mechs := c.Extension("AUTH"); !ok || !emailHasWord(mechs, "PLAIN") {
			return &PermanentError{Err: fmt.Errorf("email: %s does not offer AUTH PLAIN (offers %q)", e.Addr, mechs)}
		}
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password, host)); err != nil {
			// Never the password: the error is the server's reply.
			return fmt.Errorf("email: authenticating to %s as %q: %w", e.Addr, e.Username, err)
		}
	}

	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("email: MAIL FROM:<%s>: %w", from.Address, err)
	}
	for _, a := range to {
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("email: RCPT TO:<%s>: %w", a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("email: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("email: writing the message: %w", err)
	}
	// The reply to the end of the data is the server taking the mail.
	if err := w.Close(); err != nil {
		return fmt.Errorf("email: end of DATA: %w", err)
	}
	// The mail is taken: a failed QUIT must not make the channel retry
	// and send it again.
	_ = c.Quit()
	return nil
}

// emailTLSError describes a failed TLS handshake. A certificate that does
// not verify is permanent: it is a misconfiguration or an attack, and
// neither goes away by retrying within a delivery's attempts.
func emailTLSError(addr string, err error) error {
	err = fmt.Errorf("email: TLS with %s: %w", addr, err)
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return &PermanentError{Err: err}
	}
	return err
}

// emailCompose renders m as an RFC 5322 message with CRLF line endings.
func emailCompose(m Message, from *mail.Address, to []*mail.Address, now time.Time) []byte {
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	var b bytes.Buffer
	header := func(name, sep string, parts ...string) { emailWriteHeader(&b, name, sep, parts) }

	header("From", "", from.String())
	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = a.String()
	}
	header("To", ", ", rcpts...)
	header("Subject", " ", strings.Split(mime.QEncoding.Encode("utf-8", emailSubject(m)), " ")...)
	header("Date", "", now.Format(time.RFC1123Z))

	// The trigger's Message-ID is derived from the key so that the
	// later messages about the alert can refer to it without any state
	// kept between them, and mail clients thread them.
	thread := ""
	if m.Key != "" {
		sum := sha256.Sum256([]byte(m.Key))
		thread = "<vigil." + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
	}
	trigger := m.Action == Trigger || m.Action == ""
	if trigger && thread != "" {
		header("Message-ID", "", thread)
	} else {
		header("Message-ID", "", "<"+rand.Text()+"@"+domain+">")
	}
	if !trigger && thread != "" {
		header("In-Reply-To", "", thread)
		header("References", "", thread)
	}
	// RFC 3834: automatic mail, which out-of-office responders should
	// not answer.
	header("Auto-Submitted", "", "auto-generated")
	header("MIME-Version", "", "1.0")
	header("Content-Type", "", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "", "quoted-printable")
	b.WriteString("\r\n")

	text := m.Text() + "\n\n-- \nSent by Vigil."
	if m.Key != "" {
		text += "\nAlert: " + m.Key
	}
	if !m.Time.IsZero() {
		text += "\nAt: " + m.Time.UTC().Format(time.RFC3339)
	}
	qp := quotedprintable.NewWriter(&b)
	// Writes to a bytes.Buffer do not fail.
	_, _ = qp.Write([]byte(text + "\n"))
	_ = qp.Close()
	return b.Bytes()
}

// emailSubject is the subject of m: "[vigil high] Root Account Used", with
// the action after the severity for the messages other than a trigger.
func emailSubject(m Message) string {
	tag := "vigil"
	if sev := emailHeaderText(m.Severity); sev != "" {
		tag += " " + sev
	}
	s := "[" + tag + "] "
	if act := emailHeaderText(string(m.Action)); act != "" && m.Action != Trigger {
		s += "[" + act + "] "
	}
	title := emailHeaderText(m.Title)
	if r := []rune(title); len(r) > emailMaxSubject {
		title = string(r[:emailMaxSubject-1]) + "…"
	}
	return s + title
}

// emailHeaderText makes s safe in a header. A CR or LF would end the header
// and let the text start another (a Bcc, say), so every control
// character becomes a space, and runs of white space collapse to one.
func emailHeaderText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// emailWriteHeader writes a header field of parts joined by sep, folding
// between parts to keep lines under the 78 characters RFC 5322
// recommends where the parts allow; the hard limit is 998.
func emailWriteHeader(b *bytes.Buffer, name, sep string, parts []string) {
	b.WriteString(name)
	b.WriteString(": ")
	n := len(name) + 2
	for i, p := range parts {
		if i > 0 {
			if n+len(sep)+len(p) > 78 {
				// The fold's CRLF goes away when the header is read,
				// leaving the space after it: sep without its spaces
				// plus that space is sep again.
				b.WriteString(strings.TrimRight(sep, " "))
				b.WriteString("\r\n ")
				n = 1
			} else {
				b.WriteString(sep)
				n += len(sep)
			}
		}
		b.WriteString(p)
		n += len(p)
	}
	b.WriteString("\r\n")
}

// emailHasWord reports whether the space-separated list s holds w, in any
// case.
func emailHasWord(s, w string) bool {
	for f := range strings.FieldsSeq(s) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}
