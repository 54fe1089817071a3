package portal

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

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
}

// Islands lists the federation's islands with their health and capacity.
func (p *Portal) Islands(w http.ResponseWriter, r *http.Request) {
	list, err := islands.IslandList(r.Context(), p.pool, islands.IslandFilter{Limit: 500})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var data islandsData
	for _, isl := range list {
		d, err := islands.Detail(r.Context(), p.pool, isl)
		if err != nil {
			p.fail(w, r, err)
			return
		}
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
	p.render(w, r, http.StatusOK, "islands", Page{Title: "Islands", Nav: "islands", Data: data})
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
}

// Island shows one island: its nodes, pledges, warnings and a chart of the last day.
func (p *Portal) Island(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	isl, err := islands.IslandByID(r.Context(), p.pool, id)
	if errors.Is(err, islands.ErrNotFound) {
		p.NotFound(w, r)
		return
	} else if err != nil {
		p.fail(w, r, err)
		return
	}
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
		Chart: capacityChart(obs, d.PledgedBytes, now)}
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
	p.render(w, r, http.StatusOK, "island", Page{Title: isl.Name, Nav: "islands", Data: data})
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
func capacityChart(obs []islands.Observation, pledged int64, now time.Time) Chart {
	c := Chart{Width: 720, Height: 230, PlotTop: 10, PlotH: 150, StripY: 172, StripH: 16, Left: 70, Right: 10}
	if len(obs) == 0 {
		c.Empty = true
		c.Summary = "No observations yet."
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
		state, title := "bad", "unreachable: "+o.Error
		if o.OK && o.Health != nil {
			state, title = stateClass(*o.Health), *o.Health
		}
		if state != "good" {
			bad++
		}
		c.Strips = append(c.Strips, chartStrip{X: x(o.ObservedAt), W: max(0.5, x(next)-x(o.ObservedAt)), Class: state,
			Title: o.ObservedAt.UTC().Format("15:04:05") + " " + title})
	}
	if pledged > 0 {
		c.HasPledged, c.PledgedY = true, y(pledged)
	}
	for _, f := range []float64{0, 0.5, 1} {
		v := int64(float64(maxCap) * f)
		c.YLabels = append(c.YLabels, chartLabel{X: float64(c.Left - 6), Y: y(v) + 4, Text: HumanBytes(v)})
	}
	for _, f := range []float64{0, 0.5, 1} {
		t := start.Add(time.Duration(f * span * float64(time.Second)))
		c.XLabels = append(c.XLabels, chartLabel{X: x(t), Y: float64(c.StripY + c.StripH + 16), Text: t.UTC().Format("15:04")})
	}
	c.Summary = fmt.Sprintf("%d polls since %s UTC; %d not healthy; layout capacity now %s, pledged %s.", len(obs),
		start.UTC().Format("2006-01-02 15:04"), bad, HumanBytes(lastCap(obs)), HumanBytes(pledged))
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
