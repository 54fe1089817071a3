package portal

import (
	"context"
	"net/http"
	"net/url"

	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/paging"
)

// listLimit is how many rows a portal list shows per page.
const listLimit = 100

// pageRequest reads the page a list page asks for (?cursor=). A cursor that does not belong
// to the list is answered by the list with paging.ErrBadCursor.
func pageRequest(r *http.Request) paging.Request { return pageRequestAt(r, "cursor") }

// pageRequestAt reads the page asked for in the query parameter param: for a page showing
// several lists, each paged on its own (nextHrefAt).
func pageRequestAt(r *http.Request, param string) paging.Request {
	return paging.Request{Cursor: r.URL.Query().Get(param), Limit: listLimit}
}

// wholeList reads every page of a list for a form's choices (members, islands): complete,
// never cut; an error when it is absurdly long.
func wholeList[T any](ctx context.Context, list func(context.Context, paging.Request) (paging.Page[T], error)) ([]T, error) {
	return paging.All(ctx, 1<<20, list)
}

// nextHref is the link to the next page of the list on r's page: the same query with the
// next cursor ("" when there is no next page).
func nextHref(r *http.Request, cursor string) string { return nextHrefAt(r, "cursor", cursor, "") }

// nextHrefAt is nextHref for the list paged in the query parameter param (pageRequestAt),
// the other lists' parameters kept, with fragment (when not "") naming the list's section.
func nextHrefAt(r *http.Request, param, cursor, fragment string) string {
	if cursor == "" {
		return ""
	}
	q := r.URL.Query()
	q.Del("done") // a flash belongs to the page that followed a form
	q.Set(param, cursor)
	return (&url.URL{Path: r.URL.Path, RawQuery: q.Encode(), Fragment: fragment}).String()
}

// pageItems is what a list page shows of the page its list returned (pg, err): the items,
// with page.Next set to the link of the next page; on failure it writes the error page
// and returns false.
func pageItems[T any](p *Portal, w http.ResponseWriter, r *http.Request, page *Page, pg paging.Page[T], err error) ([]T, bool) {
	if err != nil {
		p.fail(w, r, err)
		return nil, false
	}
	page.Next = nextHref(r, pg.Next)
	return pg.Items, true
}

// allIslands is every island (wholeList), for a form's choices and a page's island names.
func (p *Portal) allIslands(ctx context.Context) ([]islands.Island, error) {
	return wholeList(ctx, func(ctx context.Context, req paging.Request) (paging.Page[islands.Island], error) {
		return islands.IslandPage(ctx, p.pool, islands.IslandFilter{}, req)
	})
}

// allMembers is every member (wholeList), for a form's choices and a page's member names.
func (p *Portal) allMembers(ctx context.Context) ([]islands.Member, error) {
	return wholeList(ctx, func(ctx context.Context, req paging.Request) (paging.Page[islands.Member], error) {
		return islands.MemberPage(ctx, p.pool, islands.MemberFilter{}, req)
	})
}

// idsOf lists the ids of a page's items, for the one statement that reads what they need.
func idsOf[T any](items []T, id func(T) int64) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}
