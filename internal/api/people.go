package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
)

// peopleMember loads the member of the path and asks the authorizer: another member's
// people answer 404, a viewer trying a change 403.
func (a *API) peopleMember(r *http.Request, act authz.Action) (islands.Member, error) {
	return a.memberFromPath(r, "id", onMember(r, act, func(m islands.Member) int64 { return m.ID }))
}

// personTarget is the member of the path (see peopleMember) and the {user_id} of the path.
func (a *API) personTarget(r *http.Request, act authz.Action) (islands.Member, int64, error) {
	m, err := a.peopleMember(r, act)
	if err != nil {
		return m, 0, err
	}
	uid, err := personFromPath(r)
	return m, uid, err
}

// personFromPath reads the {user_id} of the path.
func personFromPath(r *http.Request) (int64, error) {
	id, err := pathID(r, chi.URLParam(r, "user_id"))
	if err != nil {
		return 0, identity.ErrNoPerson
	}
	return id, nil
}

// PersonList answers GET /v1/members/{id}/people (the member's users).
func (a *API) PersonList(w http.ResponseWriter, r *http.Request) error {
	m, err := a.peopleMember(r, authz.MemberRead)
	if err != nil {
		return err
	}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := a.identity.PersonPage(r.Context(), m.ID, req)
	return replyPage(w, "people", pg, err)
}

type personAddRequest struct {
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
}

type personAdded struct {
	identity.Person
	// InitialPassword is present only when the user was created: shown this once.
	InitialPassword string `json:"initial_password,omitempty"`
}

// PersonAdd answers POST /v1/members/{id}/people: 201 when the person is added (with
// initial_password when a user was created), 200 when they already belonged to the member
// and their role was replaced.
func (a *API) PersonAdd(w http.ResponseWriter, r *http.Request) error {
	m, err := a.peopleMember(r, authz.MemberWrite)
	req, err := withBody[personAddRequest](r, err)
	if err != nil {
		return err
	}
	if req.Email == "" {
		return Invalid("email", "is required")
	}
	role := identity.Role(cmpOr(req.Role, string(identity.RoleViewer)))
	res, err := a.identity.PersonAdd(r.Context(), m.ID, identity.NewPerson{Email: req.Email, DisplayName: req.DisplayName, Role: role})
	if err != nil {
		return conflictOn("role", err)
	}
	status := http.StatusCreated
	if res.WasMember {
		status = http.StatusOK
	}
	WriteJSON(w, status, personAdded{Person: res.Person, InitialPassword: res.InitialPassword})
	return nil
}

// PersonGet answers GET /v1/members/{id}/people/{user_id}.
func (a *API) PersonGet(w http.ResponseWriter, r *http.Request) error {
	m, uid, err := a.personTarget(r, authz.MemberRead)
	if err != nil {
		return err
	}
	pr, err := a.identity.PersonByID(r.Context(), m.ID, uid)
	return reply(w, http.StatusOK, pr, err)
}

// PersonUpdate answers PATCH /v1/members/{id}/people/{user_id}: change the person's role.
func (a *API) PersonUpdate(w http.ResponseWriter, r *http.Request) error {
	m, uid, err := a.personTarget(r, authz.MemberWrite)
	if err != nil {
		return err
	}
	var req struct {
		Role string `json:"role"`
	}
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.Role == "" {
		return Invalid("role", "is required (admin or viewer)")
	}
	pr, err := a.identity.PersonRoleSet(r.Context(), m.ID, uid, identity.Role(req.Role))
	return reply(w, http.StatusOK, pr, conflictOn("role", err))
}

// PersonRemove answers DELETE /v1/members/{id}/people/{user_id}: the person leaves the
// member; their API tokens for it are revoked.
func (a *API) PersonRemove(w http.ResponseWriter, r *http.Request) error {
	m, uid, err := a.personTarget(r, authz.MemberWrite)
	if err != nil {
		return err
	}
	return noContent(w, a.identity.PersonRemove(r.Context(), m.ID, uid))
}
