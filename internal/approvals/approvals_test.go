package approvals_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

// clock is a fixed clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bundle is a federation of four members: A owns the vault, B, C and D have admins who
// may approve (C has two), and a federation admin asks.
type bundle struct {
	ctx                         context.Context
	env                         *apptest.Env
	svc                         *approvals.Service
	clock                       *clock
	fed, adminA, adminB, adminC *identity.Principal
	adminC2, adminD             *identity.Principal
	memberA, memberC            int64
	vault                       vaults.Vault
}

func setup(t *testing.T) *bundle {
	t.Helper()
	env := apptest.New(t)
	f := env.Fixture()
	ctx := audit.WithActor(context.Background(), audit.System("approvals-test"))
	b := &bundle{ctx: ctx, env: env, clock: &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, memberA: f.MemberA.ID}
	b.svc = env.App.Approvals.WithClock(b.clock.Now)
	princ := func(a *apptest.Actor) *identity.Principal {
		p, err := env.App.Identity.AccessPrincipal(ctx, a.Access)
		if err != nil {
			t.Fatalf("principal %s: %v", a.Email, err)
		}
		return p
	}
	b.fed, b.adminA, b.adminB = princ(f.FedAdmin), princ(f.AdminA), princ(f.AdminB)
	mc, md := env.Member("member-c", "Member C"), env.Member("member-d", "Member D")
	b.memberC = mc.ID
	b.adminC = person(t, env, "admin@c.example", mc.ID)
	b.adminC2 = person(t, env, "admin2@c.example", mc.ID)
	b.adminD = person(t, env, "admin@d.example", md.ID)
	north := vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "north", 1, f.MemberB.ID)
	vaultstest.Pledge(t, env.App.Pool, north, f.MemberA.ID, 300_000_000_000)
	actx := audit.WithActor(ctx, b.adminA.Actor())
	v, _, err := env.App.Vaults.Create(actx, vaults.CreateInput{MemberID: f.MemberA.ID, Name: testenv.Unique("appr-"), QuotaBytes: 1_000_000_000})
	if err != nil {
		t.Fatalf("create vault: %v", err)
	}
	for deadline := time.Now().Add(6 * time.Minute); v.Status != vaults.StatusActive; {
		if time.Now().After(deadline) {
			t.Fatalf("vault still %s: %s", v.Status, v.StatusDetail)
		}
		time.Sleep(time.Second) // polling, not an assertion
		_, _ = env.App.Vaults.ReconcileVault(ctx, v.ID)
		if v, err = env.App.Vaults.VaultGetByID(ctx, v.ID); err != nil {
			t.Fatal(err)
		}
	}
	b.vault = v
	return b
}

// person creates an admin of member and returns their principal.
func person(t *testing.T, env *apptest.Env, email string, member int64) *identity.Principal {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("approvals-test"))
	var id int64
	err := pgx.BeginFunc(ctx, env.App.Pool, func(tx pgx.Tx) error {
		u, err := env.App.Identity.UserCreate(ctx, tx, identity.NewUser{Email: email, Password: "horse-battery-staple-" + testenv.Unique("")})
		if err != nil {
			return err
		}
		id = u.ID
		return env.App.Identity.MembershipSet(ctx, tx, u.ID, member, identity.RoleAdmin)
	})
	if err != nil {
		t.Fatalf("person %s: %v", email, err)
	}
	return &identity.Principal{UserID: id, Email: email, Members: []identity.MemberRef{{ID: member, Role: identity.RoleAdmin}}, Via: "session"}
}

// as returns ctx acting as p (as the HTTP layer does).
func (b *bundle) as(p *identity.Principal) context.Context {
	return audit.WithActor(b.ctx, p.Actor())
}

// askVaultDelete is the federation admin deleting member A's vault.
func (b *bundle) askVaultDelete(t *testing.T) approvals.Request {
	t.Helper()
	ask, protected, err := b.svc.PlanVaultDelete(b.ctx, b.fed, b.vault, "member left")
	if err != nil || !protected {
		t.Fatalf("plan: protected=%v err=%v", protected, err)
	}
	r, err := b.svc.RequestCreate(b.as(b.fed), b.fed, ask)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return r
}

func (b *bundle) vote(t *testing.T, p *identity.Principal, id int64, approve bool) (approvals.Request, error) {
	t.Helper()
	return b.svc.RequestVote(b.as(p), p, id, approvals.VoteInput{Approve: approve})
}

func (b *bundle) vaultStatus(t *testing.T) string {
	t.Helper()
	v, err := vaults.VaultGetByID(b.ctx, b.env.App.Pool, b.vault.ID)
	if err != nil {
		t.Fatal(err)
	}
	return v.Status
}

func (b *bundle) frozen(t *testing.T) bool {
	t.Helper()
	st, err := b.env.App.Protection.State(b.ctx, b.vault.ID)
	if err != nil {
		t.Fatal(err)
	}
	return st.Frozen
}

// auditActions lists the actions of the audit entries about target, in order.
func (b *bundle) auditActions(t *testing.T, targetType, targetID string) []string {
	t.Helper()
	rows, err := b.env.App.Pool.Query(b.ctx, `SELECT action FROM audit_entries WHERE target_type = $1 AND target_id = $2 ORDER BY seq`, targetType, targetID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// must(call)(t) returns call's value, failing t on its error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func contains(list []string, want ...string) bool {
	i := 0
	for _, s := range list {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestVaultDeletionNeedsTwoOtherOrganisations: a federation admin deleting a member's
// vault gets a request and nothing is destroyed; the requester's own vote, the affected
// member's admin and a second vote from one organisation do not count; two approvals from
// other organisations freeze the vault for the cooling-off and it is deleted after it,
// with every step in the audit log.
func TestVaultDeletionNeedsTwoOtherOrganisations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.askVaultDelete(t)
	if r.Status != approvals.StatusPending || r.RequiredApprovals != 2 || r.AffectedMemberID == nil || *r.AffectedMemberID != b.memberA {
		t.Fatalf("request = %+v", r)
	}
	if got := b.vaultStatus(t); got != vaults.StatusActive {
		t.Fatalf("vault %s after the request, want active", got)
	}
	// The requester's own vote does not count.
	var fb *problem.ForbiddenError
	if _, err := b.vote(t, b.fed, r.ID, true); !errors.As(err, &fb) {
		t.Fatalf("requester's vote: %v, want forbidden", err)
	}
	// Nor does the affected member's admin.
	if _, err := b.vote(t, b.adminA, r.ID, true); !errors.As(err, &fb) {
		t.Fatalf("affected member's vote: %v, want forbidden", err)
	}
	r = must(b.vote(t, b.adminC, r.ID, true))(t)
	if r.Approvals != 1 || r.Status != approvals.StatusPending {
		t.Fatalf("after C: %+v", r)
	}
	// A second vote for organisation C does not count.
	var ce *problem.ConflictError
	if _, err := b.vote(t, b.adminC2, r.ID, true); !errors.As(err, &ce) {
		t.Fatalf("second vote of C: %v, want conflict", err)
	}
	r = must(b.svc.RequestGetByID(b.ctx, r.ID))(t)
	if r.Approvals != 1 || r.Status != approvals.StatusPending {
		t.Fatalf("after C's second vote: %+v", r)
	}
	// Nothing happens while pending, however often the job runs.
	b.clock.Add(time.Hour)
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.vaultStatus(t); got != vaults.StatusActive {
		t.Fatalf("vault %s while pending", got)
	}
	r = must(b.vote(t, b.adminD, r.ID, true))(t)
	if r.Status != approvals.StatusApproved || r.Approvals != 2 || r.ExecuteAfter == nil ||
		!r.ExecuteAfter.Equal(b.clock.Now().Add(72*time.Hour)) || r.CoolingOffShortened {
		t.Fatalf("after D: %+v", r)
	}
	// Cooling-off: the vault is read-only, its data kept.
	if !b.frozen(t) {
		t.Fatal("the vault is not frozen during the cooling-off")
	}
	b.clock.Add(72*time.Hour - time.Minute)
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.vaultStatus(t); got != vaults.StatusActive {
		t.Fatalf("vault %s before the end of the cooling-off", got)
	}
	b.clock.Add(2 * time.Minute)
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	r = must(b.svc.RequestGetByID(b.ctx, r.ID))(t)
	if r.Status != approvals.StatusExecuted {
		t.Fatalf("after the cooling-off: %+v", r)
	}
	if got := b.vaultStatus(t); got != vaults.StatusDeleted && got != vaults.StatusDeleting {
		t.Fatalf("vault %s after execution", got)
	}
	id := strconv.FormatInt(r.ID, 10)
	if got := b.auditActions(t, "approval_request", id); !contains(got, "approval.request", "approval.approve", "approval.approve",
		"approval.approved", "approval.executed") {
		t.Fatalf("audit of the request: %v", got)
	}
	if got := b.auditActions(t, "vault", strconv.FormatInt(b.vault.ID, 10)); !contains(got, "vault.freeze", "vault.delete") {
		t.Fatalf("audit of the vault: %v", got)
	}
	// The deletion was performed with the requester's authority.
	var actor string
	if err := b.env.App.Pool.QueryRow(b.ctx, `SELECT actor_name FROM audit_entries WHERE action = 'vault.delete' AND target_id = $1`,
		strconv.FormatInt(b.vault.ID, 10)).Scan(&actor); err != nil {
		t.Fatal(err)
	}
	if actor != b.fed.Email+" (approval request #"+id+")" {
		t.Fatalf("vault.delete by %q", actor)
	}
}

// TestCancelDuringCoolingOffDestroysNothing: an approved request cancelled during its
// cooling-off is never executed; the vault keeps its data and its freeze is lifted.
func TestCancelDuringCoolingOffDestroysNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.askVaultDelete(t)
	must(b.vote(t, b.adminC, r.ID, true))(t)
	r = must(b.vote(t, b.adminD, r.ID, true))(t)
	if r.Status != approvals.StatusApproved || !b.frozen(t) {
		t.Fatalf("approved: %+v frozen=%v", r, b.frozen(t))
	}
	b.clock.Add(24 * time.Hour)
	// Approvers may not cancel; the affected member's admin may.
	var fb *problem.ForbiddenError
	if _, err := b.svc.RequestCancel(b.as(b.adminC), b.adminC, r.ID); !errors.As(err, &fb) {
		t.Fatalf("approver cancels: %v", err)
	}
	r = must(b.svc.RequestCancel(b.as(b.adminA), b.adminA, r.ID))(t)
	if r.Status != approvals.StatusCancelled {
		t.Fatalf("cancelled: %+v", r)
	}
	b.clock.Add(72 * time.Hour)
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if r = must(b.svc.RequestGetByID(b.ctx, r.ID))(t); r.Status != approvals.StatusCancelled {
		t.Fatalf("after the cooling-off: %+v", r)
	}
	if got := b.vaultStatus(t); got != vaults.StatusActive {
		t.Fatalf("vault %s after a cancelled request", got)
	}
	st := must(b.env.App.Protection.State(b.ctx, b.vault.ID))(t)
	if st.Frozen && st.UnfreezeAfter == nil {
		t.Fatal("the freeze of the cancelled request is not being lifted")
	}
	if got := b.auditActions(t, "approval_request", strconv.FormatInt(r.ID, 10)); !contains(got, "approval.request", "approval.approved", "approval.cancelled") {
		t.Fatalf("audit: %v", got)
	}
}

// TestExpiredRequestDoesNothing: a request short of approvals expires after its approval
// window (7 days); nothing is destroyed and it takes no more votes.
func TestExpiredRequestDoesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.askVaultDelete(t)
	if !r.ApprovalExpiresAt.Equal(b.clock.Now().Add(7 * 24 * time.Hour)) {
		t.Fatalf("expires at %s", r.ApprovalExpiresAt)
	}
	must(b.vote(t, b.adminC, r.ID, true))(t)
	b.clock.Add(7*24*time.Hour - time.Minute)
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if r = must(b.svc.RequestGetByID(b.ctx, r.ID))(t); r.Status != approvals.StatusPending {
		t.Fatalf("before the end of the window: %+v", r)
	}
	b.clock.Add(time.Minute)
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if r = must(b.svc.RequestGetByID(b.ctx, r.ID))(t); r.Status != approvals.StatusExpired {
		t.Fatalf("after the window: %+v", r)
	}
	var ce *problem.ConflictError
	if _, err := b.vote(t, b.adminD, r.ID, true); !errors.As(err, &ce) {
		t.Fatalf("vote after expiry: %v", err)
	}
	if got := b.vaultStatus(t); got != vaults.StatusActive || b.frozen(t) {
		t.Fatalf("vault %s frozen=%v after expiry", got, b.frozen(t))
	}
	if got := b.auditActions(t, "approval_request", strconv.FormatInt(r.ID, 10)); !contains(got, "approval.request", "approval.approve", "approval.expired") {
		t.Fatalf("audit: %v", got)
	}
}

// TestRejectEndsTheRequest: one rejection from an approver organisation ends it.
func TestRejectEndsTheRequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.askVaultDelete(t)
	must(b.vote(t, b.adminC, r.ID, true))(t)
	if r = must(b.vote(t, b.adminD, r.ID, false))(t); r.Status != approvals.StatusRejected {
		t.Fatalf("rejected: %+v", r)
	}
	b.clock.Add(80 * time.Hour)
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.vaultStatus(t); got != vaults.StatusActive || b.frozen(t) {
		t.Fatalf("vault %s frozen=%v after rejection", got, b.frozen(t))
	}
}

// TestChangingMNeedsApprovalUnderOldM: lowering M to 1 is itself a request, which needs
// the two approvals of the rules in force when it was asked for; once executed, a new
// request needs one.
func TestChangingMNeedsApprovalUnderOldM(t *testing.T) {
	t.Parallel()
	b := setup(t)
	one := 1
	ask, err := b.svc.PlanApprovalSettings(b.ctx, b.fed, approvals.SettingsInput{RequiredApprovals: &one})
	if err != nil {
		t.Fatal(err)
	}
	r := must(b.svc.RequestCreate(b.as(b.fed), b.fed, ask))(t)
	if r.RequiredApprovals != 2 {
		t.Fatalf("required %d, want the old M (2)", r.RequiredApprovals)
	}
	r = must(b.vote(t, b.adminC, r.ID, true))(t)
	if r.Status != approvals.StatusPending {
		t.Fatalf("one approval of two: %+v", r)
	}
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if st := must(b.svc.SettingsGet(b.ctx))(t); st.RequiredApprovals != 2 {
		t.Fatalf("M changed to %d with one approval", st.RequiredApprovals)
	}
	r = must(b.vote(t, b.adminD, r.ID, true))(t)
	if r.Status != approvals.StatusApproved || !r.ExecuteAfter.Equal(b.clock.Now()) {
		t.Fatalf("approved: %+v (no cooling-off: destroys no data)", r)
	}
	if err := b.svc.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if r = must(b.svc.RequestGetByID(b.ctx, r.ID))(t); r.Status != approvals.StatusExecuted {
		t.Fatalf("executed: %+v", r)
	}
	if st := must(b.svc.SettingsGet(b.ctx))(t); st.RequiredApprovals != 1 {
		t.Fatalf("M = %d after execution, want 1", st.RequiredApprovals)
	}
	// Under the new rules one approval suffices.
	v := b.askVaultDelete(t)
	if v = must(b.vote(t, b.adminB, v.ID, true))(t); v.Status != approvals.StatusApproved {
		t.Fatalf("under M=1: %+v", v)
	}
}

// TestCoolingOffNeverUnder72HoursOutsideTheSandbox: the rules refuse a cooling-off under
// 72 h unless the configuration is the sandbox's.
func TestCoolingOffNeverUnder72HoursOutsideTheSandbox(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	short := int64(60)
	var fe *problem.FieldError
	if err := env.App.Approvals.Validate(approvals.SettingsInput{CoolingOffSeconds: &short}); !errors.As(err, &fe) || fe.Field != "cooling_off_seconds" {
		t.Fatalf("short cooling-off: %v", err)
	}
	dev := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_DEV_SHORT_COOLING_OFF", "true"))
	if err := dev.App.Approvals.Validate(approvals.SettingsInput{CoolingOffSeconds: &short}); err != nil {
		t.Fatalf("sandbox: %v", err)
	}
}

// TestLivenessAlertsBelowM: with fewer reachable approver organisations than M the check
// alerts (a critical notification event); an acknowledged ping counts as reachable.
func TestLivenessAlertsBelowM(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.svc.CheckLiveness(b.ctx); err != nil {
		t.Fatal(err)
	}
	l := must(b.svc.LivenessGet(b.ctx))(t)
	// A and B logged in (the fixture); C and D never did.
	if l.Reachable != 2 || l.Alerting {
		t.Fatalf("liveness = %+v", l)
	}
	five := 5
	if _, err := b.svc.SettingsApply(b.ctx, approvals.SettingsInput{RequiredApprovals: &five}); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.CheckLiveness(b.ctx); err != nil {
		t.Fatal(err)
	}
	if l = must(b.svc.LivenessGet(b.ctx))(t); !l.Alerting || l.Required != 5 {
		t.Fatalf("liveness = %+v, want alerting", l)
	}
	var n int
	if err := b.env.App.Pool.QueryRow(b.ctx, `SELECT count(*) FROM notify_events WHERE kind = $1 AND severity = 'critical'`,
		approvals.KindLiveness).Scan(&n); err != nil || n == 0 {
		t.Fatalf("liveness events: %d %v", n, err)
	}
	for _, p := range []*identity.Principal{b.adminC, b.adminD} {
		if err := b.svc.PingAck(b.as(p), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.svc.CheckLiveness(b.ctx); err != nil {
		t.Fatal(err)
	}
	if l = must(b.svc.LivenessGet(b.ctx))(t); l.Reachable != 4 {
		t.Fatalf("after pings: %+v", l)
	}
}
