package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/paging"
)

// pageParams reads the one pagination style of every list: ?cursor= (the next_cursor of the
// previous page) and ?limit= (1 to 500, default 50).
func pageParams(r *http.Request) (paging.Request, error) {
	q := r.URL.Query()
	req := paging.Request{Cursor: q.Get("cursor")}
	if len(req.Cursor) > 1000 {
		return req, Invalid("cursor", "is not a cursor of this list")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > paging.MaxLimit {
			return req, Invalid("limit", "must be an integer from 1 to %d", paging.MaxLimit)
		}
		req.Limit = n
	}
	return req, nil
}

// pagingError names the parameter a list refused.
func pagingError(err error) error {
	var le *paging.LimitError
	switch {
	case errors.Is(err, paging.ErrBadCursor):
		return Invalid("cursor", "is not a cursor of this list (pass the next_cursor of the previous page)")
	case errors.As(err, &le):
		return Invalid("limit", "%s", le.Error())
	}
	return err
}

// listQuery opens a list handler: the caller may do act on o, and the page asked for; it
// returns the page request and the query for the list's filters.
func listQuery(r *http.Request, act authz.Action, o authz.Object) (paging.Request, url.Values, error) {
	if err := check(principal(r), act, o); err != nil {
		return paging.Request{}, nil, err
	}
	req, err := pageParams(r)
	return req, r.URL.Query(), err
}

// queryOneOf reads an optional query parameter that must be one of allowed ("" when
// absent), refusing anything else with the list of values.
func queryOneOf(q url.Values, name string, allowed ...string) (string, error) {
	v := q.Get(name)
	if v == "" || slices.Contains(allowed, v) {
		return v, nil
	}
	last := len(allowed) - 1
	return "", Invalid(name, "must be %s or %s", strings.Join(allowed[:last], ", "), allowed[last])
}

// nextCursor is a page's next_cursor: null on the last page.
func nextCursor(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}

// replyPage ends a list handler with the page load returned: a refused cursor or limit is
// the caller's mistake (pagingError), any other err is returned as it is; else 200 with the
// page's items under name and next_cursor.
func replyPage[T any](w http.ResponseWriter, name string, pg paging.Page[T], err error) error {
	if err != nil {
		return pagingError(err)
	}
	WriteJSON(w, http.StatusOK, map[string]any{name: pg.Items, "next_cursor": nextCursor(pg.Next)})
	return nil
}
