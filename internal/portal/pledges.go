package portal

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/problem"
)

type pledgeRow struct {
	Pledge    islands.Pledge
	State     string
	CanChange bool
}

type pledgeForm struct {
	Member, Island, NodeID, Zone, CapacityGB string
}

type pledgesData struct {
	Pledges []pledgeRow
	// AdminOf are the members the user may pledge for; Islands those they may pledge to.
	AdminOf []identity.MemberRef
	Islands islandPicker
	Form    pledgeForm
}

// Pledges shows the pledges of the user's members, with a form to pledge and withdraw.
func (p *Portal) Pledges(w http.ResponseWriter, r *http.Request) {
	p.renderPledges(w, r, http.StatusOK, Page{Flash: pledgeFlashes.in(r, p.l(r))}, pledgeForm{})
}

// pledgeFlashes are the messages shown after a form, by the done= of the redirect.
var pledgeFlashes = flashes{
	"pledged":   "portal.pledges.flash.pledged",
	"withdrawn": "portal.pledges.flash.withdrawn",
}

func (p *Portal) renderPledges(w http.ResponseWriter, r *http.Request, status int, page Page, form pledgeForm) {
	u := user(r)
	fed := authz.ManagesFederation(u) // pages through every pledge; a member sees its own
	var data pledgesData
	data.Form = form
	mine := map[int64]bool{}
	for _, m := range u.Members {
		mine[m.ID] = true
		if authz.Check(u, authz.PledgeManage, authz.Member(m.ID)) == nil {
			data.AdminOf = append(data.AdminOf, m)
		}
	}
	// A federation admin pages through every pledge; a member sees all of its own.
	var all []islands.Pledge
	if fed {
		pp, err := islands.PledgePage(r.Context(), p.pool, islands.PledgeFilter{}, pageRequest(r))
		if err != nil {
			p.fail(w, r, err)
			return
		}
		all, page.Next = pp.Items, nextHref(r, pp.Next)
	}
	for _, m := range u.Members {
		if fed {
			break
		}
		own, err := wholeList(r.Context(), func(ctx context.Context, req paging.Request) (paging.Page[islands.Pledge], error) {
			return islands.PledgePage(ctx, p.pool, islands.PledgeFilter{MemberID: m.ID}, req)
		})
		if err != nil {
			p.fail(w, r, err)
			return
		}
		all = append(all, own...)
	}
	for _, pl := range all {
		if !mine[pl.MemberID] && !fed {
			continue
		}
		data.Pledges = append(data.Pledges, pledgeRow{Pledge: pl, State: stateClass(pl.Status),
			CanChange: pl.WithdrawnAt == nil && authz.Check(u, authz.PledgeManage, authz.Member(pl.MemberID)) == nil})
	}
	if len(data.AdminOf) > 0 { // the pledge form
		var err error
		if data.Islands, err = p.everyIslandPicker(r.Context()); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	title := p.l(r).T("portal.pledges.go.my_pledges")
	if fed {
		title = p.l(r).T("portal.nav.pledges")
	}
	page.Title, page.Nav, page.Data = title, "pledges", data
	p.render(w, r, status, "pledges", page)
}

// PledgeCreate handles the pledge form.
func (p *Portal) PledgeCreate(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	form := pledgeForm{Member: r.PostFormValue("member"), Island: r.PostFormValue("island"),
		NodeID: strings.TrimSpace(r.PostFormValue("node_id")), Zone: strings.TrimSpace(r.PostFormValue("zone")),
		CapacityGB: strings.TrimSpace(r.PostFormValue("capacity_gb"))}
	bad := func(msg string) { p.renderPledges(w, r, http.StatusBadRequest, Page{Error: msg}, form) }
	m, err := islands.MemberGetBySlug(r.Context(), p.pool, form.Member)
	if err != nil || authz.Check(u, authz.PledgeManage, authz.Member(m.ID)) != nil {
		bad(p.l(r).T("portal.common.choose_member"))
		return
	}
	// The island: its id (the select), or its name (typed, when the islands are many).
	islandID, err := strconv.ParseInt(form.Island, 10, 64)
	if err != nil && strings.TrimSpace(form.Island) != "" {
		isl, err := islands.IslandGetByName(r.Context(), p.pool, strings.TrimSpace(form.Island))
		if err != nil {
			bad(p.l(r).T("portal.pledges.go.no_island", "Name", strconv.Quote(problem.Truncate(form.Island, 100))))
			return
		}
		islandID = isl.ID
	}
	gb, err := strconv.ParseFloat(form.CapacityGB, 64)
	if err != nil || gb <= 0 || math.IsInf(gb, 0) || gb > 1e9 {
		bad(p.l(r).T("portal.pledges.go.bad_capacity"))
		return
	}
	_, err = p.islands.PledgeCreate(r.Context(), islands.PledgeInput{MemberID: m.ID, IslandID: islandID, NodeID: form.NodeID,
		Zone: form.Zone, CapacityBytes: int64(gb * 1e9)})
	if err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) { p.renderPledges(w, r, status, Page{Error: msg}, form) })
		return
	}
	http.Redirect(w, r, "/pledges?done=pledged", http.StatusSeeOther)
}

// PledgeWithdraw handles the withdraw button.
func (p *Portal) PledgeWithdraw(w http.ResponseWriter, r *http.Request) {
	pl, ok := loadByID(p, w, r, "id", func(ctx context.Context, id int64) (islands.Pledge, error) {
		return islands.PledgeGetByID(ctx, p.pool, id)
	}, nil)
	if !ok {
		return
	}
	if authz.Check(user(r), authz.PledgeManage, authz.Member(pl.MemberID)) != nil {
		p.renderPledges(w, r, http.StatusForbidden, Page{Error: p.l(r).T("portal.pledges.go.not_admin", "Member", pl.MemberSlug)}, pledgeForm{})
		return
	}
	if p.gate(w, r, func(w http.ResponseWriter, r *http.Request, u *identity.Principal) (approvals.Ask, bool, bool) {
		ask, protected, err := p.approvals.PlanPledgeWithdraw(r.Context(), u, pl)
		return p.planned(w, r, ask, protected, err)
	}) { // protected when the federation says so: an approval request instead
		return
	}
	if !p.confirmed(w, r, confirmAsk{Kind: "pledge-withdraw", Name: p.l(r).T("portal.pledges.go.withdraw_name", "Size", sizer(p.l(r))(pl.CapacityBytes), "Island", pl.IslandName), Back: "/pledges"}) {
		return
	}
	if _, err := p.islands.PledgeWithdraw(r.Context(), pl.ID); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/pledges?done=withdrawn", http.StatusSeeOther)
}
