package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	var info sandbox.Info
	for deadline := time.Now().Add(5 * time.Minute); ; {
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
	checkDemoProtection(t, info)
}

// checkDemoProtection: the sandbox shows a protected vault (up to date), a vault whose
// copy lags (behind: its page is red), a tripped lifecycle tripwire, and a demo repository
// whose restore tests target the copy and pass there.
func checkDemoProtection(t *testing.T, info sandbox.Info) {
	t.Helper()
	var admin sandbox.User
	for _, u := range info.Users {
		if u.Role == "federation admin" {
			admin = u
		}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := json.Marshal(map[string]string{"email": admin.Email, "password": admin.Password})
	if err := apiCall(info.BaseURL, "", "POST", "/v1/auth/login", body, &tok); err != nil {
		t.Fatal(err)
	}
	var vs struct {
		Vaults []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"vaults"`
	}
	if err := apiCall(info.BaseURL, tok.AccessToken, "GET", "/v1/vaults?limit=500", nil, &vs); err != nil {
		t.Fatal(err)
	}
	type state struct {
		CopyStatus         string  `json:"copy_status"`
		Behind             bool    `json:"behind"`
		LifecycleTrippedAt *string `json:"lifecycle_tripped_at"`
	}
	got := map[string]state{}
	for _, v := range vs.Vaults {
		var st state
		if err := apiCall(info.BaseURL, tok.AccessToken, "GET", "/v1/vaults/"+strconv.FormatInt(v.ID, 10)+"/protection", nil, &st); err != nil {
			t.Fatal(err)
		}
		got[v.Name] = st
	}
	if st := got["garrigue-net-backups"]; st.CopyStatus != "active" || st.Behind {
		t.Errorf("protected demo vault: %+v, want an active copy on schedule", st)
	}
	if st := got["alsace-numerique-backups"]; st.CopyStatus != "active" || !st.Behind {
		t.Errorf("lagging demo vault: %+v, want an active copy behind schedule", st)
	}
	if st := got["libre-nuage-backups"]; st.LifecycleTrippedAt == nil {
		t.Errorf("demo vault with a tripped tripwire: %+v", st)
	}
	var repos struct {
		Repositories []struct {
			Name      string `json:"name"`
			Effective struct {
				Target string `json:"target"`
			} `json:"effective_policy"`
			Last *struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
			} `json:"last"`
		} `json:"repositories"`
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(2 * time.Second) {
		if err := apiCall(info.BaseURL, tok.AccessToken, "GET", "/v1/repositories?limit=100", nil, &repos); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range repos.Repositories {
			if r.Effective.Target != "copy" || r.Last == nil {
				continue
			}
			var run struct {
				Status string `json:"status"`
				Target string `json:"target"`
			}
			if err := apiCall(info.BaseURL, tok.AccessToken, "GET", "/v1/restore-tests/"+strconv.FormatInt(r.Last.ID, 10), nil, &run); err != nil {
				t.Fatal(err)
			}
			if run.Status != "passed" || run.Target != "copy" {
				t.Fatalf("demo repository %q tested on the copy: %+v, want passed on the copy", r.Name, run)
			}
			found = true
		}
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no demo repository whose restore tests target the copy has a finished test: %+v", repos)
		}
	}
}

// apiCall sends one request to the sandbox's REST API and decodes a 2xx answer into out.
func apiCall(base, token, method, path string, body []byte, out any) error {
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}
