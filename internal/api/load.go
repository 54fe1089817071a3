package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
)

// loadByID is the one load-and-authorize step of handlers on /…/{param} routes: it reads
// the path parameter as an id, loads the object with get, and asks may (nil: the route is
// already authorized). A malformed id, a missing object and an object the caller may not
// see (authz.ErrHidden, or any not-found may returns) all answer the same 404 naming what
// and the id, so ids reveal nothing about other members; may's other refusals (a viewer
// trying a change: 403) are returned as they are.
func loadByID[T any](r *http.Request, param, what string, get func(context.Context, int64) (T, error), may func(T) error) (T, error) {
	raw := chi.URLParam(r, param)
	var v T
	id, err := pathID(r, raw)
	if err == nil {
		v, err = get(r.Context(), id)
	}
	if err == nil && may != nil {
		err = may(v)
	}
	if err != nil {
		var zero T
		return zero, notFoundAs(err, what, raw)
	}
	return v, nil
}

// onMember is a may for loadByID: act on the member owning the object.
func onMember[T any](r *http.Request, act authz.Action, member func(T) int64) func(T) error {
	return func(v T) error { return authz.Check(principal(r), act, authz.Member(member(v))) }
}

// federationObject checks act on the federation first (a refused change is 403 even for
// an id that does not exist), then loads the object of the path's {id} (loadByID).
func federationObject[T any](r *http.Request, act authz.Action, what string, get func(context.Context, int64) (T, error)) (T, error) {
	if err := check(principal(r), act, authz.Federation); err != nil {
		var zero T
		return zero, err
	}
	return loadByID(r, "id", what, get, nil)
}
