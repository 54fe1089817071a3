package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/testenv"
)

type apiApproval struct {
	ID                  int64   `json:"id"`
	Action              string  `json:"action"`
	Effect              string  `json:"effect"`
	Status              string  `json:"status"`
	Approvals           int     `json:"approvals"`
	RequiredApprovals   int     `json:"required_approvals"`
	ExecuteAfter        *string `json:"execute_after"`
	CoolingOffShortened bool    `json:"cooling_off_shortened"`
}

// adminOf creates a member and a logged-in admin of it.
func adminOf(t *testing.T, env *apptest.Env, slug string) *apptest.Actor {
	t.Helper()
	m := env.Member(slug, slug)
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	a := &apptest.Actor{Name: slug, Email: "admin@" + slug + ".example", Password: "horse-battery-staple-" + testenv.Unique("")}
	err := pgx.BeginFunc(ctx, env.App.Pool, func(tx pgx.Tx) error {
		u, err := env.App.Identity.UserCreate(ctx, tx, identity.NewUser{Email: a.Email, Password: a.Password})
		if err != nil {
			return err
		}
		return env.App.Identity.MembershipSet(ctx, tx, u.ID, m.ID, identity.RoleAdmin)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := env.App.Identity.Login(ctx, a.Email, a.Password, "192.0.2.1", "apptest")
	if err != nil {
		t.Fatal(err)
	}
	a.Access = res.AccessToken
	return a
}

// TestProtectedVaultDeleteAnswers202: over HTTP, a federation admin deleting member A's
// vault gets 202 with the approval request (who, what, the exact effect) and the vault
// stays; the requester's own approval is refused; admins of two other members approve;
// after the cooling-off the periodic job deletes the vault. Every answer is validated
// against the OpenAPI document by apptest.
func TestProtectedVaultDeleteAnswers202(t *testing.T) {
	t.Parallel()
	ve := newVaultEnv(t)
	f, env := ve.f, ve.env
	v := ve.createVault(t, "gate-")
	path := "/v1/vaults/" + itoa(v.ID)
	res := env.Do(apptest.Req{Method: "DELETE", Path: path + "?reason=member+left", Token: f.FedAdmin.Access})
	if res.Status != 202 {
		t.Fatalf("delete as federation admin: %d %s", res.Status, res.Body)
	}
	var body struct {
		ApprovalRequest apiApproval `json:"approval_request"`
		Message         string      `json:"message"`
	}
	res.Decode(t, &body)
	r := body.ApprovalRequest
	if r.Action != "vault.delete" || r.Status != "pending" || r.RequiredApprovals != 2 || body.Message == "" {
		t.Fatalf("202 body: %s", res.Body)
	}
	env.Do(apptest.Req{Method: "GET", Path: path, Token: f.AdminA.Access}).Decode(t, &v)
	if v.Status != "active" {
		t.Fatalf("vault %s after the 202", v.Status)
	}
	req := "/v1/approvals/" + itoa(r.ID)
	if res = env.Do(apptest.Req{Method: "POST", Path: req + "/approve", Token: f.FedAdmin.Access}); res.Status != 403 {
		t.Fatalf("requester approves: %d %s", res.Status, res.Body)
	}
	if res = env.Do(apptest.Req{Method: "POST", Path: req + "/approve", Token: f.AdminA.Access}); res.Status != 403 {
		t.Fatalf("affected member approves: %d %s", res.Status, res.Body)
	}
	if res = env.Do(apptest.Req{Method: "POST", Path: req + "/approve", Token: f.AdminB.Access, Body: map[string]any{"comment": "ok"}}); res.Status != 200 {
		t.Fatalf("B approves: %d %s", res.Status, res.Body)
	}
	adminC := adminOf(t, env, "member-c")
	res = env.Do(apptest.Req{Method: "GET", Path: "/v1/approvals?mine=to_approve", Token: adminC.Access})
	var list struct {
		Requests []apiApproval `json:"requests"`
	}
	res.Decode(t, &list)
	if len(list.Requests) != 1 || list.Requests[0].ID != r.ID {
		t.Fatalf("C's requests to approve: %s", res.Body)
	}
	res = env.Do(apptest.Req{Method: "POST", Path: req + "/approve", Token: adminC.Access})
	res.Decode(t, &r)
	if res.Status != 200 || r.Status != "approved" || r.ExecuteAfter == nil {
		t.Fatalf("C approves: %d %s", res.Status, res.Body)
	}
	// The periodic job runs before and after the cooling-off (its clock moved).
	early := env.App.Approvals.WithClock(func() time.Time { return time.Now().Add(71 * time.Hour) })
	if err := early.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	env.Do(apptest.Req{Method: "GET", Path: path, Token: f.AdminA.Access}).Decode(t, &v)
	if v.Status != "active" {
		t.Fatalf("vault %s during the cooling-off", v.Status)
	}
	late := env.App.Approvals.WithClock(func() time.Time { return time.Now().Add(73 * time.Hour) })
	if err := late.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	env.Do(apptest.Req{Method: "GET", Path: req, Token: f.FedAdmin.Access}).Decode(t, &r)
	if r.Status != "executed" {
		t.Fatalf("after the cooling-off: %+v", r)
	}
	if res = env.Do(apptest.Req{Method: "GET", Path: path, Token: f.AdminA.Access}); res.Status != 404 {
		res.Decode(t, &v)
		if v.Status != "deleting" {
			t.Fatalf("vault after execution: %d %s", res.Status, res.Body)
		}
	}
}

// TestProtectedQuotaCutAnswers202: over HTTP, with protect_quota_cuts off a cut below the
// vault's use acts at once (200); on, a further cut below the use answers 202 with the
// approval request saying the numbers and the quota is unchanged; a quota above the use
// still acts at once.
func TestProtectedQuotaCutAnswers202(t *testing.T) {
	t.Parallel()
	ve := newVaultEnv(t)
	f, env := ve.f, ve.env
	v := ve.createVault(t, "cut-")
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	if _, err := env.App.Pool.Exec(ctx, `UPDATE vaults SET usage_bytes = 600000000 WHERE id = $1`, v.ID); err != nil {
		t.Fatal(err)
	}
	path := "/v1/vaults/" + itoa(v.ID)
	quota := func() int64 {
		t.Helper()
		var q int64
		if err := env.App.Pool.QueryRow(ctx, `SELECT quota_bytes FROM vaults WHERE id = $1`, v.ID).Scan(&q); err != nil {
			t.Fatal(err)
		}
		return q
	}
	patch := func(q int64) *apptest.Response {
		return env.Do(apptest.Req{Method: "PATCH", Path: path, Token: f.AdminA.Access, Body: map[string]any{"quota_bytes": q}})
	}
	if res := patch(500_000_000); res.Status != 200 || quota() != 500_000_000 {
		t.Fatalf("cut with the setting off: %d %s", res.Status, res.Body)
	}
	on := true
	if _, err := env.App.Approvals.SettingsApply(ctx, approvals.SettingsInput{ProtectQuotaCuts: &on}); err != nil {
		t.Fatal(err)
	}
	res := patch(400_000_000)
	if res.Status != 202 {
		t.Fatalf("cut with the setting on: %d %s", res.Status, res.Body)
	}
	var body struct {
		ApprovalRequest apiApproval `json:"approval_request"`
	}
	res.Decode(t, &body)
	if r := body.ApprovalRequest; r.Action != "vault.quota_cut" || r.Status != "pending" ||
		!strings.Contains(r.Effect, "from 500000000 bytes") || !strings.Contains(r.Effect, "to 400000000 bytes") ||
		!strings.Contains(r.Effect, "use of 600000000 bytes") {
		t.Fatalf("202 body: %s", res.Body)
	}
	if q := quota(); q != 500_000_000 {
		t.Fatalf("quota %d after the 202, want unchanged", q)
	}
	if res = patch(700_000_000); res.Status != 200 || quota() != 700_000_000 {
		t.Fatalf("quota above the use with the setting on: %d %s", res.Status, res.Body)
	}
}
