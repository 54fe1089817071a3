// Package faultproxy is a fault-injecting HTTP reverse proxy for tests: it stands in front
// of a real S3 server (MinIO) and, for the requests that match a rule, answers what a
// degraded island answers — 503 Service Unavailable, Garage's "Could not reach quorum",
// a reset connection, a body cut short, a body with flipped bytes — instead of (or on top
// of) the real answer. Everything else is passed through unchanged.
//
// It keeps the client's Host header, so S3 V4 signatures made for the proxy's address are
// valid upstream. It binds 127.0.0.1 only and is stopped with Close.
//
// What it must not do: run outside tests and tools, or change a request it does not match.
package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is what the proxy does to a matching request.
type Kind int

const (
	// Unavailable answers 503 Service Unavailable with an S3 error body
	// (code ServiceUnavailable, "Please reduce your request rate." as MinIO says).
	Unavailable Kind = iota + 1
	// Quorum answers 503 with Garage's error when too few storage nodes answer
	// ("Could not reach quorum of 2. 1 of 3 request succeeded, …").
	Quorum
	// Reset closes the connection with a TCP reset, without answering.
	Reset
	// Truncate forwards the real answer's status and headers (its full
	// Content-Length) but only the first half of the body, then closes the
	// connection: the client reads an unexpected EOF.
	Truncate
	// Corrupt forwards the real answer with some bytes of the body flipped (the
	// island handing out a damaged copy of intact data).
	Corrupt
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Unavailable:
		return "unavailable"
	case Quorum:
		return "quorum"
	case Reset:
		return "reset"
	case Truncate:
		return "truncate"
	case Corrupt:
		return "corrupt"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Rule says which requests get which fault.
type Rule struct {
	Kind Kind
	// Method, when set, restricts the rule to that method (e.g. "GET").
	Method string
	// PathContains, when set, restricts the rule to URL paths containing it
	// (e.g. "/data/" for restic's packs).
	PathContains string
	// Match, when set, must also accept the request (e.g. by a header).
	Match func(*http.Request) bool
	// After lets this many matching requests through untouched first.
	After int
	// Times is how many matching requests get the fault; 0 means every one
	// from then on (until the rule is removed).
	Times int
}

type rule struct {
	Rule
	seen, hit int
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// Endpoint is the proxy's host:port, to use instead of the server's.
	Endpoint string

	srv *http.Server
	ln  net.Listener
	rp  *httputil.ReverseProxy

	mu       sync.Mutex
	rules    []*rule
	requests int
	faults   map[Kind]int
}

// Start starts a proxy on a free 127.0.0.1 port in front of upstream ("host:port" or an
// http URL).
func Start(upstream string) (*Proxy, error) {
	if !strings.Contains(upstream, "://") {
		upstream = "http://" + upstream
	}
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream %q is not a URL", upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{Endpoint: ln.Addr().String(), ln: ln, faults: map[Kind]int{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the client signed this Host
		},
		Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true},
		FlushInterval: -1,
		ErrorLog:      nil,
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's http URL.
func (p *Proxy) URL() string { return "http://" + p.Endpoint }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		return p.srv.Close()
	}
	return nil
}

// Add adds a rule and returns a function that removes it. Rules are tried in the order
// they were added; the first that fires decides.
func (p *Proxy) Add(r Rule) (remove func()) {
	rr := &rule{Rule: r}
	p.mu.Lock()
	p.rules = append(p.rules, rr)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, x := range p.rules {
			if x == rr {
				p.rules = append(p.rules[:i], p.rules[i+1:]...)
				return
			}
		}
	}
}

// Clear removes every rule: from now on everything passes through.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.rules = nil
	p.mu.Unlock()
}

// Requests is how many requests the proxy received.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Faults is how many requests got a fault of kind k.
func (p *Proxy) Faults(k Kind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults[k]
}

// pick counts the request against the rules and returns the fault to inject, if any.
func (p *Proxy) pick(r *http.Request) Kind {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	for _, ru := range p.rules {
		if ru.Method != "" && ru.Method != r.Method {
			continue
		}
		if ru.PathContains != "" && !strings.Contains(r.URL.Path, ru.PathContains) {
			continue
		}
		if ru.Match != nil && !ru.Match(r) {
			continue
		}
		ru.seen++
		if ru.seen <= ru.After || (ru.Times > 0 && ru.hit >= ru.Times) {
			continue
		}
		ru.hit++
		p.faults[ru.Kind]++
		return ru.Kind
	}
	return 0
}

// ServeHTTP proxies one request, injecting the fault its rule says.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch k := p.pick(r); k {
	case 0:
		p.rp.ServeHTTP(w, r)
	case Unavailable:
		s3Error(w, r, http.StatusServiceUnavailable, "ServiceUnavailable", "Please reduce your request rate.")
	case Quorum:
		s3Error(w, r, http.StatusServiceUnavailable, "ServiceUnavailable",
			"Could not reach quorum of 2. 1 of 3 request succeeded, others returned errors: [\"Netapp error: Not connected: 4f2a\", \"Timeout\"]")
	case Reset:
		_, _ = io.Copy(io.Discard, r.Body)
		reset(w)
	case Truncate, Corrupt:
		rec := &bodyRewriter{ResponseWriter: w, kind: k}
		p.rp.ServeHTTP(rec, r)
		rec.finish()
	}
}

// s3Error writes an S3 XML error (no body for HEAD, as S3 servers do).
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId></Error>`,
		code, xmlEscape(msg), xmlEscape(r.URL.Path))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	for _, c := range s {
		switch c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// reset closes the client's connection with a TCP RST (SO_LINGER 0).
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// bodyRewriter passes the upstream status and headers through and rewrites the body: a
// truncated body (half of it, then the connection is closed) or a corrupted one.
type bodyRewriter struct {
	http.ResponseWriter
	kind   Kind
	status int
	buf    bytes.Buffer
}

func (b *bodyRewriter) WriteHeader(status int) {
	b.status = status
}

func (b *bodyRewriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

// Flush is a no-op: the body is rewritten once it is complete.
func (b *bodyRewriter) Flush() {}

func (b *bodyRewriter) finish() {
	status := cmpInt(b.status, http.StatusOK)
	body := b.buf.Bytes()
	if status/100 != 2 || len(body) == 0 {
		// Not a body worth damaging (an error, a HEAD): pass it on as it is.
		b.ResponseWriter.WriteHeader(status)
		_, _ = b.ResponseWriter.Write(body)
		return
	}
	switch b.kind {
	case Corrupt:
		for i := len(body) / 3; i < len(body) && i < len(body)/3+16; i++ {
			body[i] ^= 0xff
		}
		b.ResponseWriter.WriteHeader(status)
		_, _ = b.ResponseWriter.Write(body)
	case Truncate:
		b.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(len(body)))
		b.ResponseWriter.WriteHeader(status)
		_, _ = b.ResponseWriter.Write(body[:len(body)/2])
		if f, ok := b.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		// Abort the handler: net/http closes the connection without completing the body.
		panic(http.ErrAbortHandler)
	}
}

func cmpInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
