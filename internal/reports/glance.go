package reports

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The dashboard shows federation admins the federation at a glance: the counts of a v2
// federation report of the last seven days (gatherCounts: one statement, counted per member
// in SQL), without its islands and incidents. It is built once and kept: a view costs one small statement (the freshness stamp) as long as
// nothing it depends on changed, and at most GlanceMaxAge passes (the seven-day window slides,
// so a repository can turn grey without any write). What is shown is bounded too: the
// summary counts and the members needing attention, worst first, at most GlanceAttention.

// Glance limits.
const (
	GlanceMaxAge    = 5 * time.Minute
	GlanceAttention = 20
)

// Glance is the federation card of the dashboard.
type Glance struct {
	Summary   Summary        // over every repository (Attention left empty)
	Attention []GlanceMember // members with a red or amber repository, worst first
	More      int            // members needing attention beyond those listed
	Members   int            // members with at least one repository
	Built     time.Time
}

// GlanceMember is one member's repositories by status.
type GlanceMember struct {
	Member                  MemberRef
	Red, Amber, Green, Grey int
}

// glanceCache holds the last Glance and the stamp of the data it was built from.
type glanceCache struct {
	mu    sync.Mutex // held while building, so concurrent views wait for one build
	stamp string
	g     Glance
	ok    bool
}

// glanceStamp changes whenever a finished test, a repository, a member, a vault, an island or
// the restore settings change: the sequence statement triggers bump with each such write
// (migration 022), read in one statement without touching any table. A write whose
// transaction commits after a rebuild read the stamp it bumped is seen at the latest when the
// glance expires (GlanceMaxAge).
const glanceStamp = `SELECT last_value::text || ':' || is_called::text FROM dashboard_changes`

// FederationGlance returns the federation card of the dashboard, rebuilt only when its data
// changed or it is older than GlanceMaxAge.
func (s *Service) FederationGlance(ctx context.Context) (Glance, error) {
	var stamp string
	if err := s.pool.QueryRow(ctx, glanceStamp).Scan(&stamp); err != nil {
		return Glance{}, fmt.Errorf("dashboard: freshness: %w", err)
	}
	c := s.glance
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now().UTC()
	if c.ok && c.stamp == stamp && now.Sub(c.g.Built) < GlanceMaxAge {
		return c.g, nil
	}
	period := Period{Kind: PeriodCustom, Start: now.AddDate(0, 0, -7), End: now.Add(time.Second)}
	in, err := gatherFederation(ctx, s.pool, period, false)
	if err != nil {
		return Glance{}, err
	}
	c.g, c.stamp, c.ok = glanceOf(Build(in), now), stamp, true
	return c.g, nil
}

// glanceOf reduces a federation report to its glance: the counts of its members' lines.
func glanceOf(r Report, now time.Time) Glance {
	g := Glance{Summary: r.Summary, Built: now}
	g.Summary.Attention = nil
	var need []GlanceMember
	for _, l := range r.Members {
		if l.Repositories > 0 {
			g.Members++
		}
		if l.Red+l.Amber > 0 {
			need = append(need, GlanceMember{Member: l.Member, Red: l.Red, Amber: l.Amber, Green: l.Green, Grey: l.Grey})
		}
	}
	slices.SortStableFunc(need, func(a, b GlanceMember) int {
		return cmp.Or(cmp.Compare(b.Red, a.Red), cmp.Compare(b.Amber, a.Amber), cmp.Compare(a.Member.Slug, b.Member.Slug))
	})
	if len(need) > GlanceAttention {
		g.More = len(need) - GlanceAttention
		need = need[:GlanceAttention]
	}
	g.Attention = need
	return g
}
