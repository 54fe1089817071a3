package portal

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/problem"
)

// refusalSentences gives the catalog key of the sentence of a policy refusal by its code;
// others read "Refused: …".
var refusalSentences = map[string]string{
	"quota_exceeded":    "portal.problem.quota_refused",
	"placement_refused": "portal.problem.placement_refused",
}

// problemOf turns an error into a sentence for people and a status: this is the one place
// where the shared error vocabulary (internal/problem) becomes what the portal shows, so a
// domain that returns problem errors needs no mapper here. Bad input names the field
// (labels, when given, rename fields for the form at hand); an object in use gives the
// domain's reason alone (callers put what was refused before it). It returns ("", 0) for
// nil, for a missing object (the caller answers the 404 page) and for an unexpected error.
// The sentence is in l's language, the domain's own words (what is wrong with a field) too:
// they are said through the API's messages (problem.Localize), in English when the
// catalog has no translation.
func problemOf(l *i18n.Printer, err error, labels map[string]string) (string, int) {
	var (
		bad formError
		ke  *keyError
		fe  *problem.FieldError
		ce  *problem.ConflictError
		rf  *problem.RefusedError
		th  *problem.ThrottledError
		fb  *problem.ForbiddenError
		ue  *problem.UnreachableError
	)
	say := func(text, format string, args []any) string { return problem.Localize(l, text, format, args) }
	label := func(field string) string {
		if lb, ok := labels[field]; ok {
			if strings.HasPrefix(lb, "portal.") { // a catalog key
				return l.T(lb)
			}
			return lb
		}
		return fieldLabelIn(l, field)
	}
	switch {
	case err == nil:
		return "", 0
	case errors.As(err, &bad):
		return string(bad) + ".", http.StatusBadRequest
	case errors.As(err, &ke):
		return l.T(ke.Key, "Field", l.T(ke.Field), "Unit", ke.Unit), http.StatusBadRequest
	case errors.As(err, &fe):
		if fe.Field == "admin_token" && strings.Contains(fe.Problem, "refused") {
			return l.T("portal.problem.admin_token", "Problem", say(fe.Problem, fe.Format, fe.Args)), http.StatusBadRequest
		}
		return l.T("portal.problem.field", "Field", label(fe.Field), "Problem", say(fe.Problem, fe.Format, fe.Args)), http.StatusBadRequest
	case errors.As(err, &rf):
		if key, ok := refusalSentences[rf.Code]; ok {
			return l.T(key, "Problem", say(rf.Problem, "", nil)), http.StatusUnprocessableEntity
		}
		return l.T("portal.problem.refused", "Problem", say(rf.Problem, "", nil)), http.StatusUnprocessableEntity
	case errors.As(err, &ce):
		if ce.Field == "" {
			return l.T("portal.problem.refused", "Problem", say(ce.Problem, ce.Format, ce.Args)), http.StatusConflict
		}
		return l.T("portal.problem.field", "Field", label(ce.Field), "Problem", say(ce.Problem, ce.Format, ce.Args)), http.StatusConflict
	case errors.Is(err, problem.ErrInUse):
		msg := err.Error()
		if _, after, ok := strings.Cut(msg, problem.ErrInUse.Error()+": "); ok {
			msg = after
		}
		return say(msg, "", nil) + ".", http.StatusConflict
	case errors.As(err, &ue):
		return l.T("portal.problem.unreachable", "Problem", ue.Error()), http.StatusBadGateway
	case errors.As(err, &th):
		return capitalize(say(th.Problem, "", nil)) + ".", http.StatusTooManyRequests
	case errors.As(err, &fb):
		return capitalize(say(fb.Problem, "", nil)) + ".", http.StatusForbidden
	case errors.Is(err, authz.ErrDenied):
		return l.T("portal.problem.refused", "Problem", err.Error()), http.StatusForbidden
	}
	return "", 0
}

// keyError is bad form input said by a catalog key: its {{.Field}} is the catalog key of
// the field's label, {{.Unit}} a unit as the form writes it.
type keyError struct {
	Key, Field, Unit string
}

func (e *keyError) Error() string { return e.Key + " " + e.Field + " " + e.Unit }

// inFormUnits rewrites the problem of bad input on one of fields: the domain speaks bytes
// and seconds, a form GB or hours, so the domain's own numbers would not match what the
// person typed.
func inFormUnits(err error, problemText string, fields ...string) error {
	if fe := (*problem.FieldError)(nil); errors.As(err, &fe) && slices.Contains(fields, fe.Field) {
		return &problem.FieldError{Field: fe.Field, Problem: problemText}
	}
	return err
}

// refuse answers err after a form: a problem is shown by show (the form again, with the
// sentence), a missing or hidden object is the 404 page, anything else the error page.
// err must not be nil.
func (p *Portal) refuse(w http.ResponseWriter, r *http.Request, err error, labels map[string]string, show func(status int, msg string)) {
	if msg, status := problemOf(p.l(r), err, labels); msg != "" {
		show(status, msg)
		return
	}
	if errors.Is(err, problem.ErrNotFound) || errors.Is(err, authz.ErrHidden) {
		p.NotFound(w, r)
		return
	}
	p.fail(w, r, err)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s) // « élément … » as well as "element …"
	return string(unicode.ToUpper(r)) + s[n:]
}

// flashes maps the done= of a redirect after a form to the catalog key of the message the
// page shows; its {{.Field}} placeholders are filled by of.
type flashes map[string]string

// of returns the message for r's done= ("" when none), with "{name}" placeholders replaced
// by the old, new pairs given (flashes holding English texts, not catalog keys yet).
func (f flashes) of(r *http.Request, oldnew ...string) string {
	msg := f[r.URL.Query().Get("done")]
	if len(oldnew) > 0 {
		msg = strings.NewReplacer(oldnew...).Replace(msg)
	}
	return msg
}

// in returns the message for r's done= in l's language ("" when none), its fields filled
// from the name, value pairs given (flashes holding catalog keys).
func (f flashes) in(r *http.Request, l *i18n.Printer, args ...any) string {
	key, ok := f[r.URL.Query().Get("done")]
	if !ok {
		return ""
	}
	return l.T(key, args...)
}
