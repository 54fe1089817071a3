package paging

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCutAtExactMultiplesEndsWithoutAnEmptyPage(t *testing.T) {
	t.Parallel()
	key := func(n int) []any { return []any{n} }
	for _, total := range []int{0, 1, 9, 10, 11, 20, 30} {
		rows := make([]int, total)
		for i := range rows {
			rows[i] = i
		}
		var seen, pages int
		after := -1
		for {
			var chunk []int
			for _, r := range rows { // a keyset read of size+1 rows after the cursor
				if r > after && len(chunk) < 11 {
					chunk = append(chunk, r)
				}
			}
			p := Cut(chunk, 10, key)
			pages++
			seen += len(p.Items)
			if len(p.Items) == 0 && total > 0 {
				t.Fatalf("total %d: an empty page", total)
			}
			if p.Next == "" {
				break
			}
			if _, err := (Request{Cursor: p.Next}).Keys(&after); err != nil {
				t.Fatal(err)
			}
		}
		if seen != total || pages != max(1, (total+9)/10) {
			t.Fatalf("total %d: saw %d in %d pages", total, seen, pages)
		}
	}
}

func TestCursorRoundTripsAndRefusesForeignCursors(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 10, 0, 0, 123456000, time.UTC)
	c := Encode("acme", at, int64(42))
	var (
		s  string
		ts time.Time
		id int64
	)
	if ok, err := (Request{Cursor: c}).Keys(&s, &ts, &id); !ok || err != nil || s != "acme" || !ts.Equal(at) || id != 42 {
		t.Fatalf("round trip: %v %v %q %v %d", ok, err, s, ts, id)
	}
	for _, bad := range []string{"!!", Encode(int64(1)), Encode(1, 2, 3, 4), Encode(1, "x", 3)} {
		if _, err := (Request{Cursor: bad}).Keys(&s, &ts, &id); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q accepted (%v)", bad, err)
		}
	}
	if ok, err := (Request{}).Keys(&id); ok || err != nil {
		t.Fatalf("no cursor: %v %v", ok, err)
	}
}

func TestLimitIsBoundedNotCut(t *testing.T) {
	t.Parallel()
	for limit, want := range map[int]int{0: DefaultLimit, 1: 1, MaxLimit: MaxLimit} {
		if n, err := (Request{Limit: limit}).Size(); err != nil || n != want {
			t.Errorf("limit %d: %d %v", limit, n, err)
		}
	}
	for _, limit := range []int{-1, MaxLimit + 1} {
		var le *LimitError
		if _, err := (Request{Limit: limit}).Size(); !errors.As(err, &le) {
			t.Errorf("limit %d accepted (%v)", limit, err)
		}
	}
}

func TestAllReadsEveryPageOrFails(t *testing.T) {
	t.Parallel()
	list := func(n int) func(context.Context, Request) (Page[int], error) {
		return func(_ context.Context, r Request) (Page[int], error) {
			from := 0
			if _, err := r.Keys(&from); err != nil {
				return Page[int]{}, err
			}
			var rows []int
			for i := from; i < n && len(rows) <= r.Limit; i++ {
				rows = append(rows, i)
			}
			return Cut(rows, r.Limit, func(i int) []any { return []any{i + 1} }), nil
		}
	}
	got, err := All(t.Context(), 10000, list(1234))
	if err != nil || len(got) != 1234 || got[1233] != 1233 {
		t.Fatalf("All: %d items, %v", len(got), err)
	}
	if _, err := All(t.Context(), 1000, list(1234)); err == nil {
		t.Fatal("All answered a partial list")
	}
}
