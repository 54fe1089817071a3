package garage

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New when the Config leaves a field at its zero value.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxAttempts    = 4
	DefaultRetryBaseDelay = 200 * time.Millisecond
	DefaultRetryMaxDelay  = 3 * time.Second
)

// maxResponseBytes caps how much of an answer is read. ListBuckets has no
// pagination and may be large, hence the generous cap.
const maxResponseBytes = 64 << 20

// Config configures a Client. Endpoint and Token are required.
type Config struct {
	// Endpoint is the base URL of Garage's admin API, for instance
	// "http://127.0.0.1:3903". A path prefix (reverse proxy) is kept.
	Endpoint string
	// Token is the admin bearer token. It is sent in the Authorization header
	// only: it is never logged nor put in an error.
	Token string
	// Timeout bounds each attempt of each call (default DefaultTimeout). A
	// call therefore ends within about MaxAttempts × Timeout plus backoff, or
	// earlier when its context ends.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of a retryable call (default
	// DefaultMaxAttempts). 1 disables retries.
	MaxAttempts int
	// RetryBaseDelay is the first backoff delay (default DefaultRetryBaseDelay);
	// it doubles at each retry up to RetryMaxDelay, with full jitter.
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps the backoff delay (default DefaultRetryMaxDelay).
	RetryMaxDelay time.Duration
	// Logger receives one debug record per attempt and a warning per retry
	// (default: discard).
	Logger *slog.Logger
	// HTTPClient sends the requests (default: a new http.Client). Its own
	// Timeout, if any, also applies.
	HTTPClient *http.Client
}

// Client calls Garage's admin API v2. It is safe for concurrent use.
type Client struct {
	base        *url.URL // parsed endpoint, nil when invalid
	endpoint    string   // display form: no credentials, no trailing slash
	endpointErr error
	token       string
	timeout     time.Duration
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
	log         *slog.Logger
	http        *http.Client
}

// New returns a Client for cfg, filling defaults. A missing or malformed
// Endpoint or a missing Token does not panic: every call then fails with an
// error matching ErrInvalidRequest that says what is wrong (see Check).
func New(cfg Config) *Client {
	c := &Client{
		token:       cfg.Token,
		timeout:     cmp.Or(cfg.Timeout, DefaultTimeout),
		maxAttempts: max(cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts), 1),
		baseDelay:   cmp.Or(cfg.RetryBaseDelay, DefaultRetryBaseDelay),
		maxDelay:    cmp.Or(cfg.RetryMaxDelay, DefaultRetryMaxDelay),
		log:         cfg.Logger,
		http:        cfg.HTTPClient,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	c.base, c.endpoint, c.endpointErr = parseEndpoint(cfg.Endpoint)
	if c.endpointErr == nil && cfg.Token == "" {
		c.endpointErr = fmt.Errorf("%w: admin token is empty", ErrInvalidRequest)
	}
	return c
}

// Check returns the configuration error that makes every call fail, or nil.
func (c *Client) Check() error { return c.endpointErr }

// Endpoint returns the admin endpoint this client calls, without credentials.
func (c *Client) Endpoint() string { return c.endpoint }

func parseEndpoint(raw string) (*url.URL, string, error) {
	if raw == "" {
		return nil, "", fmt.Errorf("%w: admin endpoint is empty", ErrInvalidRequest)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", fmt.Errorf("%w: admin endpoint must be an http(s) URL with a host", ErrInvalidRequest)
	}
	u.User = nil // credentials never travel in the URL nor in messages
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, u.String(), nil
}

// call describes one admin API operation.
type call struct {
	op     string     // operation name, also the path element after /v2/
	method string     // GET or POST
	query  url.Values // nil when none
	body   any        // JSON-encoded when non-nil
	// retry503 allows retrying a POST answered 503. Reads are always retried
	// on 502/503/504 and transport errors; mutations never on transport errors
	// (they may have been applied), and only on 503 when repeating them is
	// harmless.
	retry503 bool
}

func (c *Client) get(ctx context.Context, op string, query url.Values, out any) error {
	return c.do(ctx, call{op: op, method: http.MethodGet, query: query}, out)
}

func (c *Client) post(ctx context.Context, op string, query url.Values, body, out any, retry503 bool) error {
	return c.do(ctx, call{op: op, method: http.MethodPost, query: query, body: body, retry503: retry503}, out)
}

// do runs a call with retries and decodes a 2xx JSON answer into out (when
// out is not nil).
func (c *Client) do(ctx context.Context, cl call, out any) error {
	if c.endpointErr != nil {
		return fmt.Errorf("garage %s: %w", cl.op, c.endpointErr)
	}
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("garage %s: encode request: %w", cl.op, err)
		}
	}
	u := *c.base
	u.Path += "/v2/" + cl.op
	u.RawQuery = cl.query.Encode()
	target := u.String()

	var lastErr error
	for attempt := 1; ; attempt++ {
		body, status, err := c.attempt(ctx, cl, target, payload, attempt)
		if err == nil {
			if out == nil || len(bytes.TrimSpace(body)) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("garage %s at %s: decode %d answer: %w", cl.op, c.endpoint, status, err)
			}
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return fmt.Errorf("garage %s at %s: %w", cl.op, c.endpoint, context.Cause(ctx))
		}
		if attempt >= c.maxAttempts || !c.retryable(cl, err) {
			return lastErr
		}
		delay := backoff(c.baseDelay, c.maxDelay, attempt)
		c.log.WarnContext(ctx, "garage call failed, retrying",
			slog.String("operation", cl.op), slog.Int("attempt", attempt),
			slog.Duration("delay", delay), slog.String("error", err.Error()))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up waiting to retry: %w)", lastErr, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// attempt sends one request. It returns the body and status of a 2xx answer,
// or an *APIError / *TransportError.
func (c *Client) attempt(ctx context.Context, cl call, target string, payload []byte, n int) ([]byte, int, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, target, rd)
	if err != nil {
		return nil, 0, fmt.Errorf("garage %s at %s: build request: %w", cl.op, c.endpoint, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "archipelago-garage-client")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.DebugContext(ctx, "garage call", slog.String("operation", cl.op), slog.Int("attempt", n),
			slog.Duration("duration", time.Since(start)), slog.String("error", err.Error()))
		return nil, 0, &TransportError{Operation: cl.op, Endpoint: c.endpoint, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	c.log.DebugContext(ctx, "garage call", slog.String("operation", cl.op), slog.Int("attempt", n),
		slog.Int("status", resp.StatusCode), slog.Duration("duration", time.Since(start)))
	if err != nil {
		return nil, resp.StatusCode, &TransportError{Operation: cl.op, Endpoint: c.endpoint,
			Err: fmt.Errorf("read %d answer: %w", resp.StatusCode, err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, resp.StatusCode, nil
	}
	return nil, resp.StatusCode, c.apiError(cl.op, req.URL.Path, resp.StatusCode, body)
}

// apiError decodes Garage's error body, tolerating non-JSON bodies (proxies).
func (c *Client) apiError(op, path string, status int, body []byte) *APIError {
	var wire struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Region  string `json:"region"`
		Path    string `json:"path"`
	}
	e := &APIError{Operation: op, Endpoint: c.endpoint, Status: status, Path: path}
	if json.Unmarshal(body, &wire) == nil && (wire.Code != "" || wire.Message != "") {
		e.Code, e.Message, e.Region = wire.Code, wire.Message, wire.Region
		if wire.Path != "" {
			e.Path = wire.Path
		}
	} else {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		e.Message = msg
	}
	if e.Code == "" {
		e.Code = codeForStatus(status)
	}
	return e
}

// retryable applies the retry policy: reads are retried on transport errors
// and 502/503/504; mutations only on 503 and only when cl.retry503.
func (c *Client) retryable(cl call, err error) bool {
	var api *APIError
	if errors.As(err, &api) {
		switch api.Status {
		case http.StatusServiceUnavailable:
			return cl.method == http.MethodGet || cl.retry503
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			return cl.method == http.MethodGet
		}
		return false
	}
	return IsTransport(err) && cl.method == http.MethodGet
}

// backoff returns the delay before retry number attempt (1-based): an
// exponential ceiling with full jitter in [ceiling/2, ceiling].
func backoff(base, ceiling time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	half := d / 2
	return half + rand.N(half+1)
}

// stripURL removes the *url.Error wrapper, whose text repeats the full URL
// (with query parameters), keeping the operation and underlying cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
