package portal

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/verify"
)

// BenchmarkGridRender renders the restore-tests page's federation grid for a page of 100
// members × 10 repositories, in English and French, without a database: the cost of the
// page's own rendering (53 ms of CPU when each cell's words were template actions; about
// 25 ms with the cells' words written in Go, gridCells).
func BenchmarkGridRender(b *testing.B) {
	p, err := New(Deps{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	var ms []verify.GridMember
	for i := range 100 {
		m := verify.GridMember{ID: int64(i), Slug: fmt.Sprintf("m%05d", i), Name: fmt.Sprintf("Member %d", i), Worst: "passed", OldestSnapshot: &now}
		for j := range 10 {
			f := now.Add(-time.Hour)
			m.Cells = append(m.Cells, verify.GridCell{ID: int64(i*10 + j), Name: fmt.Sprintf("repo-vault-%d", j), LastStatus: "passed", FinishedAt: &f, SnapshotTime: &f, Reason: "blind: data: restic check read 5 packs"})
		}
		ms = append(ms, m)
	}
	for _, lang := range []string{"en", "fr"} {
		b.Run(lang, func(b *testing.B) {
			for b.Loop() {
				r := httptest.NewRequest("GET", "/restore-tests", nil)
				r.Header.Set("Accept-Language", lang)
				w := httptest.NewRecorder()
				g := newGridView(r, p.l(r), time.UTC, verify.GridFilter{}, ms)
				p.render(w, r, 200, "restore_tests", Page{Data: restoreTestsData{Grid: &g, Counts: map[string]int{}}})
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
	}
}
