package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPConfig says how email leaves: a relay reached at Addr.
type SMTPConfig struct {
	Addr     string // host:port; empty disables email channels' delivery (they fail visibly)
	Username string
	Password string // secret
	From     string // the From address
	// TLS is "starttls" (default: required), "tls" (implicit, port 465) or "none"
	// (plain; for a relay on localhost or the sandbox's mail sink).
	TLS     string
	Timeout time.Duration
}

// message builds an RFC 5322 message.
func message(from, to, subject, body string, now time.Time) []byte {
	var b bytes.Buffer
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := "archipelago.invalid"
	if a, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndex(a.Address, "@"); i >= 0 {
			domain = a.Address[i+1:]
		}
	}
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from)
	h("To", to)
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", now.Format(time.RFC1123Z))
	h("Message-ID", "<"+hex.EncodeToString(id)+"@"+domain+">")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "8bit")
	h("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	for _, line := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		if strings.HasPrefix(line, ".") {
			line = "." + line // dot-stuffing is done by the client too; harmless
		}
		b.WriteString(line + "\r\n")
	}
	return b.Bytes()
}

// sendEmail sends one message to one address through the configured relay.
func (s *Service) sendEmail(ctx context.Context, to, subject, body string) error {
	c := s.cfg.SMTP
	if c.Addr == "" {
		return fmt.Errorf("email is not configured (set ARCHIPELAGO_SMTP_ADDR)")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("connect to the SMTP relay %s: %w", c.Addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(2 * timeout))
	var client *smtp.Client
	switch strings.ToLower(c.TLS) {
	case "tls":
		client = smtp.NewClient(tls.Client(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}))
	case "none":
		client = smtp.NewClient(conn)
	default:
		client, err = smtp.NewClientStartTLS(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
		if err != nil {
			conn.Close()
			return fmt.Errorf("STARTTLS with %s: %w", c.Addr, err)
		}
	}
	defer client.Close()
	if c.Username != "" {
		if err := client.Auth(sasl.NewPlainClient("", c.Username, c.Password)); err != nil {
			return fmt.Errorf("SMTP authentication at %s: %w", c.Addr, err)
		}
	}
	from := c.From
	envFrom := from
	if a, err := mail.ParseAddress(from); err == nil {
		envFrom = a.Address
	}
	if err := client.SendMail(envFrom, []string{to}, bytes.NewReader(message(from, to, subject, body, s.now()))); err != nil {
		return fmt.Errorf("send mail to %s via %s: %w", to, c.Addr, err)
	}
	return client.Quit()
}
