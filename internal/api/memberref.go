package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/islands"
)

// memberRef names a member wherever a request does (a path segment, ?member=, a body's
// "member"): its numeric id when it is all digits, else its slug. Slugs are never all
// digits (islands refuses them), so the two never collide. In a JSON body it is a number
// or a string.
type memberRef string

// UnmarshalJSON takes a member's id (a JSON number, or a string of digits) or its slug.
func (m *memberRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*m = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*m = memberRef(s)
		return nil
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil && n > 0 {
		*m = memberRef(strconv.FormatInt(n, 10))
		return nil
	}
	kind := "number"
	switch {
	case len(b) > 0 && (b[0] == 't' || b[0] == 'f'):
		kind = "bool"
	case len(b) > 0 && b[0] == '[':
		kind = "array"
	case len(b) > 0 && b[0] == '{':
		kind = "object"
	}
	return &json.UnmarshalTypeError{Value: kind, Type: memberRefType}
}

var memberRefType = reflect.TypeOf(memberRef(""))

// id is the member id ref names (ok when ref is all digits).
func (m memberRef) id() (int64, bool) {
	s := string(m)
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// memberByRef loads the member ref names (memberRef); a member that does not exist
// answers 404 naming field and ref. It checks nothing else: the members themselves are
// public inside the federation (GET /v1/members).
func (a *API) memberByRef(r *http.Request, field string, ref memberRef) (islands.Member, error) {
	var (
		m   islands.Member
		err error
	)
	if id, ok := ref.id(); ok {
		m, err = islands.MemberGetByID(r.Context(), a.pool, id)
	} else if strings.Trim(string(ref), "0123456789") == "" {
		err = islands.ErrNotFound // digits too many for an id
	} else {
		m, err = islands.MemberGetBySlug(r.Context(), a.pool, string(ref))
	}
	if err != nil {
		return islands.Member{}, notFoundAs(err, field, string(ref))
	}
	return m, nil
}

// memberRefFor loads the member ref names and checks that the caller may do act on it: a
// member that does not exist and one the caller may not see both answer 404 naming
// "member" and ref; another refusal (a viewer trying a change) is returned as it is.
func (a *API) memberRefFor(r *http.Request, ref memberRef, act authz.Action) (islands.Member, error) {
	m, err := a.memberByRef(r, "member", ref)
	if err == nil {
		err = check(principal(r), act, authz.Member(m.ID))
	}
	if err != nil {
		return islands.Member{}, notFoundAs(err, "member", string(ref))
	}
	return m, nil
}

// bodyMember is the member a request body names in its field "member" (required; an id
// or a slug), checked as memberRefFor does.
func (a *API) bodyMember(r *http.Request, ref memberRef, act authz.Action) (islands.Member, error) {
	if strings.TrimSpace(string(ref)) == "" {
		return islands.Member{}, Invalid("member", "is required (the member's id or slug)")
	}
	return a.memberRefFor(r, ref, act)
}

// memberQuery reads a list's optional ?member= filter (an id or a slug): 0 when absent; a
// member that does not exist or that the caller may not read answers 404 naming member.
func (a *API) memberQuery(r *http.Request) (int64, error) {
	ref := memberRef(r.URL.Query().Get("member"))
	if ref == "" {
		return 0, nil
	}
	m, err := a.memberRefFor(r, ref, authz.MemberRead)
	if err != nil {
		return 0, err
	}
	return m.ID, nil
}

// memberFromPath loads the member of the path parameter param (an id or a slug) and asks
// may (nil: the route is already authorized), answering 404 like loadByID.
func (a *API) memberFromPath(r *http.Request, param string, may func(islands.Member) error) (islands.Member, error) {
	raw := chi.URLParam(r, param)
	m, err := a.memberByRef(r, "member", memberRef(raw))
	if err == nil && may != nil {
		err = may(m)
	}
	if err != nil {
		return islands.Member{}, notFoundAs(err, "member", raw)
	}
	return m, nil
}
