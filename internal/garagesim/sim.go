package garagesim

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Defaults applied to a Config.
const (
	DefaultRegion            = "garage"
	DefaultReplicationFactor = 1
	// DefaultNodeCapacity is the layout capacity of the nodes created when
	// Config.Nodes is empty: 100 GB (SI).
	DefaultNodeCapacity int64 = 100_000_000_000
	// DefaultUsageTTL is how long MinIO's data-usage answer is reused.
	DefaultUsageTTL = 2 * time.Second
	// GarageVersion is the version the simulator reports for its nodes.
	GarageVersion = "v2.3.0-garagesim"
)

// Config configures a simulator. AdminToken and the S3 fields are required.
type Config struct {
	// AdminToken is the bearer token the admin API requires.
	AdminToken string
	// ControlToken, when set, is the bearer token the /_sim/ control API
	// requires; when empty the control API is open (it only listens on
	// loopback by default).
	ControlToken string
	// ReplicationFactor is the simulated cluster's replication factor
	// (default 1). It drives health (quorums) and layout validation.
	ReplicationFactor int
	// S3Endpoint is the MinIO host:port serving the data plane.
	S3Endpoint string
	// S3AccessKey and S3SecretKey are MinIO's root credentials.
	S3AccessKey string
	S3SecretKey string
	// S3Secure selects https for MinIO.
	S3Secure bool
	// S3Region is the region reported to clients and in error bodies
	// (default "garage", Garage's usual s3_region).
	S3Region string
	// Addr is the listen address of Start (default "127.0.0.1:0").
	Addr string
	// Nodes are the initial nodes, all given a role in layout version 1. When
	// empty, ReplicationFactor nodes are created in zones "zone-1", "zone-2",
	// …, each with DefaultNodeCapacity. The first node answers as "self".
	Nodes []NodeConfig
	// Logger receives the simulator's records (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests may move time forward.
	Now func() time.Time
	// UsageTTL is how long a MinIO data-usage answer is reused (default
	// DefaultUsageTTL).
	UsageTTL time.Duration
}

// NodeConfig describes an initial node. An empty Zone makes a node without
// role; a zero Capacity with a Zone makes a gateway.
type NodeConfig struct {
	Hostname string
	Zone     string
	Capacity int64
}

// Sim is a simulated Garage cluster. It is an http.Handler serving the admin
// API v2 under /v2/, GET /health, and the control API under /_sim/.
type Sim struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	admin *madmin.AdminClient
	s3    *minio.Client
	mux   *http.ServeMux

	mu          sync.Mutex
	keys        map[string]*simKey
	deletedKeys map[string]bool
	buckets     map[string]*simBucket
	nodes       []*simNode
	selfID      string
	layout      layoutState
	faults      map[string][]Fault
	every       map[string]*periodicFault
	served      map[string]int // injected faults answered, by operation
	usage       usageCache
	// iamRequests counts the IAM writes admin calls have in flight.
	iamRequests atomic.Int32

	spares        chan spare
	sparesWanted  chan struct{}
	sparesDone    chan struct{}
	sparesCancel  context.CancelFunc
	sparesStarted bool
	sparesStopped bool

	loopCancel  context.CancelFunc
	loopDone    chan struct{}
	usageDone   chan struct{}
	usageWanted chan struct{}
	srv         *http.Server
	url         string
	closeOnce   sync.Once
}

// New builds a simulator serving no port: use it as an http.Handler, and
// call Close when done (it stops the key-expiry loop). ctx bounds the checks
// made against MinIO while building.
func New(ctx context.Context, cfg Config) (*Sim, error) {
	cfg.S3Region = cmp.Or(cfg.S3Region, DefaultRegion)
	cfg.ReplicationFactor = cmp.Or(cfg.ReplicationFactor, DefaultReplicationFactor)
	cfg.Addr = cmp.Or(cfg.Addr, "127.0.0.1:0")
	cfg.UsageTTL = cmp.Or(cfg.UsageTTL, DefaultUsageTTL)
	switch {
	case cfg.AdminToken == "":
		return nil, errors.New("garagesim: AdminToken is required")
	case cfg.S3Endpoint == "" || cfg.S3AccessKey == "" || cfg.S3SecretKey == "":
		return nil, errors.New("garagesim: S3Endpoint, S3AccessKey and S3SecretKey are required")
	case cfg.ReplicationFactor < 1 || cfg.ReplicationFactor > 7:
		return nil, fmt.Errorf("garagesim: replication factor %d out of 1..7", cfg.ReplicationFactor)
	}
	s := &Sim{
		cfg:          cfg,
		log:          cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		now:          cfg.Now,
		keys:         map[string]*simKey{},
		deletedKeys:  map[string]bool{},
		buckets:      map[string]*simBucket{},
		faults:       map[string][]Fault{},
		every:        map[string]*periodicFault{},
		served:       map[string]int{},
		spares:       make(chan spare, spareKeys),
		sparesWanted: make(chan struct{}, 1),
		sparesDone:   make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	s.admin, err = madmin.NewWithOptions(cfg.S3Endpoint, &madmin.Options{
		Creds: credentials.NewStaticV4(cfg.S3AccessKey, cfg.S3SecretKey, ""), Secure: cfg.S3Secure})
	if err != nil {
		return nil, fmt.Errorf("garagesim: MinIO admin client: %w", err)
	}
	s.s3, err = minio.New(cfg.S3Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.S3AccessKey, cfg.S3SecretKey, ""), Secure: cfg.S3Secure})
	if err != nil {
		return nil, fmt.Errorf("garagesim: MinIO client: %w", err)
	}
	if _, err := s.s3.ListBuckets(ctx); err != nil {
		return nil, fmt.Errorf("garagesim: reach MinIO at %s: %w", cfg.S3Endpoint, err)
	}
	if err := s.initCluster(); err != nil {
		return nil, err
	}
	s.mux = s.routes()
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.loopCancel, s.loopDone = cancel, make(chan struct{})
	s.usageDone, s.usageWanted = make(chan struct{}), make(chan struct{}, 1)
	go s.expiryLoop(loopCtx)
	go s.usageLoop(loopCtx)
	return s, nil
}

// Start builds a simulator and serves it on cfg.Addr (default
// 127.0.0.1:0, a free port). Close stops it.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	s, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("garagesim: listen on %s: %w", s.cfg.Addr, err)
	}
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("garagesim: serve", slog.String("error", err.Error()))
		}
	}()
	s.log.Info("garagesim: started", slog.String("url", s.url), slog.String("s3", s.cfg.S3Endpoint))
	return s, nil
}

// URL is the admin API base URL (http://127.0.0.1:port); empty when built
// with New.
func (s *Sim) URL() string { return s.url }

// S3Endpoint is the host:port of the MinIO serving the data plane.
func (s *Sim) S3Endpoint() string { return s.cfg.S3Endpoint }

// Region is the S3 region clients must sign with.
func (s *Sim) Region() string { return s.cfg.S3Region }

// AdminToken is the admin API token.
func (s *Sim) AdminToken() string { return s.cfg.AdminToken }

// Close stops the server (if started) and the expiry loop. Buckets, users
// and policies created in MinIO are left there; use Cleanup to remove them.
func (s *Sim) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = s.srv.Shutdown(ctx)
			cancel()
		}
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.stopSpares(sctx) // unused spare users leave MinIO
		scancel()
		s.loopCancel()
		<-s.loopDone
		<-s.usageDone
	})
	return err
}

// ServeHTTP serves the admin API, /health and the /_sim/ control API.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Sim) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/{op}", s.serveAdmin)
	mux.HandleFunc("GET /health", s.serveHealth)
	s.controlRoutes(mux)
	return mux
}

// operation is one admin API endpoint.
type operation struct {
	method string
	// quorum marks key and bucket operations, which Garage cannot serve
	// without a quorum of storage nodes (503 when the cluster is
	// unavailable).
	quorum bool
	handle func(s *Sim, r *http.Request) (any, *apiError)
}

var operations = map[string]operation{
	"ListKeys":            {http.MethodGet, true, (*Sim).listKeys},
	"GetKeyInfo":          {http.MethodGet, true, (*Sim).getKeyInfo},
	"CreateKey":           {http.MethodPost, true, (*Sim).createKey},
	"UpdateKey":           {http.MethodPost, true, (*Sim).updateKey},
	"DeleteKey":           {http.MethodPost, true, (*Sim).deleteKey},
	"ListBuckets":         {http.MethodGet, true, (*Sim).listBuckets},
	"GetBucketInfo":       {http.MethodGet, true, (*Sim).getBucketInfo},
	"CreateBucket":        {http.MethodPost, true, (*Sim).createBucket},
	"UpdateBucket":        {http.MethodPost, true, (*Sim).updateBucket},
	"DeleteBucket":        {http.MethodPost, true, (*Sim).deleteBucket},
	"AddBucketAlias":      {http.MethodPost, true, (*Sim).addBucketAlias},
	"RemoveBucketAlias":   {http.MethodPost, true, (*Sim).removeBucketAlias},
	"AllowBucketKey":      {http.MethodPost, true, (*Sim).allowBucketKey},
	"DenyBucketKey":       {http.MethodPost, true, (*Sim).denyBucketKey},
	"GetClusterHealth":    {http.MethodGet, false, (*Sim).getClusterHealth},
	"GetClusterStatus":    {http.MethodGet, false, (*Sim).getClusterStatus},
	"GetClusterLayout":    {http.MethodGet, false, (*Sim).getClusterLayout},
	"UpdateClusterLayout": {http.MethodPost, false, (*Sim).updateClusterLayout},
	"ApplyClusterLayout":  {http.MethodPost, false, (*Sim).applyClusterLayout},
	"RevertClusterLayout": {http.MethodPost, false, (*Sim).revertClusterLayout},
	"GetNodeInfo":         {http.MethodGet, false, (*Sim).getNodeInfo},
}

func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	if aerr := s.authorize(r); aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	o, ok := operations[op]
	if !ok || r.Method != o.method {
		s.writeError(w, r, badRequest("Unknown API endpoint: %s %s", r.Method, r.URL.Path))
		return
	}
	if f, ok := s.takeFault(op); ok {
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if f.Status != 0 {
			s.writeError(w, r, &apiError{status: f.Status, code: codeFor(f.Status), msg: "garagesim: injected fault"})
			return
		}
	}
	s.mu.Lock()
	var (
		out  any
		aerr *apiError
	)
	if o.quorum && s.healthLocked().Status == "unavailable" {
		aerr = &apiError{http.StatusServiceUnavailable, "ServiceUnavailable",
			"Could not reach quorum: the cluster is unavailable (simulated)"}
	} else {
		out, aerr = o.handle(s, r)
	}
	s.mu.Unlock()
	if c, ok := out.(completer); ok {
		out = c.complete(r.Context())
	}
	if aerr != nil {
		s.log.Debug("garagesim: admin call refused", slog.String("operation", op),
			slog.Int("status", aerr.status), slog.String("code", aerr.code), slog.String("message", aerr.msg))
		s.writeError(w, r, aerr)
		return
	}
	s.log.Debug("garagesim: admin call", slog.String("operation", op))
	if out == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// authorize checks the admin bearer token like Garage: 403 AccessDenied.
func (s *Sim) authorize(r *http.Request) *apiError {
	h := r.Header.Get("Authorization")
	if h == "" {
		return &apiError{http.StatusForbidden, "AccessDenied", "Forbidden: Authorization token must be provided"}
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || !constantTimeEqual(tok, s.cfg.AdminToken) {
		return &apiError{http.StatusForbidden, "AccessDenied", "Forbidden: Invalid authorization token"}
	}
	return nil
}

func (s *Sim) serveHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.healthLocked()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	switch h.Status {
	case "healthy":
		fmt.Fprintln(w, "Garage is fully operational")
	case "degraded":
		fmt.Fprintln(w, "Garage is operational but some storage nodes are unavailable")
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "Quorum is not available for some/all partitions, reads and writes will fail")
	}
}

// apiError is an error answer in Garage's format.
type apiError struct {
	status int
	code   string
	msg    string
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidRequest", fmt.Sprintf(format, args...)}
}

func internalError(err error) *apiError {
	return &apiError{http.StatusInternalServerError, "InternalError", "garagesim: " + err.Error()}
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "InvalidRequest"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusNotFound:
		return "NoSuchKey"
	case http.StatusConflict:
		return "BucketAlreadyExists"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusNotImplemented:
		return "NotImplemented"
	}
	return "InternalError"
}

func (s *Sim) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	writeJSON(w, e.status, map[string]string{
		"code": e.code, "message": e.msg, "region": s.cfg.S3Region, "path": r.URL.Path,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decodeBody decodes a JSON body strictly: unknown fields are refused (Garage
// is more lenient; the simulator prefers to expose client typos).
func decodeBody(r *http.Request, v any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("Invalid JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("Invalid JSON body: trailing data")
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range len(a) {
		v |= a[i] ^ b[i]
	}
	return v == 0
}
