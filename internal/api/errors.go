// Package api owns Archipelago's REST API under /v1: the one JSON error shape, request
// decoding and validation helpers, the handlers (methods on *API) and the OpenAPI document
// that describes every route. Routes themselves are listed in internal/server/routes.go.
//
// Handlers stay thin: decode, validate, ask the authorizer, call the domain, respond.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/problem"
)

// Error is the single error shape of the API:
//
//	{"error":{"code":"invalid_field","message":"…","field":"…","request_id":"…"}}
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RequestID is filled when the error is written.
	RequestID string `json:"request_id,omitempty"`
	// Format and Args are what Message was formatted from: WriteError says Message in the
	// caller's language by translating Format (the English source text) and applying Args
	// (problem.Localize). Without a Format, Message is a literal sentence, translated as it is.
	Format string `json:"-"`
	Args   []any  `json:"-"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// Error codes shared by every endpoint.
const (
	CodeInvalidField     = "invalid_field"
	CodeMalformedJSON    = "malformed_json"
	CodeUnknownField     = "unknown_field"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnauthenticated  = "unauthenticated"
	CodeForbidden        = "forbidden"
	CodeConflict         = "conflict"
	CodeRateLimited      = "rate_limited"
	CodeUnavailable      = "upstream_unavailable"
	CodeDatabaseDown     = "database_unavailable"
	CodeInternal         = "internal"
)

// Invalid is a 400 naming the field and the problem.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidField, Field: field, Message: fmt.Sprintf(format, args...),
		Format: format, Args: args}
}

// NotFound is a 404; objects of another member answer this too, so ids reveal nothing.
func NotFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: what + " not found"}
}

// Conflict is a 409.
func Conflict(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Field: field, Message: fmt.Sprintf(format, args...),
		Format: format, Args: args}
}

// Forbidden is a 403, used only where the caller may know the object exists.
func Forbidden(format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf(format, args...), Format: format, Args: args}
}

// Unauthenticated is a 401.
func Unauthenticated(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: msg}
}

// Unavailable is a 502/503-class error for a failure of the world (an island's admin API
// down, S3 timing out), distinct from bad input.
func Unavailable(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadGateway, Code: CodeUnavailable, Message: fmt.Sprintf(format, args...), Format: format, Args: args}
}

// conflictOn names the request field a domain conflict without one falls on, when only
// the request knows it (a last-admin refusal is about the role asked for); any other error
// is returned unchanged. ErrorOf maps the result like any other.
func conflictOn(field string, err error) error {
	var ce *problem.ConflictError
	if errors.As(err, &ce) && ce.Field == "" {
		named := *ce
		named.Field = field
		return &named
	}
	return err
}

// ErrorOf maps any error to the API's error shape: this is the one place where the shared
// error vocabulary (internal/problem) and the authorizer's answers become statuses and
// codes, so a domain that returns problem errors needs no mapper of its own. It returns nil
// for an error it does not know (a 500).
func ErrorOf(err error) *Error {
	var (
		e   *Error
		fe  *problem.FieldError
		ce  *problem.ConflictError
		nf  *problem.NotFoundError
		fb  *problem.ForbiddenError
		rf  *problem.RefusedError
		th  *problem.ThrottledError
		ue  *problem.UnreachableError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &fe):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidField, Field: fe.Field, Message: fe.Problem, Format: fe.Format, Args: fe.Args}
	case errors.As(err, &rf):
		return &Error{Status: http.StatusUnprocessableEntity, Code: rf.Code, Field: rf.Field, Message: rf.Problem}
	case errors.As(err, &ce):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Field: ce.Field, Message: ce.Problem, Format: ce.Format, Args: ce.Args}
	case errors.Is(err, problem.ErrInUse):
		return Conflict("", "%s", err.Error())
	case errors.As(err, &ue):
		return Unavailable("%s", ue.Error())
	case errors.As(err, &th):
		return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: th.Problem}
	case errors.As(err, &fb):
		return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fb.Problem}
	case errors.As(err, &nf):
		if nf.Problem != "" {
			return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: nf.Field, Message: nf.Problem}
		}
		return NotFound(nf.What)
	case errors.Is(err, authz.ErrUnauthenticated):
		return Unauthenticated("authentication required")
	case errors.Is(err, authz.ErrHidden), errors.Is(err, problem.ErrNotFound):
		return NotFound("object")
	case errors.Is(err, authz.ErrDenied):
		return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: err.Error()}
	case errors.As(err, &mbe):
		return decodeError(err)
	case database.Unavailable(err):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeDatabaseDown,
			Message: "the database is unavailable (restarting?); try again shortly"}
	}
	return nil
}

// retryAfterSeconds is the Retry-After of a 503 for an unavailable database: about the
// time a PostgreSQL restart takes.
const retryAfterSeconds = "5"

// WriteError writes err in the API's error shape (mapped by ErrorOf). Errors it does not
// know are logged and answered as a 500 without their text (which may hold internals).
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := ErrorOf(err)
	if e == nil {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the client went away
		}
		log.ErrorContext(r.Context(), "request failed", "err", err, "method", r.Method, "path", r.URL.Path,
			"request_id", middleware.GetReqID(r.Context()))
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error; the request id identifies it in the server log"}
	}
	out := *e
	out.Message = problem.Localize(i18n.FromContext(r.Context()), e.Message, e.Format, e.Args)
	out.RequestID = middleware.GetReqID(r.Context())
	if out.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="archipelago"`)
	}
	if out.Code == CodeDatabaseDown {
		w.Header().Set("Retry-After", retryAfterSeconds)
		log.WarnContext(r.Context(), "database unavailable", "err", err, "method", r.Method, "path", r.URL.Path,
			"request_id", middleware.GetReqID(r.Context()))
	}
	WriteJSON(w, out.Status, struct {
		Error Error `json:"error"`
	}{out})
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// Decode reads a JSON request body into v: unknown fields, malformed JSON, wrong types,
// trailing data and oversized bodies are answered as 4xx errors naming the problem.
func Decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia,
				Message: "the request body must be application/json"}
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: "the body holds more than one JSON value"}
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return decodeError(err)
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: "unexpected data after the JSON value"}
	}
	return nil
}

func decodeError(err error) *Error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
			Message: fmt.Sprintf("the request body is larger than %d bytes", maxErr.Limit),
			Format:  "the request body is larger than %d bytes", Args: []any{maxErr.Limit}}
	case errors.Is(err, io.EOF):
		return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: "the request body is empty; a JSON object is expected"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: "the JSON body ends unexpectedly"}
	case errors.As(err, &syntaxErr):
		return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON,
			Message: fmt.Sprintf("malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error()),
			Format:  "malformed JSON at byte %d: %s", Args: []any{syntaxErr.Offset, syntaxErr.Error()}}
	case errors.As(err, &typeErr):
		want := jsonKind(typeErr.Type.Kind().String())
		got, _, _ := strings.Cut(typeErr.Value, " ") // "number 9e+18": the kind, not the input
		e := Invalid(problem.Truncate(typeErr.Field, maxEcho), "must be %s, not %s", problem.Word(want), problem.Word(jsonKind(got)))
		if strings.HasPrefix(want, "a whole") && got == "number" {
			e = Invalid(e.Field, "must be a whole number that fits in %d bits, written without a fraction or exponent", typeErr.Type.Bits())
		} else if typeErr.Type == memberRefType {
			e = Invalid(e.Field, "must be a member's id (a number) or slug (a string), not %s", problem.Word(jsonKind(got)))
		} else if typeErr.Type.String() == "time.Time" {
			e = Invalid(e.Field, "must be a date and time in RFC 3339 form, such as 2026-01-02T15:04:05Z")
		}
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := problem.Truncate(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), maxEcho)
		return &Error{Status: http.StatusBadRequest, Code: CodeUnknownField, Field: field,
			Message: fmt.Sprintf("unknown field %q", field), Format: "unknown field %q", Args: []any{field}}
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: problem.Truncate(err.Error(), maxEcho)}
}

// jsonKind names, for people, the JSON kind a Go kind or an OpenAPI type is written as.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool", "boolean":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr", "object":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "integer":
		return "a whole number"
	default:
		return "a number"
	}
}

// withBody decodes the request body into a new R once the object of the path was loaded:
// err (a missing or refused object) is answered first, so a body never learns more.
func withBody[R any](r *http.Request, err error) (R, error) {
	var req R
	if err != nil {
		return req, err
	}
	return req, Decode(r, &req)
}

// withOptionalBody is withBody for a body that may be left out: no body is a zero R.
func withOptionalBody[R any](r *http.Request, err error) (R, error) {
	if err == nil && r.ContentLength == 0 {
		var zero R
		return zero, nil
	}
	return withBody[R](r, err)
}

// reply ends a handler: err when there is one, else v written as JSON with status.
func reply(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	WriteJSON(w, status, v)
	return nil
}

// noContent ends a handler whose success has no body: err, or 204.
func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
