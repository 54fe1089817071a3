// Package server owns Archipelago's HTTP server: the middleware stack, every route (in
// routes.go, the one place routes are listed), metrics and graceful shutdown. Handlers live
// with the API (internal/api) and the portal (internal/portal).
package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/portal"
)

// Deps are the server's collaborators, built by cmd/archipelago.
type Deps struct {
	Logger        *slog.Logger
	Pool          *pgxpool.Pool
	Registry      *prometheus.Registry
	API           *api.API
	Portal        *portal.Portal
	MaxBodyBytes  int64
	SecureCookies bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// MetricsToken is the bearer token /metrics requires; empty, /metrics is refused
	// (the metrics name every member's vaults and repositories).
	MetricsToken string
	// Expositions write metric families of their own after the registry's (the domain
	// metrics, tens of thousands of series in a large federation: internal/metrics writes
	// them as text directly instead of through the registry). Their names must not clash
	// with the registry's.
	Expositions []Exposition
}

// Exposition writes metric families in Prometheus' text format (0.0.4).
type Exposition interface {
	WriteText(ctx context.Context, w io.Writer) error
}

// Server is the HTTP server.
type Server struct {
	d       Deps
	log     *slog.Logger
	metrics *httpMetrics
	router  chi.Router
	handler http.Handler // router behind clientAddress
}

// New builds the server and its router.
func New(d Deps) (*Server, error) {
	if d.Logger == nil || d.API == nil || d.Portal == nil || d.Registry == nil {
		return nil, errors.New("server: logger, api, portal and registry are required")
	}
	s := &Server{d: d, log: d.Logger, metrics: newHTTPMetrics(d.Registry)}
	if d.Pool != nil {
		d.Registry.MustRegister(newPoolCollector(d.Pool))
	}
	s.router = s.routes()
	s.handler = clientAddress(d.TrustedProxies, s.router)
	return s, nil
}

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler is the root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Router exposes the router, for tests that walk every route.
func (s *Server) Router() chi.Router { return s.router }

// metricsHandler serves /metrics to Prometheus only: the request must carry
// `Authorization: Bearer <ARCHIPELAGO_METRICS_TOKEN>`, compared in constant time. Without
// a configured token nobody may scrape, since the metrics name every member's vaults,
// repositories, usage and outcomes.
func (s *Server) metricsHandler() http.Handler {
	want := sha256.Sum256([]byte(s.d.MetricsToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.MetricsToken == "" {
			api.WriteError(w, r, s.log, &api.Error{Status: http.StatusForbidden, Code: api.CodeForbidden,
				Message: "metrics are disabled: set ARCHIPELAGO_METRICS_TOKEN and give Prometheus the token"})
			return
		}
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(tok))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="archipelago-metrics"`)
			api.WriteError(w, r, s.log, &api.Error{Status: http.StatusUnauthorized, Code: api.CodeUnauthenticated,
				Message: "scraping /metrics needs `Authorization: Bearer <ARCHIPELAGO_METRICS_TOKEN>`"})
			return
		}
		s.serveMetrics(w, r)
	})
}

// serveMetrics writes the registry's families (runtime, process, HTTP, pool and the small
// domain collectors) through Prometheus' encoder, then the expositions' own, in the text
// format, gzipped when the scraper accepts it (at the fastest level: 4 MB of text at 10,000
// members). A registry that cannot be gathered answers 500, as promhttp does: never a partial
// scrape.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	fams, err := s.d.Registry.Gather()
	if err != nil {
		s.log.ErrorContext(r.Context(), "gather metrics", "err", err)
		http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			s.log.ErrorContext(r.Context(), "encode metrics", "err", err)
			http.Error(w, "encode metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	for _, x := range s.d.Expositions {
		if err := x.WriteText(r.Context(), &buf); err != nil {
			s.log.ErrorContext(r.Context(), "write metrics", "err", err)
			http.Error(w, "write metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	var out io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		defer gz.Close()
		out = gz
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	}
	if _, err := buf.WriteTo(out); err != nil {
		s.log.DebugContext(r.Context(), "write metrics", "err", err) // the scraper left
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// notFound answers unknown routes: the portal's page for browsers, the JSON shape otherwise.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if wantsHTML(r) {
		s.d.Portal.NotFound(w, r)
		return
	}
	api.WriteError(w, r, s.log, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound,
		Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	api.WriteError(w, r, s.log, &api.Error{Status: http.StatusMethodNotAllowed, Code: api.CodeMethodNotAllowed,
		Message: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)})
}

func wantsHTML(r *http.Request) bool {
	return !strings.HasPrefix(r.URL.Path, "/v1/") && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// Serve serves on l until ctx is cancelled, then stops accepting, drains in-flight requests
// for up to grace, and returns.
func (s *Server) Serve(ctx context.Context, l net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      0, // server-sent events stream; handlers bound their own work
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining requests", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("drain requests: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
