package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

type apiProtection struct {
	VaultID       int64   `json:"vault_id"`
	CopyStatus    string  `json:"copy_status"`
	CopyIslandID  *int64  `json:"copy_island_id"`
	Frozen        bool    `json:"frozen"`
	FreezeReason  string  `json:"freeze_reason"`
	UnfreezeAfter *string `json:"unfreeze_after"`
}

// TestProtectionAPI: the protection state of a vault, freeze and a delayed unfreeze, the
// copy's read-only key once a copy exists, and the settings (the grace period is refused
// under three days, naming the field). Every answer is validated against the OpenAPI
// document by apptest.
func TestProtectionAPI(t *testing.T) {
	t.Parallel()
	ve := newVaultEnv(t)
	f := ve.f
	east := vaultstest.StartIsland(t, ve.env.App.Pool, ve.env.App.Keyring, "east", 1)
	res := ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("prot-"), "quota_bytes": 1_000_000_000})
	if res.Status != 201 && res.Status != 202 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var v apiVault
	res.Decode(t, &v)
	// On a loaded machine Garage (MinIO user creation) may outlast the 5 s call timeout:
	// the vault is then pending, and the reconciler finishes it.
	for deadline := time.Now().Add(6 * time.Minute); v.Status != "active"; {
		if time.Now().After(deadline) {
			t.Fatalf("vault still %s: %s", v.Status, v.StatusDetail)
		}
		time.Sleep(time.Second) // polling, not an assertion
		_, _ = ve.env.App.Vaults.ReconcileVault(context.Background(), v.ID)
		ve.env.Do(apptest.Req{Method: "GET", Path: "/v1/vaults/" + itoa(v.ID), Token: f.AdminA.Access}).Decode(t, &v)
	}
	path := "/v1/vaults/" + itoa(v.ID) + "/protection"

	res = ve.env.Do(apptest.Req{Method: "GET", Path: path, Token: f.ViewerA.Access})
	var st apiProtection
	if res.Status != 200 {
		t.Fatalf("get: %d %s", res.Status, res.Body)
	}
	res.Decode(t, &st)
	if st.VaultID != v.ID || st.Frozen || st.CopyStatus != "pending" {
		t.Fatalf("state = %+v", st)
	}
	// No copy yet: no reader key.
	if res = ve.post(f.AdminA, path+"/reader-key", nil); res.Status != 409 {
		t.Fatalf("reader key without copy: %d %s", res.Status, res.Body)
	}
	// The copy job provisions it on the third island; then a reader key is given once.
	for deadline := time.Now().Add(6 * time.Minute); ; {
		status, err := ve.env.App.Protection.EnsureCopy(context.Background(), v.ID)
		if status == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copy: %s, %v", status, err)
		}
		time.Sleep(time.Second)
	}
	res = ve.env.Do(apptest.Req{Method: "GET", Path: path, Token: f.AdminA.Access})
	res.Decode(t, &st)
	if st.CopyStatus != "active" || st.CopyIslandID == nil || *st.CopyIslandID != east.ID {
		t.Fatalf("copy state = %+v, want active on east %d", st, east.ID)
	}
	// 502 when the island's admin API is slower than the call timeout (a loaded machine): retried.
	for deadline := time.Now().Add(6 * time.Minute); ; {
		if res = ve.post(f.AdminA, path+"/reader-key", nil); res.Status == 201 {
			break
		}
		if res.Status != 502 || time.Now().After(deadline) {
			t.Fatalf("reader key: %d %s", res.Status, res.Body)
		}
		time.Sleep(time.Second)
	}
	if res = ve.env.Do(apptest.Req{Method: "GET", Path: path + "/runs", Token: f.ViewerA.Access}); res.Status != 200 {
		t.Fatalf("runs: %d %s", res.Status, res.Body)
	}

	// Freeze: viewers may not; admins may, with a reason; the unfreeze is delayed.
	if res = ve.post(f.ViewerA, path+"/freeze", map[string]any{"reason": "x"}); res.Status != 403 {
		t.Fatalf("viewer freeze: %d", res.Status)
	}
	if res = ve.post(f.AdminA, path+"/freeze", map[string]any{"reason": string(make([]byte, 1001))}); res.Status != 400 || res.ErrorField() != "reason" {
		t.Fatalf("long reason: %d %s", res.Status, res.Body)
	}
	res = ve.post(f.AdminA, path+"/freeze", map[string]any{"reason": "laptop stolen"})
	res.Decode(t, &st)
	if res.Status != 200 || !st.Frozen || st.FreezeReason != "laptop stolen" {
		t.Fatalf("freeze: %d %s", res.Status, res.Body)
	}
	res = ve.post(f.AdminA, path+"/unfreeze", nil)
	res.Decode(t, &st)
	// The freeze ends only after the unfreeze delay (24 h by default), not at once.
	if res.Status != 200 || !st.Frozen || st.UnfreezeAfter == nil || time.Until(parseTime(t, *st.UnfreezeAfter)) < 23*time.Hour {
		t.Fatalf("unfreeze: %d %s", res.Status, res.Body)
	}
	if res = ve.post(f.AdminA, path+"/unfreeze", nil); res.Status != 409 {
		t.Fatalf("second unfreeze: %d %s", res.Status, res.Body)
	}

	// Settings.
	patch := func(a *apptest.Actor, body any) *apptest.Response {
		return ve.env.Do(apptest.Req{Method: "PATCH", Path: "/v1/protection/settings", Token: a.Access, Body: body})
	}
	if res = patch(f.AdminA, map[string]any{"deletion_grace_seconds": 259200}); res.Status != 403 {
		t.Fatalf("member admin changes settings: %d", res.Status)
	}
	if res = patch(f.FedAdmin, map[string]any{"deletion_grace_seconds": 3600}); res.Status != 400 || res.ErrorField() != "deletion_grace_seconds" {
		t.Fatalf("1 h grace: %d %s", res.Status, res.Body)
	}
	// Shortening the grace period is a protected action (docs/governance.md): a request, nothing changed.
	if res = patch(f.FedAdmin, map[string]any{"deletion_grace_seconds": 259200, "copy_every_seconds": 600}); res.Status != 202 ||
		!strings.Contains(string(res.Body), "shorten the protected-copy deletion grace period from 30 days to 3 days") {
		t.Fatalf("shorter grace: %d %s", res.Status, res.Body)
	}
	// A change that weakens nothing applies at once.
	if res = patch(f.FedAdmin, map[string]any{"copy_every_seconds": 600}); res.Status != 200 ||
		!strings.Contains(string(res.Body), `"deletion_grace_seconds":2592000`) {
		t.Fatalf("settings: %d %s", res.Status, res.Body)
	}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return at
}
