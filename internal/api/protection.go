package api

import (
	"net/http"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/protection"
)

// Protected vaults (internal/protection, docs/protection.md): a vault's protection state
// (copy, pending deletions, freeze, lifecycle tripwire), its copy runs, freeze and
// unfreeze, the member's read-only key on the copy, and the federation's settings.
//
// The domain's errors are the shared vocabulary (internal/problem), mapped by ErrorOf.

// ProtectionGet answers GET /v1/vaults/{id}/protection.
func (a *API) ProtectionGet(w http.ResponseWriter, r *http.Request) error {
	return onVault(a, w, r, authz.MemberRead, http.StatusOK, a.protection.State)
}

// ProtectionRuns answers GET /v1/vaults/{id}/protection/runs (?limit=20, at most 200).
func (a *API) ProtectionRuns(w http.ResponseWriter, r *http.Request) error {
	v, err := a.vaultFor(r, authz.MemberRead)
	limit, err := withQueryInt(r, err, "limit", 20, 1, 200)
	if err != nil {
		return err
	}
	runs, err := a.protection.Runs(r.Context(), v.ID, int(limit))
	return reply(w, http.StatusOK, map[string]any{"runs": runs}, err)
}

type freezeRequest struct {
	Reason string `json:"reason"`
}

// ProtectionFreeze answers POST /v1/vaults/{id}/protection/freeze (member admins and
// federation admins): the member keys become read-only at once.
func (a *API) ProtectionFreeze(w http.ResponseWriter, r *http.Request) error {
	v, err := a.vaultFor(r, authz.MemberWrite)
	req, err := withOptionalBody[freezeRequest](r, err)
	if err != nil {
		return err
	}
	st, err := a.protection.Freeze(r.Context(), v.ID, req.Reason)
	return reply(w, http.StatusOK, st, err)
}

// ProtectionUnfreeze answers POST /v1/vaults/{id}/protection/unfreeze: the freeze ends
// after the federation's unfreeze delay (unfreeze_after says when).
func (a *API) ProtectionUnfreeze(w http.ResponseWriter, r *http.Request) error {
	return onVault(a, w, r, authz.MemberWrite, http.StatusOK, a.protection.RequestUnfreeze)
}

// ProtectionReaderKey answers POST /v1/vaults/{id}/protection/reader-key: a read-only key
// on the vault's copy (replacing the previous one), its secret and restic snippet shown
// once.
func (a *API) ProtectionReaderKey(w http.ResponseWriter, r *http.Request) error {
	return onVault(a, w, r, authz.MemberWrite, http.StatusCreated, a.protection.ReaderKeyCreate)
}

// protectionSettingsBody is the settings as the API shows them.
type protectionSettingsBody struct {
	CopyByDefault        bool      `json:"copy_by_default"`
	CopyEverySeconds     int64     `json:"copy_every_seconds"`
	DeletionGraceSeconds int64     `json:"deletion_grace_seconds"`
	UnfreezeDelaySeconds int64     `json:"unfreeze_delay_seconds"`
	UpdatedAt            time.Time `json:"updated_at"`
}

func protectionSettingsOf(s protection.Settings) protectionSettingsBody {
	return protectionSettingsBody{CopyByDefault: s.CopyByDefault, CopyEverySeconds: int64(s.CopyEvery / time.Second),
		DeletionGraceSeconds: int64(s.DeletionGrace / time.Second), UnfreezeDelaySeconds: int64(s.UnfreezeDelay / time.Second),
		UpdatedAt: s.UpdatedAt}
}

// ProtectionSettingsGet answers GET /v1/protection/settings (everyone: federation transparency).
func (a *API) ProtectionSettingsGet(w http.ResponseWriter, r *http.Request) error {
	if err := check(principal(r), authz.FederationRead, authz.Federation); err != nil {
		return err
	}
	s, err := a.protection.SettingsGet(r.Context())
	return reply(w, http.StatusOK, protectionSettingsOf(s), err)
}

type protectionSettingsRequest struct {
	CopyByDefault        *bool  `json:"copy_by_default"`
	CopyEverySeconds     *int64 `json:"copy_every_seconds"`
	DeletionGraceSeconds *int64 `json:"deletion_grace_seconds"`
	UnfreezeDelaySeconds *int64 `json:"unfreeze_delay_seconds"`
}

func seconds(p *int64) *time.Duration {
	if p == nil {
		return nil
	}
	d := time.Duration(min(max(*p, -1), 1<<32)) * time.Second
	return &d
}

// ProtectionSettingsUpdate answers PATCH /v1/protection/settings (federation admins).
func (a *API) ProtectionSettingsUpdate(w http.ResponseWriter, r *http.Request) error {
	if done, err := a.gate(w, r, a.planProtectionSettings); done { // protected action: 202 with an approval request
		return err
	}
	req, err := withBody[protectionSettingsRequest](r, check(principal(r), authz.FederationManage, authz.Federation))
	if err != nil {
		return err
	}
	s, err := a.protection.SettingsUpdate(r.Context(), protection.SettingsInput{CopyByDefault: req.CopyByDefault,
		CopyEvery: seconds(req.CopyEverySeconds), DeletionGrace: seconds(req.DeletionGraceSeconds),
		UnfreezeDelay: seconds(req.UnfreezeDelaySeconds)})
	return reply(w, http.StatusOK, protectionSettingsOf(s), err)
}
