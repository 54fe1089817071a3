// Package paging is the one pagination style of every list in Archipelago: a Request carries
// an opaque cursor and a limit (DefaultLimit when zero, at most MaxLimit; more is refused,
// never silently cut), and a list answers a Page: its items and the cursor of the next page,
// empty on the last one.
//
// Cursors are keyset positions: the sort key of the last item of the page, encoded (JSON in
// base64url). A list reads limit+1 rows to know whether another page follows, so a list
// whose length is an exact multiple of the limit ends without an empty extra page, and rows
// inserted or deleted between two pages never make another row repeat or disappear.
//
// This package knows nothing of SQL: each domain package writes its own keyset condition.
package paging

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Limits of a page.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// ErrBadCursor is a cursor this list did not produce (or produced for another sort order).
var ErrBadCursor = errors.New("is not a cursor of this list")

// LimitError is a limit outside 1..MaxLimit.
type LimitError struct{ Limit int }

func (e *LimitError) Error() string {
	return fmt.Sprintf("must be between 1 and %d (got %d)", MaxLimit, e.Limit)
}

// Request asks for one page.
type Request struct {
	Cursor string // "" for the first page
	Limit  int    // 0 for DefaultLimit
}

// Size is the number of items the page holds at most, or a *LimitError.
func (r Request) Size() (int, error) {
	switch {
	case r.Limit == 0:
		return DefaultLimit, nil
	case r.Limit < 0 || r.Limit > MaxLimit:
		return 0, &LimitError{r.Limit}
	}
	return r.Limit, nil
}

// Keys decodes the request's cursor into keys (pointers, in the order Encode was given
// them). It reports false for the first page (no cursor), and ErrBadCursor for a cursor that
// does not decode into exactly these keys.
func (r Request) Keys(keys ...any) (bool, error) {
	if r.Cursor == "" {
		return false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(r.Cursor)
	if err != nil {
		return false, ErrBadCursor
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) != len(keys) {
		return false, ErrBadCursor
	}
	for i, p := range parts {
		d := json.NewDecoder(bytes.NewReader(p))
		d.DisallowUnknownFields()
		if err := d.Decode(keys[i]); err != nil {
			return false, ErrBadCursor
		}
	}
	return true, nil
}

// Encode makes the cursor that positions a list after an item with these sort keys.
func Encode(keys ...any) string {
	b, err := json.Marshal(keys)
	if err != nil {
		panic(fmt.Sprintf("page: cursor keys %v: %v", keys, err)) // keys are ints, strings, times
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T
	// Next is the cursor of the next page; "" when this page is the last.
	Next string
}

// Cut makes the page from rows read with a LIMIT of size+1: when there is a row beyond
// size, it is dropped and Next positions after the last item kept.
func Cut[T any](rows []T, size int, key func(T) []any) Page[T] {
	if rows == nil {
		rows = []T{}
	}
	if len(rows) <= size {
		return Page[T]{Items: rows}
	}
	rows = rows[:size]
	return Page[T]{Items: rows, Next: Encode(key(rows[size-1])...)}
}

// All reads every page of a list, for the few callers that need a whole list (a report,
// a form's choices). It stops after maxItems items with an error rather than answer a
// partial list.
func All[T any](ctx context.Context, maxItems int, list func(context.Context, Request) (Page[T], error)) ([]T, error) {
	var out []T
	req := Request{Limit: MaxLimit}
	for {
		p, err := list(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if len(out) > maxItems {
			return nil, fmt.Errorf("list longer than %d items", maxItems)
		}
		if p.Next == "" {
			if out == nil {
				out = []T{}
			}
			return out, nil
		}
		req.Cursor = p.Next
	}
}
