package approvals

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
)

// Settings are the federation's approval rules.
type Settings struct {
	// RequiredApprovals is M: approvals from distinct organisations a request needs.
	RequiredApprovals int `json:"required_approvals"`
	// ApproverMemberIDs limits who may approve to the admins of these members; empty:
	// every member organisation.
	ApproverMemberIDs       []int64       `json:"approver_member_ids"`
	ApprovalWindow          time.Duration `json:"-"`
	ExecutionWindow         time.Duration `json:"-"`
	CoolingOff              time.Duration `json:"-"`
	LivenessWindow          time.Duration `json:"-"`
	ProtectQuotaCuts        bool          `json:"protect_quota_cuts"`
	ProtectIslandToken      bool          `json:"protect_island_token"`
	ProtectPledgeWithdrawal bool          `json:"protect_pledge_withdrawal"`
	UpdatedAt               time.Time     `json:"updated_at"`
}

// CoolingOffShortened reports a cooling-off below 72 h (only the sandbox may set one).
func (st Settings) CoolingOffShortened() bool { return st.CoolingOff < MinCoolingOff }

func loadSettings(ctx context.Context, q querier) (Settings, error) {
	var st Settings
	var aw, ew, co, lw int64
	err := q.QueryRow(ctx, `SELECT required_approvals, approver_member_ids, approval_window_seconds, execution_window_seconds,
		cooling_off_seconds, liveness_window_seconds, protect_quota_cuts, protect_island_token, protect_pledge_withdrawal, updated_at
		FROM approval_settings`).Scan(&st.RequiredApprovals, &st.ApproverMemberIDs, &aw, &ew, &co, &lw, &st.ProtectQuotaCuts,
		&st.ProtectIslandToken, &st.ProtectPledgeWithdrawal, &st.UpdatedAt)
	if err != nil {
		return st, fmt.Errorf("approval settings: %w", err)
	}
	sec := func(n int64) time.Duration { return time.Duration(n) * time.Second }
	st.ApprovalWindow, st.ExecutionWindow, st.CoolingOff, st.LivenessWindow = sec(aw), sec(ew), sec(co), sec(lw)
	if st.ApproverMemberIDs == nil {
		st.ApproverMemberIDs = []int64{}
	}
	return st, nil
}

// SettingsGet returns the federation's approval rules.
func (s *Service) SettingsGet(ctx context.Context) (Settings, error) {
	return loadSettings(ctx, s.pool)
}

// SettingsInput changes the rules; nil fields are left unchanged. It is the params of an
// approvals.settings_update request.
type SettingsInput struct {
	RequiredApprovals       *int     `json:"required_approvals,omitempty"`
	ApproverMemberIDs       *[]int64 `json:"approver_member_ids,omitempty"`
	ApprovalWindowSeconds   *int64   `json:"approval_window_seconds,omitempty"`
	ExecutionWindowSeconds  *int64   `json:"execution_window_seconds,omitempty"`
	CoolingOffSeconds       *int64   `json:"cooling_off_seconds,omitempty"`
	LivenessWindowSeconds   *int64   `json:"liveness_window_seconds,omitempty"`
	ProtectQuotaCuts        *bool    `json:"protect_quota_cuts,omitempty"`
	ProtectIslandToken      *bool    `json:"protect_island_token,omitempty"`
	ProtectPledgeWithdrawal *bool    `json:"protect_pledge_withdrawal,omitempty"`
}

// Validate checks the input against the limits, naming the field at fault. A cooling-off
// under 72 h is refused unless the configuration allows it (sandbox, development).
func (s *Service) Validate(in SettingsInput) error {
	between := func(field string, v *int64, lo, hi time.Duration) error {
		if v != nil && (*v < int64(lo/time.Second) || *v > int64(hi/time.Second)) {
			return problem.Invalid(field, "must be between %d and %d seconds", int64(lo/time.Second), int64(hi/time.Second))
		}
		return nil
	}
	if in.RequiredApprovals != nil && (*in.RequiredApprovals < 1 || *in.RequiredApprovals > MaxRequired) {
		return problem.Invalid("required_approvals", "must be between 1 and %d", MaxRequired)
	}
	if in.ApproverMemberIDs != nil && len(*in.ApproverMemberIDs) > 1000 {
		return problem.Invalid("approver_member_ids", "at most 1000 members")
	}
	if err := between("approval_window_seconds", in.ApprovalWindowSeconds, MinWindow, MaxApprovalWindow); err != nil {
		return err
	}
	if err := between("execution_window_seconds", in.ExecutionWindowSeconds, MinWindow, MaxExecutionWindow); err != nil {
		return err
	}
	if err := between("liveness_window_seconds", in.LivenessWindowSeconds, MinWindow, 365*24*time.Hour); err != nil {
		return err
	}
	if in.CoolingOffSeconds != nil {
		min := int64(MinCoolingOff / time.Second)
		if s.cfg.AllowShortCoolingOff {
			min = 0
		}
		if *in.CoolingOffSeconds < min || *in.CoolingOffSeconds > 30*24*3600 {
			if min > 0 {
				return problem.Invalid("cooling_off_seconds", "must be at least 72 hours (259200 seconds); only the sandbox or development mode may shorten it")
			}
			return problem.Invalid("cooling_off_seconds", "must be between 0 and 2592000 seconds")
		}
	}
	return nil
}

// SettingsApply changes the rules at once (audited). It is the executor of an approved
// approvals.settings_update request, and the sandbox's seeding; nothing else calls it.
func (s *Service) SettingsApply(ctx context.Context, in SettingsInput) (Settings, error) {
	if err := s.Validate(in); err != nil {
		return Settings{}, err
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		old, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		if in.ApproverMemberIDs != nil {
			ids := slices.Clone(*in.ApproverMemberIDs)
			slices.Sort(ids)
			ids = slices.Compact(ids)
			in.ApproverMemberIDs = &ids
		}
		if _, err := tx.Exec(ctx, `UPDATE approval_settings SET
			required_approvals = coalesce($1, required_approvals),
			approver_member_ids = coalesce($2, approver_member_ids),
			approval_window_seconds = coalesce($3, approval_window_seconds),
			execution_window_seconds = coalesce($4, execution_window_seconds),
			cooling_off_seconds = coalesce($5, cooling_off_seconds),
			liveness_window_seconds = coalesce($6, liveness_window_seconds),
			protect_quota_cuts = coalesce($7, protect_quota_cuts),
			protect_island_token = coalesce($8, protect_island_token),
			protect_pledge_withdrawal = coalesce($9, protect_pledge_withdrawal),
			updated_at = now()`,
			in.RequiredApprovals, in.ApproverMemberIDs, in.ApprovalWindowSeconds, in.ExecutionWindowSeconds, in.CoolingOffSeconds,
			in.LivenessWindowSeconds, in.ProtectQuotaCuts, in.ProtectIslandToken, in.ProtectPledgeWithdrawal); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "approval.settings_update", TargetType: "approval_settings", TargetID: "federation",
			Details: map[string]any{"before": settingsMap(old), "change": in}})
		return err
	})
	if err != nil {
		return Settings{}, wrap("update approval settings", err)
	}
	return s.SettingsGet(ctx)
}

func settingsMap(st Settings) map[string]any {
	return map[string]any{"required_approvals": st.RequiredApprovals, "approver_member_ids": st.ApproverMemberIDs,
		"approval_window_seconds": int64(st.ApprovalWindow / time.Second), "execution_window_seconds": int64(st.ExecutionWindow / time.Second),
		"cooling_off_seconds": int64(st.CoolingOff / time.Second), "liveness_window_seconds": int64(st.LivenessWindow / time.Second),
		"protect_quota_cuts": st.ProtectQuotaCuts, "protect_island_token": st.ProtectIslandToken,
		"protect_pledge_withdrawal": st.ProtectPledgeWithdrawal}
}

// SettingsView is the settings as the API and portal show them.
type SettingsView struct {
	Settings
	ApprovalWindowSeconds  int64 `json:"approval_window_seconds"`
	ExecutionWindowSeconds int64 `json:"execution_window_seconds"`
	CoolingOffSeconds      int64 `json:"cooling_off_seconds"`
	LivenessWindowSeconds  int64 `json:"liveness_window_seconds"`
	// Shortened is true when the cooling-off is below 72 h (sandbox / development only).
	CoolingOffShortened bool `json:"cooling_off_shortened"`
	// Catalogue lists the protected actions.
	Catalogue []Kind `json:"catalogue"`
}

// View returns st as shown to people.
func View(st Settings) SettingsView {
	return SettingsView{Settings: st, ApprovalWindowSeconds: int64(st.ApprovalWindow / time.Second),
		ExecutionWindowSeconds: int64(st.ExecutionWindow / time.Second), CoolingOffSeconds: int64(st.CoolingOff / time.Second),
		LivenessWindowSeconds: int64(st.LivenessWindow / time.Second), CoolingOffShortened: st.CoolingOffShortened(), Catalogue: Catalogue}
}
