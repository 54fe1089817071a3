package api

import (
	"context"
	"net/http"
	"time"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
)

// planPledgeWithdraw: see approvals.PlanPledgeWithdraw.
func (a *API) planPledgeWithdraw(r *http.Request, p *identity.Principal) (approvals.Ask, bool, error) {
	pl, err := a.pledgeToChange(r)
	if err != nil {
		return approvals.Ask{}, false, err
	}
	return a.approvals.PlanPledgeWithdraw(r.Context(), p, pl)
}

// PledgeList answers GET /v1/pledges: every pledge with its status (federation transparency).
func (a *API) PledgeList(w http.ResponseWriter, r *http.Request) error {
	req, q, err := listQuery(r, authz.FederationRead, authz.Federation)
	if err != nil {
		return err
	}
	var f islands.PledgeFilter
	if f.Status, err = queryOneOf(q, "status", islands.PledgePending, islands.PledgeActive, islands.PledgeShort,
		islands.PledgeDown, islands.PledgeWithdrawn); err != nil {
		return err
	}
	if ref := memberRef(q.Get("member")); ref != "" {
		m, err := a.memberByRef(r, "member", ref)
		if err != nil {
			return err
		}
		f.MemberID = m.ID
	}
	if f.IslandID, err = queryInt(q.Get("island"), "island", 1, 1<<62); err != nil {
		return err
	}
	pg, err := islands.PledgePage(r.Context(), a.pool, f, req)
	return replyPage(w, "pledges", pg, err)
}

func (a *API) pledgeFromPath(r *http.Request) (islands.Pledge, error) {
	return loadByID(r, "id", "pledge", func(ctx context.Context, id int64) (islands.Pledge, error) {
		return islands.PledgeGetByID(ctx, a.pool, id)
	}, nil)
}

// PledgeGet answers GET /v1/pledges/{id}.
func (a *API) PledgeGet(w http.ResponseWriter, r *http.Request) error {
	if err := check(principal(r), authz.FederationRead, authz.Federation); err != nil {
		return err
	}
	p, err := a.pledgeFromPath(r)
	return reply(w, http.StatusOK, p, err)
}

type pledgeCreateRequest struct {
	Member        memberRef  `json:"member"`
	IslandID      int64      `json:"island_id"`
	NodeID        string     `json:"node_id"`
	Zone          string     `json:"zone"`
	CapacityBytes int64      `json:"capacity_bytes"`
	Since         *time.Time `json:"since"`
}

// PledgeCreate answers POST /v1/pledges: an admin of the member pledges one of its nodes
// on an island the member operates.
func (a *API) PledgeCreate(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	var req pledgeCreateRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.Member == "" && len(p.Members) == 1 {
		req.Member = memberRef(p.Members[0].Slug)
	}
	m, err := a.bodyMember(r, req.Member, authz.PledgeManage)
	if err != nil {
		return err
	}
	if req.IslandID <= 0 {
		return Invalid("island_id", "is required")
	}
	pl, err := a.islands.PledgeCreate(r.Context(), islands.PledgeInput{MemberID: m.ID, IslandID: req.IslandID,
		NodeID: req.NodeID, Zone: req.Zone, CapacityBytes: req.CapacityBytes, Since: req.Since})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, pl)
	return nil
}

type pledgeUpdateRequest struct {
	CapacityBytes *int64  `json:"capacity_bytes"`
	Zone          *string `json:"zone"`
}

// pledgeToChange loads a pledge the caller may change: others' pledges are visible, so 403.
func (a *API) pledgeToChange(r *http.Request) (islands.Pledge, error) {
	pl, err := a.pledgeFromPath(r)
	if err != nil {
		return pl, err
	}
	return pl, check(principal(r), authz.PledgeManage, authz.Member(pl.MemberID))
}

// PledgeUpdate answers PATCH /v1/pledges/{id}: change the pledged capacity or zone.
func (a *API) PledgeUpdate(w http.ResponseWriter, r *http.Request) error {
	pl, err := a.pledgeToChange(r)
	req, err := withBody[pledgeUpdateRequest](r, err)
	if err != nil {
		return err
	}
	out, err := a.islands.PledgeUpdate(r.Context(), pl.ID, req.CapacityBytes, req.Zone)
	return reply(w, http.StatusOK, out, err)
}

// PledgeWithdraw answers POST /v1/pledges/{id}/withdraw.
func (a *API) PledgeWithdraw(w http.ResponseWriter, r *http.Request) error {
	if done, err := a.gate(w, r, a.planPledgeWithdraw); done { // protected when the federation says so: 202 with an approval request
		return err
	}
	pl, err := a.pledgeToChange(r)
	if err != nil {
		return err
	}
	out, err := a.islands.PledgeWithdraw(r.Context(), pl.ID)
	return reply(w, http.StatusOK, out, err)
}
