// Package browsertest drives a real headless Chromium (Debian's package) against the real
// server for portal tests, and writes screenshots as test artifacts under artifacts/
// (not committed). `make test` installs Chromium when it is missing.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// FindChromium locates the browser: $ARCHIPELAGO_CHROMIUM, Debian's binary (skipping the
// shell wrapper), then PATH.
func FindChromium() (string, bool) {
	if p := os.Getenv("ARCHIPELAGO_CHROMIUM"); p != "" {
		return p, true
	}
	for _, p := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
	}
	return "", false
}

// New starts a fresh headless Chromium for the test and returns its context; the browser
// is stopped when the test ends. A missing browser fails the test with the way to get it.
func New(t testing.TB) context.Context {
	t.Helper()
	path, ok := FindChromium()
	if !ok {
		t.Fatal("Chromium not found: run `make test` (it installs Debian's chromium as root) or `apt-get install -y chromium`, or set ARCHIPELAGO_CHROMIUM")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// The first action starts the browser; it must not run under a timeout context.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// StepTimeout bounds one step in the browser. It is generous on purpose: a step may wait
// for a login (an argon2id hash) or a page built by a busy server, and a test must not
// depend on how fast the machine is; a step that hangs still fails, naming what it did.
const StepTimeout = 2 * time.Minute

// Step runs actions with a bounded time, failing the test with what was being done.
func Step(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		Screenshot(t, ctx, "failed-"+what)
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// Text returns the text of the first element matching the CSS selector.
func Text(t testing.TB, ctx context.Context, css string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", css, err)
	}
	return s
}

// ArtifactsDir is where screenshots go: $ARCHIPELAGO_ARTIFACTS, else artifacts/ at the
// project root.
func ArtifactsDir() string {
	if d := os.Getenv("ARCHIPELAGO_ARTIFACTS"); d != "" {
		return d
	}
	wd, _ := os.Getwd()
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "cmd", "archipelago")); err == nil {
				return filepath.Join(d, "artifacts")
			}
		}
	}
	return filepath.Join(os.TempDir(), "archipelago-artifacts")
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Screenshot writes a full-page PNG to ArtifactsDir()/screenshots/<name>.png.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := filepath.Join(ArtifactsDir(), "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("screenshot dir: %v", err)
		return ""
	}
	p := filepath.Join(dir, unsafeName.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Logf("write screenshot: %v", err)
		return ""
	}
	t.Logf("screenshot: %s", p)
	return p
}
