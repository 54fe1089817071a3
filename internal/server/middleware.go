package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/audit"
)

// requestMeta puts the request id and source address where audit entries find them, and
// echoes the request id to the client.
func requestMeta(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := middleware.GetReqID(r.Context())
		w.Header().Set("X-Request-Id", id)
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		ctx := audit.WithRequest(r.Context(), audit.Request{ID: id, SourceIP: ip})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// clientAddress sets the request's remote address to the client's when the request comes
// through a trusted reverse proxy: the rightmost X-Forwarded-For address that is not itself
// a trusted proxy (addresses further left were written by the client, which may lie). Login
// throttling, the audit log and request logs then see the client, not the proxy. Without
// trusted proxies (the default) the header is ignored: anyone can send it.
func clientAddress(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err == nil && isTrusted(peer.Addr()) {
			if client, ok := forwardedClient(r.Header.Values("X-Forwarded-For"), isTrusted); ok {
				r = r.Clone(r.Context())
				r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedClient walks X-Forwarded-For from the right past trusted proxies. A malformed
// address stops the walk: what lies left of it cannot be trusted.
func forwardedClient(headers []string, trusted func(netip.Addr) bool) (netip.Addr, bool) {
	var hops []string
	for _, h := range headers {
		hops = append(hops, strings.Split(h, ",")...)
	}
	var last netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		last = a.Unmap()
		if !trusted(last) {
			return last, true
		}
	}
	return last, last.IsValid() // every hop read was a trusted proxy: the leftmost of them
}

// recoverer turns a panic into a logged 500 in the error shape.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if rec := recover(); rec != nil {
					if rec == http.ErrAbortHandler {
						panic(rec)
					}
					log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(rec),
						"path", r.URL.Path, "stack", string(debug.Stack()))
					api.WriteError(w, r, log, fmt.Errorf("panic: %v", rec))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// bodyLimit caps request bodies; api.Decode turns the overflow into a 413. A body whose
// declared length is already too large is refused before any handler runs.
func bodyLimit(max int64, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				api.WriteError(w, r, log, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeBodyTooLarge,
					Message: fmt.Sprintf("the request body is larger than %d bytes", max)})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, max)
			next.ServeHTTP(w, r)
		})
	}
}

// securityHeaders sets a strict CSP (no inline scripts), no framing, nosniff and a
// referrer policy on every response.
func securityHeaders(secure bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; "+
				"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			if secure {
				h.Set("Strict-Transport-Security", "max-age=31536000")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// httpMetrics are the request metrics of the server.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight prometheus.Gauge
	// series caches each (route, method, status)'s counter and histogram: looking them up
	// by label values hashes the labels on every request.
	series sync.Map // seriesKey → *routeSeries
}

type seriesKey struct {
	route, method string
	status        int
}

type routeSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func (m *httpMetrics) seriesOf(route, method string, status int) *routeSeries {
	k := seriesKey{route, method, status}
	if s, ok := m.series.Load(k); ok {
		return s.(*routeSeries)
	}
	s, _ := m.series.LoadOrStore(k, &routeSeries{requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
		latency: m.latency.WithLabelValues(route, method)})
	return s.(*routeSeries)
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archipelago_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "archipelago_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "archipelago_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.inflight)
	return m
}

// middleware records metrics and writes one access-log line per request, labelled by the
// route pattern (never the raw path, which would explode cardinality and leak ids). Its
// cost per request is bounded (BenchmarkRequestLog): cached metric series, the log line's
// attributes built only when the level is enabled, and the process log buffered
// (internal/logbuf) rather than one write system call per line.
func (m *httpMetrics) middleware(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			m.inflight.Inc()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				m.inflight.Dec()
				route := chi.RouteContext(r.Context()).RoutePattern()
				if route == "" {
					route = "unmatched"
				}
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				d := time.Since(start)
				series := m.seriesOf(route, r.Method, status)
				series.requests.Inc()
				series.latency.Observe(d.Seconds())
				level := slog.LevelInfo
				if strings.HasPrefix(route, "/healthz") || strings.HasPrefix(route, "/readyz") || route == "/metrics" || strings.HasPrefix(route, "/static/") {
					level = slog.LevelDebug
				}
				if !log.Enabled(r.Context(), level) {
					return
				}
				log.LogAttrs(r.Context(), level, "http request",
					slog.String("method", r.Method), slog.String("route", route), slog.Int("status", status),
					slog.Int("bytes", ww.BytesWritten()), slog.Duration("duration", d),
					slog.String("request_id", middleware.GetReqID(r.Context())))
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// poolCollector exposes pgxpool statistics.
type poolCollector struct {
	pool                                       *pgxpool.Pool
	total, idle, acquired, maxConns, acquires  *prometheus.Desc
	acquireWait, emptyAcquire, canceledAcquire *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("archipelago_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{pool: pool,
		total:           d("connections", "Open connections in the pool."),
		idle:            d("idle_connections", "Idle connections."),
		acquired:        d("acquired_connections", "Connections in use."),
		maxConns:        d("max_connections", "Pool size limit."),
		acquires:        d("acquires_total", "Successful connection acquires."),
		acquireWait:     d("acquire_wait_seconds_total", "Time spent waiting for a connection."),
		emptyAcquire:    d("empty_acquires_total", "Acquires that had to wait for a connection."),
		canceledAcquire: d("canceled_acquires_total", "Acquires cancelled by their context."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.maxConns, c.acquires, c.acquireWait, c.emptyAcquire, c.canceledAcquire} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.maxConns, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.acquireWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(c.emptyAcquire, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.canceledAcquire, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}
