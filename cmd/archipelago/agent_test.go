package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/portal"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

// TestAgentEndToEnd: a member backs up with restic into its vault (MinIO behind the
// Garage simulator) and registers the repository in blind mode: the federation holds no
// password. It generates an agent key with `archipelago agent keygen`, registers the public
// key through the API, and runs `archipelago agent` (the real command, real restic, a real
// server in-process) with a viewer token: the attestation is accepted, shown as "attested
// by the member" on the repository (API and portal), its statement's hash is in the audit
// log, the check subset rotates from one run to the next, and the stored envelope verifies
// with openssl as docs/agent.md says.
func TestAgentEndToEnd(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture()
	north := vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "agent-north", 3, f.MemberA.ID)
	vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "agent-south", 3, f.MemberB.ID)
	vaultstest.Pledge(t, env.App.Pool, north, f.MemberA.ID, 300_000_000_000)
	admin := func(method, path string, body any) *apptest.Response {
		return env.Do(apptest.Req{Method: method, Path: path, Token: f.AdminA.Access, Body: body})
	}
	res := admin("POST", "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("agent-"), "quota_bytes": 1_000_000_000})
	var v struct {
		ID int64 `json:"id"`
	}
	res.Decode(t, &v)
	if res.Status != 201 {
		t.Fatalf("create vault: %d %s", res.Status, res.Body)
	}
	res = admin("POST", fmt.Sprintf("/v1/vaults/%d/keys", v.ID), map[string]any{"name": "backup-host"})
	var key struct {
		Env map[string]string `json:"env"`
	}
	res.Decode(t, &key)
	if res.Status != 201 {
		t.Fatalf("create key: %d %s", res.Status, res.Body)
	}

	// The member's backup, with the canary.
	ctx := t.Context()
	rr, err := restic.New(ctx, restic.Config{KillGrace: 5 * time.Second})
	if err != nil {
		t.Fatalf("this test runs the real restic binary: %v", err)
	}
	u, err := url.Parse(strings.TrimPrefix(key.Env["RESTIC_REPOSITORY"], "s3:"))
	if err != nil {
		t.Fatal(err)
	}
	bucket, base, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	path := strings.Trim(base+"/restic/web01", "/")
	password := "member-" + rand.Text()
	member := restic.Repo{URL: "s3:" + u.Scheme + "://" + u.Host + "/" + bucket + "/" + path, Password: password,
		S3AccessKey: key.Env["AWS_ACCESS_KEY_ID"], S3SecretKey: key.Env["AWS_SECRET_ACCESS_KEY"],
		S3Region: key.Env["AWS_DEFAULT_REGION"], CacheDir: filepath.Join(t.TempDir(), "cache")}
	if _, err := rr.Init(ctx, member); err != nil {
		t.Fatalf("restic init: %v", err)
	}
	res = admin("POST", "/v1/repositories", map[string]any{"vault_id": v.ID, "name": "web01", "path": path, "mode": "blind",
		"policy": map[string]any{"check_subsets": 4}})
	var repo struct {
		ID          int64  `json:"id"`
		CanaryToken string `json:"canary_token"`
		HasPassword bool   `json:"has_password"`
	}
	res.Decode(t, &repo)
	if res.Status != 201 || repo.HasPassword {
		t.Fatalf("register the repository in blind mode: %d %s", res.Status, res.Body)
	}
	src := t.TempDir()
	for i := range 3 {
		data := make([]byte, 256<<10)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("file%d.bin", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "archipelago-canary.txt"), []byte(repo.CanaryToken+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backup, err := rr.Backup(ctx, member, restic.BackupOptions{Paths: []string{src}, Host: "backup-host"})
	if err != nil {
		t.Fatalf("restic backup: %v", err)
	}

	// keygen: the private key file is 0600, the public key printed.
	dir := t.TempDir()
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			getenv: func(string) (string, bool) { return "", false }}, args)
		return code, out.String(), errb.String()
	}
	keyFile := filepath.Join(dir, "agent.key")
	code, pub, stderr := cli("agent", "keygen", "--out", keyFile)
	if code != 0 || !strings.HasPrefix(pub, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("agent keygen: %d %s %s", code, pub, stderr)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st.Mode(), err)
	}
	if code, out, _ := cli("agent", "--help"); code != 0 || !strings.Contains(out, "password-file") {
		t.Errorf("agent --help without settings: %d %s", code, out)
	}
	res = admin("POST", fmt.Sprintf("/v1/repositories/%d/agent/keys", repo.ID), map[string]any{"name": "backup-host", "public_key": pub})
	if res.Status != 201 {
		t.Fatalf("register the agent key: %d %s", res.Status, res.Body)
	}
	// A viewer's API token is enough to push.
	res = env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: f.ViewerA.Access, Body: map[string]any{"name": "agent", "member": "member-a"}})
	var tok struct {
		Token string `json:"token"`
	}
	res.Decode(t, &tok)
	if res.Status != 201 {
		t.Fatalf("token: %d %s", res.Status, res.Body)
	}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"agent", "--api-url", env.URL, "--api-token-file", write("token", tok.Token),
		"--repository", fmt.Sprint(repo.ID), "--password-file", write("password", password),
		"--s3-access-key-id", key.Env["AWS_ACCESS_KEY_ID"], "--s3-secret-access-key-file", write("s3secret", key.Env["AWS_SECRET_ACCESS_KEY"]),
		"--key-file", keyFile, "--state-dir", filepath.Join(dir, "state")}
	code, out, stderr := cli(args...)
	if code != 0 || !strings.Contains(out, "accepted: passed") {
		t.Fatalf("agent run: exit %d\n%s\n%s", code, out, stderr)
	}
	// restic's routine records are DEBUG: a daily timer's journal gets the agent's own lines only.
	if strings.Contains(stderr, "restic finished") || !strings.Contains(stderr, "agent run") {
		t.Errorf("agent log at INFO:\n%s", stderr)
	}

	type level struct{ Level, Outcome, Summary string }
	var got struct {
		Mode             string `json:"mode"`
		AttestedByMember struct {
			State  string `json:"state"`
			Latest *struct {
				ID              int64   `json:"id"`
				Status          string  `json:"status"`
				SnapshotID      *string `json:"snapshot_id"`
				CheckSubset     string  `json:"check_subset"`
				StatementSHA256 string  `json:"statement_sha256"`
				AuditSeq        int64   `json:"audit_seq"`
				Levels          []level `json:"levels"`
			} `json:"latest"`
		} `json:"attested_by_member"`
	}
	res = env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/repositories/%d", repo.ID), Token: f.ViewerA.Access})
	res.Decode(t, &got)
	a := got.AttestedByMember.Latest
	if got.AttestedByMember.State != "current" || a == nil || a.Status != "passed" || a.SnapshotID == nil || *a.SnapshotID != backup.SnapshotID || a.CheckSubset != "1/4" {
		t.Fatalf("attested by the member: %s", res.Body)
	}
	outcomes := map[string]string{}
	for _, l := range a.Levels {
		outcomes[l.Level] = l.Outcome
	}
	if outcomes["integrity"] != "passed" || outcomes["sample"] != "passed" || outcomes["canary"] != "passed" || outcomes["freshness"] != "passed" {
		t.Errorf("levels: %+v", a.Levels)
	}
	// The repository's evidence says who produced what: the member's attestation is there.
	var ev struct {
		Evidence []struct{ Kind, Producer, Outcome, Ref string } `json:"evidence"`
	}
	res = env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/repositories/%d/evidence", repo.ID), Token: f.ViewerA.Access})
	res.Decode(t, &ev)
	found := false
	for _, e := range ev.Evidence {
		found = found || (e.Kind == "attestation" && e.Producer == "member" && e.Outcome == "passed" && e.Ref == a.StatementSHA256)
	}
	if res.Status != 200 || !found {
		t.Errorf("evidence without the member's attestation: %d %s", res.Status, res.Body)
	}
	var sealed *string
	if err := env.App.Pool.QueryRow(ctx, `SELECT password_sealed FROM restic_repositories WHERE id = $1`, repo.ID).Scan(&sealed); err != nil || sealed != nil {
		t.Errorf("the federation holds a password for the repository: %v %v", sealed, err)
	}
	entry := admin("GET", fmt.Sprintf("/v1/audit/entries/%d", a.AuditSeq), nil)
	if entry.Status != 200 || !strings.Contains(string(entry.Body), a.StatementSHA256) {
		t.Errorf("audit entry: %d %s", entry.Status, entry.Body)
	}
	page := env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/restore-tests/repositories/%d", repo.ID),
		Header: map[string]string{"Cookie": portal.SessionCookie + "=" + f.ViewerA.Session}})
	if page.Status != 200 || !strings.Contains(string(page.Body), "Attested by the member") || !strings.Contains(string(page.Body), "attested by the member, finished") {
		t.Errorf("portal repository page: %d", page.Status)
	}

	// A federation test of the same snapshot shows the member's attestation beside it.
	var runID int64
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status,
		reason, started_at, finished_at, duration_ms, rpo_target_seconds, rto_target_seconds, snapshot_id)
		SELECT id, member_id, (SELECT island_id FROM vaults WHERE id = vault_id), 'schedule', 'blind', 'passed', 'every level passed',
		now(), now(), 1000, 93600, 86400, $2 FROM restic_repositories WHERE id = $1 RETURNING id`, repo.ID, backup.SnapshotID).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	var runView struct {
		AttestedByMember *struct {
			ID int64 `json:"id"`
		} `json:"attested_by_member"`
	}
	res = env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/restore-tests/%d", runID), Token: f.ViewerA.Access})
	res.Decode(t, &runView)
	if res.Status != 200 || runView.AttestedByMember == nil || runView.AttestedByMember.ID != a.ID {
		t.Errorf("the run page's attestation: %d %s", res.Status, res.Body)
	}

	// The stored envelope verifies with openssl (docs/agent.md).
	res = env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/repositories/%d/attestations/%d", repo.ID, a.ID), Token: f.ViewerA.Access})
	var full struct {
		Envelope attest.Envelope `json:"envelope"`
	}
	res.Decode(t, &full)
	payload, _ := base64.StdEncoding.DecodeString(full.Envelope.Payload)
	sig, _ := base64.StdEncoding.DecodeString(full.Envelope.Signatures[0].Sig)
	if _, err := exec.LookPath("openssl"); err == nil {
		pae := write("pae.bin", "")
		if err := os.WriteFile(pae, attest.PAE(full.Envelope.PayloadType, payload), 0o600); err != nil {
			t.Fatal(err)
		}
		sigFile := filepath.Join(dir, "sig.bin")
		_ = os.WriteFile(sigFile, sig, 0o600)
		pubFile := write("agent.pub", pub)
		out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pubFile, "-rawin", "-in", pae, "-sigfile", sigFile).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
			t.Errorf("openssl verify: %v %s", err, out)
		}
	}
	var st attest.Statement
	if err := json.Unmarshal(payload, &st); err != nil || st.Type != attest.StatementType || st.Subject[0].Digest["sha256"] != backup.SnapshotID {
		t.Errorf("statement: %v %s", err, payload)
	}

	// The next run reads the next data subset.
	code, out, stderr = cli(args...)
	if code != 0 || !strings.Contains(out, "check subset 2/4") {
		t.Fatalf("second agent run: exit %d\n%s\n%s", code, out, stderr)
	}
}
