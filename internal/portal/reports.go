package portal

import (
	"github.com/chatons/archipelago/internal/i18n"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/reports"
)

type reportsData struct {
	Reports []reports.Stored
	// CanGenerate are the members the user may generate a report for; Federation says
	// whether it may generate a federation report.
	CanGenerate []identity.MemberRef
	Federation  bool
}

// visibleReports lists the reports u may read.
func (p *Portal) visibleReports(r *http.Request, u *identity.Principal, limit int) ([]reports.Stored, error) {
	scope := authz.ReadScope(u)
	f := reports.Filter{All: scope.All, MemberIDs: scope.MemberIDs, Federation: true}
	// The first page of the paged list: it walks reports_generated_idx (migration 026) and
	// stops at the limit, where a list sorted every report of the federation at each view.
	pg, err := reports.Page(r.Context(), p.pool, f, paging.Request{Limit: limit})
	return pg.Items, err
}

// Reports lists the reports the user may read and offers to generate one.
func (p *Portal) Reports(w http.ResponseWriter, r *http.Request) {
	p.renderReports(w, r, http.StatusOK, Page{Flash: reportFlash(r, p.l(r))})
}

func reportFlash(r *http.Request, l *i18n.Printer) string {
	if r.URL.Query().Get("done") == "generated" {
		return l.T("portal.reports.flash.generated")
	}
	return ""
}

func (p *Portal) renderReports(w http.ResponseWriter, r *http.Request, status int, page Page) {
	u := user(r)
	scope := authz.ReadScope(u)
	f := reports.Filter{All: scope.All, Federation: true, MemberIDs: scope.MemberIDs}
	rp, err := reports.Page(r.Context(), p.pool, f, pageRequest(r))
	list, ok := pageItems(p, w, r, &page, rp, err)
	if !ok {
		return
	}
	data := reportsData{Reports: list, Federation: authz.ManagesFederation(u)}
	for _, m := range u.Members {
		if authz.Check(u, authz.MemberWrite, authz.Member(m.ID)) == nil {
			data.CanGenerate = append(data.CanGenerate, m)
		}
	}
	page.Title, page.Nav, page.Data = p.l(r).T("portal.nav.reports"), "reports", data
	p.render(w, r, status, "reports", page)
}

// ReportGenerate handles the "generate now" form: the last 7 days, or the latest
// complete week or month.
func (p *Portal) ReportGenerate(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	who, period := r.PostFormValue("member"), r.PostFormValue("period")
	req := reports.Request{Scope: reports.ScopeFederation}
	if who != "" && who != "federation" {
		m, err := islands.MemberGetBySlug(r.Context(), p.pool, who)
		if err != nil || authz.Check(u, authz.MemberWrite, authz.Member(m.ID)) != nil {
			p.renderReports(w, r, http.StatusBadRequest, Page{Error: p.l(r).T("portal.common.choose_member")})
			return
		}
		req.Scope, req.Member = reports.ScopeMember, &reports.MemberRef{ID: m.ID, Slug: m.Slug, Name: m.Name}
	} else if !authz.ManagesFederation(u) {
		p.renderReports(w, r, http.StatusBadRequest, Page{Error: p.l(r).T("portal.reports.go.federation_only")})
		return
	}
	now := time.Now().UTC()
	switch period {
	case reports.PeriodWeekly, reports.PeriodMonthly:
		req.Period, _ = reports.LastComplete(period, now)
		req.Period.Kind = reports.PeriodCustom
	default:
		req.Period = reports.Period{Kind: reports.PeriodCustom, Start: now.AddDate(0, 0, -7), End: now}
	}
	st, err := p.reports.Generate(r.Context(), req)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/reports/"+strconv.FormatInt(st.ID, 10)+"?done=generated", http.StatusSeeOther)
}

type reportData struct {
	Stored reports.Stored
	Body   template.HTML
	Tables []reportTable
}

// reportTable is a CSV table of a report: its name in the URL, its label in the page's language.
type reportTable struct{ Name, Label string }

// reportTableLabels are the catalog keys of the CSV tables' names (reports.Tables).
var reportTableLabels = map[string]string{
	"repositories": "portal.report.table.repositories",
	"failures":     "portal.report.table.failures",
	"tests":        "portal.report.table.tests",
	"vaults":       "portal.report.table.vaults",
	"pledges":      "portal.report.table.pledges",
	"key_events":   "portal.report.table.key_events",
	"matrix":       "portal.report.table.matrix",
	"members":      "portal.report.table.members",
	"islands":      "portal.report.table.islands",
	"incidents":    "portal.report.table.incidents",
}

// reportTables are the CSV tables of a report of this scope and schema, labelled in l's
// language (a table without a label shows its name).
func reportTables(l *i18n.Printer, scope, schema string) []reportTable {
	var out []reportTable
	for _, name := range reports.TablesFor(scope, schema) {
		label := name
		if key, ok := reportTableLabels[name]; ok {
			label = l.T(key)
		}
		out = append(out, reportTable{Name: name, Label: label})
	}
	return out
}

// Report shows one report in the portal, with its downloads.
func (p *Portal) Report(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	st, doc, err := reports.ReportGetByID(r.Context(), p.pool, id)
	if !p.loaded(w, r, err, reports.ErrNotFound) {
		return
	}
	u := user(r)
	allowed := authz.Check(u, authz.FederationRead, authz.Federation) == nil
	if st.MemberID != nil {
		allowed = authz.Check(u, authz.MemberRead, authz.Member(*st.MemberID)) == nil
	}
	if !allowed {
		p.NotFound(w, r)
		return
	}
	v, err := reports.ViewOf(st, doc)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	// The report reads in the viewer's language and time zone, like the rest of the portal.
	v.Printer, v.Location = p.l(r), p.viewerZone(r)
	// A federation report's members table (10,000 lines at 10,000 members) is shown a page at
	// a time, like the portal's lists; the downloads stay whole.
	var next string
	if st.Scope == reports.ScopeFederation && v.R.Schema == reports.SchemaV2 {
		if next, err = v.PageMembers(pageRequest(r)); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	body, err := reports.BodyHTML(v)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "report", Page{Title: p.l(r).T("portal.reports.go.title", "ID", st.ID), Nav: "reports", Flash: reportFlash(r, p.l(r)),
		Next: nextHref(r, next), Data: reportData{Stored: st, Body: body, Tables: reportTables(p.l(r), st.Scope, st.Schema)}})
}
