package portal

import (
	"context"
	"errors"
	"fmt"
	"github.com/chatons/archipelago/internal/i18n"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
)

// stateClass maps an island or pledge status to the CSS state badge.
func stateClass(status string) string {
	switch status {
	case islands.StatusHealthy, islands.PledgeActive:
		return "good"
	case islands.StatusDegraded, islands.PledgeShort, islands.PledgePending, islands.StatusUnknown:
		return "warn"
	case islands.PledgeWithdrawn:
		return ""
	}
	return "bad"
}

// zoneSummary is one zone of an island as last observed.
type zoneSummary struct {
	Zone     string
	Nodes    int
	Up       int
	Capacity int64
}

func zonesOf(nodes []islands.NodeObservation) []zoneSummary {
	by := map[string]*zoneSummary{}
	for _, n := range nodes {
		if !n.Storage() {
			continue
		}
		z := by[n.Zone]
		if z == nil {
			z = &zoneSummary{Zone: n.Zone}
			by[n.Zone] = z
		}
		z.Nodes++
		z.Capacity += *n.Capacity
		if n.Up {
			z.Up++
		}
	}
	out := make([]zoneSummary, 0, len(by))
	for _, k := range slices.Sorted(maps.Keys(by)) {
		out = append(out, *by[k])
	}
	return out
}

// islandRow is one island on the Islands page.
type islandRow struct {
	Island     islands.Island
	State      string
	Operators  []islands.Operator
	Pledged    int64
	InLayout   int64
	Ratio      float64 // in layout / pledged, capped at 1
	BarClass   string
	Zones      []zoneSummary
	Warnings   []string
	PledgeDown int
}

type islandsData struct {
	Islands []islandRow
	// CanManage shows the register form (federation admins); Form is what it shows and
	// FormOpen keeps it unfolded after a refused registration.
	CanManage bool
	Form      islandForm
	FormOpen  bool
}

// islandForm is what the register and edit forms post, but the admin token: it is
// write-only and never put back into a page.
type islandForm struct {
	Name, AdminEndpoint, S3Endpoint, S3Region, ReplicationFactor string
}

func islandFormOf(i islands.Island) islandForm {
	return islandForm{Name: i.Name, AdminEndpoint: i.AdminEndpoint, S3Endpoint: i.S3Endpoint, S3Region: i.S3Region,
		ReplicationFactor: strconv.Itoa(i.ReplicationFactor)}
}

func postedIslandForm(r *http.Request) islandForm {
	return islandForm{Name: strings.TrimSpace(r.PostFormValue("name")), AdminEndpoint: strings.TrimSpace(r.PostFormValue("admin_endpoint")),
		S3Endpoint: strings.TrimSpace(r.PostFormValue("s3_endpoint")), S3Region: strings.TrimSpace(r.PostFormValue("s3_region")),
		ReplicationFactor: strings.TrimSpace(r.PostFormValue("replication_factor"))}
}

// replicationFactor parses the form's replication factor ("" is nil: the default, or
// unchanged).
func (f islandForm) replicationFactor() (*int, error) {
	if f.ReplicationFactor == "" {
		return nil, nil
	}
	rf, err := strconv.Atoi(f.ReplicationFactor)
	if err != nil {
		return nil, &keyError{Key: "portal.islands.go.bad_rf"}
	}
	return &rf, nil
}

// Islands lists the federation's islands with their health and capacity; a federation
// admin also gets the form to register one.
func (p *Portal) Islands(w http.ResponseWriter, r *http.Request) {
	p.renderIslands(w, r, http.StatusOK, Page{Flash: islandsFlash(r, p.l(r))}, nil)
}

func islandsFlash(r *http.Request, l *i18n.Printer) string {
	if r.URL.Query().Get("done") == "deleted" {
		return l.T("portal.islands.flash.deleted")
	}
	return ""
}

func (p *Portal) renderIslands(w http.ResponseWriter, r *http.Request, status int, page Page, form *islandForm) {
	ip, err := islands.IslandPage(r.Context(), p.pool, islands.IslandFilter{}, pageRequest(r))
	list, ok := pageItems(p, w, r, &page, ip, err)
	if !ok {
		return
	}
	data := islandsData{CanManage: authz.Check(user(r), authz.FederationManage, authz.Federation) == nil,
		Form: islandForm{S3Region: "garage", ReplicationFactor: "3"}}
	if form != nil {
		data.Form, data.FormOpen = *form, true
	}
	details, err := islands.Details(r.Context(), p.pool, list)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	for _, isl := range list {
		d := details[isl.ID]
		row := islandRow{Island: isl, State: stateClass(isl.Status), Operators: d.Operators, Pledged: d.PledgedBytes,
			Zones: zonesOf(d.Nodes), Warnings: d.Warnings}
		if isl.LayoutCapacityBytes != nil {
			row.InLayout = *isl.LayoutCapacityBytes
		}
		row.Ratio, row.BarClass = 1, ""
		if row.Pledged > 0 {
			row.Ratio = min(1, float64(row.InLayout)/float64(row.Pledged))
		}
		if row.Ratio < 1 {
			row.BarClass = "warn"
		}
		for _, pl := range d.Pledges {
			if pl.Status == islands.PledgeDown {
				row.PledgeDown++
			}
		}
		data.Islands = append(data.Islands, row)
	}
	page.Title, page.Nav, page.Data = p.l(r).T("portal.nav.islands"), "islands", data
	p.render(w, r, status, "islands", page)
}

// nodeRow is one node on the island page.
type nodeRow struct {
	Node   islands.NodeObservation
	Member string
	Pledge *islands.Pledge
	State  string
}

type islandData struct {
	Island    islands.Island
	State     string
	Detail    islands.IslandDetail
	Nodes     []nodeRow
	Zones     []zoneSummary
	Chart     Chart
	PledgeCSS map[string]string
	// CanManage shows the edit form, the poll, operator and delete buttons (federation
	// admins). Form is the edit form, EditOpen unfolds it after a refused change;
	// Candidates is the choice of a new operator: a select of the members that do not operate
	// the island yet while the federation has at most pickerMax members, a typed slug beyond
	// (pickers.go: the page listed every member, 509 KiB at 10,000 members).
	CanManage  bool
	Form       islandForm
	EditOpen   bool
	Candidates memberPicker
}

// Island shows one island: its nodes, pledges, warnings and a chart of the last day; a
// federation admin also gets its edit form, "Poll now", its operators' add and remove
// buttons and the delete button.
func (p *Portal) Island(w http.ResponseWriter, r *http.Request) {
	isl, ok := p.islandFromPath(w, r)
	if !ok {
		return
	}
	p.renderIsland(w, r, http.StatusOK, Page{Flash: islandFlashes.in(r, p.l(r), "Status", p.l(r).T("portal.islands.status."+isl.Status))}, isl, nil)
}

// islandFlashes are the messages shown after a form, by the done= of the redirect.
var islandFlashes = flashes{
	"registered":       "portal.islands.flash.registered",
	"updated":          "portal.islands.flash.updated",
	"unchanged":        "portal.common.unchanged",
	"polled":           "portal.islands.flash.polled",
	"operator-added":   "portal.islands.flash.operator_added",
	"operator-removed": "portal.islands.flash.operator_removed",
}

// islandFromPath returns the island of the {id} path parameter, answering 404 when there
// is none.
func (p *Portal) islandFromPath(w http.ResponseWriter, r *http.Request) (islands.Island, bool) {
	return loadByID(p, w, r, "id", func(ctx context.Context, id int64) (islands.Island, error) {
		return islands.IslandGetByID(ctx, p.pool, id)
	}, nil)
}

// islandToChange is islandFromPath for a federation admin's form; what says what others
// may not do.
func (p *Portal) islandToChange(w http.ResponseWriter, r *http.Request, what string) (islands.Island, bool) {
	if !p.federationAdmin(w, r, what) {
		return islands.Island{}, false
	}
	return p.islandFromPath(w, r)
}

// renderIsland shows the island page; form is what a refused edit posted (nil: the island).
func (p *Portal) renderIsland(w http.ResponseWriter, r *http.Request, status int, page Page, isl islands.Island, form *islandForm) {
	d, err := islands.Detail(r.Context(), p.pool, isl)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := time.Now()
	obs, err := islands.ObservationList(r.Context(), p.pool, isl.ID, now.Add(-24*time.Hour), 2000)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	byNode := map[string]*islands.Pledge{}
	for i := range d.Pledges {
		if d.Pledges[i].WithdrawnAt == nil {
			byNode[d.Pledges[i].NodeID] = &d.Pledges[i]
		}
	}
	data := islandData{Island: isl, State: stateClass(isl.Status), Detail: d, Zones: zonesOf(d.Nodes),
		Chart: capacityChart(p.l(r), obs, d.PledgedBytes, now, p.viewerZone(r)), Form: islandFormOf(isl),
		CanManage: authz.Check(user(r), authz.FederationManage, authz.Federation) == nil}
	if form != nil {
		data.Form, data.EditOpen = *form, true
	}
	if data.CanManage {
		pk, err := p.everyMemberPicker(r.Context())
		if err != nil {
			p.fail(w, r, err)
			return
		}
		operates := map[int64]bool{}
		for _, o := range d.Operators {
			operates[o.MemberID] = true
		}
		data.Candidates.Typed = pk.Typed
		for _, m := range pk.Options {
			if !operates[m.ID] {
				data.Candidates.Options = append(data.Candidates.Options, m)
			}
		}
	}
	for _, n := range d.Nodes {
		row := nodeRow{Node: n, Pledge: byNode[n.ID], State: "good"}
		if !n.Up {
			row.State = "bad"
		}
		if row.Pledge != nil {
			row.Member = row.Pledge.MemberSlug
		}
		data.Nodes = append(data.Nodes, row)
	}
	page.Title, page.Nav, page.Data = isl.Name, "islands", data
	p.render(w, r, status, "island", page)
}

// IslandCreate handles the register-an-island form (federation admins). The domain checks
// that the admin API answers with the token before anything is stored; the island is
// then polled once so that its page shows its health and nodes at once.
func (p *Portal) IslandCreate(w http.ResponseWriter, r *http.Request) {
	if !p.federationAdmin(w, r, "portal.fedadmin.register_islands") {
		return
	}
	form := postedIslandForm(r)
	token := r.PostFormValue("admin_token")
	in := islands.IslandInput{Name: &form.Name, AdminEndpoint: &form.AdminEndpoint, AdminToken: &token, S3Endpoint: &form.S3Endpoint}
	if form.S3Region != "" {
		in.S3Region = &form.S3Region
	}
	rf, err := form.replicationFactor()
	var isl islands.Island
	if err == nil {
		in.ReplicationFactor = rf
		isl, err = p.islands.IslandCreate(r.Context(), in)
	}
	if err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) { p.renderIslands(w, r, status, Page{Error: msg}, &form) })
		return
	}
	if _, err := p.islands.PollIsland(r.Context(), isl.ID); err != nil {
		// Registered all the same: the poller comes back to it.
		p.log.WarnContext(r.Context(), "first poll of a new island", "island_id", isl.ID, "err", err)
	}
	http.Redirect(w, r, fmt.Sprintf("/islands/%d?done=registered", isl.ID), http.StatusSeeOther)
}

// IslandUpdate handles an island's edit form (federation admins). Only the fields that
// differ from the island are changed, so that renaming an island whose admin API is down
// does not need it; a new admin URL or token is checked against the admin API first. An
// empty token keeps the current one.
func (p *Portal) IslandUpdate(w http.ResponseWriter, r *http.Request) {
	cur, ok := p.islandToChange(w, r, "portal.fedadmin.change_islands")
	if !ok {
		return
	}
	form := postedIslandForm(r)
	var in islands.IslandInput
	changed := func(posted, current string) *string {
		if posted == current {
			return nil
		}
		return &posted
	}
	in.Name = changed(form.Name, cur.Name)
	in.AdminEndpoint = changed(form.AdminEndpoint, cur.AdminEndpoint)
	in.S3Endpoint = changed(form.S3Endpoint, cur.S3Endpoint)
	in.S3Region = changed(form.S3Region, cur.S3Region)
	if token := r.PostFormValue("admin_token"); token != "" {
		in.AdminToken = &token
	}
	rf, err := form.replicationFactor()
	if err == nil && rf != nil && *rf != cur.ReplicationFactor {
		in.ReplicationFactor = rf
	}
	if err == nil && in == (islands.IslandInput{}) {
		http.Redirect(w, r, fmt.Sprintf("/islands/%d?done=unchanged", cur.ID), http.StatusSeeOther)
		return
	}
	if err == nil && p.gate(w, r, func(w http.ResponseWriter, r *http.Request, u *identity.Principal) (approvals.Ask, bool, bool) {
		ask, protected, err := p.approvals.PlanIslandToken(r.Context(), u, cur, in)
		return p.planned(w, r, ask, protected, err)
	}) { // protected when the federation says so: an approval request instead
		return
	}
	if err == nil {
		_, err = p.islands.IslandUpdate(r.Context(), cur.ID, in)
	}
	p.islandOutcome(w, r, err, cur, &form, "", fmt.Sprintf("/islands/%d?done=updated", cur.ID))
}

// IslandPoll handles "Poll now" (federation admins). An island whose admin API fails is
// recorded unreachable, as the poller would, and the page says so with 502.
func (p *Portal) IslandPoll(w http.ResponseWriter, r *http.Request) {
	cur, ok := p.islandToChange(w, r, "portal.fedadmin.poll_islands")
	if !ok {
		return
	}
	isl, err := p.islands.PollIsland(r.Context(), cur.ID)
	if !p.loaded(w, r, err, islands.ErrNotFound) {
		return
	}
	if isl.Status == islands.StatusUnreachable {
		p.renderIsland(w, r, http.StatusBadGateway, Page{Error: p.l(r).T("portal.islands.go.poll_failed", "Problem", isl.StatusError)}, isl, nil)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/islands/%d?done=polled", isl.ID), http.StatusSeeOther)
}

// IslandDelete handles an island's delete button (federation admins); the domain refuses
// an island with live pledges or vaults, and its reason is shown.
func (p *Portal) IslandDelete(w http.ResponseWriter, r *http.Request) {
	load := func() (islands.Island, bool) { return p.islandToChange(w, r, "portal.fedadmin.delete_islands") }
	gatedOn(p, w, r, load, p.approvals.PlanIslandDelete, func(cur islands.Island) {
		if !p.confirmed(w, r, confirmAsk{Kind: "island-delete", Name: cur.Name, Back: fmt.Sprintf("/islands/%d", cur.ID)}) {
			return
		}
		err := p.islands.IslandDelete(r.Context(), cur.ID)
		p.islandOutcome(w, r, err, cur, nil, p.l(r).T("portal.islands.go.cannot_delete", "Name", cur.Name)+" ", "/islands?done=deleted")
	})
}

// OperatorAdd handles the add-an-operator form of an island (federation admins).
func (p *Portal) OperatorAdd(w http.ResponseWriter, r *http.Request) {
	cur, ok := p.islandToChange(w, r, "portal.fedadmin.change_an_island_s_operators")
	if !ok {
		return
	}
	notListed := &keyError{Key: "portal.islands.go.not_listed"}
	// The member's slug (the select's value, or typed beyond pickerMax members); its id is
	// still accepted.
	given := strings.TrimSpace(r.PostFormValue("member"))
	var memberID int64
	m, err := islands.MemberGetBySlug(r.Context(), p.pool, given)
	if err == nil {
		memberID = m.ID
	} else if errors.Is(err, islands.ErrNotFound) {
		memberID, err = strconv.ParseInt(given, 10, 64)
	}
	if err != nil {
		if errors.Is(err, islands.ErrNotFound) || errors.Is(err, strconv.ErrSyntax) || errors.Is(err, strconv.ErrRange) {
			err = notListed
		}
	} else if _, err = p.islands.OperatorAdd(r.Context(), cur.ID, memberID); err != nil {
		if fe := (*islands.FieldError)(nil); errors.As(err, &fe) && fe.Field == "member_id" {
			err = notListed
		}
	}
	p.islandOutcome(w, r, err, cur, nil, "", fmt.Sprintf("/islands/%d?done=operator-added", cur.ID))
}

// OperatorRemove handles an operator's remove button (federation admins); the domain
// refuses while the member has live pledges on the island.
func (p *Portal) OperatorRemove(w http.ResponseWriter, r *http.Request) {
	memberID, _ := strconv.ParseInt(chi.URLParam(r, "member_id"), 10, 64)
	load := func() (islands.Island, bool) {
		return p.islandToChange(w, r, "portal.fedadmin.change_an_island_s_operators")
	}
	plan := func(ctx context.Context, u *identity.Principal, i islands.Island) (approvals.Ask, bool, error) {
		return p.approvals.PlanOperatorRemove(ctx, u, i, memberID, "#"+strconv.FormatInt(memberID, 10))
	}
	gatedOn(p, w, r, load, plan, func(cur islands.Island) {
		name := p.l(r).T("portal.islands.go.this_member")
		if m, err := islands.MemberGetByID(r.Context(), p.pool, memberID); err == nil {
			name = m.Slug
		}
		if !p.confirmed(w, r, confirmAsk{Kind: "operator-remove", Name: name, Back: fmt.Sprintf("/islands/%d", cur.ID)}) {
			return
		}
		err := p.islands.OperatorRemove(r.Context(), cur.ID, memberID)
		p.islandOutcome(w, r, err, cur, nil, p.l(r).T("portal.islands.go.operator_not_removed")+" ", fmt.Sprintf("/islands/%d?done=operator-removed", cur.ID))
	})
}

// islandOutcome answers a form of the island page: a refusal shown on the page (prefix
// says what was refused), 404, a failure, or the redirect to done.
func (p *Portal) islandOutcome(w http.ResponseWriter, r *http.Request, err error, cur islands.Island, form *islandForm, prefix, done string) {
	if err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) { p.renderIsland(w, r, status, Page{Error: prefix + msg}, cur, form) })
		return
	}
	switch {
	default:
		http.Redirect(w, r, done, http.StatusSeeOther)
	}
}

// Chart is a server-rendered SVG chart of an island's layout capacity and health.
type Chart struct {
	Width, Height  int
	PlotTop, PlotH int
	StripY, StripH int
	Left, Right    int
	Line           string // polyline points of the layout capacity
	PledgedY       float64
	HasPledged     bool
	Strips         []chartStrip
	YLabels        []chartLabel
	XLabels        []chartLabel
	Empty          bool
	Summary        string // text alternative
}

type chartStrip struct {
	X, W  float64
	Class string
	Title string
}

type chartLabel struct {
	X, Y float64
	Text string
}

// capacityChart draws the last day of observations: the layout capacity as a line, the
// pledged capacity as a dashed line, and the health of each poll as a coloured strip.
// capacityChart draws the last 24 h of obs up to now, its times in loc (the viewer's zone).
func capacityChart(l *i18n.Printer, obs []islands.Observation, pledged int64, now time.Time, loc *time.Location) Chart {
	c := Chart{Width: 720, Height: 230, PlotTop: 10, PlotH: 150, StripY: 172, StripH: 16, Left: 70, Right: 10}
	if len(obs) == 0 {
		c.Empty = true
		c.Summary = l.T("portal.islands.chart.empty")
		return c
	}
	start, end := now.Add(-24*time.Hour), now
	if first := obs[0].ObservedAt; first.After(start) {
		start = first
	}
	span := end.Sub(start).Seconds()
	if span < 60 {
		span = 60
		start = end.Add(-time.Minute)
	}
	plotW := float64(c.Width - c.Left - c.Right)
	x := func(t time.Time) float64 { return float64(c.Left) + plotW*t.Sub(start).Seconds()/span }
	var maxCap int64 = pledged
	for _, o := range obs {
		if o.LayoutCapacityBytes != nil {
			maxCap = max(maxCap, *o.LayoutCapacityBytes)
		}
	}
	if maxCap <= 0 {
		maxCap = 1
	}
	top := float64(maxCap) * 1.1
	y := func(v int64) float64 { return float64(c.PlotTop) + float64(c.PlotH)*(1-float64(v)/top) }
	bad := 0
	for i, o := range obs {
		if o.OK && o.LayoutCapacityBytes != nil {
			c.Line += fmt.Sprintf("%.1f,%.1f ", x(o.ObservedAt), y(*o.LayoutCapacityBytes))
		}
		next := end
		if i+1 < len(obs) {
			next = obs[i+1].ObservedAt
		}
		state, title := "bad", l.T("portal.islands.chart.unreachable", "Problem", o.Error)
		if o.OK && o.Health != nil {
			state, title = stateClass(*o.Health), enumIn(l)(*o.Health)
		}
		if state != "good" {
			bad++
		}
		c.Strips = append(c.Strips, chartStrip{X: x(o.ObservedAt), W: max(0.5, x(next)-x(o.ObservedAt)), Class: state,
			Title: o.ObservedAt.In(loc).Format("15:04:05") + " " + title})
	}
	if pledged > 0 {
		c.HasPledged, c.PledgedY = true, y(pledged)
	}
	for _, f := range []float64{0, 0.5, 1} {
		v := int64(float64(maxCap) * f)
		c.YLabels = append(c.YLabels, chartLabel{X: float64(c.Left - 6), Y: y(v) + 4, Text: sizer(l)(v)})
	}
	for _, f := range []float64{0, 0.5, 1} {
		t := start.Add(time.Duration(f * span * float64(time.Second)))
		c.XLabels = append(c.XLabels, chartLabel{X: x(t), Y: float64(c.StripY + c.StripH + 16), Text: t.In(loc).Format("15:04 MST")})
	}
	c.Summary = l.T("portal.islands.chart.summary", "Polls", l.Number(int64(len(obs))), "Since", exactIn(l, start, loc), "Bad", bad,
		"Capacity", sizer(l)(lastCap(obs)), "Pledged", sizer(l)(pledged))
	return c
}

func lastCap(obs []islands.Observation) int64 {
	for i := len(obs) - 1; i >= 0; i-- {
		if obs[i].LayoutCapacityBytes != nil {
			return *obs[i].LayoutCapacityBytes
		}
	}
	return 0
}
