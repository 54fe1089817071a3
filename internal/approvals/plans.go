package approvals

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// Lookups are the reads the plans need; the domain services implement them.
type Lookups struct {
	Vaults interface {
		VaultList(ctx context.Context, f vaults.VaultFilter) ([]vaults.Vault, error)
	}
	People interface {
		PersonList(ctx context.Context, memberID int64) ([]identity.Person, error)
	}
	Protection interface {
		SettingsGet(ctx context.Context) (protection.Settings, error)
	}
	// Islands seals a new admin token held by a request.
	Islands interface {
		SealPendingToken(id int64, token string) string
	}
}

// UseLookups sets the reads of the plans (at wiring, before use).
func (s *Service) UseLookups(l Lookups) { s.look = l }

// A plan decides whether an action is protected in its case and, when it is, what to ask
// for: the exact effect, spelled out for the approvers. Each gated handler (API and
// portal) calls one plan after its own authorization, and creates the request when the
// plan says so instead of acting.

func adminOf(p *identity.Principal, memberID int64) bool {
	role, ok := p.RoleIn(memberID)
	return ok && role == identity.RoleAdmin
}

func ptr[T any](v T) *T { return &v }

func human(d time.Duration) string {
	if d == 24*time.Hour {
		return "1 day"
	}
	if d%(24*time.Hour) == 0 && d >= 24*time.Hour {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	if d%time.Hour == 0 && d >= time.Hour {
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	// Shorter ones (the sandbox's 2-minute cooling-off) in words too, never Go's "2m0s":
	// "2 min", "1 h 30 min", "45 s" read the same in English and French.
	var parts []string
	if h := d / time.Hour; h > 0 {
		parts = append(parts, fmt.Sprintf("%d h", h))
	}
	if m := d % time.Hour / time.Minute; m > 0 {
		parts = append(parts, fmt.Sprintf("%d min", m))
	}
	if s := d % time.Minute / time.Second; s > 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d s", s))
	}
	return strings.Join(parts, " ")
}

func bytesHuman(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// PlanVaultDelete: deleting a vault is protected when it holds data (its last measured
// usage), or when the requester is not an admin of the vault's member.
func (s *Service) PlanVaultDelete(ctx context.Context, p *identity.Principal, v vaults.Vault, reason string) (Ask, bool, error) {
	holds := (v.UsageBytes != nil && *v.UsageBytes > 0) || (v.UsageObjects != nil && *v.UsageObjects > 0)
	if !holds && adminOf(p, v.MemberID) {
		return Ask{}, false, nil
	}
	st, err := s.SettingsGet(ctx)
	if err != nil {
		return Ask{}, false, err
	}
	data := "no data measured yet"
	if v.UsageBytes != nil {
		data = bytesHuman(*v.UsageBytes) + " stored"
		if v.UsageObjects != nil {
			data += fmt.Sprintf(" in %d objects", *v.UsageObjects)
		}
	}
	cool := "a cooling-off of " + human(st.CoolingOff)
	if st.CoolingOffShortened() {
		cool += " (shortened below 72 h: sandbox / development mode)"
	}
	effect := fmt.Sprintf("Delete vault %q (id %d) of member %s on island %s (%s). Once approved, the vault becomes read-only "+
		"(member keys frozen) for %s during which the request can be cancelled and nothing is destroyed; then the vault is "+
		"deleted: its keys stop working and its bucket is purged after the federation's vault deletion grace period.",
		v.Name, v.ID, v.MemberSlug, v.IslandName, data, cool)
	return Ask{Action: ActionVaultDelete, TargetType: "vault", TargetID: strconv.FormatInt(v.ID, 10), AffectedMemberID: ptr(v.MemberID),
		Params: map[string]any{"vault_id": v.ID, "name": v.Name, "reason": reason}, Effect: effect, Reason: reason}, true, nil
}

// PlanMemberDelete: deleting a member is protected when it has vaults or people.
func (s *Service) PlanMemberDelete(ctx context.Context, p *identity.Principal, m islands.Member) (Ask, bool, error) {
	vs, err := s.look.Vaults.VaultList(ctx, vaults.VaultFilter{MemberIDs: []int64{m.ID}})
	if err != nil {
		return Ask{}, false, err
	}
	people, err := s.look.People.PersonList(ctx, m.ID)
	if err != nil {
		return Ask{}, false, err
	}
	if len(vs) == 0 && len(people) == 0 {
		return Ask{}, false, nil
	}
	effect := fmt.Sprintf("Delete member organisation %s (%s, id %d), which has %d vaults and %d people: they lose their access to the federation. "+
		"(The deletion is refused by the federation if the member still has history such as pledges or islands.)", m.Slug, m.Name, m.ID, len(vs), len(people))
	return Ask{Action: ActionMemberDelete, TargetType: "member", TargetID: strconv.FormatInt(m.ID, 10), AffectedMemberID: ptr(m.ID),
		Params: map[string]any{"member_id": m.ID, "slug": m.Slug}, Effect: effect}, true, nil
}

func (s *Service) islandVaults(ctx context.Context, islandID int64) (int, error) {
	vs, err := s.look.Vaults.VaultList(ctx, vaults.VaultFilter{All: true, IslandID: islandID})
	return len(vs), err
}

// PlanIslandDelete: deleting an island is protected when it holds vaults.
func (s *Service) PlanIslandDelete(ctx context.Context, p *identity.Principal, i islands.Island) (Ask, bool, error) {
	n, err := s.islandVaults(ctx, i.ID)
	if err != nil || n == 0 {
		return Ask{}, false, err
	}
	effect := fmt.Sprintf("Delete island %s (id %d), which holds %d vaults.", i.Name, i.ID, n)
	return Ask{Action: ActionIslandDelete, TargetType: "island", TargetID: strconv.FormatInt(i.ID, 10),
		Params: map[string]any{"island_id": i.ID, "name": i.Name}, Effect: effect}, true, nil
}

// PlanOperatorRemove: removing an operator is protected when the island holds vaults.
func (s *Service) PlanOperatorRemove(ctx context.Context, p *identity.Principal, i islands.Island, memberID int64, memberSlug string) (Ask, bool, error) {
	n, err := s.islandVaults(ctx, i.ID)
	if err != nil || n == 0 {
		return Ask{}, false, err
	}
	effect := fmt.Sprintf("Remove member %s as an operator of island %s (id %d), which holds %d vaults.", memberSlug, i.Name, i.ID, n)
	return Ask{Action: ActionOperatorRemove, TargetType: "island_operator", TargetID: fmt.Sprintf("%d/%d", i.ID, memberID),
		AffectedMemberID: ptr(memberID), Params: map[string]any{"island_id": i.ID, "member_id": memberID}, Effect: effect}, true, nil
}

// PlanRepositoryDelete: removing a repository's restore tests is protected when the
// requester is not an admin of its member.
func (s *Service) PlanRepositoryDelete(ctx context.Context, p *identity.Principal, r verify.Repository) (Ask, bool, error) {
	if adminOf(p, r.MemberID) {
		return Ask{}, false, nil
	}
	effect := fmt.Sprintf("Remove repository %q (id %d) from restore testing: no more restore tests; its password is erased, its history kept.", r.Name, r.ID)
	return Ask{Action: ActionRepositoryDelete, TargetType: "repository", TargetID: strconv.FormatInt(r.ID, 10), AffectedMemberID: ptr(r.MemberID),
		Params: map[string]any{"repository_id": r.ID, "name": r.Name}, Effect: effect}, true, nil
}

// PlanRepositoryPasswordRemove: removing the verifier's access to a repository is
// protected when the requester is not an admin of its member.
func (s *Service) PlanRepositoryPasswordRemove(ctx context.Context, p *identity.Principal, r verify.Repository) (Ask, bool, error) {
	if adminOf(p, r.MemberID) {
		return Ask{}, false, nil
	}
	effect := fmt.Sprintf("Erase the password of repository %q (id %d): the verifier can no longer run its restore tests.", r.Name, r.ID)
	return Ask{Action: ActionRepositoryPasswordRemove, TargetType: "repository", TargetID: strconv.FormatInt(r.ID, 10), AffectedMemberID: ptr(r.MemberID),
		Params: map[string]any{"repository_id": r.ID, "name": r.Name}, Effect: effect}, true, nil
}

// ProtectionChange is a change of the protection settings, in the API's units.
type ProtectionChange struct {
	CopyByDefault        *bool  `json:"copy_by_default,omitempty"`
	CopyEverySeconds     *int64 `json:"copy_every_seconds,omitempty"`
	DeletionGraceSeconds *int64 `json:"deletion_grace_seconds,omitempty"`
	UnfreezeDelaySeconds *int64 `json:"unfreeze_delay_seconds,omitempty"`
}

// Input converts the change for internal/protection.
func (c ProtectionChange) Input() protection.SettingsInput {
	d := func(v *int64) *time.Duration {
		if v == nil {
			return nil
		}
		return ptr(time.Duration(*v) * time.Second)
	}
	return protection.SettingsInput{CopyByDefault: c.CopyByDefault, CopyEvery: d(c.CopyEverySeconds),
		DeletionGrace: d(c.DeletionGraceSeconds), UnfreezeDelay: d(c.UnfreezeDelaySeconds)}
}

// PlanProtectionSettings: shortening the protected-copy grace period or disabling copies
// by default is protected.
func (s *Service) PlanProtectionSettings(ctx context.Context, p *identity.Principal, c ProtectionChange) (Ask, bool, error) {
	if err := c.Input().Validate(); err != nil {
		return Ask{}, false, err // a change that could never apply is refused now, not voted on
	}
	cur, err := s.look.Protection.SettingsGet(ctx)
	if err != nil {
		return Ask{}, false, err
	}
	var what []string
	if c.DeletionGraceSeconds != nil && time.Duration(*c.DeletionGraceSeconds)*time.Second < cur.DeletionGrace {
		what = append(what, fmt.Sprintf("shorten the protected-copy deletion grace period from %s to %s",
			human(cur.DeletionGrace), human(time.Duration(*c.DeletionGraceSeconds)*time.Second)))
	}
	if c.CopyByDefault != nil && !*c.CopyByDefault && cur.CopyByDefault {
		what = append(what, "stop giving new vaults a protected copy by default")
	}
	if len(what) == 0 {
		return Ask{}, false, nil
	}
	effect := "Protection settings: " + joinAnd(what) + " (with the rest of the change: " + changeText(c) + ")."
	return Ask{Action: ActionProtectionSettings, TargetType: "protection_settings", TargetID: "federation",
		Params: map[string]any{"change": c}, Effect: effect}, true, nil
}

// PlanApprovalSettings: changing the approval rules is always protected, and approved
// under the rules in force when it is asked for. The input is validated first.
func (s *Service) PlanApprovalSettings(ctx context.Context, p *identity.Principal, in SettingsInput) (Ask, error) {
	if err := s.Validate(in); err != nil {
		return Ask{}, err
	}
	cur, err := s.SettingsGet(ctx)
	if err != nil {
		return Ask{}, err
	}
	effect := fmt.Sprintf("Change the approval rules (now: %d approvals from other organisations, approval window %s, execution window %s, "+
		"cooling-off %s) to: %s.", cur.RequiredApprovals, human(cur.ApprovalWindow), human(cur.ExecutionWindow), human(cur.CoolingOff), settingsText(in))
	return Ask{Action: ActionApprovalSettings, TargetType: "approval_settings", TargetID: "federation",
		Params: map[string]any{"change": in}, Effect: effect}, nil
}

func joinAnd(parts []string) string {
	out := ""
	for i, p := range parts {
		switch {
		case i == 0:
		case i == len(parts)-1:
			out += " and "
		default:
			out += ", "
		}
		out += p
	}
	return out
}

func changeText(c ProtectionChange) string {
	var parts []string
	if c.CopyByDefault != nil {
		parts = append(parts, fmt.Sprintf("copy_by_default=%t", *c.CopyByDefault))
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"copy_every_seconds", c.CopyEverySeconds}, {"deletion_grace_seconds", c.DeletionGraceSeconds}, {"unfreeze_delay_seconds", c.UnfreezeDelaySeconds}} {
		if f.v != nil {
			parts = append(parts, fmt.Sprintf("%s=%d", f.name, *f.v))
		}
	}
	return joinAnd(parts)
}

func settingsText(in SettingsInput) string {
	var parts []string
	if in.RequiredApprovals != nil {
		parts = append(parts, fmt.Sprintf("%d approvals", *in.RequiredApprovals))
	}
	if in.ApproverMemberIDs != nil {
		if len(*in.ApproverMemberIDs) == 0 {
			parts = append(parts, "admins of every member organisation may approve")
		} else {
			parts = append(parts, fmt.Sprintf("only admins of members %v may approve", *in.ApproverMemberIDs))
		}
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"approval window", in.ApprovalWindowSeconds}, {"execution window", in.ExecutionWindowSeconds},
		{"cooling-off", in.CoolingOffSeconds}, {"liveness window", in.LivenessWindowSeconds}} {
		if f.v != nil {
			parts = append(parts, f.name+" "+human(time.Duration(*f.v)*time.Second))
		}
	}
	for _, f := range []struct {
		name string
		v    *bool
	}{{"protect quota cuts", in.ProtectQuotaCuts}, {"protect island token replacement", in.ProtectIslandToken},
		{"protect pledge withdrawals", in.ProtectPledgeWithdrawal}} {
		if f.v != nil {
			parts = append(parts, fmt.Sprintf("%s: %t", f.name, *f.v))
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return joinAnd(parts)
}
