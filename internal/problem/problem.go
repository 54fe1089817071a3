// Package problem is the shared error vocabulary of the domains: a request that is
// invalid (naming the field), that conflicts with the current state, that names an object
// that does not exist, that is forbidden, that the policy refuses, that is throttled, or an
// island that did not answer. Domains return these; each front end maps them in one place
// (internal/api/errors.go to the JSON error shape, internal/portal/problems.go to a form
// error or an error page), so a new domain needs no mapper of its own.
//
// It also owns the one translation of PostgreSQL constraint violations into these errors.
// It must not know HTTP, templates or any domain.
package problem

import (
	"errors"
	"fmt"
)

// ErrNotFound is the sentinel every NotFoundError and every domain's ErrNotFound matches
// with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrInUse means the object is still referenced and cannot be deleted; domains wrap it
// with the reason (fmt.Errorf("%w: still referenced by pledges", problem.ErrInUse)).
var ErrInUse = errors.New("still in use")

// FieldError is bad input, naming the field at fault (the API field name, snake_case).
type FieldError struct {
	Field   string
	Problem string
	// Format and Args are what Invalid formatted Problem from, so a front end can say it in
	// the reader's language (Localize); empty when Problem is a literal sentence.
	Format string
	Args   []any
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// Invalid returns a FieldError; the message is formatted.
func Invalid(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...), Format: format, Args: args}
}

// ConflictError is a request that conflicts with the current state (a name already used,
// a key already rotated), naming the field when there is one.
type ConflictError struct {
	Field   string
	Problem string
	// Format and Args: as FieldError's.
	Format string
	Args   []any
}

func (e *ConflictError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// Conflict returns a ConflictError; the message is formatted.
func Conflict(field, format string, args ...any) *ConflictError {
	return &ConflictError{Field: field, Problem: fmt.Sprintf(format, args...), Format: format, Args: args}
}

// NotFoundError is a missing object; What names it for people ("vault", "report").
// errors.Is(err, ErrNotFound) holds for every NotFoundError. When the domain knows the
// input that named the object and a better sentence than "<What> not found", Field and
// Problem carry them (both optional).
type NotFoundError struct{ What, Field, Problem string }

func (e *NotFoundError) Error() string { return "not found" }

// Is makes every NotFoundError match ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// NotFound returns a NotFoundError naming what was not found.
func NotFound(what string) *NotFoundError { return &NotFoundError{What: what} }

// ForbiddenError is an action the caller may not take on an object it may know exists.
type ForbiddenError struct{ Problem string }

func (e *ForbiddenError) Error() string { return e.Problem }

// RefusedError is a well-formed request that a policy refuses (a quota, a placement):
// Code is stable and machine-readable ("quota_exceeded"), Field names the input at fault.
type RefusedError struct {
	Code    string
	Field   string
	Problem string
}

func (e *RefusedError) Error() string { return e.Problem }

// ThrottledError means too many requests; Problem says what to do.
type ThrottledError struct{ Problem string }

func (e *ThrottledError) Error() string { return e.Problem }

// UnreachableError means an island's admin API failed: it names the island and the
// Garage operation that failed.
type UnreachableError struct {
	Island    string
	Operation string
	Err       error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("island %q: %s failed: %v", e.Island, e.Operation, e.Err)
}

// Unwrap returns the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Truncate shortens an input echoed in a message to at most n bytes (on a rune
// boundary), marking the cut with "…": a refusal never echoes a large input back.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
