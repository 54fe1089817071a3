// Package apptest runs a whole Archipelago (database, API, portal) for tests: a fresh
// migrated database of the test's own, the real router behind httptest, and a client whose
// every response is validated against the OpenAPI document, so API tests also prove the
// document tells the truth.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

// Env is a running Archipelago for one test.
type Env struct {
	T   testing.TB
	App *app.App
	URL string
	Doc *openapi3.T
	// Client keeps cookies, like a browser.
	Client *http.Client
}

// Option adjusts the configuration before the app starts.
type Option func(env map[string]string)

// WithEnv sets a configuration variable.
func WithEnv(k, v string) Option { return func(m map[string]string) { m[k] = v } }

// New starts an Archipelago on a fresh database and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	vars := map[string]string{
		"ARCHIPELAGO_DATABASE_URL": testenv.DBURL(t),
		"ARCHIPELAGO_MASTER_KEY":   seal.NewKey(),
		"ARCHIPELAGO_LOG_LEVEL":    "debug",
	}
	for _, o := range opts {
		o(vars)
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("apptest: config: %v", err)
	}
	// The fixture creates and logs in four users per test, and a package runs hundreds of
	// tests: at the production cost (64 MiB, 3 passes) their hashes alone took minutes of CPU
	// and made loaded runs hit the package timeout. Logins verify each hash at its own cost;
	// the identity package's tests and the login-flood tests keep the production cost.
	cfg.PasswordHashMemoryKiB, cfg.PasswordHashPasses = 1024, 1
	// One Appender for the app's process, as the archipelago command gives each of its
	// processes: its requests and its background work append through it.
	appender := audit.NewAppender()
	ctx, cancel := context.WithCancel(audit.WithAppender(context.Background(), appender))
	a, err := app.Open(ctx, cfg, testenv.Logger(t))
	if err != nil {
		cancel()
		t.Fatalf("apptest: open app: %v", err)
	}
	h := a.Server.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(audit.WithAppender(r.Context(), appender))) // as serve's BaseContext gives it
	}))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		a.Close()
	})
	doc := LoadDoc(t)
	jar, _ := cookiejar.New(nil)
	return &Env{T: t, App: a, URL: srv.URL, Doc: doc, Client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// LoadDoc loads and validates the served OpenAPI document.
func LoadDoc(t testing.TB) *openapi3.T {
	t.Helper()
	raw, err := api.OpenAPI()
	if err != nil {
		t.Fatalf("apptest: openapi: %v", err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("apptest: load openapi: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("apptest: the OpenAPI document is invalid: %v", err)
	}
	return doc
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the body into v, failing the test on error.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// ErrorCode returns the code of an error response ("" when the body is not an error).
func (r *Response) ErrorCode() string {
	var e struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// ErrorField returns the field of an error response.
func (r *Response) ErrorField() string {
	var e struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Field
}

// Req describes a request.
type Req struct {
	Method string
	Path   string
	Body   any    // marshalled as JSON unless it is a string or []byte
	Token  string // bearer token
	Header map[string]string
	// NoValidate skips OpenAPI validation (for deliberately malformed requests).
	NoValidate bool
}

// Do sends the request and validates the response against the OpenAPI document.
func (e *Env) Do(r Req) *Response {
	e.T.Helper()
	var body io.Reader
	var raw []byte
	switch b := r.Body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			e.T.Fatal(err)
		}
	}
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(r.Method, e.URL+r.Path, body)
	if err != nil {
		e.T.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	res := &Response{Status: resp.StatusCode, Header: resp.Header, Body: out}
	if !r.NoValidate {
		if err := e.validate(req, raw, res); err != nil {
			e.T.Errorf("%s %s → %d does not match the OpenAPI document: %v\nbody: %s", r.Method, r.Path, res.Status, err, truncate(out))
		}
	}
	return res
}

// validate checks an API response against the document: the route must be described and
// the status and body must match it. Portal (HTML) routes are not part of the document.
func (e *Env) validate(req *http.Request, reqBody []byte, res *Response) error {
	path := req.URL.Path
	if !IsAPIPath(path) {
		return nil
	}
	pattern := MatchPattern(e.App.Server.Router(), req.Method, path)
	if pattern == "" {
		// Unknown routes must still answer in the error shape.
		return validateErrorShape(res)
	}
	item := e.Doc.Paths.Value(pattern)
	if item == nil {
		return fmt.Errorf("route %s is not described", pattern)
	}
	op := item.GetOperation(req.Method)
	if op == nil {
		return fmt.Errorf("%s %s is not described", req.Method, pattern)
	}
	params := map[string]string{}
	rctx := chi.NewRouteContext()
	e.App.Server.Router().Match(rctx, req.Method, path)
	for i, k := range rctx.URLParams.Keys {
		params[k] = rctx.URLParams.Values[i]
	}
	route := &routers.Route{Spec: e.Doc, Path: pattern, PathItem: item, Method: req.Method, Operation: op}
	if reqBody != nil {
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{ExcludeRequestBody: true, ExcludeRequestQueryParams: true,
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.Status, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	rin.SetBodyBytes(res.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		return err
	}
	return nil
}

func validateErrorShape(res *Response) error {
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(res.Body, &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		return fmt.Errorf("not in the error shape")
	}
	return nil
}

// IsAPIPath reports whether a path belongs to the documented API (as opposed to the portal).
func IsAPIPath(p string) bool {
	return strings.HasPrefix(p, "/v1/") || p == "/healthz" || p == "/readyz" || p == "/metrics"
}

// MatchPattern returns the chi route pattern that serves method and path ("" if none).
func MatchPattern(r chi.Router, method, path string) string {
	rctx := chi.NewRouteContext()
	if !r.Match(rctx, method, path) {
		return ""
	}
	return strings.Join(rctx.RoutePatterns, "")
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}
