package portal

import (
	"net/http"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/reports"
)

// homeMember is one member's line on the dashboard: its repositories' red/green status
// over the last 7 days and what needs attention, computed live like a report.
type homeMember struct {
	Member identity.MemberRef
	Report reports.Report
}

type homeData struct {
	Members    []homeMember
	Federation *reports.Glance // federation admins: the federation at a glance (cached, bounded)
	Latest     []reports.Stored
	Events     []notify.EventView
}

// renderHome renders the dashboard.
func (p *Portal) renderHome(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	now := time.Now().UTC()
	period := reports.Period{Kind: reports.PeriodCustom, Start: now.AddDate(0, 0, -7), End: now.Add(time.Second)}
	var data homeData
	scope := authz.ReadScope(u)
	ef := notify.EventFilter{All: scope.All, MemberIDs: scope.MemberIDs, Limit: 8, Since: now.AddDate(0, 0, -7)}
	for _, m := range u.Members {
		ref := &reports.MemberRef{ID: m.ID, Slug: m.Slug, Name: m.Name}
		in, err := reports.Gather(r.Context(), p.pool, reports.ScopeMember, ref, period)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		data.Members = append(data.Members, homeMember{Member: m, Report: reports.Build(in)})
	}
	if authz.ManagesFederation(u) {
		g, err := p.reports.FederationGlance(r.Context())
		if err != nil {
			p.fail(w, r, err)
			return
		}
		data.Federation = &g
	}
	var err error
	if data.Latest, err = p.visibleReports(r, u, 3); err != nil {
		p.fail(w, r, err)
		return
	}
	if data.Events, err = notify.EventList(r.Context(), p.pool, ef); err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "home", Page{Title: "Dashboard", Nav: "dashboard", Data: data})
}
