package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/seal"
)

// The log's name is stored, not derived from ARCHIPELAGO_PUBLIC_URL: `audit verify` on an
// untouched log passes with only the database URL and the master key, the CLI's key is
// the one `serve` publishes, and a move to a new domain keeps the key members saved.
func TestAuditVerifyOfAnUntouchedLogNeedsOnlyTheDatabaseAndTheMasterKey(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_PUBLIC_URL", "https://archipelago.old-domain.example"))
	f := env.Fixture()
	if r := env.Do(apptest.Req{Method: "POST", Path: "/v1/reports", Token: f.AdminA.Access, Body: map[string]any{"member": "member-a"}}); r.Status != 201 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	saved := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/checkpoint"})
	served := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/key"})
	if saved.Status != 200 || served.Status != 200 {
		t.Fatalf("checkpoint %d, key %d", saved.Status, served.Status)
	}
	vars := map[string]string{"ARCHIPELAGO_DATABASE_URL": env.App.Cfg.DatabaseURL, "ARCHIPELAGO_MASTER_KEY": env.App.Cfg.MasterKey}
	code, out, stderr := runCLI(t, vars, "audit", "verify")
	if code != 0 || !strings.Contains(out, "OK: every entry matches") || !strings.Contains(out, "1 of them recorded in reports") {
		t.Fatalf("audit verify with only the database and the master key: exit %d\n%s%s", code, out, stderr)
	}
	if _, key, _ := runCLI(t, vars, "audit", "key"); key != string(served.Body) {
		t.Fatalf("the CLI's key %q is not the served key %q", key, served.Body)
	}

	// The federation moves to a new domain: same database, same master key.
	moved := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_DATABASE_URL", env.App.Cfg.DatabaseURL),
		apptest.WithEnv("ARCHIPELAGO_MASTER_KEY", env.App.Cfg.MasterKey), apptest.WithEnv("ARCHIPELAGO_PUBLIC_URL", "https://archipelago.new-domain.example"))
	if r := moved.Do(apptest.Req{Method: "GET", Path: "/v1/audit/key"}); string(r.Body) != string(served.Body) {
		t.Fatalf("after the move the key is %q, before %q", r.Body, served.Body)
	}
	rep, err := audit.VerifyRemote(context.Background(), audit.RemoteOptions{BaseURL: moved.URL, Saved: saved.Body,
		VerifierKey: string(served.Body)})
	if err != nil || !rep.OK() {
		t.Fatalf("the saved key and checkpoint after the move: %v %+v", err, rep)
	}
}

// Checkpoints signed before the name was stored (under a name derived from the public URL
// of the time, with the same key) keep verifying: migration 010 keeps that name as a
// former name.
func TestCheckpointsSignedUnderAFormerNameKeepVerifying(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t)
	kr, err := seal.ParseKeyring(l.vars["ARCHIPELAGO_MASTER_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	old, err := audit.KeysFromSeed("archipelago.old-domain.example/archipelago-audit", kr.Derive("audit-checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	recordN(t, l.pool, 6, "island.update")
	root, err := audit.NewService(l.pool, old, nil).Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	superuser(t, l.pool, `INSERT INTO audit_key_names (name, current, created_at) VALUES ('`+root.Origin+`', false, '2020-01-01')`)
	recordN(t, l.pool, 3, "island.update")
	keys, err := audit.LoadKeys(context.Background(), l.pool, "", kr.Derive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.NewService(l.pool, keys, nil).Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, l.vars, "audit", "verify")
	if code != 0 || !strings.Contains(out, "checkpoints:  2 validly signed") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

// A checkpoint signed with a key that is not the log's, among good ones, is a forgery —
// not a wrong key.
func TestACheckpointSignedWithAnotherKeyAmongGoodOnesIsForged(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t)
	recordN(t, l.pool, 4, "island.update")
	if _, err := l.svc.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	recordN(t, l.pool, 2, "island.update")
	other, err := audit.KeysFromSeed(l.keys.Name(), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.NewService(l.pool, other, nil).Checkpoint(context.Background()); err == nil {
		t.Fatal("another key signed over a checkpoint it cannot open")
	}
	root, err := tlog.TreeHash(6, hashReader{l.pool})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := audit.SignCheckpoint(other, 6, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.pool.Exec(context.Background(), `INSERT INTO audit_checkpoints (tree_size, root_hash, note) VALUES (6, $1, $2)`,
		root[:], string(msg)); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, l.vars, "audit", "verify")
	if code != 1 || !strings.Contains(out, "is signed by another key") || !strings.Contains(out, "forged") || strings.Contains(out, "wrong key") {
		t.Fatalf("exit %d, want 1 and a forgery\n%s", code, out)
	}
}

// A truncation that also deleted the checkpoints past it leaves the log consistent with
// every checkpoint left in its own table; the checkpoint a report carries still catches it.
func TestAuditVerifyCatchesATruncationThroughTheCheckpointsOfReports(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture()
	recordN(t, env.App.Pool, 10, "island.update")
	if r := env.Do(apptest.Req{Method: "POST", Path: "/v1/reports", Token: f.AdminA.Access, Body: map[string]any{"member": "member-a"}}); r.Status != 201 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	var size int64
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT checkpoint_size FROM reports`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	cut := size - 5
	superuser(t, env.App.Pool, `DELETE FROM audit_entries WHERE seq >= `+itoa(cut), `DELETE FROM audit_checkpoints WHERE tree_size > `+itoa(cut),
		`DELETE FROM audit_entry_people WHERE seq >= `+itoa(cut))
	vars := map[string]string{"ARCHIPELAGO_DATABASE_URL": env.App.Cfg.DatabaseURL, "ARCHIPELAGO_MASTER_KEY": env.App.Cfg.MasterKey}
	code, out, _ := runCLI(t, vars, "audit", "verify")
	if code != 1 || !strings.Contains(out, "FAIL: entries "+itoa(cut)) || !strings.Contains(out, "in report ") || !strings.Contains(out, "(truncated)") {
		t.Fatalf("exit %d, want the truncation found through the report\n%s", code, out)
	}
}

// When the stored log does not extend its checkpoints, the public endpoints answer 409
// naming what does not hold, and remote verification reports it as a finding (never a 500
// "internal").
func TestRemoteVerificationOfATruncatedLogGetsA409NamingIt(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	recordN(t, env.App.Pool, 12, "island.update")
	saved := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/checkpoint"})
	if saved.Status != 200 {
		t.Fatalf("checkpoint: %d %s", saved.Status, saved.Body)
	}
	file := filepath.Join(t.TempDir(), "checkpoint.txt")
	if err := os.WriteFile(file, saved.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	superuser(t, env.App.Pool, `DELETE FROM audit_entries WHERE seq >= 7`)
	r := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/checkpoint"})
	if r.Status != 409 || r.ErrorCode() != "audit_log_inconsistent" || !strings.Contains(string(r.Body), "truncated") {
		t.Fatalf("checkpoint of a truncated log: %d %s", r.Status, r.Body)
	}
	code, out, stderr := runCLI(t, nil, "audit", "verify", "--remote", env.URL, "--checkpoint", file)
	if code != 1 || !strings.Contains(out, "FAIL: the server refuses to sign a checkpoint") || !strings.Contains(out, "truncated") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	// A hole in the middle: the proofs that need the deleted entry's hashes answer 409 too.
	superuser(t, env.App.Pool, `DELETE FROM audit_entries WHERE seq = 2`)
	r = env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries/2/proof?tree_size=6"})
	if r.Status != 409 || r.ErrorCode() != "audit_log_inconsistent" {
		t.Fatalf("proof over a hole: %d %s", r.Status, r.Body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A member checking with a key that is not the log's (a mix-up of keys) hears "wrong key"
// (exit 3), not that the log was forged.
func TestRemoteVerifyWithAnotherKeySaysWrongKey(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	recordN(t, env.App.Pool, 3, "island.update")
	saved := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/checkpoint"})
	file := filepath.Join(t.TempDir(), "checkpoint.txt")
	if err := os.WriteFile(file, saved.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	other, err := audit.KeysFromSeed(env.App.Audit.Keys().Name(), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, nil, "audit", "verify", "--remote", env.URL, "--checkpoint", file, "--key", other.VerifierKey)
	if code != 3 || !strings.Contains(out, "FAIL: wrong key") || strings.Contains(out, "forged") ||
		!strings.Contains(out, "signed with "+keyNameHash(env.App.Audit.Keys().VerifierKey)) || !strings.Contains(out, "is "+keyNameHash(other.VerifierKey)) {
		t.Fatalf("exit %d, want 3 and a wrong key naming both keys\n%s%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "audit", "verify", "--remote", env.URL, "--checkpoint", file, "--key", env.App.Audit.Keys().VerifierKey)
	if code != 0 {
		t.Fatalf("with the right key: exit %d\n%s", code, out)
	}
}
