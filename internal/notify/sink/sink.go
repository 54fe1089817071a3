// Package sink is a notification receiver for the sandbox and tests: a webhook endpoint
// that verifies Archipelago's HMAC signatures, and an SMTP server (emersion/go-smtp) that
// accepts every message. What arrives is kept in memory, appended as JSON lines to a log
// file, and listed on the receiver's own web page, so a newcomer sees what was sent.
//
// Development only: it binds to 127.0.0.1 and keeps everything it is sent.
package sink

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/chatons/archipelago/internal/notify"
)

// Message is one received webhook call or email.
type Message struct {
	Seq      int             `json:"seq"`
	At       time.Time       `json:"at"`
	Via      string          `json:"via"`  // webhook or email
	Hook     string          `json:"hook"` // webhook: the name in /hooks/{name}
	Verified bool            `json:"verified"`
	Problem  string          `json:"problem,omitempty"` // why it did not verify, or was refused
	Delivery string          `json:"delivery,omitempty"`
	Event    string          `json:"event,omitempty"`
	From     string          `json:"from,omitempty"`
	To       []string        `json:"to,omitempty"`
	Subject  string          `json:"subject,omitempty"`
	Body     string          `json:"body"`
	Payload  *notify.Payload `json:"payload,omitempty"`
}

// Options configure the sink.
type Options struct {
	// LogFile receives one JSON line per message (optional).
	LogFile string
	Logger  *slog.Logger
	// Tolerance for webhook timestamps (default 5 minutes).
	Tolerance time.Duration
}

// Sink is a running receiver.
type Sink struct {
	// WebhookBase is the receiver's URL; hooks are WebhookBase + "/hooks/{name}".
	WebhookBase string
	// SMTPAddr is the mail sink's host:port (plain SMTP, no authentication).
	SMTPAddr string

	opts    Options
	http    *http.Server
	smtp    *smtp.Server
	mailLn  net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	secrets map[string]string
	fail    map[string]int
	msgs    []Message
	changed chan struct{}
	logf    *os.File
}

// Start starts both receivers on free ports of 127.0.0.1.
func Start(o Options) (*Sink, error) {
	o.Tolerance = cmp.Or(o.Tolerance, 5*time.Minute)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{opts: o, secrets: map[string]string{}, fail: map[string]int{}, changed: make(chan struct{})}
	if o.LogFile != "" {
		f, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		s.logf = f
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hl.Close()
		return nil, err
	}
	s.WebhookBase = "http://" + hl.Addr().String()
	s.SMTPAddr = ml.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{name}", s.hook)
	mux.HandleFunc("GET /messages.json", s.listJSON)
	mux.HandleFunc("GET /{$}", s.page)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.smtp = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.smtp.Domain = "sink.localhost"
	s.smtp.ReadTimeout, s.smtp.WriteTimeout = 30*time.Second, 30*time.Second
	s.smtp.MaxMessageBytes = 1 << 20
	s.mailLn = ml
	s.wg.Go(func() { _ = s.http.Serve(hl) })
	s.wg.Go(func() { _ = s.smtp.Serve(ml) })
	return s, nil
}

// Close stops both receivers and waits for them.
func (s *Sink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := errors.Join(s.http.Shutdown(ctx), s.smtp.Close())
	// smtp.Server.Close closes only the listeners its Serve has registered: a Sink closed
	// before its Serve goroutine ran would wait for ever for an Accept nobody ends (seen as
	// a test hanging in Close). Closing the listener ourselves ends that Accept; Serve then
	// finds the server closed.
	_ = s.mailLn.Close()
	s.wg.Wait()
	if s.logf != nil {
		err = errors.Join(err, s.logf.Close())
	}
	return err
}

// Hook registers a webhook name and the secret its calls must be signed with, and
// returns its URL.
func (s *Sink) Hook(name, secret string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = secret
	return s.WebhookBase + "/hooks/" + name
}

// FailNext makes the next n calls to hook name answer 503 (to show retries).
func (s *Sink) FailNext(name string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[name] = n
}

// Messages returns what was received so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the messages once cond holds for them, or an error when ctx ends first.
func (s *Sink) Wait(ctx context.Context, cond func([]Message) bool) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs, ch := append([]Message(nil), s.msgs...), s.changed
		s.mu.Unlock()
		if cond(msgs) {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return msgs, fmt.Errorf("sink: %w (received %d messages)", ctx.Err(), len(msgs))
		}
	}
}

func (s *Sink) add(m Message) {
	s.mu.Lock()
	m.Seq = len(s.msgs) + 1
	m.At = time.Now().UTC()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	if s.logf != nil {
		line, _ := json.Marshal(m)
		_, _ = s.logf.Write(append(line, '\n'))
	}
	s.mu.Unlock()
	s.opts.Logger.Info("sink received", "via", m.Via, "hook", m.Hook, "verified", m.Verified, "subject", m.Subject, "event", m.Event)
}

func (s *Sink) hook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	secret, known := s.secrets[name]
	failing := s.fail[name] > 0
	if failing {
		s.fail[name]--
	}
	s.mu.Unlock()
	m := Message{Via: "webhook", Hook: name, Delivery: r.Header.Get(notify.HeaderDelivery), Event: r.Header.Get(notify.HeaderEvent),
		Body: string(body)}
	var p notify.Payload
	if json.Unmarshal(body, &p) == nil {
		m.Payload = &p
		m.Subject = p.Summary
	}
	status := http.StatusNoContent
	switch {
	case !known:
		m.Problem, status = "unknown hook", http.StatusNotFound
	case failing:
		m.Problem, status = "refused on purpose (FailNext)", http.StatusServiceUnavailable
	default:
		if err := notify.VerifySignature(secret, r.Header, body, time.Now(), s.opts.Tolerance); err != nil {
			m.Problem, status = err.Error(), http.StatusUnauthorized
		} else {
			m.Verified = true
		}
	}
	s.add(m)
	w.WriteHeader(status)
}

type session struct {
	s    *Sink
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{Via: "email", From: x.from, To: x.to, Body: string(raw), Verified: true}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		dec := new(mimeDecoder)
		m.Subject = dec.header(msg.Header.Get("Subject"))
		b, _ := io.ReadAll(msg.Body)
		m.Body = string(b)
	}
	x.s.add(m)
	return nil
}

func (s *Sink) listJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Messages())
}

var pageTmpl = template.Must(template.New("p").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sandbox notification sink</title><style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:70rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
pre{white-space:pre-wrap;margin:0;font-size:13px}.bad{color:#a00}.ok{color:#060}</style></head><body>
<h1>Notifications received by the sandbox</h1>
<p>Webhooks arrive at <code>{{.Base}}/hooks/NAME</code> (signatures checked); mail at SMTP <code>{{.SMTP}}</code>. Raw: <a href="/messages.json">messages.json</a>.</p>
<table><thead><tr><th>#</th><th>When (UTC)</th><th>Via</th><th>To</th><th>Subject</th><th>Signature</th></tr></thead><tbody>
{{range .Msgs}}<tr><td>{{.Seq}}</td><td>{{.At.Format "15:04:05"}}</td><td>{{.Via}}</td><td>{{if eq .Via "webhook"}}{{.Hook}}{{else}}{{range .To}}{{.}} {{end}}{{end}}</td>
<td><details><summary>{{.Subject}}</summary><pre>{{.Body}}</pre></details></td>
<td>{{if .Verified}}<span class="ok">ok</span>{{else}}<span class="bad">{{.Problem}}</span>{{end}}</td></tr>
{{else}}<tr><td colspan="6">Nothing yet.</td></tr>{{end}}
</tbody></table></body></html>`))

func (s *Sink) page(w http.ResponseWriter, r *http.Request) {
	msgs := s.Messages()
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, struct {
		Base, SMTP string
		Msgs       []Message
	}{s.WebhookBase, s.SMTPAddr, msgs})
}

type mimeDecoder struct{}

func (mimeDecoder) header(s string) string {
	if out, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		return out
	}
	return strings.TrimSpace(s)
}
