package islands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PledgedByIsland returns the capacity of the live pledges of these islands (one statement
// through the island index: a page of islands reads its own pledges, not the federation's).
func PledgedByIsland(ctx context.Context, q Querier, ids []int64) (map[int64]int64, error) {
	rows, err := q.Query(ctx, `SELECT island_id, sum(capacity_bytes)::bigint FROM pledges
		WHERE island_id = ANY($1) AND withdrawn_at IS NULL GROUP BY island_id`, ids)
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
	if _, err := IslandGetByID(ctx, q, isl.ID); err != nil {
		return IslandDetail{}, err
	}
	ds, err := Details(ctx, q, []Island{isl})
	if err != nil {
		return IslandDetail{}, err
	}
	return ds[isl.ID], nil
}

// Details gathers the detail of several islands in three statements whatever their number
// (operators, each island's latest good observation, pledges), for list pages.
func Details(ctx context.Context, q Querier, isls []Island) (map[int64]IslandDetail, error) {
	out := make(map[int64]IslandDetail, len(isls))
	if len(isls) == 0 {
		return out, nil
	}
	ids := make([]int64, len(isls))
	for i, isl := range isls {
		ids[i] = isl.ID
	}
	ops, err := operatorQuery(ctx, q, `o.island_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT o.* FROM unnest($1::bigint[]) AS x(id)
		CROSS JOIN LATERAL (SELECT `+observationColumns+` FROM island_observations
			WHERE island_id = x.id AND ok ORDER BY observed_at DESC LIMIT 1) o`, ids)
	if err != nil {
		return nil, fmt.Errorf("latest observations: %w", err)
	}
	obs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Observation, error) { return scanObservation(r) })
	if err != nil {
		return nil, fmt.Errorf("latest observations: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT `+pledgeColumns+pledgeFrom+` WHERE p.island_id = ANY($1) ORDER BY p.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("pledges of islands: %w", err)
	}
	pledges, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pledge, error) { return scanPledge(r) })
	if err != nil {
		return nil, fmt.Errorf("pledges of islands: %w", err)
	}
	byIsland := map[int64]*IslandDetail{}
	for _, isl := range isls {
		byIsland[isl.ID] = &IslandDetail{}
	}
	for _, o := range ops {
		d := byIsland[o.IslandID]
		d.Operators = append(d.Operators, o)
	}
	for i := range obs {
		o := obs[i]
		d := byIsland[o.IslandID]
		d.Nodes, d.ObservedAt = o.Nodes, &o
	}
	withdrawn := map[int64][]Pledge{}
	for _, p := range pledges { // live pledges first, then withdrawn ones, each by id
		d := byIsland[p.IslandID]
		if p.WithdrawnAt != nil {
			withdrawn[p.IslandID] = append(withdrawn[p.IslandID], p)
			continue
		}
		d.Pledges = append(d.Pledges, p)
		d.PledgedBytes += p.CapacityBytes
	}
	for _, isl := range isls {
		d := byIsland[isl.ID]
		live := d.Pledges
		d.Pledges = append(d.Pledges, withdrawn[isl.ID]...)
		d.Warnings = IslandWarnings(isl.ReplicationFactor, d.Nodes, live)
		out[isl.ID] = *d
	}
	return out, nil
}
