package portal

import (
	"net/http"
	"net/url"
	"slices"
	"unicode/utf8"

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
	Members []verify.GridMember
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

// newGridView is the grid of a page of members, with the links that sort it.
func newGridView(r *http.Request, f verify.GridFilter, members []verify.GridMember) gridView {
	sort := f.Sort
	if sort == verify.GridSortWorst {
		sort = "" // the default: links and the "every member" link leave it out
	}
	g := gridView{Members: members, Sort: sort, Outcome: f.Outcome, Query: f.Query, SortHref: map[string]string{},
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
