package reports

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/paging"
)

// TestMembersTablePages: the body of a v2 federation report shows its members table a page at
// a time when asked (the portal's viewer), every member exactly once over the pages, in the
// report's order, with a cursor to each next page and none after the last; a cursor that is
// not a position of the report is refused; the standalone file still lists every member.
func TestMembersTablePages(t *testing.T) {
	t.Parallel()
	const n = 250
	in := Input{Scope: ScopeFederation, Period: Period{Kind: PeriodCustom, Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		End: time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)}}
	for i := range n {
		m := MemberRef{ID: int64(i + 1), Slug: fmt.Sprintf("m%04d", i), Name: fmt.Sprintf("Member %04d", i)}
		in.Members = append(in.Members, m)
		in.Lines = append(in.Lines, MemberLine{Member: MemberRef{ID: m.ID}, StatusCounts: StatusCounts{Repositories: 1, Green: 1}})
	}
	r := Build(in)
	if r.Schema != SchemaV2 || len(r.Members) != n {
		t.Fatalf("built %s with %d members", r.Schema, len(r.Members))
	}
	shown := func(v View) []string {
		t.Helper()
		body, err := BodyHTML(v)
		if err != nil {
			t.Fatal(err)
		}
		var slugs []string
		for _, part := range strings.Split(string(body), `<span class="rpt-muted">(`)[1:] {
			if s, _, ok := strings.Cut(part, ")"); ok && strings.HasPrefix(s, "m0") {
				slugs = append(slugs, s)
			}
		}
		return slugs
	}
	var seen []string
	cursor, pages := "", 0
	for {
		v := View{R: r}
		next, err := v.PageMembers(paging.Request{Cursor: cursor, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := shown(v)
		if len(got) == 0 || len(got) > 100 {
			t.Fatalf("page %d shows %d members", pages, len(got))
		}
		seen = append(seen, got...)
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	if pages != 3 || len(seen) != n {
		t.Fatalf("%d pages showed %d members, want 3 pages of %d", pages, len(seen), n)
	}
	for i, s := range seen {
		if s != r.Members[i].Member.Slug {
			t.Fatalf("member %d shown is %s, the report's is %s", i, s, r.Members[i].Member.Slug)
		}
	}
	for _, bad := range []string{paging.Encode(n - 1), paging.Encode(-1), paging.Encode("x"), "%%%"} {
		v := View{R: r}
		if _, err := v.PageMembers(paging.Request{Cursor: bad, Limit: 100}); !errors.Is(err, paging.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", bad, err)
		}
	}
	if got := shown(View{R: r}); len(got) != n {
		t.Fatalf("the body without a page shows %d members, want all %d", len(got), n)
	}
	var buf bytes.Buffer
	if err := StandaloneHTML(&buf, View{R: r}); err != nil {
		t.Fatal(err)
	}
	for _, m := range r.Members {
		if !strings.Contains(buf.String(), "("+m.Member.Slug+")") {
			t.Fatalf("the standalone file lacks %s", m.Member.Slug)
		}
	}
}
