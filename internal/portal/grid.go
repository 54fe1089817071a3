package portal

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/verify"
)

// The federation grid of the restore-tests page: one line per member, one compact cell per
// repository, sorted and filtered by query parameters (?sort=, ?outcome=, ?q=) so it works
// without JavaScript, paged like every list (?cursor=). One statement per page
// (verify.GridPage). The words (outcomes, symbols, labels) are in the template.

// gridQueryMax is the longest member search accepted.
const gridQueryMax = 200

// gridView is the grid's part of the restore-tests page.
type gridView struct {
	Members []gridMemberView
	// Sort, Outcome and Query are what the page was asked (Sort "" is worst first).
	Sort, Outcome, Query string
	// SortHref links each order (worst, name, oldest) with the same filters.
	SortHref map[string]string
	// Filtered: an outcome filter or a search applies (the empty grid says so).
	Filtered bool
}

// gridRequest reads the grid's query parameters; the catalog key of a message when one is not
// acceptable.
func gridRequest(r *http.Request, ids []int64) (verify.GridFilter, string) {
	q := r.URL.Query()
	f := verify.GridFilter{MemberIDs: ids, Query: q.Get("q"), Outcome: q.Get("outcome"), Sort: q.Get("sort")}
	switch {
	case utf8.RuneCountInString(f.Query) > gridQueryMax:
		return f, "portal.grid.search_too_long"
	case f.Sort != "" && !slices.Contains(verify.GridSorts, f.Sort):
		return f, "portal.grid.bad_sort"
	case f.Outcome != "" && !slices.Contains(verify.GridOutcomes, f.Outcome):
		return f, "portal.grid.bad_outcome"
	}
	return f, ""
}

// gridMemberView is a line of the grid with its cells' words already written.
type gridMemberView struct {
	verify.GridMember
	Cells []gridCellView
}

// gridCellView is a cell with what it says: its state, symbol, hover title and screen-reader
// text. They are written once in Go rather than by template actions per cell: a page of 100
// members × 10 repositories ran about 40 escaped template actions per cell (53 ms of CPU a
// page, 0.3 s on the loaded machine), now a handful.
type gridCellView struct {
	ID                         int64
	Stale                      bool
	State, Symbol, Title, Says string
}

// gridSymbols are the cells' symbols by state (the legend of restore_tests.html shows them).
var gridSymbols = map[string]string{verify.StatusPassed: "✓", verify.StatusWarning: "!", verify.StatusFailed: "✕",
	verify.StatusError: "?", verify.StatusRunning: "↻", verify.GridStatePaused: "‖"}

// gridWords are the catalog keys of the states' words (the template's "grid-word").
var gridWords = map[string]string{verify.StatusPassed: "portal.restore_tests.passed_2",
	verify.StatusWarning: "portal.restore_tests.warning_2", verify.StatusFailed: "portal.restore_tests.failed",
	verify.StatusError: "portal.restore_tests.error_could_not_judge", verify.StatusRunning: "portal.restore_tests.running",
	verify.GridStatePaused: "portal.restore_tests.paused", verify.GridStateUntested: "portal.restore_tests.never_tested",
	verify.StatusCancelled: "portal.restore_tests.cancelled"}

// gridCells writes the cells of a line in the viewer's language and zone.
func gridCells(pr *i18n.Printer, clk clock, cells []verify.GridCell) []gridCellView {
	words := map[string]string{}
	word := func(s string) string {
		w, ok := words[s]
		if !ok {
			w = s
			if k, ok := gridWords[s]; ok {
				w = pr.T(k)
			}
			words[s] = w
		}
		return w
	}
	out := make([]gridCellView, len(cells))
	var title, says strings.Builder
	for i, c := range cells {
		v := gridCellView{ID: c.ID, Stale: c.Stale, State: c.State()}
		v.Symbol = gridSymbols[v.State]
		if v.Symbol == "" {
			v.Symbol = "○"
		}
		title.Reset()
		says.Reset()
		head := pr.T("portal.restore_tests.cell_name", "Name", c.Name, "State", word(v.State)) // « Nom : … » in French
		if c.LastStatus != "" && v.State != c.LastStatus {
			head += " " + pr.T("portal.restore_tests.last_test") + " " + word(c.LastStatus) + ")"
		}
		title.WriteString(head)
		says.WriteString(head)
		if c.FinishedAt != nil {
			age := clk.Age(c.FinishedAt)
			title.WriteString(pr.T("portal.restore_tests.ago", "Age", age, "Exact", clk.Exact(c.FinishedAt)))
			says.WriteString(pr.T("portal.restore_tests.ago_2", "Age", age))
		}
		if c.Stale {
			title.WriteString(pr.T("portal.restore_tests.snapshot_older_than_the_rpo_2"))
			says.WriteString(pr.T("portal.restore_tests.snapshot_older_than_the_rpo_3"))
		}
		if c.Reason != "" {
			title.WriteString(" — " + reasonOf(c.LastStatus, pr.Retell(c.Reason)).Title) // stored in English
		}
		v.Title, v.Says = title.String(), says.String()
		out[i] = v
	}
	return out
}

// newGridView is the grid of a page of members, with the links that sort it.
func newGridView(r *http.Request, pr *i18n.Printer, loc *time.Location, f verify.GridFilter, members []verify.GridMember) gridView {
	sort := f.Sort
	if sort == verify.GridSortWorst {
		sort = "" // the default: links and the "every member" link leave it out
	}
	clk := newClockIn(time.Now(), loc, pr)
	lines := make([]gridMemberView, len(members))
	for i, m := range members {
		lines[i] = gridMemberView{GridMember: m, Cells: gridCells(pr, clk, m.Cells)}
	}
	g := gridView{Members: lines, Sort: sort, Outcome: f.Outcome, Query: f.Query, SortHref: map[string]string{},
		Filtered: f.Outcome != "" || f.Query != ""}
	for _, s := range verify.GridSorts {
		q := url.Values{}
		if f.Query != "" {
			q.Set("q", f.Query)
		}
		if f.Outcome != "" {
			q.Set("outcome", f.Outcome)
		}
		if s != verify.GridSortWorst {
			q.Set("sort", s)
		}
		g.SortHref[s] = (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String()
	}
	return g
}
