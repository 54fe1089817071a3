package api

import (
	"net/http"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/islands"
)

// MemberList answers GET /v1/members: every member (federation transparency).
func (a *API) MemberList(w http.ResponseWriter, r *http.Request) error {
	if err := check(principal(r), authz.FederationRead, authz.Federation); err != nil {
		return err
	}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := islands.MemberPage(r.Context(), a.pool, islands.MemberFilter{Query: r.URL.Query().Get("q")}, req)
	return replyPage(w, "members", pg, err)
}

// memberFor checks act on the federation, then loads the member of the path's {id} (its
// id or its slug).
func (a *API) memberFor(r *http.Request, act authz.Action) (islands.Member, error) {
	if err := check(principal(r), act, authz.Federation); err != nil {
		return islands.Member{}, err
	}
	return a.memberFromPath(r, "id", nil)
}

// MemberGet answers GET /v1/members/{id}.
func (a *API) MemberGet(w http.ResponseWriter, r *http.Request) error {
	m, err := a.memberFor(r, authz.FederationRead)
	return reply(w, http.StatusOK, m, err)
}

type memberRequest struct {
	Slug         *string `json:"slug"`
	Name         *string `json:"name"`
	Website      *string `json:"website"`
	ContactEmail *string `json:"contact_email"`
	Description  *string `json:"description"`
}

func (m memberRequest) input() islands.MemberInput {
	return islands.MemberInput{Slug: m.Slug, Name: m.Name, Website: m.Website, ContactEmail: m.ContactEmail, Description: m.Description}
}

// MemberCreate answers POST /v1/members (federation admins).
func (a *API) MemberCreate(w http.ResponseWriter, r *http.Request) error {
	req, err := withBody[memberRequest](r, check(principal(r), authz.FederationManage, authz.Federation))
	if err != nil {
		return err
	}
	m, err := a.islands.MemberCreate(r.Context(), req.input())
	return reply(w, http.StatusCreated, m, err)
}

// MemberUpdate answers PATCH /v1/members/{id} (federation admins).
func (a *API) MemberUpdate(w http.ResponseWriter, r *http.Request) error {
	cur, err := a.memberFor(r, authz.FederationManage)
	req, err := withBody[memberRequest](r, err)
	if err != nil {
		return err
	}
	m, err := a.islands.MemberUpdate(r.Context(), cur.ID, req.input())
	return reply(w, http.StatusOK, m, err)
}

// MemberDelete answers DELETE /v1/members/{id} (federation admins): only a member with no
// history (no pledges, islands, tokens or audit entries) can be deleted.
func (a *API) MemberDelete(w http.ResponseWriter, r *http.Request) error {
	return gatedOn(a, w, r, a.memberFor, authz.FederationManage, a.approvals.PlanMemberDelete, func(cur islands.Member) error {
		return noContent(w, a.islands.MemberDelete(r.Context(), cur.ID))
	})
}
