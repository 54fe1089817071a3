package verify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
)

// The federation grid: one line per member, one cell per repository (the restore-tests page
// of a federation admin). A page is one statement whatever the number of members, and costs
// the same whatever their number: each member's sort keys (worst latest outcome, oldest newest
// snapshot) and name are kept in restore_grid (migration 024, by triggers), a page walks one of
// its indexes from the cursor, and only the page's members have their repositories read.

// Grid orders.
const (
	GridSortWorst  = "worst"  // worst outcome first (failed, error, warning, never tested, passed, no repository), then name
	GridSortName   = "name"   // member name
	GridSortOldest = "oldest" // the oldest newest snapshot first; members with no snapshot known last
)

// GridSorts are the orders GridPage accepts ("" is GridSortWorst).
var GridSorts = []string{GridSortWorst, GridSortName, GridSortOldest}

// Grid outcome filters: members with at least one repository whose last outcome is this.
const (
	GridOutcomeAttention = "attention" // failed or error
	GridOutcomeUntested  = "untested"  // never tested
)

// GridOutcomes are the outcome filters GridPage accepts ("" is every member).
var GridOutcomes = []string{GridOutcomeAttention, StatusFailed, StatusError, StatusWarning, GridOutcomeUntested, StatusPassed}

// Cell states beyond a run's outcomes.
const (
	GridStateUntested = "untested" // never tested
	GridStatePaused   = "paused"   // tests paused (its last outcome is kept in LastStatus)
)

// ErrGridFilter is a sort or an outcome filter GridPage does not know.
var ErrGridFilter = errors.New("is not a known value")

// GridFilter selects and orders the grid's members.
type GridFilter struct {
	MemberIDs []int64 // nil: every member
	Query     string  // substring of the slug or the name, case-insensitive
	Outcome   string  // one of GridOutcomes, "" for every member
	Sort      string  // one of GridSorts, "" for GridSortWorst
}

// GridMember is one line of the grid.
type GridMember struct {
	ID         int64
	Slug, Name string
	// Worst is the worst last outcome of its repositories: failed, error, warning,
	// untested or passed; "" when it has no repository.
	Worst string
	// OldestSnapshot is the oldest of its repositories' newest snapshots (as their last
	// tests saw them); nil when none is known.
	OldestSnapshot *time.Time
	Cells          []GridCell
}

// Stale says whether one of the member's repositories has a newest snapshot older than its RPO.
func (m GridMember) Stale() bool {
	for _, c := range m.Cells {
		if c.Stale {
			return true
		}
	}
	return false
}

// GridCell is one repository of a grid line.
type GridCell struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Paused  bool   `json:"paused"`
	Running bool   `json:"running"`
	// LastStatus is the outcome of its latest finished test, "" when never tested.
	LastStatus string `json:"last_status"`
	// Reason is the beginning of that test's reason (at most 400 characters).
	Reason       string     `json:"reason"`
	FinishedAt   *time.Time `json:"finished_at"`
	SnapshotTime *time.Time `json:"snapshot_time"`
	// Stale: its newest snapshot is older than its RPO.
	Stale bool `json:"stale"`
}

// State is what the cell shows: paused, running, else the last outcome (untested when none).
func (c GridCell) State() string {
	switch {
	case c.Paused:
		return GridStatePaused
	case c.Running:
		return StatusRunning
	case c.LastStatus == "":
		return GridStateUntested
	}
	return c.LastStatus
}

// gridWorst names restore_grid.worst's ranks (migration 024): worst outcome first, a member
// without repositories last.
var gridWorst = []string{StatusFailed, StatusError, StatusWarning, GridStateUntested, StatusPassed, ""}

// GridPage reads one page of the grid's members with their repositories, in one statement.
// The cursor is the sort key of the page's last member.
func GridPage(ctx context.Context, q querier, f GridFilter, r paging.Request) (paging.Page[GridMember], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[GridMember]{}, err
	}
	var w database.Where
	if f.MemberIDs != nil {
		w.And("g.member_id = ANY(?)", f.MemberIDs)
	}
	if s := strings.TrimSpace(f.Query); s != "" {
		like := database.Contains(s)
		w.And("(m.slug ILIKE ? OR m.name ILIKE ?)", like, like)
	}
	var outcomes []string
	switch f.Outcome {
	case "":
	case GridOutcomeAttention:
		outcomes = []string{StatusFailed, StatusError}
	case GridOutcomeUntested:
		outcomes = []string{"none"}
	case StatusFailed, StatusError, StatusWarning, StatusPassed:
		outcomes = []string{f.Outcome}
	default:
		return paging.Page[GridMember]{}, fmt.Errorf("outcome %q: %w", f.Outcome, ErrGridFilter)
	}
	if outcomes != nil {
		w.And(`EXISTS (SELECT 1 FROM restore_summary x WHERE x.member_id = g.member_id AND x.repositories > 0
			AND x.outcome = ANY(?))`, outcomes)
	}
	// The sort key is (k1, name, id): k1 the rank, the newest snapshot's time in microseconds
	// (none known: last), or 0 to order by name. Each order walks an index of restore_grid
	// (migration 024), kept per member, and stops after the page.
	var k1 string
	switch f.Sort {
	case "", GridSortWorst:
		k1 = "g.worst"
	case GridSortName:
		k1 = "0::bigint"
	case GridSortOldest:
		k1 = "g.oldest_key"
	default:
		return paging.Page[GridMember]{}, fmt.Errorf("sort %q: %w", f.Sort, ErrGridFilter)
	}
	var (
		after1 int64
		after2 string
		after3 int64
	)
	after, err := r.Keys(&after1, &after2, &after3)
	if err != nil {
		return paging.Page[GridMember]{}, err
	}
	order := k1 + ", g.name, g.member_id"
	if f.Sort == GridSortName {
		order = "g.name, g.member_id"
	}
	if after {
		if f.Sort == GridSortName {
			w.And("(g.name, g.member_id) > (?, ?)", after2, after3)
		} else {
			w.And("("+k1+", g.name, g.member_id) > (?, ?, ?)", after1, after2, after3)
		}
	}
	rows, err := q.Query(ctx, `SELECT p.member_id, p.slug, p.name, p.worst, p.oldest, p.k1, coalesce(c.cells, '[]')
	FROM (SELECT g.member_id, m.slug, g.name, g.worst::bigint AS worst, g.oldest, (`+k1+`)::bigint AS k1
		FROM restore_grid g JOIN members m ON m.id = g.member_id`+w.String()+`
		ORDER BY `+order+` LIMIT `+strconv.Itoa(size+1)+`) p
	LEFT JOIN LATERAL (
		SELECT json_agg(json_build_object('id', r.id, 'name', r.name, 'paused', r.paused,
			'running', EXISTS (SELECT 1 FROM restore_test_runs o WHERE o.repository_id = r.id AND o.finished_at IS NULL
				AND o.status IN ('running', 'retrying')),
			'last_status', coalesce(r.last_status, ''), 'reason', left(coalesce(lr.reason, ''), 400),
			'finished_at', lr.finished_at, 'snapshot_time', r.last_snapshot_time,
			'stale', coalesce(r.last_snapshot_time < now() - coalesce(r.rpo_seconds, s.rpo_seconds) * interval '1 second', false))
			ORDER BY r.name, r.id) AS cells
		FROM restic_repositories r CROSS JOIN restore_settings s
		LEFT JOIN restore_test_runs lr ON lr.id = r.last_run_id
		WHERE r.member_id = p.member_id AND r.deleted_at IS NULL) c ON true
	ORDER BY p.k1, p.name, p.member_id`, w.Args...)
	if err != nil {
		return paging.Page[GridMember]{}, fmt.Errorf("read the grid: %w", err)
	}
	defer rows.Close()
	type line struct {
		m  GridMember
		k1 int64
	}
	var out []line
	for rows.Next() {
		var (
			l     line
			worst int64
		)
		if err := rows.Scan(&l.m.ID, &l.m.Slug, &l.m.Name, &worst, &l.m.OldestSnapshot, &l.k1, &l.m.Cells); err != nil {
			return paging.Page[GridMember]{}, fmt.Errorf("read the grid: %w", err)
		}
		if worst >= 0 && int(worst) < len(gridWorst) {
			l.m.Worst = gridWorst[worst]
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return paging.Page[GridMember]{}, fmt.Errorf("read the grid: %w", err)
	}
	pg := paging.Cut(out, size, func(l line) []any { return []any{l.k1, l.m.Name, l.m.ID} })
	members := make([]GridMember, len(pg.Items))
	for i, l := range pg.Items {
		members[i] = l.m
	}
	return paging.Page[GridMember]{Items: members, Next: pg.Next}, nil
}
