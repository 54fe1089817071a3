package sandbox_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/sandbox"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestBlackboxProtection runs scripts/blackbox-protection.sh (docs/protection.md) against
// a sandbox: a stolen member key empties a vault and plants an Expiration rule, and the
// API, S3 and restic alone show the rule removed with an alert, the deletions pending, and
// the data restored bit for bit from the copy with the member's read-only copy key.
func TestBlackboxProtection(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq", "openssl", "cmp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the black-box check needs %s: %v", tool, err)
		}
	}
	r, err := restic.New(context.Background(), restic.Config{})
	if err != nil {
		t.Fatalf("the black-box check needs restic: %v", err)
	}
	state := filepath.Join(t.TempDir(), "sbx")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sandbox.Run(ctx, sandbox.Options{Listen: "127.0.0.1:0", StateDir: state, Out: io.Discard, Logger: testenv.Logger(t)})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("sandbox did not stop within a minute")
		}
	})
	infoFile := filepath.Join(state, "sandbox.json")
	for deadline := time.Now().Add(5 * time.Minute); ; {
		var info sandbox.Info
		if raw, err := os.ReadFile(infoFile); err == nil && json.Unmarshal(raw, &info) == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("sandbox stopped before it was up: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("sandbox.json never appeared")
		}
	}
	script, err := filepath.Abs("../../scripts/blackbox-protection.sh")
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 15*time.Minute)
	defer scancel()
	cmd := exec.CommandContext(sctx, "bash", script, infoFile)
	cmd.Env = append(os.Environ(), "RESTIC="+r.Binary(), "TIMEOUT=600", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/blackbox-protection.sh:\n%s", out)
	if err != nil || !strings.Contains(string(out), "PASS:") {
		t.Fatalf("the black-box check failed: %v", err)
	}
}
