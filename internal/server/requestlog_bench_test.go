package server

// The request log's cost against a handler's (issue 20: "the request log at INFO should not
// cost more than the handler"). Not run by the tests:
//
//	go test -run '^$' -bench RequestLog -benchmem ./internal/server/
//
// BenchmarkRequestLog interleaves both sides in 5 rounds and prints, per round, the log's
// overhead (with − without) ÷ the handler's cost (goal ≤ 1).
//
// Each benchmark serves GET /v1/vaults/{id} through a chi router: the handler alone, then
// the same handler behind the metrics and access-log middleware with the process logger at
// INFO (text and JSON, writing to a file as the server writes to stderr). The handler
// encodes a vault-sized JSON answer and does no I/O: any real handler (a database round
// trip at least) costs more, so the log's overhead measured against it is an upper bound.

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/logbuf"
)

// discardWriter is a ResponseWriter that keeps nothing (its header map is reused).
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

type benchVault struct {
	ID         int64     `json:"id"`
	MemberID   int64     `json:"member_id"`
	MemberSlug string    `json:"member_slug"`
	IslandID   int64     `json:"island_id"`
	Name       string    `json:"name"`
	BucketName string    `json:"bucket_name"`
	QuotaBytes int64     `json:"quota_bytes"`
	UsageBytes int64     `json:"usage_bytes"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
}

func vaultHandler(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, benchVault{ID: 1234, MemberID: 17, MemberSlug: "m00017", IslandID: 3, Name: "backups",
		BucketName: "b-17-backups", QuotaBytes: 107374182400, UsageBytes: 5368709120, Status: "active",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
}

func serveBench(b *testing.B, h http.Handler) {
	req, err := http.NewRequest("GET", "/v1/vaults/1234", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "192.0.2.1:40000"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func routerWith(mw ...func(http.Handler) http.Handler) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	r.Use(mw...)
	r.Get("/v1/vaults/{id}", vaultHandler)
	return r
}

func benchLogger(b *testing.B, json bool) *slog.Logger {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	// As cmd/archipelago builds the process logger: buffered (internal/logbuf).
	out := logbuf.New(f)
	b.Cleanup(out.Flush)
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if json {
		return slog.New(logbuf.Handler(slog.NewJSONHandler(out, opts), out))
	}
	return slog.New(logbuf.Handler(slog.NewTextHandler(out, opts), out))
}

// BenchmarkRequestLogHandlerAlone is the baseline: the handler behind the router only.
func BenchmarkRequestLogHandlerAlone(b *testing.B) {
	serveBench(b, routerWith())
}

// BenchmarkRequestLogText is the handler behind the metrics and access-log middleware,
// text log at INFO (the default format).
func BenchmarkRequestLogText(b *testing.B) {
	m := newHTTPMetrics(prometheus.NewRegistry())
	serveBench(b, routerWith(m.middleware(benchLogger(b, false))))
}

// BenchmarkRequestLogJSON is the same with the JSON log format.
func BenchmarkRequestLogJSON(b *testing.B) {
	m := newHTTPMetrics(prometheus.NewRegistry())
	serveBench(b, routerWith(m.middleware(benchLogger(b, true))))
}

// BenchmarkRequestLogOff is the middleware with the log above INFO (metrics only).
func BenchmarkRequestLogOff(b *testing.B) {
	m := newHTTPMetrics(prometheus.NewRegistry())
	serveBench(b, routerWith(m.middleware(slog.New(slog.DiscardHandler))))
}

// BenchmarkRequestLog runs the handler alone and behind the middleware (text log at INFO)
// in 5 interleaved rounds (the order alternating) and prints the log's overhead per round
// as a fraction of the handler's cost.
func BenchmarkRequestLog(b *testing.B) {
	const rounds, perRound = 5, 20000
	m := newHTTPMetrics(prometheus.NewRegistry())
	log := benchLogger(b, false)
	switch os.Getenv("REQUESTLOG_BENCH") { // to see where the cost lies
	case "discard":
		log = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	case "unbuffered": // one write per line, as before internal/logbuf
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	case "off":
		log = slog.New(slog.DiscardHandler)
	}
	bare, logged := routerWith(), routerWith(m.middleware(log))
	req, err := http.NewRequest("GET", "/v1/vaults/1234", nil)
	if err != nil {
		b.Fatal(err)
	}
	w := &discardWriter{h: http.Header{}}
	// CPU time of the process per request (user + system): on a loaded machine wall time
	// measures the other processes more than this code.
	run := func(h http.Handler) time.Duration {
		start := cpuTime()
		for range perRound {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
		return (cpuTime() - start) / perRound
	}
	run(bare)
	run(logged)
	var ratios []float64
	var parts []string
	for i := range rounds {
		var h, l time.Duration
		if i%2 == 0 {
			h, l = run(bare), run(logged)
		} else {
			l, h = run(logged), run(bare)
		}
		r := float64(l-h) / float64(h)
		ratios = append(ratios, r)
		parts = append(parts, fmt.Sprintf("%v/%v → %.2f", h.Round(10*time.Nanosecond), l.Round(10*time.Nanosecond), r))
	}
	held := 0
	for _, r := range ratios {
		if r <= 1 {
			held++
		}
	}
	sorted := append([]float64(nil), ratios...)
	sort.Float64s(sorted)
	b.ReportMetric(sorted[len(sorted)/2], "log/handler")
	fmt.Fprintf(os.Stderr, "request log (text, INFO) per round, CPU per request handler alone/with log → overhead ÷ handler: %s\n"+
		"  median %.2f — ≤ 1 in %d of %d rounds\n", strings.Join(parts, "; "), sorted[len(sorted)/2], held, rounds)
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
