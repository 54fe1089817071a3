package portal

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/problem"
)

// loadByID returns the object of the path parameter param, read by get; may (nil: anyone
// who reached the route) says whether the user may see it. An id that is not a number, a
// missing object and one the user may not see all answer the 404 page, so ids reveal
// nothing; another failure answers the error page. ok is false when an answer was written.
func loadByID[T any](p *Portal, w http.ResponseWriter, r *http.Request, param string, get func(context.Context, int64) (T, error), may func(T) bool) (T, bool) {
	var v T
	id, err := strconv.ParseInt(chi.URLParam(r, param), 10, 64)
	if err == nil {
		v, err = get(r.Context(), id)
	}
	switch {
	case err == nil && (may == nil || may(v)):
		return v, true
	case err == nil, errors.Is(err, strconv.ErrSyntax), errors.Is(err, strconv.ErrRange),
		errors.Is(err, problem.ErrNotFound), errors.Is(err, authz.ErrHidden):
		p.NotFound(w, r)
	default:
		p.fail(w, r, err)
	}
	return v, false
}

// loaded ends a page's load step: true when err is nil; when err is notFound the not-found
// page is written, on any other failure the error page, and it is false.
func (p *Portal) loaded(w http.ResponseWriter, r *http.Request, err, notFound error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, notFound):
		p.NotFound(w, r)
	default:
		p.fail(w, r, err)
	}
	return false
}

// mayRead is loadByID's may for an object of a member: the user may read that member.
func mayRead[T any](r *http.Request, member func(T) int64) func(T) bool {
	return func(v T) bool { return authz.Check(user(r), authz.MemberRead, authz.Member(member(v))) == nil }
}
