package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/vaults"
)

// Error codes of the vaults API.
const (
	// CodeQuotaExceeded: the quota policy refuses the request; the message shows its arithmetic.
	CodeQuotaExceeded = "quota_exceeded"
	// CodePlacementRefused: the vault cannot go on that island (the member operates it, or
	// no island can take it).
	CodePlacementRefused = "placement_refused"
)

// vaultFor loads the vault of the path's {id} and checks act on its member; vaults of
// other members are not found.
func (a *API) vaultFor(r *http.Request, act authz.Action) (vaults.Vault, error) {
	return loadByID(r, "id", "vault", a.vaults.VaultGetByID, onMember(r, act, func(v vaults.Vault) int64 { return v.MemberID }))
}

// visibleVaults selects the vaults p may read: all of them for a federation admin,
// otherwise its members' only.
func visibleVaults(p *identity.Principal) vaults.VaultFilter {
	scope := authz.ReadScope(p)
	return vaults.VaultFilter{All: scope.All, MemberIDs: scope.MemberIDs}
}

// VaultList answers GET /v1/vaults (?member=<id or slug>, ?island_id, ?status).
func (a *API) VaultList(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	f := visibleVaults(p)
	f.Status = r.URL.Query().Get("status")
	if member, err := a.memberQuery(r); err != nil {
		return err
	} else if member != 0 {
		f.All, f.MemberIDs = false, []int64{member}
	}
	if s := r.URL.Query().Get("island_id"); s != "" {
		id, err := queryInt(s, "island_id", 1, 1<<62)
		if err != nil {
			return err
		}
		f.IslandID = id
	}
	pg, err := a.vaults.VaultPage(r.Context(), f, req)
	return replyPage(w, "vaults", pg, err)
}

type vaultCreateRequest struct {
	Member         memberRef `json:"member"`
	Name           string    `json:"name"`
	QuotaBytes     int64     `json:"quota_bytes"`
	MaxObjects     *int64    `json:"max_objects"`
	IslandID       int64     `json:"island_id"`
	OverrideReason string    `json:"override_reason"`
	IdempotencyKey string    `json:"idempotency_key"`
}

// VaultCreate answers POST /v1/vaults: 201 when provisioned, 202 when the vault is kept
// pending for the reconciler (Garage failed; status_detail says how), 200 when the
// idempotency key names a vault created before.
func (a *API) VaultCreate(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	var req vaultCreateRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	m, err := a.bodyMember(r, req.Member, authz.MemberWrite)
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.OverrideReason) != "" {
		if err := check(p, authz.FederationManage, authz.Federation); err != nil {
			return Forbidden("only a federation admin may override the placement rule")
		}
	}
	key := cmpOr(req.IdempotencyKey, r.Header.Get("Idempotency-Key"))
	v, created, err := a.vaults.Create(r.Context(), vaults.CreateInput{MemberID: m.ID, Name: req.Name, QuotaBytes: req.QuotaBytes,
		MaxObjects: req.MaxObjects, IslandID: req.IslandID, OverrideReason: req.OverrideReason, IdempotencyKey: key})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	switch {
	case !created:
		status = http.StatusOK
	case v.Status == vaults.StatusPending:
		status = http.StatusAccepted
	}
	w.Header().Set("Location", "/v1/vaults/"+strconv.FormatInt(v.ID, 10))
	WriteJSON(w, status, v)
	return nil
}

// VaultGet answers GET /v1/vaults/{id}.
func (a *API) VaultGet(w http.ResponseWriter, r *http.Request) error {
	v, err := a.vaultFor(r, authz.MemberRead)
	return reply(w, http.StatusOK, v, err)
}

type vaultUpdateRequest struct {
	QuotaBytes *int64   `json:"quota_bytes"`
	MaxObjects optInt64 `json:"max_objects"`
}

// optInt64 tells an absent field from null.
type optInt64 struct {
	Set   bool
	Value *int64
}

func (o *optInt64) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return Invalid("max_objects", "must be an integer or null")
	}
	o.Value = &v
	return nil
}

// VaultUpdate answers PATCH /v1/vaults/{id}: quota and object limit.
func (a *API) VaultUpdate(w http.ResponseWriter, r *http.Request) error {
	if done, err := a.gate(w, r, a.planQuotaCut); done { // protected when the federation says so: 202 with an approval request
		return err
	}
	v, err := a.vaultFor(r, authz.MemberWrite)
	if err != nil {
		return err
	}
	req, err := decodeVaultUpdate(r)
	if err != nil {
		return err
	}
	v, err = a.vaults.Update(r.Context(), v.ID, req.input())
	return reply(w, http.StatusOK, v, err)
}

func decodeVaultUpdate(r *http.Request) (vaultUpdateRequest, error) {
	var req vaultUpdateRequest
	if err := Decode(r, &req); err != nil {
		if ErrorOf(err) == nil {
			return req, Invalid("max_objects", "must be an integer or null")
		}
		return req, err
	}
	return req, nil
}

func (req vaultUpdateRequest) input() vaults.UpdateInput {
	return vaults.UpdateInput{QuotaBytes: req.QuotaBytes, MaxObjects: req.MaxObjects.Value, ClearMaxObjects: req.MaxObjects.Set && req.MaxObjects.Value == nil}
}

// onVault is the whole of a handler that acts on the vault of the path's {id} (vaultFor
// with act) through a domain call taking the vault's id: 404/403 as vaultFor says, else
// the call's error, else its result with status.
func onVault[R any](a *API, w http.ResponseWriter, r *http.Request, act authz.Action, status int, call func(context.Context, int64) (R, error)) error {
	v, err := a.vaultFor(r, act)
	if err != nil {
		return err
	}
	out, err := call(r.Context(), v.ID)
	return reply(w, status, out, err)
}

// VaultDelete answers DELETE /v1/vaults/{id} (?reason=): 204 when the empty vault was
// deleted at once, 202 with the vault when its deletion is scheduled (data kept until
// purge_after; POST …/restore undoes it).
func (a *API) VaultDelete(w http.ResponseWriter, r *http.Request) error {
	reason := r.URL.Query().Get("reason")
	plan := func(ctx context.Context, p *identity.Principal, v vaults.Vault) (approvals.Ask, bool, error) {
		return a.approvals.PlanVaultDelete(ctx, p, v, reason)
	}
	return gatedOn(a, w, r, a.vaultFor, authz.MemberWrite, plan, func(v vaults.Vault) error {
		v, immediate, err := a.vaults.Delete(r.Context(), v.ID, reason)
		if err != nil {
			return err
		}
		if immediate {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		WriteJSON(w, http.StatusAccepted, v)
		return nil
	})
}

// VaultRestore answers POST /v1/vaults/{id}/restore: undo a scheduled deletion.
func (a *API) VaultRestore(w http.ResponseWriter, r *http.Request) error {
	return onVault(a, w, r, authz.MemberWrite, http.StatusOK, a.vaults.Restore)
}

// VaultReconcile answers POST /v1/vaults/{id}/reconcile: compare with Garage and repair now.
func (a *API) VaultReconcile(w http.ResponseWriter, r *http.Request) error {
	return onVault(a, w, r, authz.MemberWrite, http.StatusOK, a.vaults.ReconcileVault)
}

// usageSamplesMax and usageEventsMax bound GET /v1/vaults/{id}/usage: the newest samples of
// the window, the newest events.
const (
	usageSamplesMax = 2000
	usageEventsMax  = 100
)

// VaultUsage answers GET /v1/vaults/{id}/usage (?days=30): history and events, with how many
// of each there are.
func (a *API) VaultUsage(w http.ResponseWriter, r *http.Request) error {
	v, err := a.vaultFor(r, authz.MemberRead)
	days, err := withQueryInt(r, err, "days", 30, 1, 400)
	if err != nil {
		return err
	}
	since := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
	hist, err := a.vaults.UsageHistory(r.Context(), v.ID, since, usageSamplesMax)
	if err != nil {
		return err
	}
	evs, err := a.vaults.Events(r.Context(), v.ID, usageEventsMax)
	if err != nil {
		return err
	}
	// The window is bounded: sample_count and event_count say how many there are, so an
	// answer holding fewer is never taken for the whole.
	nSamples, nEvents, err := a.vaults.UsageCounts(r.Context(), v.ID, since)
	return reply(w, http.StatusOK, map[string]any{"vault_id": v.ID, "quota_bytes": v.QuotaBytes, "samples": nonNil(hist),
		"sample_count": nSamples, "events": nonNil(evs), "event_count": nEvents}, err)
}
