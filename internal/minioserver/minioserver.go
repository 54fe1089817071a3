// Package minioserver owns throwaway MinIO servers, the S3 data plane of the sandbox and
// the tests (Garage cannot be installed on development machines; the Garage simulator
// drives a MinIO instead). MinIO is pinned in tools/go.mod and built by `make tools`.
package minioserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/chatons/archipelago/internal/proc"
)

// Server is a running MinIO.
type Server struct {
	Endpoint  string // host:port
	AccessKey string // root user
	SecretKey string // root password
	Region    string
	Dir       string
	proc      *proc.Process
	own, keep bool
	log       *slog.Logger
}

// Options configure Start.
type Options struct {
	Dir    string // data directory parent; when empty a throwaway one (see tempParent), removed by Stop
	Keep   bool
	Region string // default "garage", as Garage's usual s3_region
	Logger *slog.Logger
}

// Start starts MinIO on a free loopback port and waits until it is ready. Its scanner is
// tuned so quotas and usage follow writes within seconds rather than a minute.
func Start(ctx context.Context, o Options) (_ *Server, err error) {
	bin, err := proc.FindTool("minio", "ARCHIPELAGO_MINIO")
	if err != nil {
		return nil, err
	}
	s := &Server{Region: o.Region, keep: o.Keep, log: o.Logger}
	if s.Region == "" {
		s.Region = "garage"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.Dir == "" {
		parent := tempParent()
		reapOrphans(parent)
		if s.Dir, err = os.MkdirTemp(parent, tempPrefix); err != nil {
			return nil, err
		}
		s.own = true
		if err := writeOwner(s.Dir); err != nil {
			_ = os.RemoveAll(s.Dir)
			return nil, err
		}
	} else {
		s.Dir = o.Dir
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	cport, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	s.Endpoint = "127.0.0.1:" + strconv.Itoa(port)
	s.AccessKey = "archipelago-root"
	s.SecretKey = randomHex(20)
	logFile := filepath.Join(s.Dir, "minio.log")
	s.proc, err = proc.Start(proc.Options{Name: "minio", Path: bin,
		Args: []string{"server", "--quiet", "--address", s.Endpoint, "--console-address", "127.0.0.1:" + strconv.Itoa(cport), data},
		Env: []string{"MINIO_ROOT_USER=" + s.AccessKey, "MINIO_ROOT_PASSWORD=" + s.SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_REGION=" + s.Region,
			"MINIO_SCANNER_CYCLE=5s", "MINIO_SCANNER_SPEED=fastest", "HOME=" + s.Dir},
		LogFile: logFile, Dir: s.Dir})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	if err := s.proc.WaitFor(wctx, "health", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Endpoint+"/minio/health/ready", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health answered %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%w; see %s", err, logFile)
	}
	s.log.InfoContext(ctx, "minio started", "endpoint", s.Endpoint, "pid", s.proc.PID())
	return s, nil
}

// URL is the server's S3 URL.
func (s *Server) URL() string { return "http://" + s.Endpoint }

// PID is MinIO's process id.
func (s *Server) PID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.PID()
}

// Stop stops MinIO and removes its directory unless kept.
func (s *Server) Stop() {
	if s.proc != nil {
		if err := s.proc.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
			s.log.Warn("minio stop", "err", err)
		}
	}
	if s.own && !s.keep {
		_ = os.RemoveAll(s.Dir)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
