package islands

import (
	"context"
	"errors"
	"fmt"
)

// PledgedByIsland returns the capacity of the live pledges of every island.
func PledgedByIsland(ctx context.Context, q Querier) (map[int64]int64, error) {
	rows, err := q.Query(ctx, `SELECT island_id, sum(capacity_bytes)::bigint FROM pledges WHERE withdrawn_at IS NULL GROUP BY island_id`)
	if err != nil {
		return nil, fmt.Errorf("pledged capacity: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, sum int64
		if err := rows.Scan(&id, &sum); err != nil {
			return nil, err
		}
		out[id] = sum
	}
	return out, rows.Err()
}

// IslandDetail is what there is to know about an island at a glance.
type IslandDetail struct {
	Operators    []Operator
	Nodes        []NodeObservation // from the last successful poll (nil if none)
	ObservedAt   *Observation      // the last successful poll (nil if none)
	Pledges      []Pledge          // live pledges first, then withdrawn ones
	PledgedBytes int64             // capacity of the live pledges
	Warnings     []string
}

// Detail gathers an island's operators, last observed nodes, pledges and warnings.
func Detail(ctx context.Context, q Querier, isl Island) (IslandDetail, error) {
	var d IslandDetail
	var err error
	if d.Operators, err = OperatorList(ctx, q, isl.ID); err != nil {
		return d, err
	}
	obs, err := LatestGoodObservation(ctx, q, isl.ID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return d, err
	default:
		d.Nodes, d.ObservedAt = obs.Nodes, &obs
	}
	live, err := PledgeList(ctx, q, PledgeFilter{IslandID: isl.ID, Live: true, Limit: 500})
	if err != nil {
		return d, err
	}
	all, err := PledgeList(ctx, q, PledgeFilter{IslandID: isl.ID, Limit: 500})
	if err != nil {
		return d, err
	}
	d.Pledges = live
	for _, p := range all {
		if p.WithdrawnAt != nil {
			d.Pledges = append(d.Pledges, p)
		}
	}
	for _, p := range live {
		d.PledgedBytes += p.CapacityBytes
	}
	d.Warnings = IslandWarnings(isl.ReplicationFactor, d.Nodes, live)
	return d, nil
}
