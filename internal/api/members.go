package api

import (
	"context"
	"net/http"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/islands"
)

// page reads the after/limit pagination parameters.
func page(r *http.Request) (after int64, limit int, err error) {
	q := r.URL.Query()
	if after, err = queryInt(q.Get("after"), "after", 0, 1<<62); err != nil {
		return 0, 0, err
	}
	l, err := queryInt(q.Get("limit"), "limit", 1, 500)
	if l == 0 {
		l = 50
	}
	return after, int(l), err
}

// nextAfter is the cursor of the next page: the last id when the page is full.
func nextAfter(n, limit int, lastID int64) *int64 {
	if n < limit || n == 0 {
		return nil
	}
	return &lastID
}

type memberPage struct {
	Members   []islands.Member `json:"members"`
	NextAfter *int64           `json:"next_after"`
}

// MemberList answers GET /v1/members: every member (federation transparency).
func (a *API) MemberList(w http.ResponseWriter, r *http.Request) error {
	if err := check(principal(r), authz.FederationRead, authz.Federation); err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	ms, err := islands.MemberList(r.Context(), a.pool, islands.MemberFilter{Query: r.URL.Query().Get("q"), After: after, Limit: limit})
	if err != nil {
		return err
	}
	out := memberPage{Members: nonNil(ms)}
	if len(ms) > 0 { // (an empty page — no match, or past an exact multiple of limit — has no last id)
		out.NextAfter = nextAfter(len(ms), limit, ms[len(ms)-1].ID)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// memberFor checks act on the federation, then loads the member of the path's {id}.
func (a *API) memberFor(r *http.Request, act authz.Action) (islands.Member, error) {
	return federationObject(r, act, "member", func(ctx context.Context, id int64) (islands.Member, error) {
		return islands.MemberGetByID(ctx, a.pool, id)
	})
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
	if err := check(principal(r), authz.FederationManage, authz.Federation); err != nil {
		return err
	}
	var req memberRequest
	if err := Decode(r, &req); err != nil {
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
	cur, err := a.memberFor(r, authz.FederationManage)
	if err != nil {
		return err
	}
	return noContent(w, a.islands.MemberDelete(r.Context(), cur.ID))
}
