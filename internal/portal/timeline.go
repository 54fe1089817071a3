package portal

import (
	"net/url"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/verify"
)

// chartRange is a time range the repository page's charts can show.
type chartRange struct {
	Key, Label string
	Days       int
	Current    bool
}

// chartRanges are the choices of the repository page's range picker; the first is the default.
// Label is the catalog key of its name (rangeOf says it in the page's language).
var chartRanges = []chartRange{{Key: "30d", Label: "portal.restore.chart.range_30d", Days: 30},
	{Key: "7d", Label: "portal.restore.chart.range_7d", Days: 7},
	{Key: "90d", Label: "portal.restore.chart.range_90d", Days: 90},
	{Key: "365d", Label: "portal.restore.chart.range_365d", Days: 365}}

// rangeOf reads ?range= (an unknown value is the default) and returns the choices with the
// current one marked.
func rangeOf(lp *i18n.Printer, q url.Values) (chartRange, []chartRange) {
	cur := chartRanges[0]
	for _, c := range chartRanges {
		if c.Key == q.Get("range") {
			cur = c
		}
	}
	out := make([]chartRange, len(chartRanges))
	for i, c := range chartRanges {
		c.Current = c.Key == cur.Key
		c.Label = lp.T(c.Label)
		out[i] = c
	}
	return cur, out
}

// chartRunLimit bounds the tests one chart draws (a year of daily tests fits).
const chartRunLimit = 500

// snapshotLimit bounds the snapshots one timeline draws.
const snapshotLimit = 500

// Timeline is the repository page's snapshot timeline: one tick per snapshot the tests saw
// in the range, at the time it was taken; a deleted one is drawn apart and says when a test
// found it gone.
type Timeline struct {
	Width, Height, Left, Right, Top, PlotW, PlotH int
	Ticks                                         []timelineTick
	XLabels                                       []chartLabel
	Summary                                       string
	Empty                                         bool
}

type timelineTick struct {
	X     float64
	Class string
	Title string
}

// snapshotTimeline draws snaps (oldest first) over [since, now], its times in loc (the
// viewer's zone).
func snapshotTimeline(l *i18n.Printer, snaps []verify.SnapshotSeen, more bool, since, now time.Time, loc *time.Location) Timeline {
	t := Timeline{Width: 700, Height: 64, Left: 10, Right: 10, Top: 8, PlotH: 30}
	t.PlotW = t.Width - t.Left - t.Right
	if len(snaps) == 0 {
		t.Empty, t.Summary = true, l.T("portal.timeline.empty")
		return t
	}
	span := now.Sub(since).Seconds()
	gone := 0
	for _, s := range snaps {
		at := s.Time
		if at.Before(since) {
			at = since
		}
		x := float64(t.Left) + float64(t.PlotW)*min(1, max(0, at.Sub(since).Seconds()/span))
		tick := timelineTick{X: x, Class: "good",
			Title: l.T("portal.timeline.tick", "ID", s.ID[:min(8, len(s.ID))], "When", exactIn(l, s.Time, loc))}
		if s.GoneAt != nil {
			gone++
			tick.Class = "bad"
			tick.Title += l.T("portal.timeline.gone", "When", exactIn(l, *s.GoneAt, loc))
		}
		t.Ticks = append(t.Ticks, tick)
	}
	y := float64(t.Top + t.PlotH + 16)
	t.XLabels = []chartLabel{{X: float64(t.Left + 30), Y: y, Text: shortDayIn(l, since, loc)},
		{X: float64(t.Left + t.PlotW - 30), Y: y, Text: shortDayIn(l, now, loc)}}
	t.Summary = l.T("portal.timeline.summary", "Snapshots", l.Number(int64(len(snaps))), "Gone", l.Number(int64(gone)))
	if more {
		t.Summary += " " + l.T("portal.timeline.more", "Snapshots", l.Number(int64(len(snaps))))
	}
	return t
}
