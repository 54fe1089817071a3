package vaults

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/quota"
)

// memberNumbers reads what the policy needs about a member; except is a vault whose own
// quota is left out of the allocation (the one being changed), 0 for none.
func memberNumbers(ctx context.Context, q querier, memberID, except int64, now time.Time) (quota.Member, error) {
	var m quota.Member
	err := q.QueryRow(ctx, `SELECT m.name,
		  coalesce((SELECT sum(p.capacity_bytes) FROM pledges p WHERE p.member_id = m.id AND p.status = 'active'), 0)::bigint,
		  coalesce((SELECT sum(g.bytes) FROM quota_grants g WHERE g.member_id = m.id AND g.revoked_at IS NULL
		            AND (g.expires_at IS NULL OR g.expires_at > $3)), 0)::bigint,
		  coalesce((SELECT sum(v.quota_bytes) FROM vaults v WHERE v.member_id = m.id AND v.status <> 'deleted' AND v.id <> $2), 0)::bigint
		FROM members m WHERE m.id = $1`, memberID, except, now).Scan(&m.Name, &m.PledgedBytes, &m.GrantedBytes, &m.AllocatedBytes)
	if err == pgx.ErrNoRows {
		return m, &FieldError{Field: "member", Problem: "no such member"}
	}
	if err != nil {
		return m, fmt.Errorf("member %d quota numbers: %w", memberID, err)
	}
	return m, nil
}

// islandCandidate is an island with the numbers the policy needs.
type islandCandidate struct {
	ID       int64
	Status   string
	Operated bool // by the member asking
	Known    bool // its layout capacity is known
	Quota    quota.Island
}

// islandNumbers reads every island (or one when only is not 0) with its allocation and
// whether memberID operates it; except leaves a vault's own quota out.
func islandNumbers(ctx context.Context, q querier, memberID, only, except int64) ([]islandCandidate, error) {
	rows, err := q.Query(ctx, `SELECT i.id, i.name, i.status, i.replication_factor, i.layout_capacity_bytes,
		  (coalesce((SELECT sum(v.quota_bytes) FROM vaults v WHERE v.island_id = i.id AND v.status <> 'deleted' AND v.id <> $3), 0)
		  -- protected copies held by the island count with their bucket's size (internal/protection)
		  + coalesce((SELECT sum(2 * v.quota_bytes) FROM vault_protection p JOIN vaults v ON v.id = p.vault_id
		      WHERE p.copy_island_id = i.id AND v.status <> 'deleted'), 0))::bigint,
		  EXISTS (SELECT 1 FROM island_operators o WHERE o.island_id = i.id AND o.member_id = $1)
		FROM islands i WHERE $2 = 0 OR i.id = $2 ORDER BY i.id`, memberID, only, except)
	if err != nil {
		return nil, fmt.Errorf("island quota numbers: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (islandCandidate, error) {
		var c islandCandidate
		var capacity *int64
		err := r.Scan(&c.ID, &c.Quota.Name, &c.Status, &c.Quota.ReplicationFactor, &capacity, &c.Quota.AllocatedBytes, &c.Operated)
		if capacity != nil {
			c.Quota.LayoutCapacityBytes, c.Known = *capacity, true
		}
		return c, err
	})
}

// placeable reports whether an island can take new vaults at all (its admin API answers
// and its layout is known).
func (c islandCandidate) placeable() bool {
	return c.Known && c.Status != "unreachable" && c.Status != "unavailable"
}

// place chooses the island of a new vault: among islands the member does not operate that
// can take it, the lowest fill ratio after the allocation wins (then the lowest id). It
// returns the chosen island and the decision, or a refusal explaining the best option.
func place(st Settings, m quota.Member, cands []islandCandidate, requested int64) (islandCandidate, quota.Decision, error) {
	type option struct {
		c islandCandidate
		d quota.Decision
	}
	var opts []option
	for _, c := range cands {
		if c.Operated || !c.placeable() {
			continue
		}
		opts = append(opts, option{c, quota.Check(st.Policy(), m, c.Quota, requested)})
	}
	if len(opts) == 0 {
		return islandCandidate{}, quota.Decision{}, &PlacementError{Problem: "no island can take the vault: every island is operated by the member, unreachable or not yet polled"}
	}
	sort.SliceStable(opts, func(i, j int) bool {
		a, b := opts[i], opts[j]
		if a.d.Allowed != b.d.Allowed {
			return a.d.Allowed
		}
		if a.d.Allowed {
			return a.d.FillRatio < b.d.FillRatio
		}
		// Refused everywhere: explain with the island that came closest.
		return min(a.d.MemberAvailableBytes, a.d.IslandAvailableBytes) > min(b.d.MemberAvailableBytes, b.d.IslandAvailableBytes)
	})
	best := opts[0]
	if !best.d.Allowed {
		msg := best.d.Refusal
		if len(opts) > 1 {
			msg += fmt.Sprintf(" (best of %d islands you do not operate)", len(opts))
		}
		return best.c, best.d, &QuotaError{Decision: best.d, Message: msg}
	}
	return best.c, best.d, nil
}

// IslandQuota is the policy's arithmetic for one member on one island.
type IslandQuota struct {
	IslandID   int64          `json:"island_id"`
	IslandName string         `json:"island_name"`
	Status     string         `json:"status"`
	Operated   bool           `json:"operated"`
	Placeable  bool           `json:"placeable"`
	Decision   quota.Decision `json:"decision"`
}

// QuotaReport explains a member's quota: its pledges, grants and allocations, and for
// every island what it could still place there and why.
type QuotaReport struct {
	MemberID       int64         `json:"member_id"`
	MemberName     string        `json:"member_name"`
	QuotaRatio     float64       `json:"quota_ratio"`
	Overcommit     float64       `json:"overcommit"`
	PledgedBytes   int64         `json:"pledged_bytes"`
	GrantedBytes   int64         `json:"granted_bytes"`
	AllocatedBytes int64         `json:"allocated_bytes"`
	Islands        []IslandQuota `json:"islands"`
	// BestAvailableBytes is the largest vault quota the member could create now (on an
	// island it does not operate), 0 when none.
	BestAvailableBytes int64 `json:"best_available_bytes"`
	BestIslandID       int64 `json:"best_island_id,omitempty"`
}

// Explain returns a member's quota report.
func (s *Service) Explain(ctx context.Context, memberID int64) (QuotaReport, error) {
	st, err := loadSettings(ctx, s.pool)
	if err != nil {
		return QuotaReport{}, err
	}
	m, err := memberNumbers(ctx, s.pool, memberID, 0, s.now())
	if err != nil {
		return QuotaReport{}, err
	}
	cands, err := islandNumbers(ctx, s.pool, memberID, 0, 0)
	if err != nil {
		return QuotaReport{}, err
	}
	r := QuotaReport{MemberID: memberID, MemberName: m.Name, QuotaRatio: st.QuotaRatio, Overcommit: st.Overcommit,
		PledgedBytes: m.PledgedBytes, GrantedBytes: m.GrantedBytes, AllocatedBytes: m.AllocatedBytes, Islands: []IslandQuota{}}
	for _, c := range cands {
		d := quota.Check(st.Policy(), m, c.Quota, 0)
		iq := IslandQuota{IslandID: c.ID, IslandName: c.Quota.Name, Status: c.Status, Operated: c.Operated, Placeable: c.placeable(), Decision: d}
		if !c.Operated && c.placeable() {
			if avail := min(d.MemberAvailableBytes, d.IslandAvailableBytes); avail > r.BestAvailableBytes {
				r.BestAvailableBytes, r.BestIslandID = avail, c.ID
			}
		}
		r.Islands = append(r.Islands, iq)
	}
	return r, nil
}

// quotaCheck applies the policy to one island.
func quotaCheck(st Settings, m quota.Member, c islandCandidate, requested int64) quota.Decision {
	return quota.Check(st.Policy(), m, c.Quota, requested)
}
