package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

// buildBinary builds the real archipelago binary into a test's temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "archipelago")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess starts bin with args and env; the process gets SIGTERM (then SIGKILL) at
// the end of the test. The returned channel receives its exit.
func startProcess(t *testing.T, bin string, env []string, args ...string) (*exec.Cmd, *lockedBuffer, chan error) {
	t.Helper()
	var logs lockedBuffer
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, done := make(chan error, 1), make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() { // done, not exited: the test may have read its exit already
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd, &logs, exited
}

// healthcheck runs `archipelago healthcheck args…` as a container runtime would: a separate
// process with the service's environment. It returns the exit code and the output.
func healthcheck(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"healthcheck"}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// waitHealth runs the health check until it exits with want (within two minutes) and
// returns its last output.
func waitHealth(t *testing.T, bin string, env []string, want int, exited chan error, logs *lockedBuffer, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, out := healthcheck(t, bin, env, args...)
		if code == want {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck %v: exit %d (%s), want %d\nprocess log:\n%s", args, code, out, want, logs.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("the checked process exited: %v\n%s", err, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestHealthcheckServeAndWorker runs the real binary as serve and as worker, and checks
// them the way compose and Kubernetes do: `archipelago healthcheck serve|worker` in a
// separate process with the same environment, exit 0 or 1 and one line saying why.
func TestHealthcheckServeAndWorker(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dbURL := testenv.DBURL(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	common := []string{"PATH=" + os.Getenv("PATH"), "ARCHIPELAGO_DATABASE_URL=" + dbURL, "ARCHIPELAGO_MASTER_KEY=" + seal.NewKey(),
		"ARCHIPELAGO_LOG_LEVEL=warn", "ARCHIPELAGO_SCRATCH_DIR=" + filepath.Join(t.TempDir(), "scratch"), "LANG=C"}
	if r := os.Getenv("ARCHIPELAGO_RESTIC"); r != "" {
		common = append(common, "ARCHIPELAGO_RESTIC="+r)
	}
	// As in compose: serve listens on every address; the check asks the loopback.
	serveEnv := append(common[:len(common):len(common)], "ARCHIPELAGO_LISTEN=0.0.0.0:"+strconv.Itoa(port), "ARCHIPELAGO_RUN_WORKERS=false")
	readyURL := "http://127.0.0.1:" + strconv.Itoa(port) + "/readyz"

	t.Run("serve", func(t *testing.T) {
		code, out := healthcheck(t, bin, serveEnv, "serve")
		if code != 1 || !strings.HasPrefix(out, "not ready: "+readyURL) || strings.Count(out, "\n") != 1 {
			t.Fatalf("before serve started: exit %d, %q; want 1 and one line naming %s", code, out, readyURL)
		}
		_, logs, exited := startProcess(t, bin, serveEnv, "serve")
		out = waitHealth(t, bin, serveEnv, 0, exited, logs, "serve")
		if out != "ready: "+readyURL+" answered 200\n" {
			t.Fatalf("ready serve: %q", out)
		}
		// A schema the binary does not expect: /readyz answers 503, the check says so.
		pool := mustPool(t, dbURL)
		if _, err := pool.Exec(context.Background(), `UPDATE schema_version SET version = version - 1`); err != nil {
			t.Fatal(err)
		}
		out = waitHealth(t, bin, serveEnv, 1, exited, logs, "serve")
		if !strings.HasPrefix(out, "not ready: "+readyURL+" answered 503 (database ok, schema ") || strings.Count(out, "\n") != 1 {
			t.Fatalf("serve on an old schema: %q", out)
		}
		if _, err := pool.Exec(context.Background(), `UPDATE schema_version SET version = version + 1`); err != nil {
			t.Fatal(err)
		}
		waitHealth(t, bin, serveEnv, 0, exited, logs, "serve")
	})

	t.Run("worker", func(t *testing.T) {
		code, out := healthcheck(t, bin, common, "worker")
		if code != 1 || !strings.HasPrefix(out, "not alive: no heartbeat at ") {
			t.Fatalf("before the worker started: exit %d, %q", code, out)
		}
		w, logs, exited := startProcess(t, bin, common, "worker")
		out = waitHealth(t, bin, common, 0, exited, logs, "worker")
		if !strings.HasPrefix(out, "alive: last heartbeat ") {
			t.Fatalf("running worker: %q", out)
		}
		// A frozen worker stops beating: the check fails once the beat is older than --max-age.
		if err := w.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		out = waitHealth(t, bin, common, 1, exited, logs, "worker", "--max-age", "2s")
		if !strings.HasPrefix(out, "not alive: last heartbeat ") || !strings.Contains(out, "more than 2s") {
			t.Fatalf("frozen worker: %q", out)
		}
		if err := w.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		waitHealth(t, bin, common, 0, exited, logs, "worker", "--max-age", "2s")
		// A stopped worker leaves no heartbeat behind.
		if err := w.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("worker exit: %v\n%s", err, logs.String())
			}
		case <-time.After(time.Minute):
			t.Fatal("worker did not stop")
		}
		if code, out := healthcheck(t, bin, common, "worker"); code != 1 || !strings.Contains(out, "no heartbeat") {
			t.Fatalf("after the worker stopped: exit %d, %q", code, out)
		}
	})
}

func TestHealthcheckLocalAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0.0.0.0:8080":   "127.0.0.1:8080",
		":8080":          "127.0.0.1:8080",
		"[::]:8080":      "[::1]:8080",
		"10.0.0.5:8080":  "10.0.0.5:8080",
		"127.0.0.1:9000": "127.0.0.1:9000",
	} {
		if got := localAddr(in); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
