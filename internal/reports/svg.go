package reports

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// Charts are inline SVG built here, styled with presentation attributes only (no style
// attributes, no scripts), so they render under the portal's CSP, in a standalone file
// and on paper.

const (
	colGood  = "#1b7a3a"
	colWarn  = "#9a6100"
	colBad   = "#b3261e"
	colGrey  = "#8a93a5"
	colLine  = "#0b5cad"
	colMuted = "#5a6375"
	colGrid  = "#d8dde6"
)

func outcomeColour(o string) string {
	switch o {
	case "passed", StatusGreen:
		return colGood
	case "warning", StatusAmber:
		return colWarn
	case "failed", "error", StatusRed:
		return colBad
	}
	return colGrey
}

type series struct {
	label  string
	colour string
	dashed bool
	at     []time.Time
	values []float64
}

// lineChart draws series over the period; format labels the y axis.
func lineChart(sp speaker, title string, start, end time.Time, format func(float64) string, ss ...series) template.HTML {
	const w, h, left, right, top, bottom = 640.0, 180.0, 70.0, 10.0, 24.0, 26.0
	maxY := 0.0
	n := 0
	for _, s := range ss {
		for _, v := range s.values {
			maxY = math.Max(maxY, v)
			n++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="rpt-chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		w, h, w, h, html.EscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(title))
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="#f6f8fb" stroke="%s"/>`, left, top, w-left-right, h-top-bottom, colGrid)
	fmt.Fprintf(&b, `<text x="%.0f" y="15" font-size="12" font-weight="600" fill="#1d2330">%s</text>`, left, html.EscapeString(title))
	if n == 0 || maxY <= 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="12" fill="%s" text-anchor="middle">%s</text></svg>`,
			(w+left)/2, (h+top)/2, colMuted, html.EscapeString(sp.t("chart.no_measurements")))
		return template.HTML(b.String())
	}
	maxY *= 1.1
	span := end.Sub(start).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 {
		return left + (w-left-right)*math.Min(1, math.Max(0, t.Sub(start).Seconds()/span))
	}
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-v/maxY) }
	for _, f := range []float64{0, 0.5, 1} {
		yy := y(maxY / 1.1 * f)
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="%s"/>`, left, w-right, yy, yy, colGrid)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="10" fill="%s" text-anchor="end">%s</text>`, left-4, yy+3, colMuted,
			html.EscapeString(format(maxY/1.1*f)))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" fill="%s">%s</text>`, left, h-8, colMuted, html.EscapeString(sp.day(start)))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="10" fill="%s" text-anchor="end">%s</text>`, w-right, h-8, colMuted, html.EscapeString(sp.lastday(end)))
	lx := w - right
	for i := len(ss) - 1; i >= 0; i-- {
		s := ss[i]
		lx -= 8 + 6*float64(len([]rune(s.label))) + 16
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="11" y2="11" stroke="%s" stroke-width="2"%s/>`, lx, lx+12, s.colour, dash(s.dashed))
		fmt.Fprintf(&b, `<text x="%.0f" y="15" font-size="10" fill="%s">%s</text>`, lx+15, colMuted, html.EscapeString(s.label))
	}
	for _, s := range ss {
		if len(s.values) == 0 {
			continue
		}
		pts := make([]string, len(s.values))
		for i, v := range s.values {
			pts[i] = fmt.Sprintf("%.1f,%.1f", x(s.at[i]), y(v))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.Join(pts, " "), s.colour, dash(s.dashed))
		if len(s.values) <= 40 && !s.dashed {
			for i, v := range s.values {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, x(s.at[i]), y(v), s.colour)
			}
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func dash(d bool) string {
	if d {
		return ` stroke-dasharray="6 4"`
	}
	return ""
}

// outcomeStrip draws one coloured mark per test, in time order.
func outcomeStrip(sp speaker, r Repository, start, end time.Time) template.HTML {
	const w, h, left, right = 640.0, 34.0, 70.0, 10.0
	var b strings.Builder
	label := sp.t("chart.outcomes_label", "Name", r.Name, "Passed", r.Tests.Passed, "Warning", r.Tests.Warning, "Failed", r.Tests.Failed, "Error", r.Tests.Error)
	fmt.Fprintf(&b, `<svg class="rpt-chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		w, h, w, h, html.EscapeString(label), html.EscapeString(label))
	fmt.Fprintf(&b, `<text x="%.0f" y="21" font-size="10" fill="%s" text-anchor="end">%s</text>`, left-4, colMuted, html.EscapeString(sp.t("chart.outcomes")))
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="17" y2="17" stroke="%s"/>`, left, w-right, colGrid)
	span := end.Sub(start).Seconds()
	for _, p := range r.Trend {
		x := left + (w-left-right)*math.Min(1, math.Max(0, p.At.Sub(start).Seconds()/span))
		fmt.Fprintf(&b, `<rect x="%.1f" y="6" width="5" height="22" rx="1" fill="%s"><title>%s %s</title></rect>`, x-2.5, outcomeColour(p.Outcome),
			html.EscapeString(sp.when(p.At)), html.EscapeString(sp.word(p.Outcome)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// capacityChart draws, per island, bars for pledged, layout, allocated and used bytes.
func capacityChart(sp speaker, islands []Island) template.HTML {
	const w, left, right, barH, gap = 640.0, 120.0, 80.0, 9.0, 14.0
	h := 30 + float64(len(islands))*(4*barH+gap)
	maxV := int64(1)
	for _, i := range islands {
		maxV = max(maxV, i.PledgedBytes, i.AllocatedBytes, i.UsedBytes)
		if i.LayoutBytes != nil {
			maxV = max(maxV, *i.LayoutBytes)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="rpt-chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`, w, h, w, h,
		html.EscapeString(sp.t("chart.capacity")), html.EscapeString(sp.t("chart.capacity_title")))
	legend := []struct{ l, c string }{{sp.t("chart.pledged"), colMuted}, {sp.t("chart.in_layout"), colLine}, {sp.t("chart.allocated"), colWarn},
		{sp.t("chart.used"), colGood}}
	for k, l := range legend {
		x := left + float64(k)*110
		fmt.Fprintf(&b, `<rect x="%.0f" y="6" width="10" height="10" fill="%s"/><text x="%.0f" y="15" font-size="10" fill="%s">%s</text>`, x, l.c, x+14, colMuted, html.EscapeString(l.l))
	}
	y := 28.0
	scale := func(v int64) float64 { return (w - left - right) * float64(v) / float64(maxV) }
	for _, i := range islands {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="11" fill="#1d2330" text-anchor="end">%s</text>`, left-6, y+2*barH+3, html.EscapeString(i.Name))
		vals := []*int64{&i.PledgedBytes, i.LayoutBytes, &i.AllocatedBytes, &i.UsedBytes}
		for k, v := range vals {
			if v != nil {
				fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s: %s</title></rect>`, left, y, math.Max(1, scale(*v)), barH-1,
					legend[k].c, html.EscapeString(legend[k].l), sp.bytes(*v))
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9" fill="%s">%s</text>`, left+math.Max(1, scale(*v))+4, y+barH-2, colMuted, sp.bytes(*v))
			} else {
				fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="9" fill="%s">%s</text>`, left+4, y+barH-2, colMuted,
					html.EscapeString(sp.t("chart.unknown", "What", legend[k].l)))
			}
			y += barH
		}
		y += gap
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func (sp speaker) fmtSeconds(v float64) string { return sp.secs(int64(math.Round(v))) }
func (sp speaker) fmtRate(v float64) string    { return sp.bytes(int64(v)) + "/s" }
func (sp speaker) fmtBytes(v float64) string   { return sp.bytes(int64(v)) }

// repoCharts returns the charts of one repository.
func repoCharts(sp speaker, r Repository, p Period) []template.HTML {
	var dur, rate series
	dur = series{label: sp.t("chart.test_duration"), colour: colLine}
	restore := series{label: sp.t("chart.sample_restore"), colour: colWarn}
	rate = series{label: sp.t("chart.restore_throughput"), colour: colGood}
	for _, t := range r.Trend {
		if t.DurationSeconds != nil {
			dur.at, dur.values = append(dur.at, t.At), append(dur.values, *t.DurationSeconds)
		}
		if t.RestoreSeconds != nil {
			restore.at, restore.values = append(restore.at, t.At), append(restore.values, *t.RestoreSeconds)
		}
		if t.ThroughputBps != nil {
			rate.at, rate.values = append(rate.at, t.At), append(rate.values, *t.ThroughputBps)
		}
	}
	return []template.HTML{
		outcomeStrip(sp, r, p.Start, p.End),
		lineChart(sp, sp.t("chart.duration_of", "Name", r.Name), p.Start, p.End, sp.fmtSeconds, dur, restore),
		lineChart(sp, sp.t("chart.throughput_of", "Name", r.Name), p.Start, p.End, sp.fmtRate, rate),
	}
}

func usageChart(sp speaker, v Vault, p Period) template.HTML {
	use := series{label: sp.t("chart.used"), colour: colLine}
	for _, u := range v.History {
		use.at, use.values = append(use.at, u.At), append(use.values, float64(u.Bytes))
	}
	quota := series{label: sp.t("chart.quota"), colour: colBad, dashed: true, at: []time.Time{p.Start, p.End},
		values: []float64{float64(v.QuotaBytes), float64(v.QuotaBytes)}}
	return lineChart(sp, sp.t("chart.usage_of", "Name", v.Name), p.Start, p.End, sp.fmtBytes, use, quota)
}

// chartMembers is how many members the status chart of a federation report draws (the
// table below it lists every member).
const chartMembers = 25

// memberChart draws, for a v2 federation report, the federation's repositories by status
// and those of the members needing most attention (worst first, at most chartMembers), as
// stacked bars of the same scale per line (a member's bar is its share of its own
// repositories, its count written beside it).
func memberChart(sp speaker, r Report) template.HTML {
	type line struct {
		label string
		c     StatusCounts
	}
	lines := []line{{sp.t("chart.federation"), StatusCounts{Repositories: r.Summary.Repositories, Green: r.Summary.Green,
		Amber: r.Summary.Amber, Red: r.Summary.Red, Grey: r.Summary.Grey}}}
	shown := 0
	for _, l := range r.Members {
		if !l.Attention || shown == chartMembers {
			break // worst first: the rest need no attention, or are past the chart's lines
		}
		lines = append(lines, line{l.Member.Name, l.StatusCounts})
		shown++
	}
	const w, left, right, barH, gap = 640.0, 160.0, 70.0, 14.0, 6.0
	h := 34 + float64(len(lines))*(barH+gap)
	title := sp.t("chart.members_title_none")
	if shown > 0 {
		title = sp.p.N("report.chart.members_title", shown, "N", sp.num(shown))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="rpt-chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		w, h, w, h, html.EscapeString(title), html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="0" y="13" font-size="12" font-weight="600" fill="#1d2330">%s</text>`, html.EscapeString(title))
	status := []string{StatusRed, StatusAmber, StatusGrey, StatusGreen}
	for k, st := range status {
		x := left + float64(k)*95
		fmt.Fprintf(&b, `<rect x="%.0f" y="18" width="10" height="10" fill="%s"/><text x="%.0f" y="27" font-size="10" fill="%s">%s</text>`,
			x, outcomeColour(st), x+14, colMuted, html.EscapeString(sp.word(st)))
	}
	y := 34.0
	for _, l := range lines {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="11" fill="#1d2330" text-anchor="end">%s</text>`, left-6, y+barH-3,
			html.EscapeString(truncate(l.label, 24)))
		x := left
		counts := []int{l.c.Red, l.c.Amber, l.c.Grey, l.c.Green}
		for k, n := range counts {
			if n == 0 || l.c.Repositories == 0 {
				continue
			}
			bw := (w - left - right) * float64(n) / float64(l.c.Repositories)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s: %s</title></rect>`, x, y, bw, barH,
				outcomeColour(status[k]), html.EscapeString(sp.word(status[k])), sp.num(n))
			x += bw
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="10" fill="%s">%s</text>`, w-right+4, y+barH-3, colMuted,
			html.EscapeString(sp.t("chart.red_of", "Red", sp.num(l.c.Red), "Total", sp.num(l.c.Repositories))))
		y += barH + gap
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// truncate shortens s to n runes, with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
