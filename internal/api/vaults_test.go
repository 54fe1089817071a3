package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

type apiVault struct {
	ID             int64    `json:"id"`
	IslandID       int64    `json:"island_id"`
	Status         string   `json:"status"`
	StatusDetail   string   `json:"status_detail"`
	Placement      string   `json:"placement"`
	GarageBucketID *string  `json:"garage_bucket_id"`
	Drift          []string `json:"drift"`
	Verifier       *struct {
		AccessKeyID string `json:"access_key_id"`
	} `json:"verifier"`
}

// vaultEnv is an app with member A operating island north (pledging 300 GB there) and
// member B operating island south.
type vaultEnv struct {
	env          *apptest.Env
	f            *apptest.Fixture
	north, south vaultstest.Island
}

func newVaultEnv(t *testing.T) vaultEnv {
	env := apptest.New(t)
	f := env.Fixture()
	ve := vaultEnv{env: env, f: f}
	ve.north = vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "north", 3, f.MemberA.ID)
	ve.south = vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "south", 3, f.MemberB.ID)
	vaultstest.Pledge(t, env.App.Pool, ve.north, f.MemberA.ID, 300_000_000_000)
	return ve
}

func (ve vaultEnv) post(a *apptest.Actor, path string, body any) *apptest.Response {
	return ve.env.Do(apptest.Req{Method: "POST", Path: path, Token: a.Access, Body: body})
}

// createVault creates a 1 GB vault of member A (named prefix and a unique suffix) through
// the API as its admin, and fails the test unless the answer is 201.
func (ve vaultEnv) createVault(t *testing.T, prefix string) apiVault {
	t.Helper()
	res := ve.post(ve.f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique(prefix), "quota_bytes": 1_000_000_000})
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var v apiVault
	res.Decode(t, &v)
	return v
}

func TestVaultAPICreatePlacementQuotaAndIdempotency(t *testing.T) {
	t.Parallel()
	ve := newVaultEnv(t)
	f := ve.f
	name := testenv.Unique("api-")
	res := ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": name, "quota_bytes": 50_000_000_000})
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var v apiVault
	res.Decode(t, &v)
	if v.IslandID != ve.south.ID || v.Status != "active" || v.Verifier == nil || v.Placement != "automatic" {
		t.Fatalf("vault %+v: want active on south, with a verifier key", v)
	}

	// The quota refusal explains the arithmetic.
	res = ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("big-"), "quota_bytes": 500_000_000_000})
	if res.Status != 422 || res.ErrorCode() != "quota_exceeded" ||
		!strings.Contains(string(res.Body), "requested 500 GB; available to you 50 GB = 1.0 × 300 GB pledged ÷ 3 − 50 GB already allocated") {
		t.Fatalf("over quota: %d %s", res.Status, res.Body)
	}
	// Names invalid for S3.
	for _, bad := range []string{"Upper_Case", "ab", "10.0.0.1"} {
		res = ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": bad, "quota_bytes": 1})
		if res.Status != 400 || res.ErrorField() != "name" {
			t.Errorf("name %q: %d %s", bad, res.Status, res.Body)
		}
	}
	// The member's own island: refused; an override is for federation admins only, and audited.
	res = ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("own-"), "quota_bytes": 1_000_000_000, "island_id": ve.north.ID})
	if res.Status != 422 || res.ErrorCode() != "placement_refused" {
		t.Fatalf("own island: %d %s", res.Status, res.Body)
	}
	res = ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("own-"), "quota_bytes": 1_000_000_000,
		"island_id": ve.north.ID, "override_reason": "please"})
	if res.Status != 403 {
		t.Fatalf("override by a member admin: %d %s", res.Status, res.Body)
	}
	res = ve.post(f.FedAdmin, "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("own-"), "quota_bytes": 1_000_000_000,
		"island_id": ve.north.ID, "override_reason": "south is being rebuilt"})
	if res.Status != 201 {
		t.Fatalf("override by a federation admin: %d %s", res.Status, res.Body)
	}
	res.Decode(t, &v)
	if v.Placement != "override" {
		t.Fatalf("placement %s", v.Placement)
	}
	// A name the member already uses: 409 naming name (the member named by its id this time).
	res = ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": f.MemberA.ID, "name": name, "quota_bytes": 1_000_000_000})
	if res.Status != 409 || res.ErrorField() != "name" {
		t.Errorf("a duplicate vault name: %d naming %q, want 409 naming name\n%s", res.Status, res.ErrorField(), res.Body)
	}
	audit := ve.env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries?action=vault.create", Token: f.FedAdmin.Access})
	if !strings.Contains(string(audit.Body), "south is being rebuilt") {
		t.Errorf("the override's reason is not in the audit log: %s", audit.Body)
	}

	// A double submit with the same Idempotency-Key makes one vault.
	dup := testenv.Unique("dup-")
	var ids []int64
	for _, want := range []int{201, 200} {
		res = ve.env.Do(apptest.Req{Method: "POST", Path: "/v1/vaults", Token: f.AdminA.Access, Header: map[string]string{"Idempotency-Key": "k-" + dup},
			Body: map[string]any{"member": "member-a", "name": dup, "quota_bytes": 1_000_000_000}})
		if res.Status != want {
			t.Fatalf("submit: %d %s, want %d", res.Status, res.Body, want)
		}
		res.Decode(t, &v)
		ids = append(ids, v.ID)
	}
	if ids[0] != ids[1] {
		t.Fatalf("two vaults: %v", ids)
	}

	// Garage unreachable during creation: 202, visibly pending, finished by the reconciler.
	ve.south.Sim.InjectFault(garagesim.Fault{Operation: "CreateBucket", Status: 503, Count: 1})
	res = ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("flaky-"), "quota_bytes": 1_000_000_000})
	if res.Status != 202 {
		t.Fatalf("garage down: %d %s", res.Status, res.Body)
	}
	res.Decode(t, &v)
	if v.Status != "pending" || !strings.Contains(v.StatusDetail, "CreateBucket") || !strings.Contains(v.StatusDetail, ve.south.Name) {
		t.Fatalf("pending vault: %+v", v)
	}
	res = ve.post(f.AdminA, fmt.Sprintf("/v1/vaults/%d/reconcile", v.ID), nil)
	if res.Status != 200 {
		t.Fatalf("reconcile: %d %s", res.Status, res.Body)
	}
	res = ve.env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/vaults/%d", v.ID), Token: f.ViewerA.Access})
	res.Decode(t, &v)
	if v.Status != "active" {
		t.Fatalf("after reconcile: %+v", v)
	}
	// Another member sees none of it.
	res = ve.env.Do(apptest.Req{Method: "GET", Path: "/v1/vaults", Token: f.AdminB.Access})
	if strings.Contains(string(res.Body), name) {
		t.Fatal("B lists A's vault")
	}
}

func TestVaultAPIKeysAreShownOnceAndRevocable(t *testing.T) {
	t.Parallel()
	ve := newVaultEnv(t)
	f := ve.f
	res := ve.post(f.AdminA, "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("keys-"), "quota_bytes": 1_000_000_000})
	var v apiVault
	res.Decode(t, &v)
	res = ve.post(f.AdminA, fmt.Sprintf("/v1/vaults/%d/keys", v.ID), map[string]any{"name": "backup server"})
	if res.Status != 201 {
		t.Fatalf("create key: %d %s", res.Status, res.Body)
	}
	var k struct {
		ID      int64             `json:"id"`
		Secret  string            `json:"secret_access_key"`
		Snippet string            `json:"restic_snippet"`
		Env     map[string]string `json:"env"`
	}
	res.Decode(t, &k)
	if k.Secret == "" || !strings.Contains(k.Snippet, "export AWS_SECRET_ACCESS_KEY='"+k.Secret+"'") ||
		!strings.HasPrefix(k.Env["RESTIC_REPOSITORY"], "s3:http://") || k.Env["AWS_DEFAULT_REGION"] == "" {
		t.Fatalf("new key: %+v", k)
	}
	for _, path := range []string{fmt.Sprintf("/v1/vaults/%d/keys", v.ID), fmt.Sprintf("/v1/vaults/%d/keys/%d", v.ID, k.ID), fmt.Sprintf("/v1/vaults/%d", v.ID)} {
		res = ve.env.Do(apptest.Req{Method: "GET", Path: path, Token: f.AdminA.Access})
		if res.Status != 200 || strings.Contains(string(res.Body), k.Secret) {
			t.Fatalf("%s: %d, shows the secret: %v", path, res.Status, strings.Contains(string(res.Body), k.Secret))
		}
	}
	res = ve.post(f.AdminA, fmt.Sprintf("/v1/vaults/%d/keys/%d/rotate", v.ID, k.ID), nil)
	if res.Status != 201 {
		t.Fatalf("rotate: %d %s", res.Status, res.Body)
	}
	res = ve.env.Do(apptest.Req{Method: "DELETE", Path: fmt.Sprintf("/v1/vaults/%d/keys/%d", v.ID, k.ID), Token: f.AdminA.Access})
	if res.Status != 204 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	res = ve.env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/vaults/%d/keys/%d", v.ID, k.ID), Token: f.AdminA.Access})
	if !strings.Contains(string(res.Body), `"state":"revoked"`) {
		t.Fatalf("revoked key: %s", res.Body)
	}
	// The quota page's arithmetic.
	res = ve.env.Do(apptest.Req{Method: "GET", Path: "/v1/quota?member=member-a", Token: f.ViewerA.Access})
	if res.Status != 200 || !strings.Contains(string(res.Body), "99 GB = 1.0 × 300 GB pledged ÷ 3 − 1 GB already allocated") {
		t.Fatalf("quota: %d %s", res.Status, res.Body)
	}
	// Deleting a vault with data is scheduled, and can be undone.
	res = ve.env.Do(apptest.Req{Method: "DELETE", Path: fmt.Sprintf("/v1/vaults/%d", v.ID), Token: f.AdminA.Access})
	if res.Status != 204 {
		t.Fatalf("delete the empty vault: %d %s", res.Status, res.Body)
	}
}
