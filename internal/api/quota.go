package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/vaults"
)

// QuotaExplain answers GET /v1/quota?member=<id or slug>: the policy's arithmetic for the
// member on every island ("why is my quota X").
func (a *API) QuotaExplain(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	ref := memberRef(r.URL.Query().Get("member"))
	if ref == "" {
		if len(p.Members) != 1 {
			return Invalid("member", "is required (the member's id or slug)")
		}
		ref = memberRef(p.Members[0].Slug)
	}
	m, err := a.memberRefFor(r, ref, authz.MemberRead)
	if err != nil {
		return err
	}
	rep, err := a.vaults.Explain(r.Context(), m.ID)
	return reply(w, http.StatusOK, rep, err)
}

type settingsBody struct {
	QuotaRatio              *float64   `json:"quota_ratio,omitempty"`
	Overcommit              *float64   `json:"overcommit,omitempty"`
	KeyGraceSeconds         *int64     `json:"key_grace_seconds,omitempty"`
	VaultDeleteGraceSeconds *int64     `json:"vault_delete_grace_seconds,omitempty"`
	UpdatedAt               *time.Time `json:"updated_at,omitempty"`
}

func settingsOut(st vaults.Settings) settingsBody {
	kg, vg := int64(st.KeyGrace/time.Second), int64(st.VaultDeleteGrace/time.Second)
	return settingsBody{QuotaRatio: &st.QuotaRatio, Overcommit: &st.Overcommit, KeyGraceSeconds: &kg,
		VaultDeleteGraceSeconds: &vg, UpdatedAt: &st.UpdatedAt}
}

// QuotaSettings answers GET /v1/quota/settings (every logged-in user: transparency).
func (a *API) QuotaSettings(w http.ResponseWriter, r *http.Request) error {
	if err := check(principal(r), authz.FederationRead, authz.Federation); err != nil {
		return err
	}
	st, err := a.vaults.SettingsGet(r.Context())
	return reply(w, http.StatusOK, settingsOut(st), err)
}

// QuotaSettingsUpdate answers PATCH /v1/quota/settings (federation admins).
func (a *API) QuotaSettingsUpdate(w http.ResponseWriter, r *http.Request) error {
	req, err := withBody[settingsBody](r, check(principal(r), authz.FederationManage, authz.Federation))
	if err != nil {
		return err
	}
	if req.UpdatedAt != nil {
		return Invalid("updated_at", "is read-only")
	}
	in := vaults.SettingsInput{QuotaRatio: req.QuotaRatio, Overcommit: req.Overcommit}
	if req.KeyGraceSeconds != nil {
		d := time.Duration(*req.KeyGraceSeconds) * time.Second
		in.KeyGrace = &d
	}
	if req.VaultDeleteGraceSeconds != nil {
		d := time.Duration(*req.VaultDeleteGraceSeconds) * time.Second
		in.VaultDeleteGrace = &d
	}
	st, err := a.vaults.SettingsUpdate(r.Context(), in)
	return reply(w, http.StatusOK, settingsOut(st), err)
}

// GrantList answers GET /v1/quota/grants (?member=<id or slug>, ?cursor=, ?limit=): a member's
// grants are visible to its members, all of them to federation admins; newest first, paged.
func (a *API) GrantList(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	member, err := a.memberQuery(r)
	if err != nil {
		return err
	}
	scope := authz.ReadScope(p)
	f := vaults.GrantFilter{All: scope.All, MemberIDs: scope.MemberIDs}
	if member != 0 {
		f.All, f.MemberIDs = false, []int64{member}
	}
	pg, err := a.vaults.GrantPage(r.Context(), f, req)
	return replyPage(w, "grants", pg, err)
}

type grantRequest struct {
	Member    memberRef  `json:"member"`
	Bytes     int64      `json:"bytes"`
	Reason    string     `json:"reason"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// GrantCreate answers POST /v1/quota/grants (federation admins; audited with the reason).
func (a *API) GrantCreate(w http.ResponseWriter, r *http.Request) error {
	req, err := withBody[grantRequest](r, check(principal(r), authz.FederationManage, authz.Federation))
	if err != nil {
		return err
	}
	m, err := a.bodyMember(r, req.Member, authz.MemberRead)
	if err != nil {
		return err
	}
	g, err := a.vaults.GrantCreate(r.Context(), vaults.GrantInput{MemberID: m.ID, Bytes: req.Bytes, Reason: req.Reason, ExpiresAt: req.ExpiresAt})
	return reply(w, http.StatusCreated, g, err)
}

// GrantRevoke answers DELETE /v1/quota/grants/{id} (federation admins).
func (a *API) GrantRevoke(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	id, err := pathID(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	g, err := a.vaults.GrantGetByID(r.Context(), id)
	if err != nil || !authz.CanSee(p, g.MemberID) {
		return NotFound("grant")
	}
	if err := check(p, authz.FederationManage, authz.Federation); err != nil {
		return err
	}
	_, err = a.vaults.GrantRevoke(r.Context(), id)
	return noContent(w, err)
}
