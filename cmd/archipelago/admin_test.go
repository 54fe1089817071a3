package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/seal"
)

// A master key rotation, as an operator does it: the new key first in the file, then
// `admin reseal`; afterwards the old key can leave the file.
func TestAdminResealAfterARotation(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t)
	oldKey := l.vars["ARCHIPELAGO_MASTER_KEY"]
	old, err := seal.ParseKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.pool.Exec(ctx, `INSERT INTO notify_channels (kind, name, target, secret_sealed) VALUES ('webhook', 'hook', 'https://hooks.example/x', '')`); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := l.pool.QueryRow(ctx, `SELECT id FROM notify_channels`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	purpose := fmt.Sprintf("notify/channel/%d/secret", id)
	if _, err := l.pool.Exec(ctx, `UPDATE notify_channels SET secret_sealed = $1`, old.SealString(purpose, "hmac-key")); err != nil {
		t.Fatal(err)
	}

	newKey := seal.NewKey()
	l.vars["ARCHIPELAGO_MASTER_KEY"] = newKey + "\n" + oldKey
	code, out, stderr := runCLI(t, l.vars, "admin", "reseal", "--dry-run")
	if code != 0 || !strings.Contains(out, "notify_channels.secret_sealed") || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, l.vars, "admin", "reseal")
	if code != 0 || !strings.Contains(out, "done: 1 values sealed again") {
		t.Fatalf("reseal: exit %d\n%s%s", code, out, stderr)
	}
	var sealed string
	if err := l.pool.QueryRow(ctx, `SELECT secret_sealed FROM notify_channels`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	newOnly, err := seal.ParseKeyring(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := newOnly.OpenString(purpose, sealed); err != nil || got != "hmac-key" {
		t.Fatalf("with the new key alone: %q %v", got, err)
	}
	if code, out, stderr := runCLI(t, l.vars, "admin", "nonsense"); code == 0 || !strings.Contains(out+stderr, "admin reseal") {
		t.Errorf("usage: exit %d %s", code, out)
	}
}

// The audit signing key derived from the master key changes with it, and the checkpoints
// signed before stop verifying; pinned beforehand (`audit key --private`), the log keeps
// its key through the rotation.
func TestPinnedAuditKeySurvivesAMasterKeyRotation(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t)
	recordN(t, l.pool, 5, "island.update")
	if _, err := l.svc.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, public, _ := runCLI(t, l.vars, "audit", "key")
	code, private, stderr := runCLI(t, l.vars, "audit", "key", "--private")
	if code != 0 || !strings.HasPrefix(private, "PRIVATE+KEY+") || !strings.Contains(stderr, "secret") {
		t.Fatalf("audit key --private: exit %d %q %s", code, private, stderr)
	}
	rotated := map[string]string{"ARCHIPELAGO_DATABASE_URL": l.vars["ARCHIPELAGO_DATABASE_URL"],
		"ARCHIPELAGO_MASTER_KEY": seal.NewKey() + "\n" + l.vars["ARCHIPELAGO_MASTER_KEY"]}
	// Unpinned, the new master key gives another key: verify says so (exit 3), naming both
	// keys ("name+hash"), rather than calling every checkpoint forged.
	_, unpinned, _ := runCLI(t, rotated, "audit", "key")
	if code, out, _ := runCLI(t, rotated, "audit", "verify"); code != 3 || !strings.Contains(out, "FAIL: wrong key") || strings.Contains(out, "forged") ||
		!strings.Contains(out, "signed with "+keyNameHash(public)) || !strings.Contains(out, "key "+keyNameHash(unpinned)) {
		t.Fatalf("unpinned, after the rotation: exit %d (want 3, wrong key naming %s and %s)\n%s", code, keyNameHash(public), keyNameHash(unpinned), out)
	}
	rotated["ARCHIPELAGO_AUDIT_SIGNING_KEY"] = strings.TrimSpace(private)
	if _, got, _ := runCLI(t, rotated, "audit", "key"); got != public {
		t.Errorf("public key after the rotation %q, before %q", got, public)
	}
	if code, out, stderr := runCLI(t, rotated, "audit", "verify"); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("pinned, after the rotation: exit %d\n%s%s", code, out, stderr)
	}
}

// keyNameHash is the "name+hash" part of a public note key ("name+hash+base64"), which is
// how messages name a key.
func keyNameHash(vkey string) string {
	if f := strings.SplitN(strings.TrimSpace(vkey), "+", 3); len(f) == 3 {
		return f[0] + "+" + f[1]
	}
	return "(malformed key " + vkey + ")"
}
