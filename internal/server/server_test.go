package server_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestOperationsEndpoints(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_METRICS_TOKEN", "operations-metrics-token"))
	if r := env.Do(apptest.Req{Method: "GET", Path: "/healthz"}); r.Status != 200 {
		t.Errorf("/healthz = %d", r.Status)
	}
	if r := env.Do(apptest.Req{Method: "GET", Path: "/readyz"}); r.Status != 200 {
		t.Errorf("/readyz = %d %s", r.Status, r.Body)
	}
	env.Do(apptest.Req{Method: "GET", Path: "/v1/version"})
	r := env.Do(apptest.Req{Method: "GET", Path: "/metrics", Token: "operations-metrics-token"})
	for _, want := range []string{"archipelago_http_requests_total", "archipelago_http_request_duration_seconds_bucket",
		"archipelago_db_pool_connections", `route="/readyz"`,
		// the domains' own collectors, exported whole: their success gauges say so
		"archipelago_protection_collect_success 1", "archipelago_approvals_collect_success 1"} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(r.Body), `route="/nope`) {
		t.Error("metrics label raw paths")
	}
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/openapi.json"}); r.Status != 200 || !strings.Contains(string(r.Body), `"openapi": "3.1.0"`) {
		t.Errorf("/v1/openapi.json = %d", r.Status)
	}
	// The footer's "API reference" is a page to read, served from embedded assets.
	r = env.Do(apptest.Req{Method: "GET", Path: "/api-reference"})
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("/api-reference = %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	for _, want := range []string{`id="op-repositoryCreate"`, "<code>/v1/vaults/{id}</code>", `href="/v1/openapi.json"`, `id="schema-Error"`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("/api-reference lacks %s", want)
		}
	}
}

func TestReadyzReportsAnOutdatedSchema(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	if _, err := env.App.Pool.Exec(t.Context(), `UPDATE schema_version SET version = version - 1`); err != nil {
		t.Fatal(err)
	}
	r := env.Do(apptest.Req{Method: "GET", Path: "/readyz"})
	if r.Status != 503 || !strings.Contains(string(r.Body), "migrate up") {
		t.Fatalf("/readyz = %d %s", r.Status, r.Body)
	}
}

func TestBadRequestsAnswerInTheErrorShape(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	cases := []struct {
		name   string
		req    apptest.Req
		status int
		code   string
	}{
		{"unknown route", apptest.Req{Method: "GET", Path: "/nope"}, 404, "not_found"},
		{"unknown API route", apptest.Req{Method: "GET", Path: "/v1/nope"}, 404, "not_found"},
		{"wrong method", apptest.Req{Method: "DELETE", Path: "/healthz"}, 405, "method_not_allowed"},
		{"oversized body", apptest.Req{Method: "POST", Path: "/v1/version", Body: strings.Repeat("x", 10<<20)}, 413, "body_too_large"},
	}
	for _, c := range cases {
		r := env.Do(c.req)
		if r.Status != c.status || r.ErrorCode() != c.code {
			t.Errorf("%s: %d %q, want %d %q (%s)", c.name, r.Status, r.ErrorCode(), c.status, c.code, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: content type %q", c.name, ct)
		}
		if r.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no request id", c.name)
		}
	}
}

func TestBrowsersGetAnHTMLNotFoundPage(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	r := env.Do(apptest.Req{Method: "GET", Path: "/nope", Header: map[string]string{"Accept": "text/html"}})
	if r.Status != 404 || !strings.Contains(string(r.Body), "Page not found") {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	r := env.Do(apptest.Req{Method: "GET", Path: "/"})
	csp := r.Header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	// No inline scripts, no framing; style attributes (bar widths) are the only inline allowance.
	if directives["script-src"] != "'self'" || directives["frame-ancestors"] != "'none'" || directives["style-src"] != "'self'" {
		t.Errorf("CSP = %q", csp)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Referrer-Policy") == "" {
		t.Errorf("headers = %v", r.Header)
	}
}

// TestEveryRouteIsDocumentedAndEveryDocumentedRouteExists walks the real router: an API
// route without a description in the OpenAPI document, or a description without a route,
// fails it.
func TestEveryRouteIsDocumentedAndEveryDocumentedRouteExists(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	routes := map[string]bool{}
	err := chi.Walk(env.App.Server.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if apptest.IsAPIPath(route) {
			routes[method+" "+route] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range env.Doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var missing, stale []string
	for r := range routes {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !routes[d] {
			stale = append(stale, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("routes without an OpenAPI description:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(stale) > 0 {
		t.Errorf("OpenAPI descriptions without a route:\n  %s", strings.Join(stale, "\n  "))
	}
	if len(routes) < 5 {
		t.Fatalf("walked only %d routes", len(routes))
	}
}
