package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestServeSurvivesAFloodOfLogins is black-box: the real binary (built without the race
// detector, so its memory is what production's is) serves; 300 logins arrive at once from
// one address, each for another email. The server keeps answering /healthz, its peak
// resident memory stays under 300 MiB (each argon2id check takes 64 MiB: unbounded, 300
// of them would take 19 GiB), and no more passwords are verified than the address's
// allowance (30 failures per 15 minutes).
func TestServeSurvivesAFloodOfLogins(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "archipelago")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dbURL := testenv.DBURL(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs lockedBuffer // written by exec's copying goroutine while the test reads it
	srv := exec.Command(bin, "serve")
	srv.Env = []string{"PATH=" + os.Getenv("PATH"), "ARCHIPELAGO_DATABASE_URL=" + dbURL, "ARCHIPELAGO_MASTER_KEY=" + seal.NewKey(),
		"ARCHIPELAGO_LISTEN=" + addr, "ARCHIPELAGO_RUN_WORKERS=false", "ARCHIPELAGO_LOG_LEVEL=warn"}
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	})
	base := "http://" + addr
	health := &http.Client{Timeout: 10 * time.Second}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if resp, err := health.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited: %v\n%s", err, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never answered /healthz\n%s", logs.String())
		}
	}

	stop := make(chan struct{})
	var checks, failures atomic.Int64
	var firstFailure atomic.Value
	var probes sync.WaitGroup
	probes.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			resp, err := health.Get(base + "/healthz") // within 10 s, or it counts as down
			checks.Add(1)
			if err != nil || resp.StatusCode != 200 {
				failures.Add(1)
				if err == nil {
					resp.Body.Close()
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				firstFailure.CompareAndSwap(nil, err.Error())
				continue
			}
			resp.Body.Close()
		}
	})
	const n = 300
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		status = map[int]int{}
		errs   []error
	)
	client := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"email":"flood-%d@x.example","password":"wrong-password-%d"}`, i, i)
			resp, err := client.Post(base+"/v1/auth/login", "application/json", strings.NewReader(body))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			resp.Body.Close()
			status[resp.StatusCode]++
		})
	}
	wg.Wait()
	close(stop)
	probes.Wait()
	peak := peakRSS(t, srv.Process.Pid)
	t.Logf("statuses %v; /healthz %d checks, %d failed; peak RSS %d MiB", status, checks.Load(), failures.Load(), peak>>20)
	if len(errs) > 0 {
		t.Fatalf("%d logins got no answer, first: %v\n%s", len(errs), errs[0], logs.String())
	}
	if failures.Load() > 0 {
		t.Errorf("/healthz failed %d of %d times during the flood, first: %v", failures.Load(), checks.Load(), firstFailure.Load())
	}
	if peak >= 300<<20 {
		t.Errorf("peak RSS %d MiB, want under 300 MiB", peak>>20)
	}
	pool := mustPool(t, dbURL)
	var verified int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM login_failures`).Scan(&verified); err != nil {
		t.Fatal(err)
	}
	if verified > 30 || status[401] > 30 || status[401] != verified {
		t.Errorf("%d failures recorded, %d answered 401: want the same number, at most the allowance of 30", verified, status[401])
	}
	if status[401]+status[429]+status[503] != n {
		t.Errorf("statuses %v: want only 401, 429 and 503", status)
	}

	// The bound is the address's allowance, not only the hashing slots: logins from the same
	// address, one at a time, are verified until its 30 failures are used up, then refused
	// with 429 and Retry-After.
	for i := 0; ; i++ {
		if i > 60 {
			t.Fatalf("%d more logins from the flooding address, one at a time, none refused: no allowance per address", i)
		}
		body := fmt.Sprintf(`{"email":"after-%d@x.example","password":"wrong-password-%d"}`, i, i)
		resp, err := client.Post(base+"/v1/auth/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 {
			continue
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		break
	}
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM login_failures`).Scan(&verified); err != nil {
		t.Fatal(err)
	}
	if verified != 30 {
		t.Errorf("refused after %d failures from the address, want its allowance of 30", verified)
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// peakRSS reads a process's peak resident set size (VmHWM) from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}
