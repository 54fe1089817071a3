package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/problem"
)

// buildApprovals builds multi-party approval (docs/governance.md) and registers, for each
// protected action, the executor that performs it once approved: the owning domain's own
// function, called with the requester's authority.
func (a *App) buildApprovals() {
	a.Approvals = approvals.New(a.Pool, a.Log, approvals.Config{AllowShortCoolingOff: a.Cfg.DevShortCoolingOff})
	a.Approvals.UseLookups(approvals.Lookups{Vaults: a.Vaults, People: a.Identity, Protection: a.Protection, Islands: a.Islands})
	id := func(f func(ctx context.Context, id int64) error, param string) func(context.Context, approvals.Request) error {
		return func(ctx context.Context, r approvals.Request) error {
			n, err := r.ParamInt(param)
			if err != nil {
				return err
			}
			return f(ctx, n)
		}
	}
	a.Approvals.Handle(approvals.ActionVaultDelete, approvals.Executor{
		Execute: func(ctx context.Context, r approvals.Request) error {
			n, err := r.ParamInt("vault_id")
			if err != nil {
				return err
			}
			reason := r.ParamString("reason")
			if reason == "" {
				reason = fmt.Sprintf("approval request #%d", r.ID)
			}
			_, _, err = a.Vaults.Delete(ctx, n, reason)
			return err
		},
		// Cooling-off: the vault is frozen (member keys read-only), its data kept.
		Hold: func(ctx context.Context, r approvals.Request) error {
			n, err := r.ParamInt("vault_id")
			if err != nil {
				return err
			}
			_, err = a.Protection.Freeze(ctx, n, fmt.Sprintf("approval request #%d: cooling-off before the vault's deletion", r.ID))
			var ue *problem.UnreachableError
			if errors.As(err, &ue) {
				return fmt.Errorf("frozen in the database; the island did not answer yet (the reconciler retries): %w", err)
			}
			return err
		},
		Release: func(ctx context.Context, r approvals.Request) error {
			n, err := r.ParamInt("vault_id")
			if err != nil {
				return err
			}
			_, err = a.Protection.RequestUnfreeze(ctx, n)
			return err
		},
	})
	a.Approvals.Handle(approvals.ActionMemberDelete, approvals.Executor{Execute: id(a.Islands.MemberDelete, "member_id")})
	a.Approvals.Handle(approvals.ActionIslandDelete, approvals.Executor{Execute: id(a.Islands.IslandDelete, "island_id")})
	a.Approvals.Handle(approvals.ActionOperatorRemove, approvals.Executor{Execute: func(ctx context.Context, r approvals.Request) error {
		isl, err := r.ParamInt("island_id")
		if err != nil {
			return err
		}
		m, err := r.ParamInt("member_id")
		if err != nil {
			return err
		}
		return a.Islands.OperatorRemove(ctx, isl, m)
	}})
	a.Approvals.Handle(approvals.ActionRepositoryDelete, approvals.Executor{Execute: id(a.Verify.RepositoryDelete, "repository_id")})
	a.Approvals.Handle(approvals.ActionRepositoryPasswordRemove, approvals.Executor{Execute: func(ctx context.Context, r approvals.Request) error {
		n, err := r.ParamInt("repository_id")
		if err != nil {
			return err
		}
		_, err = a.Verify.PasswordRemove(ctx, n)
		return err
	}})
	a.Approvals.Handle(approvals.ActionProtectionSettings, approvals.Executor{Execute: func(ctx context.Context, r approvals.Request) error {
		var c approvals.ProtectionChange
		if err := r.ParamDecode("change", &c); err != nil {
			return err
		}
		_, err := a.Protection.SettingsUpdate(ctx, c.Input())
		return err
	}})
	a.Approvals.Handle(approvals.ActionApprovalSettings, approvals.Executor{Execute: func(ctx context.Context, r approvals.Request) error {
		var in approvals.SettingsInput
		if err := r.ParamDecode("change", &in); err != nil {
			return err
		}
		_, err := a.Approvals.SettingsApply(ctx, in)
		return err
	}})
	a.Approvals.Handle(approvals.ActionPledgeWithdraw, approvals.Executor{Execute: func(ctx context.Context, r approvals.Request) error {
		n, err := r.ParamInt("pledge_id")
		if err != nil {
			return err
		}
		_, err = a.Islands.PledgeWithdraw(ctx, n)
		return err
	}})
	a.Approvals.Handle(approvals.ActionQuotaCut, approvals.Executor{Execute: func(ctx context.Context, r approvals.Request) error {
		n, err := r.ParamInt("vault_id")
		if err != nil {
			return err
		}
		var c approvals.QuotaChange
		if err := r.ParamDecode("change", &c); err != nil {
			return err
		}
		_, err = a.Vaults.Update(ctx, n, c.Input())
		return err
	}})
	a.Approvals.Handle(approvals.ActionIslandToken, approvals.Executor{Execute: func(ctx context.Context, r approvals.Request) error {
		n, err := r.ParamInt("island_id")
		if err != nil {
			return err
		}
		var c approvals.IslandChange
		if err := r.ParamDecode("change", &c); err != nil {
			return err
		}
		tok, err := a.Islands.OpenPendingToken(n, c.AdminTokenSealed)
		if err != nil {
			return err
		}
		_, err = a.Islands.IslandUpdate(ctx, n, islands.IslandInput{Name: c.Name, AdminEndpoint: c.AdminEndpoint, AdminToken: &tok,
			S3Endpoint: c.S3Endpoint, S3Region: c.S3Region, ReplicationFactor: c.ReplicationFactor})
		return err
	}})
}
