package approvals_test

import (
	"fmt"
	"github.com/chatons/archipelago/internal/vaults"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/islands"
)

// protect turns on the approval settings named by set (the sandbox's way, no request).
func (b *bundle) protect(t *testing.T, in approvals.SettingsInput) {
	t.Helper()
	if _, err := b.svc.SettingsApply(b.ctx, in); err != nil {
		t.Fatal(err)
	}
}

// executeApproved has C and D approve r and runs the execution tick; it returns r then.
func (b *bundle) executeApproved(t *testing.T, r approvals.Request) approvals.Request {
	t.Helper()
	must(b.vote(t, b.adminC, r.ID, true))(t)
	if r = must(b.vote(t, b.adminD, r.ID, true))(t); r.Status != approvals.StatusApproved {
		t.Fatalf("approved: %+v", r)
	}
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if r = must(b.svc.RequestGetByID(b.ctx, r.ID))(t); r.Status != approvals.StatusExecuted {
		t.Fatalf("after the execution tick: %+v", r)
	}
	return r
}

func (b *bundle) pledge(t *testing.T) islands.Pledge {
	t.Helper()
	var id int64
	if err := b.env.App.Pool.QueryRow(b.ctx, `SELECT id FROM pledges WHERE member_id = $1`, b.memberA).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return must(islands.PledgeGetByID(b.ctx, b.env.App.Pool, id))(t)
}

// TestPledgeWithdrawalBelowReplicationFactor: member A's pledge is the island's only
// zone (replication factor 1). With protect_pledge_withdrawal off, its withdrawal is not
// protected; on, it becomes a request that changes nothing until two other organisations
// approve, and the execution tick withdraws the pledge.
func TestPledgeWithdrawalBelowReplicationFactor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pl := b.pledge(t)
	if _, protected, err := b.svc.PlanPledgeWithdraw(b.ctx, b.adminA, pl); err != nil || protected {
		t.Fatalf("setting off: protected=%v err=%v", protected, err)
	}
	b.protect(t, approvals.SettingsInput{ProtectPledgeWithdrawal: ptr(true)})
	ask, protected, err := b.svc.PlanPledgeWithdraw(b.ctx, b.adminA, pl)
	if err != nil || !protected {
		t.Fatalf("setting on: protected=%v err=%v", protected, err)
	}
	r := must(b.svc.RequestCreate(b.as(b.adminA), b.adminA, ask))(t)
	if r.Action != approvals.ActionPledgeWithdraw || r.AffectedMemberID == nil || *r.AffectedMemberID != b.memberA {
		t.Fatalf("request = %+v", r)
	}
	if !containsText(r.Effect, "span 0 distinct zones instead of 1", "replication factor 1") {
		t.Fatalf("effect %q does not say the numbers", r.Effect)
	}
	if got := b.pledge(t); got.WithdrawnAt != nil {
		t.Fatal("the pledge was withdrawn by the request")
	}
	b.executeApproved(t, r)
	if got := b.pledge(t); got.WithdrawnAt == nil || got.Status != islands.PledgeWithdrawn {
		t.Fatalf("pledge after execution: %+v", got)
	}
	// Once withdrawn, a further withdrawal is not protected.
	if _, protected, err := b.svc.PlanPledgeWithdraw(b.ctx, b.adminA, b.pledge(t)); err != nil || protected {
		t.Fatalf("withdrawn pledge: protected=%v err=%v", protected, err)
	}
}

func ptr[T any](v T) *T { return &v }

// containsText reports whether s contains each of parts.
func containsText(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestQuotaCutBelowUse: with protect_quota_cuts off, cutting the quota below the vault's
// use is not protected; on, it is a request whose effect says the numbers, the quota is
// unchanged until two other organisations approve, and the tick applies the cut. A cut
// that stays above the use is never protected.
func TestQuotaCutBelowUse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.env.App.Pool.Exec(b.ctx, `UPDATE vaults SET usage_bytes = 600000000 WHERE id = $1`, b.vault.ID); err != nil {
		t.Fatal(err)
	}
	v := must(vaults.VaultGetByID(b.ctx, b.env.App.Pool, b.vault.ID))(t)
	cut := approvals.QuotaChange{QuotaBytes: ptr(int64(500_000_000))}
	if _, protected, err := b.svc.PlanQuotaCut(b.ctx, b.adminA, v, cut); err != nil || protected {
		t.Fatalf("setting off: protected=%v err=%v", protected, err)
	}
	b.protect(t, approvals.SettingsInput{ProtectQuotaCuts: ptr(true)})
	if _, protected, err := b.svc.PlanQuotaCut(b.ctx, b.adminA, v, approvals.QuotaChange{QuotaBytes: ptr(int64(700_000_000))}); err != nil || protected {
		t.Fatalf("cut above the use: protected=%v err=%v", protected, err)
	}
	ask, protected, err := b.svc.PlanQuotaCut(b.ctx, b.adminA, v, cut)
	if err != nil || !protected {
		t.Fatalf("setting on: protected=%v err=%v", protected, err)
	}
	r := must(b.svc.RequestCreate(b.as(b.adminA), b.adminA, ask))(t)
	if r.Action != approvals.ActionQuotaCut || !containsText(r.Effect, "from 1000000000 bytes", "to 500000000 bytes", "use of 600000000 bytes") {
		t.Fatalf("request = %+v", r)
	}
	if got := must(vaults.VaultGetByID(b.ctx, b.env.App.Pool, v.ID))(t); got.QuotaBytes != 1_000_000_000 {
		t.Fatalf("quota %d after the request, want unchanged", got.QuotaBytes)
	}
	b.executeApproved(t, r)
	if got := must(vaults.VaultGetByID(b.ctx, b.env.App.Pool, v.ID))(t); got.QuotaBytes != 500_000_000 {
		t.Fatalf("quota %d after execution, want 500000000", got.QuotaBytes)
	}
}

// TestIslandTokenReplacement: the island's stored token is stale; with
// protect_island_token off, setting a new one is not protected; on, it is a request that
// leaves the stored token alone until two other organisations approve, and the tick
// stores the new token. The new token is never in clear in the request nor in the audit
// log.
func TestIslandTokenReplacement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pool, kr := b.env.App.Pool, b.env.App.Keyring
	purpose := fmt.Sprintf("island/%d/admin_token", b.vault.IslandID)
	stored := func() string {
		t.Helper()
		var sealed string
		if err := pool.QueryRow(b.ctx, `SELECT admin_token_sealed FROM islands WHERE id = $1`, b.vault.IslandID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		return must(kr.OpenString(purpose, sealed))(t)
	}
	token := stored() // the simulator's token: the replacement the island accepts
	if _, err := pool.Exec(b.ctx, `UPDATE islands SET admin_token_sealed = $2 WHERE id = $1`, b.vault.IslandID,
		kr.SealString(purpose, "stale-token")); err != nil {
		t.Fatal(err)
	}
	isl := must(islands.IslandGetByID(b.ctx, pool, b.vault.IslandID))(t)
	in := islands.IslandInput{AdminToken: &token}
	if _, protected, err := b.svc.PlanIslandToken(b.ctx, b.fed, isl, in); err != nil || protected {
		t.Fatalf("setting off: protected=%v err=%v", protected, err)
	}
	b.protect(t, approvals.SettingsInput{ProtectIslandToken: ptr(true)})
	if _, protected, err := b.svc.PlanIslandToken(b.ctx, b.fed, isl, islands.IslandInput{Name: ptr(isl.Name)}); err != nil || protected {
		t.Fatalf("no new token: protected=%v err=%v", protected, err)
	}
	ask, protected, err := b.svc.PlanIslandToken(b.ctx, b.fed, isl, in)
	if err != nil || !protected {
		t.Fatalf("setting on: protected=%v err=%v", protected, err)
	}
	r := must(b.svc.RequestCreate(b.as(b.fed), b.fed, ask))(t)
	if r.Action != approvals.ActionIslandToken {
		t.Fatalf("request = %+v", r)
	}
	inClear := func(when string) {
		t.Helper()
		var n int
		if err := pool.QueryRow(b.ctx, `SELECT (SELECT count(*) FROM approval_requests WHERE params::text LIKE '%' || $1 || '%' OR effect LIKE '%' || $1 || '%')
			+ (SELECT count(*) FROM audit_entries WHERE details::text LIKE '%' || $1 || '%')`, token).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%s: the new token is in clear in %d rows", when, n)
		}
	}
	inClear("after the request")
	if got := stored(); got != "stale-token" {
		t.Fatal("the token was replaced by the request")
	}
	b.executeApproved(t, r)
	if got := stored(); got != token {
		t.Fatal("the token was not replaced by the execution")
	}
	inClear("after the execution")
}
