package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
)

type peopleData struct {
	Members   memberPicker   // the members the user may look at
	Member    islands.Member // the member shown (zero when the user belongs to none)
	CanManage bool           // the user may add, change and remove its people
	People    []identity.Person
	Added     *addedPerson // a user just created, with the password shown this once
	Form      personForm
}

type addedPerson struct {
	Email, Role, Password string
}

type personForm struct {
	Email, DisplayName, Role string
}

// peopleMembers are the members whose people u may look at: all of them for a federation
// admin (who onboards a member's first admin; a typed slug field when they are many), else
// u's own.
func (p *Portal) peopleMembers(r *http.Request, u *identity.Principal) (memberPicker, error) {
	if !authz.ManagesFederation(u) {
		return memberPicker{Options: u.Members}, nil
	}
	return p.everyMemberPicker(r.Context())
}

// peopleMember loads the member a form or query names and asks the authorizer; another
// member's people are not found (404), a viewer's change is refused (403).
func (p *Portal) peopleMember(r *http.Request, slug string, act authz.Action) (islands.Member, int) {
	m, err := islands.MemberGetBySlug(r.Context(), p.pool, slug)
	if err != nil {
		return m, http.StatusNotFound
	}
	switch err := authz.Check(user(r), act, authz.Member(m.ID)); {
	case errors.Is(err, authz.ErrDenied):
		return m, http.StatusForbidden
	case err != nil:
		return m, http.StatusNotFound
	}
	return m, http.StatusOK
}

// People lists a member's people with their roles; admins also get the forms to add a
// person, change a role and remove someone.
func (p *Portal) People(w http.ResponseWriter, r *http.Request) {
	slug := r.URL.Query().Get("member")
	if slug == "" {
		ms, err := p.peopleMembers(r, user(r))
		if err != nil {
			p.fail(w, r, err)
			return
		}
		if len(ms.Options) > 0 {
			slug = ms.Options[0].Slug
		}
	}
	var added *addedPerson
	if a, ok := takeOnce[addedPerson](p, r, "person/"+slug); ok {
		added = &a
		w.Header().Set("Cache-Control", "no-store")
	}
	p.renderPeople(w, r, http.StatusOK, Page{Flash: peopleFlashes.in(r, p.l(r))}, slug, added, personForm{Role: string(identity.RoleViewer)})
}

func (p *Portal) renderPeople(w http.ResponseWriter, r *http.Request, status int, page Page, slug string, added *addedPerson, form personForm) {
	u := user(r)
	ms, err := p.peopleMembers(r, u)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := peopleData{Members: ms, Added: added, Form: form}
	if slug != "" {
		m, code := p.peopleMember(r, slug, authz.MemberRead)
		if code != http.StatusOK {
			p.NotFound(w, r)
			return
		}
		pp, err := p.identity.PersonPage(r.Context(), m.ID, pageRequest(r))
		if err != nil {
			p.fail(w, r, err)
			return
		}
		d.People, page.Next = pp.Items, nextHref(r, pp.Next)
		d.Member, d.CanManage = m, authz.Check(u, authz.MemberWrite, authz.Member(m.ID)) == nil
	}
	page.Title, page.Nav, page.Data = p.l(r).T("portal.nav.people"), "people", d
	p.render(w, r, status, "people", page)
}

// peopleRefused renders the people page with a refusal: 404 for another member's people,
// 403 for a role that may not change them.
func (p *Portal) peopleRefused(w http.ResponseWriter, r *http.Request, code int, slug string) {
	if code == http.StatusForbidden {
		p.renderPeople(w, r, code, Page{Error: p.l(r).T("portal.people.go.not_admin")}, slug, nil,
			personForm{Role: string(identity.RoleViewer)})
		return
	}
	p.NotFound(w, r)
}

// PersonAdd handles the add form. A created user's password is shown once, on the
// resulting page; adding an existing user redirects back to the list.
func (p *Portal) PersonAdd(w http.ResponseWriter, r *http.Request) {
	slug := r.PostFormValue("member")
	form := personForm{Email: strings.TrimSpace(r.PostFormValue("email")), DisplayName: r.PostFormValue("display_name"),
		Role: cmpOrRole(r.PostFormValue("role"))}
	m, code := p.peopleMember(r, slug, authz.MemberWrite)
	if code != http.StatusOK {
		p.peopleRefused(w, r, code, slug)
		return
	}
	if form.Email == "" {
		p.renderPeople(w, r, http.StatusBadRequest, Page{Error: p.l(r).T("portal.people.go.email_required")}, slug, nil, form)
		return
	}
	res, err := p.identity.PersonAdd(r.Context(), m.ID, identity.NewPerson{Email: form.Email, DisplayName: form.DisplayName,
		Role: identity.Role(form.Role)})
	if err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) { p.renderPeople(w, r, status, Page{Error: msg}, slug, nil, form) })
		return
	}
	if res.InitialPassword != "" {
		// The initial password is shown once, on the page the redirect leads to (once.go).
		p.keepOnce(r, "person/"+slug, addedPerson{Email: res.Email, Role: string(res.Role), Password: res.InitialPassword})
		http.Redirect(w, r, "/people?"+url.Values{"member": {slug}}.Encode(), http.StatusSeeOther)
		return
	}
	done := "added"
	if res.WasMember {
		done = "role"
	}
	http.Redirect(w, r, peopleURL(slug, done), http.StatusSeeOther)
}

// personTarget is the member a change-person form names (see peopleMember), its slug and
// the {user_id} of the path; ok is false when an answer (403 or 404) was written.
func (p *Portal) personTarget(w http.ResponseWriter, r *http.Request) (islands.Member, string, int64, bool) {
	slug := r.PostFormValue("member")
	m, code := p.peopleMember(r, slug, authz.MemberWrite)
	if code != http.StatusOK {
		p.peopleRefused(w, r, code, slug)
		return m, slug, 0, false
	}
	uid, err := strconv.ParseInt(chi.URLParam(r, "user_id"), 10, 64)
	if err != nil {
		p.NotFound(w, r)
		return m, slug, 0, false
	}
	return m, slug, uid, true
}

// PersonRole handles a person's change-role form.
func (p *Portal) PersonRole(w http.ResponseWriter, r *http.Request) {
	m, slug, uid, ok := p.personTarget(w, r)
	if !ok {
		return
	}
	_, err := p.identity.PersonRoleSet(r.Context(), m.ID, uid, identity.Role(r.PostFormValue("role")))
	if err != nil {
		p.personChangeFailed(w, r, err, slug)
		return
	}
	http.Redirect(w, r, peopleURL(slug, "role"), http.StatusSeeOther)
}

// PersonRemove handles a person's remove button.
func (p *Portal) PersonRemove(w http.ResponseWriter, r *http.Request) {
	m, slug, uid, ok := p.personTarget(w, r)
	if !ok {
		return
	}
	if !p.confirmed(w, r, confirmAsk{Kind: "person-remove", Name: p.l(r).T("portal.people.go.this_person"), Back: "/people?member=" + url.QueryEscape(slug)}) {
		return
	}
	if err := p.identity.PersonRemove(r.Context(), m.ID, uid); err != nil {
		p.personChangeFailed(w, r, err, slug)
		return
	}
	if u := user(r); uid == u.UserID && !authz.ManagesFederation(u) {
		http.Redirect(w, r, "/people?done=left", http.StatusSeeOther) // they no longer see this member
		return
	}
	http.Redirect(w, r, peopleURL(slug, "removed"), http.StatusSeeOther)
}

func (p *Portal) personChangeFailed(w http.ResponseWriter, r *http.Request, err error, slug string) {
	p.refuse(w, r, err, nil, func(status int, msg string) {
		p.renderPeople(w, r, status, Page{Error: msg}, slug, nil, personForm{Role: string(identity.RoleViewer)})
	})
}

func peopleURL(slug, done string) string {
	return "/people?" + url.Values{"member": {slug}, "done": {done}}.Encode()
}

// peopleFlashes are the messages shown after a form, by the done= of the redirect.
var peopleFlashes = flashes{
	"added":   "portal.people.flash.added",
	"role":    "portal.people.flash.role",
	"removed": "portal.people.flash.removed",
	"left":    "portal.people.flash.left",
}

func cmpOrRole(s string) string {
	if s == "" {
		return string(identity.RoleViewer)
	}
	return s
}
