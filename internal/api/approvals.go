package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
)

// Multi-party approval (internal/approvals, docs/governance.md): a protected action asked
// through the API answers 202 with the approval request instead of acting; approvers
// list, read, approve, reject and cancel requests here.

// approvalRequested is the body of a gated action's 202.
type approvalRequested struct {
	ApprovalRequest approvals.Request `json:"approval_request"`
	Message         string            `json:"message"`
}

// gate is the one call at the top of a protected handler: plan loads and authorizes the
// object as the handler would, and says whether the action is protected in its case.
// When it is, gate records the approval request and answers 202 with it; done then tells
// the handler to return err at once. Otherwise the handler goes on and acts alone.
func (a *API) gate(w http.ResponseWriter, r *http.Request, plan func(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error)) (done bool, err error) {
	p := principal(r)
	ask, protected, err := plan(r, p)
	if err != nil {
		return true, err
	}
	if !protected {
		return false, nil
	}
	req, err := a.approvals.RequestCreate(r.Context(), p, ask)
	if err != nil {
		return true, err
	}
	msg := fmt.Sprintf("this is a protected action: approval request #%d was created and needs %d approvals from admins of other member organisations; nothing was changed yet",
		req.ID, req.RequiredApprovals)
	WriteJSON(w, http.StatusAccepted, approvalRequested{ApprovalRequest: req, Message: msg})
	return true, nil
}

// bodyCopy reads the request body and puts it back for the handler.
func bodyCopy(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return raw, nil
}

// Plans of the gated API handlers.

func (a *API) planVaultDelete(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	v, err := a.vaultFor(r, authz.MemberWrite)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanVaultDelete(r.Context(), p, v, r.URL.Query().Get("reason"))
}

func (a *API) planMemberDelete(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	m, err := a.memberFor(r, authz.FederationManage)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanMemberDelete(r.Context(), p, m)
}

func (a *API) planIslandDelete(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	i, err := a.islandFor(r, authz.FederationManage)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanIslandDelete(r.Context(), p, i)
}

func (a *API) planOperatorRemove(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	i, mid, err := a.operatorTarget(r)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanOperatorRemove(r.Context(), p, i, mid, "#"+strconv.FormatInt(mid, 10))
}

func (a *API) planRepositoryDelete(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanRepositoryDelete(r.Context(), p, repo)
}

func (a *API) planRepositoryPasswordRemove(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanRepositoryPasswordRemove(r.Context(), p, repo)
}

// planRepositoryModeChange: leaving full mode erases the password, so it is planned as the
// password removal it implies; other mode changes are not protected.
func (a *API) planRepositoryModeChange(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	if err != nil || repo.Mode != "full" {
		return approvals.Ask{}, false, err
	}
	raw, err := bodyCopy(r)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	var req struct {
		Mode string `json:"mode"`
	}
	probe := r.Clone(r.Context())
	probe.Body = io.NopCloser(bytes.NewReader(raw))
	if err := Decode(probe, &req); err != nil || req.Mode == "full" {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanRepositoryPasswordRemove(r.Context(), p, repo)
}

// planQuotaCut: see approvals.PlanQuotaCut; the body is read on a copy, the handler
// decodes it again.
func (a *API) planQuotaCut(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	v, err := a.vaultFor(r, authz.MemberWrite)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	raw, err := bodyCopy(r)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	probe := r.Clone(r.Context())
	probe.Body = io.NopCloser(bytes.NewReader(raw))
	req, err := decodeVaultUpdate(probe)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	in := req.input()
	return a.approvals.PlanQuotaCut(r.Context(), p, v, approvals.QuotaChange{QuotaBytes: in.QuotaBytes, MaxObjects: in.MaxObjects,
		ClearMaxObjects: in.ClearMaxObjects})
}

// planIslandToken: see approvals.PlanIslandToken; the body is read on a copy.
func (a *API) planIslandToken(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	i, err := a.islandFor(r, authz.FederationManage)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	raw, err := bodyCopy(r)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	probe := r.Clone(r.Context())
	probe.Body = io.NopCloser(bytes.NewReader(raw))
	var req islandRequest
	if err := Decode(probe, &req); err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanIslandToken(r.Context(), p, i, req.input())
}

func (a *API) planProtectionSettings(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	if err := check(p, authz.FederationManage, authz.Federation); err != nil {
		return approvals.Ask{}, false, err
	}
	raw, err := bodyCopy(r)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	var c approvals.ProtectionChange
	probe := r.Clone(r.Context())
	probe.Body = io.NopCloser(bytes.NewReader(raw))
	if err := Decode(probe, &c); err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanProtectionSettings(r.Context(), p, c)
}

// requestFor loads the approval request of the path's {id}; one p may not see is not found.
func (a *API) requestFor(r *http.Request) (approvals.Request, error) {
	return loadByID(r, "id", "approval request", a.approvals.RequestGetByID, func(req approvals.Request) error {
		if !approvals.CanSee(principal(r), req) {
			return authz.ErrHidden
		}
		return nil
	})
}

type approvalList struct {
	Requests []approvals.Request `json:"requests"`
}

// ApprovalList answers GET /v1/approvals (?status=open|closed|all, default all; ?mine=to_approve):
// the requests the caller may see, newest first (at most 200).
func (a *API) ApprovalList(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	f := approvals.RequestFilter{}
	switch s := r.URL.Query().Get("status"); s {
	case "", "all":
	case "open":
		f.Open = true
	case "closed":
		f.Closed = true
	default:
		return Invalid("status", "must be open, closed or all")
	}
	toApprove := false
	switch m := r.URL.Query().Get("mine"); m {
	case "":
	case "to_approve":
		toApprove = true
	default:
		return Invalid("mine", "must be to_approve")
	}
	all, err := a.approvals.RequestList(r.Context(), f)
	if err != nil {
		return err
	}
	out := []approvals.Request{}
	for _, req := range all {
		if !approvals.CanSee(p, req) {
			continue
		}
		if toApprove {
			may, err := a.approvals.MayVote(r.Context(), p, req)
			if err != nil {
				return err
			}
			if !may {
				continue
			}
		}
		out = append(out, req)
	}
	WriteJSON(w, http.StatusOK, approvalList{Requests: out})
	return nil
}

// ApprovalGet answers GET /v1/approvals/{id}: the request with its votes.
func (a *API) ApprovalGet(w http.ResponseWriter, r *http.Request) error {
	req, err := a.requestFor(r)
	return reply(w, http.StatusOK, req, err)
}

type voteRequest struct {
	Comment  string `json:"comment"`
	MemberID int64  `json:"member_id"`
}

func (a *API) vote(w http.ResponseWriter, r *http.Request, approve bool) error {
	req, err := a.requestFor(r)
	if err != nil {
		return err
	}
	var in voteRequest
	if r.ContentLength != 0 {
		if err := Decode(r, &in); err != nil {
			return err
		}
	}
	out, err := a.approvals.RequestVote(r.Context(), principal(r), req.ID, approvals.VoteInput{Approve: approve, Comment: in.Comment, MemberID: in.MemberID})
	return reply(w, http.StatusOK, out, err)
}

// ApprovalApprove answers POST /v1/approvals/{id}/approve (admins of other organisations).
func (a *API) ApprovalApprove(w http.ResponseWriter, r *http.Request) error {
	return a.vote(w, r, true)
}

// ApprovalReject answers POST /v1/approvals/{id}/reject: one rejection ends the request.
func (a *API) ApprovalReject(w http.ResponseWriter, r *http.Request) error {
	return a.vote(w, r, false)
}

// ApprovalCancel answers POST /v1/approvals/{id}/cancel (the requester, a federation admin
// or an admin of the affected member), also during the cooling-off.
func (a *API) ApprovalCancel(w http.ResponseWriter, r *http.Request) error {
	req, err := a.requestFor(r)
	if err != nil {
		return err
	}
	out, err := a.approvals.RequestCancel(r.Context(), principal(r), req.ID)
	return reply(w, http.StatusOK, out, err)
}

type approvalSettingsView struct {
	approvals.SettingsView
	Liveness approvals.Liveness `json:"liveness"`
}

// ApprovalSettingsGet answers GET /v1/approvals/settings: the rules, the catalogue of
// protected actions and the last liveness check (anyone signed in: federation transparency).
func (a *API) ApprovalSettingsGet(w http.ResponseWriter, r *http.Request) error {
	if err := check(principal(r), authz.FederationRead, authz.Federation); err != nil {
		return err
	}
	return a.approvalSettings(w, r.Context())
}

func (a *API) approvalSettings(w http.ResponseWriter, ctx context.Context) error {
	st, err := a.approvals.SettingsGet(ctx)
	if err != nil {
		return err
	}
	l, err := a.approvals.LivenessGet(ctx)
	return reply(w, http.StatusOK, approvalSettingsView{SettingsView: approvals.View(st), Liveness: l}, err)
}

// ApprovalSettingsUpdate answers PATCH /v1/approvals/settings (federation admins): always
// a protected action, answered 202 with the request, approved under the rules in force.
func (a *API) ApprovalSettingsUpdate(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	if err := check(p, authz.FederationManage, authz.Federation); err != nil {
		return err
	}
	var in approvals.SettingsInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	_, err := a.gate(w, r, func(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
		ask, err := a.approvals.PlanApprovalSettings(r.Context(), p, in)
		return ask, err == nil, err
	})
	return err
}

// ApprovalPingAck answers POST /v1/approvals/ping: the caller acknowledges that they can
// be reached as an approver (the liveness check counts it).
func (a *API) ApprovalPingAck(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, a.approvals.PingAck(r.Context(), principal(r)))
}
