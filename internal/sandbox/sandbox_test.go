package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/sandbox"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestSandboxServesAndLeavesNothingBehind runs `archipelago dev` as a newcomer would: it
// must answer on every operations endpoint, write sandbox.json with working demo logins,
// and, once stopped, leave no process and no state directory behind.
func TestSandboxServesAndLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "sbx")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- sandbox.Run(ctx, sandbox.Options{Listen: "127.0.0.1:0", StateDir: state, Out: io.Discard, Logger: testenv.Logger(t)})
	}()

	var info sandbox.Info
	deadline := time.Now().Add(10 * time.Minute)
	for {
		raw, err := os.ReadFile(filepath.Join(state, "sandbox.json"))
		if err == nil && json.Unmarshal(raw, &info) == nil {
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
	get := func(path string) (int, string) {
		resp, err := http.Get(info.BaseURL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz", "/v1/openapi.json"} {
		if code, body := get(p); code != 200 {
			t.Errorf("%s = %d %s", p, code, body)
		}
	}
	if code, _ := get("/metrics"); code != 401 {
		t.Errorf("/metrics without the scrape token = %d, want 401", code)
	}
	req, _ := http.NewRequest("GET", info.BaseURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+info.MetricsToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("/metrics with the scrape token: %v %v", err, resp)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "# TYPE archipelago_http_requests_total counter") {
			t.Error("/metrics lacks archipelago_http_requests_total")
		}
	}
	if info.S3.Endpoint == "" || info.DatabaseURL == "" || len(info.Users) == 0 {
		t.Fatalf("sandbox.json is incomplete: %+v", info)
	}
	u := info.Users[0]
	resp, err := http.Post(info.BaseURL+"/v1/auth/login", "application/json",
		strings.NewReader(`{"email":"`+u.Email+`","password":"`+u.Password+`"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("demo login %s: %v %v", u.Email, err, resp)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	// The demo repositories show every outcome of a restore test once the round ends.
	checkDemoRestoreTests(t, info.DatabaseURL)
	// A newcomer finds reports (members' and the federation's, published once the round
	// of restore tests ended) and the notification receiver.
	scopes := map[string]int{}
	for wait := time.Now().Add(time.Minute); ; {
		req, _ := http.NewRequest("GET", info.BaseURL+"/v1/reports", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var reps struct {
			Reports []struct {
				Scope string `json:"scope"`
			} `json:"reports"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&reps)
		resp.Body.Close()
		clear(scopes)
		for _, r := range reps.Reports {
			scopes[r.Scope]++
		}
		if scopes["member"] > 0 && scopes["federation"] > 0 || time.Now().After(wait) {
			break
		}
		time.Sleep(time.Second)
	}
	if scopes["member"] == 0 || scopes["federation"] == 0 {
		t.Errorf("demo reports by scope: %v", scopes)
	}
	if info.Notifications.Page == "" {
		t.Error("sandbox.json does not say where notifications land")
	} else if r, err := http.Get(info.Notifications.Page); err != nil || r.StatusCode != 200 {
		t.Errorf("notification receiver page: %v %v", err, r)
	} else {
		r.Body.Close()
		checkFailureNotified(t, info.Notifications.Page)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sandbox exit: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("sandbox did not stop within a minute")
	}
	for name, pid := range map[string]int{"postgres": info.PIDs.Postgres, "minio": info.PIDs.MinIO} {
		if pid == 0 {
			t.Errorf("sandbox.json has no pid for %s", name)
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) is still running after the sandbox stopped", name, pid)
		}
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s left behind", state)
	}
}

// checkFailureNotified: the round's failed restore tests reach libre-nuage's channels — a
// webhook whose signature the receiver verified, and an email — through the real chain
// (restore run → notification scan → delivery).
func checkFailureNotified(t *testing.T, page string) {
	t.Helper()
	var webhook, mail bool
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline) && !(webhook && mail); time.Sleep(2 * time.Second) {
		resp, err := http.Get(strings.TrimRight(page, "/") + "/messages.json")
		if err != nil {
			t.Fatal(err)
		}
		var msgs []struct {
			Via      string   `json:"via"`
			Hook     string   `json:"hook"`
			Verified bool     `json:"verified"`
			Event    string   `json:"event"`
			To       []string `json:"to"`
			Subject  string   `json:"subject"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&msgs)
		resp.Body.Close()
		for _, m := range msgs {
			if m.Via == "webhook" && m.Hook == "libre-nuage-webhook" && m.Event == "restore.failed" && m.Verified {
				webhook = true
			}
			if m.Via == "email" && len(m.To) > 0 && m.To[0] == "backup-team@libre-nuage.example" && strings.Contains(strings.ToLower(m.Subject), "fail") {
				mail = true
			}
		}
	}
	if !webhook || !mail {
		t.Errorf("failed restore tests were not notified (signed webhook: %v, email: %v)", webhook, mail)
	}
}
