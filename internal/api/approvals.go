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

// peekBody decodes a copy of the request body with decode and leaves the body for the
// handler, which decodes it again: a plan judges what the handler will act on.
func peekBody[T any](r *http.Request, decode func(*http.Request) (T, error)) (T, error) {
	raw, err := bodyCopy(r)
	if err != nil {
		var zero T
		return zero, err
	}
	probe := r.Clone(r.Context())
	probe.Body = io.NopCloser(bytes.NewReader(raw))
	return decode(probe)
}

// decodeAs is Decode into a new T, as a decode function for peekBody.
func decodeAs[T any](r *http.Request) (T, error) { return withBody[T](r, nil) }

// gatedOn is a protected action on one object: load finds and authorizes it for act (the
// handler's own load step), plan asks the approvals planner whether the action is
// protected in its case (gate: then 202 with an approval request, and nothing is done);
// otherwise the object is loaded again and do acts on it.
func gatedOn[T any](a *API, w http.ResponseWriter, r *http.Request, load func(*http.Request, authz.Action) (T, error), act authz.Action,
	plan func(context.Context, *identity.Principal, T) (approvals.Ask, bool, error), do func(T) error) error {
	planOn := func(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
		v, err := load(r, act)
		if err != nil {
			return approvals.Ask{}, false, err
		}
		return plan(r.Context(), p, v)
	}
	if done, err := a.gate(w, r, planOn); done { // protected action: 202 with an approval request
		return err
	}
	v, err := load(r, act)
	if err != nil {
		return err
	}
	return do(v)
}

// Plans of the gated API handlers that read more than the object (see gatedOn for the others).

func (a *API) planOperatorRemove(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	i, mid, err := a.operatorTarget(r)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanOperatorRemove(r.Context(), p, i, mid, "#"+strconv.FormatInt(mid, 10))
}

// planRepositoryModeChange: leaving full mode erases the password, so it is planned as the
// password removal it implies; other mode changes are not protected.
func (a *API) planRepositoryModeChange(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	if err != nil || repo.Mode != "full" {
		return approvals.Ask{}, false, err
	}
	req, err := peekBody(r, decodeAs[struct {
		Mode string `json:"mode"`
	}])
	if err != nil || req.Mode == "full" {
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
	req, err := peekBody(r, decodeVaultUpdate)
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
	req, err := peekBody(r, decodeAs[islandRequest])
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanIslandToken(r.Context(), p, i, req.input())
}

func (a *API) planProtectionSettings(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	if err := check(p, authz.FederationManage, authz.Federation); err != nil {
		return approvals.Ask{}, false, err
	}
	c, err := peekBody(r, decodeAs[approvals.ProtectionChange])
	if err != nil {
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

// ApprovalList answers GET /v1/approvals (?status=open|closed|all, default all; ?mine=to_approve):
// the requests the caller may see, newest first, paged in SQL.
func (a *API) ApprovalList(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	req, err := pageParams(r)
	if err != nil {
		return err
	}
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
	switch m := r.URL.Query().Get("mine"); m {
	case "":
	case "to_approve":
		f.Mine = approvals.MineToApprove
	default:
		return Invalid("mine", "must be to_approve")
	}
	pg, err := a.approvals.RequestPage(r.Context(), p, f, req)
	return replyPage(w, "requests", pg, err)
}

// ApprovalGet answers GET /v1/approvals/{id}: the request with its votes.
func (a *API) ApprovalGet(w http.ResponseWriter, r *http.Request) error {
	req, err := a.requestFor(r)
	return reply(w, http.StatusOK, req, err)
}

type voteRequest struct {
	Comment string    `json:"comment"`
	Member  memberRef `json:"member"` // id or slug: the organisation the vote is for
}

func (a *API) vote(w http.ResponseWriter, r *http.Request, approve bool) error {
	req, err := a.requestFor(r)
	in, err := withOptionalBody[voteRequest](r, err)
	if err != nil {
		return err
	}
	var memberID int64
	if in.Member != "" {
		m, err := a.memberByRef(r, "member", in.Member)
		if err != nil {
			return err
		}
		memberID = m.ID
	}
	out, err := a.approvals.RequestVote(r.Context(), principal(r), req.ID, approvals.VoteInput{Approve: approve, Comment: in.Comment, MemberID: memberID})
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
