package portal

import (
	"net/http"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/reports"
)

// The dashboard answers, per repository and vault, the four questions a member admin has
// each morning (restorable? newest snapshot age now, quota used, island health), worst
// first, every line a link. It reads a fixed number of set-based statements whatever the
// number of members, repositories or vaults: the user's members' repositories and vaults in
// one statement each, and for a federation admin the worst repositories and vaults of the
// whole federation (bounded) beside the cached glance.

// Dashboard bounds: lines per list on a member's cards, and on the federation's.
const (
	homeMemberLines     = 200
	homeFederationLines = 20
)

// homeMember is one member's cards.
type homeMember struct {
	Member       identity.MemberRef
	Repositories []reports.MorningRepository
	Vaults       []reports.MorningVault
}

// homeFederation is what a federation admin sees of every member: the glance (counts,
// cached) and the worst repositories and vaults, bounded.
type homeFederation struct {
	Glance           reports.Glance
	Repositories     []reports.MorningRepository
	MoreRepositories bool
	Vaults           []reports.MorningVault
	MoreVaults       bool
}

type homeData struct {
	Members []homeMember
	// MoreRepositories / MoreVaults: the user's members have more lines than shown.
	MoreRepositories, MoreVaults bool
	Federation                   *homeFederation
	Latest                       []reports.Stored
	Events                       []notify.EventView
}

// renderHome renders the dashboard.
func (p *Portal) renderHome(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	ctx := r.Context()
	now := time.Now().UTC()
	var data homeData
	if len(u.Members) > 0 {
		f := reports.MorningFilter{MemberIDs: u.MemberIDs(), Limit: homeMemberLines}
		repos, moreRepos, err := reports.MorningRepositories(ctx, p.pool, f)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		vaults, moreVaults, err := reports.MorningVaults(ctx, p.pool, f)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		data.MoreRepositories, data.MoreVaults = moreRepos, moreVaults
		byMember := map[int64]*homeMember{}
		for _, m := range u.Members {
			data.Members = append(data.Members, homeMember{Member: m})
		}
		for i := range data.Members {
			byMember[data.Members[i].Member.ID] = &data.Members[i]
		}
		for _, x := range repos {
			if m := byMember[x.MemberID]; m != nil {
				m.Repositories = append(m.Repositories, x)
			}
		}
		for _, x := range vaults {
			if m := byMember[x.MemberID]; m != nil {
				m.Vaults = append(m.Vaults, x)
			}
		}
	}
	if authz.ManagesFederation(u) {
		g, err := p.reports.FederationGlance(ctx)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		fed := &homeFederation{Glance: g}
		all := reports.MorningFilter{Limit: homeFederationLines}
		if fed.Repositories, fed.MoreRepositories, err = reports.MorningRepositories(ctx, p.pool, all); err != nil {
			p.fail(w, r, err)
			return
		}
		if fed.Vaults, fed.MoreVaults, err = reports.MorningVaults(ctx, p.pool, all); err != nil {
			p.fail(w, r, err)
			return
		}
		data.Federation = fed
	}
	scope := authz.ReadScope(u)
	ef := notify.EventFilter{All: scope.All, MemberIDs: scope.MemberIDs, Limit: 8, Since: now.AddDate(0, 0, -7)}
	var err error
	if data.Latest, err = p.visibleReports(r, u, 3); err != nil {
		p.fail(w, r, err)
		return
	}
	if data.Events, err = notify.EventList(ctx, p.pool, ef); err != nil {
		p.fail(w, r, err)
		return
	}
	sayEvents(p.l(r), p.viewerZone(r), data.Events)
	p.render(w, r, http.StatusOK, "home", Page{Title: p.l(r).T("portal.nav.dashboard"), Nav: "dashboard", Data: data})
}

// rankClass maps a dashboard rank (reports.Rank*) to the CSS state of its line.
func rankClass(rank int) string {
	switch {
	case rank <= reports.RankStale:
		return "bad"
	case rank <= reports.RankWarning:
		return "warn"
	case rank == reports.RankWatch:
		return "watch"
	}
	return "good"
}

// morningTable is what the dashboard's tables receive: their rows, the page (for its clock)
// and whether a column names the member (the federation's lists).
type morningTable struct {
	Page       Page
	Rows       any
	ShowMember bool
}
