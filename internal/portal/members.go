package portal

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/islands"
)

var slugLike = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

type memberRow struct {
	Member    islands.Member
	Operates  []string // island names
	Pledged   int64
	Pledges   int
	NotActive int
	// Edit is what the member's edit form shows: the member, or what was posted when
	// that edit was refused (EditOpen).
	Edit     memberForm
	EditOpen bool
	// Language is the member's own language setting ("" for the federation's); CanSetLanguage
	// shows its form (the member's admins, the federation's admins).
	Language       string
	CanSetLanguage bool
}

// memberForm is what the add and edit forms post (the slug only when adding).
type memberForm struct {
	Slug, Name, Website, ContactEmail, Description string
}

func memberFormOf(m islands.Member) memberForm {
	return memberForm{Slug: m.Slug, Name: m.Name, Website: m.Website, ContactEmail: m.ContactEmail, Description: m.Description}
}

func postedMemberForm(r *http.Request) memberForm {
	return memberForm{Slug: strings.TrimSpace(r.PostFormValue("slug")), Name: r.PostFormValue("name"),
		Website: r.PostFormValue("website"), ContactEmail: r.PostFormValue("contact_email"),
		Description: r.PostFormValue("description")}
}

// input is the domain input of the add form.
func (f memberForm) input() islands.MemberInput {
	return islands.MemberInput{Slug: &f.Slug, Name: &f.Name, Website: &f.Website, ContactEmail: &f.ContactEmail,
		Description: &f.Description}
}

type membersData struct {
	Members []memberRow
	// CanManage shows the add, edit and delete forms (federation admins).
	CanManage bool
	// Form is the add form; AddOpen keeps it unfolded after a refused add.
	Form    memberForm
	AddOpen bool
	// Query is the search (?q=, a substring of the slug or the name), "" for every member.
	Query string
	// FederationLanguage is the federation's default language, for the language forms.
	FederationLanguage i18n.Lang
}

// membersView says how the Members page is shown beyond its data: a refused add or edit.
type membersView struct {
	add    *memberForm
	editID int64
	edit   memberForm
}

// Members lists the federation's member organisations, what they operate and pledge; a
// federation admin also gets the forms to add, edit and delete members.
func (p *Portal) Members(w http.ResponseWriter, r *http.Request) {
	l := p.l(r)
	who := l.T("portal.members.go.the_member")
	if name := r.URL.Query().Get("member"); slugLike.MatchString(name) {
		who = l.T("portal.members.go.member_named", "Name", name)
	}
	p.renderMembers(w, r, http.StatusOK, Page{Flash: memberFlashes.in(r, l, "Who", who)}, membersView{})
}

// memberFlashes are the messages shown after a form, by the done= of the redirect.
var memberFlashes = flashes{
	"added":     "portal.members.flash.added",
	"updated":   "portal.members.flash.updated",
	"unchanged": "portal.common.unchanged",
	"deleted":   "portal.members.flash.deleted",
	"language":  "portal.members.flash.language",
}

func (p *Portal) renderMembers(w http.ResponseWriter, r *http.Request, status int, page Page, view membersView) {
	query := strings.TrimSpace(r.URL.Query().Get("q"))
	if utf8.RuneCountInString(query) > gridQueryMax {
		p.render(w, r, http.StatusBadRequest, "error", Page{Title: p.l(r).T("portal.nav.members"), Error: p.l(r).T("portal.grid.search_too_long")})
		return
	}
	mp, err := islands.MemberPage(r.Context(), p.pool, islands.MemberFilter{Query: query}, pageRequest(r))
	ms, ok := pageItems(p, w, r, &page, mp, err)
	if !ok {
		return
	}
	if ms, err = exactFirst(r, p, query, ms); err != nil {
		p.fail(w, r, err)
		return
	}
	ids := idsOf(ms, func(m islands.Member) int64 { return m.ID })
	// What the page's members operate and pledge, for these members only (one statement).
	stats, err := islands.MemberStats(r.Context(), p.pool, ids)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data := membersData{CanManage: authz.Check(user(r), authz.FederationManage, authz.Federation) == nil, Query: query}
	if view.add != nil {
		data.Form, data.AddOpen = *view.add, true
	}
	for _, m := range ms {
		st := stats[m.ID]
		row := memberRow{Member: m, Edit: memberFormOf(m), Operates: st.Operates, Pledged: st.Pledged, Pledges: st.Pledges,
			NotActive: st.NotActive, CanSetLanguage: authz.Check(user(r), authz.MemberWrite, authz.Member(m.ID)) == nil}
		switch {
		case m.ID == view.editID:
			row.Edit, row.EditOpen = view.edit, true
		case data.CanManage && r.Method == http.MethodGet && r.URL.Query().Get("edit") == strconv.FormatInt(m.ID, 10):
			row.EditOpen = true // its Edit link: the forms of this member only
		}
		data.Members = append(data.Members, row)
	}
	if slices.ContainsFunc(data.Members, func(m memberRow) bool { return m.CanSetLanguage }) {
		// The language forms: the members' settings and the federation's (two statements,
		// only for someone who may change one).
		langs, err := islands.MemberLanguages(r.Context(), p.pool, ids)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		for i := range data.Members {
			data.Members[i].Language = langs[data.Members[i].Member.ID]
		}
		fed, err := p.identity.FederationLanguage(r.Context())
		if err != nil {
			p.fail(w, r, err)
			return
		}
		l, _ := i18n.Parse(fed)
		data.FederationLanguage = cmpLang(l)
	}
	page.Title, page.Nav, page.Data = p.l(r).T("portal.nav.members"), "members", data
	p.render(w, r, status, "members", page)
}

// exactFirst puts the member whose slug is the search first on the first page (and leaves
// it out of the others): the dashboard links to /members?q=<slug>#member-<slug>, and a
// slug can be inside many others ("m1" in "m10", "m11"…), beyond the first page.
func exactFirst(r *http.Request, p *Portal, query string, ms []islands.Member) ([]islands.Member, error) {
	if !slugLike.MatchString(query) {
		return ms, nil
	}
	m, err := islands.MemberGetBySlug(r.Context(), p.pool, query)
	if errors.Is(err, islands.ErrNotFound) {
		return ms, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]islands.Member, 0, len(ms)+1)
	if r.URL.Query().Get("cursor") == "" {
		out = append(out, m)
	}
	for _, x := range ms {
		if x.ID != m.ID {
			out = append(out, x)
		}
	}
	return out, nil
}

// federationAdmin answers 403 and returns false unless the user is a federation admin;
// what is the catalog key of the refusal (portal.fedadmin.…).
// Every form that changes members or islands asks it first, before looking anything up.
func (p *Portal) federationAdmin(w http.ResponseWriter, r *http.Request, what string) bool {
	if authz.Check(user(r), authz.FederationManage, authz.Federation) == nil {
		return true
	}
	p.render(w, r, http.StatusForbidden, "error", Page{Title: p.l(r).T("portal.common.not_allowed"),
		Error: p.l(r).T(what)})
	return false
}

// MemberCreate handles the add-a-member form (federation admins).
func (p *Portal) MemberCreate(w http.ResponseWriter, r *http.Request) {
	if !p.federationAdmin(w, r, "portal.fedadmin.add_members") {
		return
	}
	form := postedMemberForm(r)
	m, err := p.islands.MemberCreate(r.Context(), form.input())
	if err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) { p.renderMembers(w, r, status, Page{Error: msg}, membersView{add: &form}) })
		return
	}
	http.Redirect(w, r, "/members?done=added&member="+m.Slug, http.StatusSeeOther)
}

// memberFromPath returns the member of the {id} path parameter for a federation admin's
// form (what says what others may not do), answering 403 or 404 (see loadByID).
func (p *Portal) memberFromPath(w http.ResponseWriter, r *http.Request, what string) (islands.Member, bool) {
	if !p.federationAdmin(w, r, what) {
		return islands.Member{}, false
	}
	return loadByID(p, w, r, "id", func(ctx context.Context, id int64) (islands.Member, error) {
		return islands.MemberGetByID(ctx, p.pool, id)
	}, nil)
}

// MemberUpdate handles a member's edit form (federation admins). The slug is not
// editable here: it names the member in zones, URLs and scripts.
func (p *Portal) MemberUpdate(w http.ResponseWriter, r *http.Request) {
	cur, ok := p.memberFromPath(w, r, "portal.fedadmin.change_members")
	if !ok {
		return
	}
	form := postedMemberForm(r)
	form.Slug = cur.Slug
	// Only what changed, so that the audit entry says what the admin did.
	changed := func(posted, current string) *string {
		if strings.TrimSpace(posted) == current {
			return nil
		}
		return &posted
	}
	in := islands.MemberInput{Name: changed(form.Name, cur.Name), Website: changed(form.Website, cur.Website),
		ContactEmail: changed(form.ContactEmail, cur.ContactEmail), Description: changed(form.Description, cur.Description)}
	if in == (islands.MemberInput{}) {
		http.Redirect(w, r, "/members?done=unchanged&member="+cur.Slug, http.StatusSeeOther)
		return
	}
	m, err := p.islands.MemberUpdate(r.Context(), cur.ID, in)
	p.memberOutcome(w, r, err, membersView{editID: cur.ID, edit: form}, cur.Slug+": ", "/members?done=updated&member="+m.Slug)
}

// MemberDelete handles a member's delete button (federation admins). The domain refuses
// a member with history (pledges, operated islands, vaults, audit entries…): its reason
// is shown.
func (p *Portal) MemberDelete(w http.ResponseWriter, r *http.Request) {
	load := func() (islands.Member, bool) { return p.memberFromPath(w, r, "portal.fedadmin.delete_members") }
	gatedOn(p, w, r, load, p.approvals.PlanMemberDelete, func(cur islands.Member) {
		if !p.confirmed(w, r, confirmAsk{Kind: "member-delete", Name: cur.Slug, Back: "/members"}) {
			return
		}
		err := p.islands.MemberDelete(r.Context(), cur.ID)
		p.memberOutcome(w, r, err, membersView{}, p.l(r).T("portal.members.go.cannot_delete", "Name", cur.Slug)+" ", "/members?done=deleted&member="+cur.Slug)
	})
}

// memberOutcome answers a member form: a refusal shown on the members page (prefix says
// what was refused), 404, a failure, or the redirect to done.
func (p *Portal) memberOutcome(w http.ResponseWriter, r *http.Request, err error, view membersView, prefix, done string) {
	if err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) { p.renderMembers(w, r, status, Page{Error: prefix + msg}, view) })
		return
	}
	switch {
	default:
		http.Redirect(w, r, done, http.StatusSeeOther)
	}
}

// MemberLanguage handles the language form of a member's line on the Members page: the
// language of the reports and notification emails sent to the member ("en", "fr", or ""
// for the federation's). The member's admins may set it for their member, the federation's
// admins for any; it is set, and audited, by the same domain function as the API's
// PUT /v1/members/{id}/language.
func (p *Portal) MemberLanguage(w http.ResponseWriter, r *http.Request) {
	m, ok := loadByID(p, w, r, "id", func(ctx context.Context, id int64) (islands.Member, error) {
		return islands.MemberGetByID(ctx, p.pool, id)
	}, nil)
	if !ok {
		return
	}
	l := p.l(r)
	switch err := authz.Check(user(r), authz.MemberWrite, authz.Member(m.ID)); {
	case errors.Is(err, authz.ErrHidden):
		p.NotFound(w, r)
		return
	case err != nil:
		p.render(w, r, http.StatusForbidden, "error", Page{Title: l.T("portal.common.not_allowed"), Error: l.T("portal.members.language.not_allowed")})
		return
	}
	if _, err := p.islands.MemberLanguageSet(r.Context(), m.ID, r.PostFormValue("language")); err != nil {
		p.refuse(w, r, err, map[string]string{"language": "portal.members.language.column"}, func(status int, msg string) {
			p.renderMembers(w, r, status, Page{Error: msg}, membersView{})
		})
		return
	}
	http.Redirect(w, r, "/members?done=language&member="+m.Slug+"#member-"+m.Slug, http.StatusSeeOther)
}
