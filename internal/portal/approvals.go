package portal

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/identity"
)

// Multi-party approval (internal/approvals, docs/governance.md): the Approvals page lists
// the open requests, those the user may still vote on and the history; a request's page
// spells out its effect and takes votes and cancellations, each behind a ticked
// confirmation box. A gated form elsewhere creates a request and lands here.

type approvalRow struct {
	approvals.Request
	MayVote   bool
	MayCancel bool
}

type approvalsPage struct {
	Open, ToApprove, History approvalList
	Settings                 approvals.SettingsView
	Liveness                 approvals.Liveness
}

// approvalList is one of the Approvals page's lists: a page of it, and the link to the next.
type approvalList struct {
	Rows []approvalRow
	Next string
}

type approvalPage struct {
	R        approvalRow
	Settings approvals.SettingsView
}

var approvalFlashes = flashes{
	"requested": "portal.approvals.flash.requested",
	"approved":  "portal.approvals.flash.approved",
	"rejected":  "portal.approvals.flash.rejected",
	"cancelled": "portal.approvals.flash.cancelled",
	"pinged":    "portal.approvals.flash.pinged",
}

func mayCancel(p *identity.Principal, r approvals.Request) bool {
	if !r.Open() || p == nil {
		return false
	}
	if p.FederationAdmin || p.UserID == r.RequestedBy {
		return true
	}
	if r.AffectedMemberID != nil {
		role, ok := p.RoleIn(*r.AffectedMemberID)
		return ok && role == identity.RoleAdmin
	}
	return false
}

func (p *Portal) approvalRow(r *http.Request, req approvals.Request) (approvalRow, error) {
	u := user(r)
	may, err := p.approvals.MayVote(r.Context(), u, req)
	return approvalRow{Request: req, MayVote: may, MayCancel: mayCancel(u, req)}, err
}

// Approvals shows the Approvals page: the requests waiting for the user's vote, the other
// open requests and the history, each a list paged on its own (?to_approve=, ?open=,
// ?history=: cursors), read by one statement each with what the user may see and vote on
// as its conditions (approvals.RequestPage).
func (p *Portal) Approvals(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	var data approvalsPage
	for _, l := range []struct {
		list  *approvalList
		param string
		f     approvals.RequestFilter
	}{
		{&data.ToApprove, "to_approve", approvals.RequestFilter{Mine: approvals.MineToApprove}},
		{&data.Open, "open", approvals.RequestFilter{Open: true, Mine: approvals.MineOthers}},
		{&data.History, "history", approvals.RequestFilter{Closed: true}},
	} {
		pg, err := p.approvals.RequestPage(r.Context(), u, l.f, pageRequestAt(r, l.param))
		if err != nil {
			p.fail(w, r, err)
			return
		}
		l.list.Rows = make([]approvalRow, len(pg.Items))
		for i, req := range pg.Items {
			l.list.Rows[i] = approvalRow{Request: req, MayVote: l.f.Mine == approvals.MineToApprove, MayCancel: mayCancel(u, req)}
		}
		l.list.Next = nextHrefAt(r, l.param, pg.Next, strings.ReplaceAll(l.param, "_", "-"))
	}
	st, err := p.approvals.SettingsGet(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data.Settings = approvals.View(st)
	if data.Liveness, err = p.approvals.LivenessGet(r.Context()); err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "approvals", Page{Title: p.l(r).T("portal.nav.approvals"), Nav: "approvals", Flash: approvalFlashes.in(r, p.l(r)), Data: data})
}

func (p *Portal) approvalFor(w http.ResponseWriter, r *http.Request) (approvals.Request, bool) {
	return loadByID(p, w, r, "id", p.approvals.RequestGetByID, func(req approvals.Request) bool { return approvals.CanSee(user(r), req) })
}

// Approval shows one request: its effect, its votes, and the forms the user may use.
func (p *Portal) Approval(w http.ResponseWriter, r *http.Request) {
	req, ok := p.approvalFor(w, r)
	if !ok {
		return
	}
	p.renderApproval(w, r, http.StatusOK, Page{Flash: approvalFlashes.in(r, p.l(r))}, req)
}

func (p *Portal) renderApproval(w http.ResponseWriter, r *http.Request, status int, page Page, req approvals.Request) {
	row, err := p.approvalRow(r, req)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	st, err := p.approvals.SettingsGet(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	page.Title, page.Nav = p.l(r).T("portal.approvals.go.title", "ID", req.ID), "approvals"
	page.Data = approvalPage{R: row, Settings: approvals.View(st)}
	p.render(w, r, status, "approval", page)
}

func (p *Portal) approvalForm(w http.ResponseWriter, r *http.Request, done string, do func(req approvals.Request) error) {
	req, ok := p.approvalFor(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		p.renderApproval(w, r, http.StatusBadRequest, Page{Error: p.l(r).T("portal.common.tick_confirm")}, req)
		return
	}
	if err := do(req); err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) { p.renderApproval(w, r, status, Page{Error: msg}, req) })
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/approvals/%d?done=%s", req.ID, done), http.StatusSeeOther)
}

// ApprovalApprove handles the approve form.
func (p *Portal) ApprovalApprove(w http.ResponseWriter, r *http.Request) {
	p.approvalForm(w, r, "approved", func(req approvals.Request) error {
		_, err := p.approvals.RequestVote(r.Context(), user(r), req.ID, approvals.VoteInput{Approve: true, Comment: r.PostFormValue("comment")})
		return err
	})
}

// ApprovalReject handles the reject form.
func (p *Portal) ApprovalReject(w http.ResponseWriter, r *http.Request) {
	p.approvalForm(w, r, "rejected", func(req approvals.Request) error {
		_, err := p.approvals.RequestVote(r.Context(), user(r), req.ID, approvals.VoteInput{Approve: false, Comment: r.PostFormValue("comment")})
		return err
	})
}

// ApprovalCancel handles the cancel form.
func (p *Portal) ApprovalCancel(w http.ResponseWriter, r *http.Request) {
	p.approvalForm(w, r, "cancelled", func(req approvals.Request) error {
		_, err := p.approvals.RequestCancel(r.Context(), user(r), req.ID)
		return err
	})
}

// ApprovalPing records that the user can be reached as an approver.
func (p *Portal) ApprovalPing(w http.ResponseWriter, r *http.Request) {
	if err := p.approvals.PingAck(r.Context(), user(r)); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/approvals?done=pinged", http.StatusSeeOther)
}

// gate is the one call at the top of a protected form handler (the portal's twin of the
// API's): plan loads and authorizes the object as the handler would (writing the answer
// itself when it cannot, ok false) and says whether the action is protected. When it is,
// the request is created and the user lands on its page; done tells the handler to stop.
func (p *Portal) gate(w http.ResponseWriter, r *http.Request, plan func(w http.ResponseWriter, r *http.Request, u *identity.Principal) (ask approvals.Ask, protected, ok bool)) (done bool) {
	u := user(r)
	ask, protected, ok := plan(w, r, u)
	if !ok {
		return true
	}
	if !protected {
		return false
	}
	req, err := p.approvals.RequestCreate(r.Context(), u, ask)
	if err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) {
			p.render(w, r, status, "error", Page{Title: p.l(r).T("portal.approvals.go.protected"), Error: msg})
		})
		return true
	}
	http.Redirect(w, r, fmt.Sprintf("/approvals/%d?done=requested", req.ID), http.StatusSeeOther)
	return true
}

// planned adapts a domain plan's answer for gate, writing the error page on failure.
func (p *Portal) planned(w http.ResponseWriter, r *http.Request, ask approvals.Ask, protected bool, err error) (approvals.Ask, bool, bool) {
	if err != nil {
		p.fail(w, r, err)
		return ask, false, false
	}
	return ask, protected, true
}

// gatedOn is a protected form acting on one object (the portal's twin of the API's):
// load finds and authorizes it as the handler would (writing the answer itself when it
// cannot: false); plan asks the approvals planner whether the action is protected in its
// case (gate: then the user lands on the new request's page, nothing is done); otherwise
// the object is loaded again and do acts on it.
func gatedOn[T any](p *Portal, w http.ResponseWriter, r *http.Request, load func() (T, bool),
	plan func(context.Context, *identity.Principal, T) (approvals.Ask, bool, error), do func(T)) {
	planOn := func(w http.ResponseWriter, r *http.Request, u *identity.Principal) (approvals.Ask, bool, bool) {
		v, ok := load()
		if !ok {
			return approvals.Ask{}, false, false
		}
		ask, protected, err := plan(r.Context(), u, v)
		return p.planned(w, r, ask, protected, err)
	}
	if p.gate(w, r, planOn) { // protected action: an approval request instead
		return
	}
	if v, ok := load(); ok {
		do(v)
	}
}

// planRepositoryModeChange: leaving full mode erases the password, so it is planned as the
// password removal it implies; other mode changes are not protected.
func (p *Portal) planRepositoryModeChange(w http.ResponseWriter, r *http.Request, u *identity.Principal) (approvals.Ask, bool, bool) {
	repo, ok := p.repositoryChange(w, r)
	if !ok {
		return approvals.Ask{}, false, false
	}
	if repo.Mode != "full" || r.PostFormValue("mode") == "full" {
		return approvals.Ask{}, false, true
	}
	ask, protected, err := p.approvals.PlanRepositoryPasswordRemove(r.Context(), u, repo)
	return p.planned(w, r, ask, protected, err)
}
