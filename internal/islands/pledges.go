package islands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/problem"
)

// Pledge is storage a member puts at an island's disposal: one Garage node.
type Pledge struct {
	ID                  int64      `json:"id"`
	MemberID            int64      `json:"member_id"`
	MemberSlug          string     `json:"member_slug"`
	IslandID            int64      `json:"island_id"`
	IslandName          string     `json:"island_name"`
	NodeID              string     `json:"node_id"`
	Zone                string     `json:"zone"`
	CapacityBytes       int64      `json:"capacity_bytes"`
	Since               time.Time  `json:"since"`
	WithdrawnAt         *time.Time `json:"withdrawn_at"`
	Status              string     `json:"status"`
	StatusDetail        string     `json:"status_detail"`
	StatusChangedAt     time.Time  `json:"status_changed_at"`
	LayoutCapacityBytes *int64     `json:"layout_capacity_bytes"`
	NodeUp              *bool      `json:"node_up"`
	DownSince           *time.Time `json:"down_since"`
	ObservedAt          *time.Time `json:"observed_at"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

const pledgeColumns = `p.id, p.member_id, m.slug, p.island_id, i.name, p.node_id, p.zone, p.capacity_bytes, p.since,
	p.withdrawn_at, p.status, p.status_detail, p.status_changed_at, p.layout_capacity_bytes, p.node_up, p.down_since,
	p.observed_at, p.created_at, p.updated_at`

const pledgeFrom = ` FROM pledges p JOIN members m ON m.id = p.member_id JOIN islands i ON i.id = p.island_id`

func scanPledge(r pgx.Row) (Pledge, error) {
	var p Pledge
	err := r.Scan(&p.ID, &p.MemberID, &p.MemberSlug, &p.IslandID, &p.IslandName, &p.NodeID, &p.Zone, &p.CapacityBytes,
		&p.Since, &p.WithdrawnAt, &p.Status, &p.StatusDetail, &p.StatusChangedAt, &p.LayoutCapacityBytes, &p.NodeUp,
		&p.DownSince, &p.ObservedAt, &p.CreatedAt, &p.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Pledge{}, ErrNotFound
	}
	return p, err
}

// PledgeGetByID returns a pledge.
func PledgeGetByID(ctx context.Context, q Querier, id int64) (Pledge, error) {
	p, err := scanPledge(q.QueryRow(ctx, `SELECT `+pledgeColumns+pledgeFrom+` WHERE p.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return p, fmt.Errorf("pledge %d: %w", id, err)
	}
	return p, err
}

// PledgeFilter selects pledges for PledgeList.
type PledgeFilter struct {
	MemberID int64
	IslandID int64
	Status   string // one of the Pledge* statuses
	Live     bool   // only pledges not withdrawn
	After    int64  // id cursor
	Limit    int    // default 50, at most 500
}

// PledgeList lists pledges by id.
func PledgeList(ctx context.Context, q Querier, f PledgeFilter) ([]Pledge, error) {
	rows, err := q.Query(ctx, `SELECT `+pledgeColumns+pledgeFrom+`
		WHERE p.id > $1 AND ($2 = 0 OR p.member_id = $2) AND ($3 = 0 OR p.island_id = $3) AND ($4 = '' OR p.status = $4)
		  AND (NOT $5 OR p.withdrawn_at IS NULL)
		ORDER BY p.id LIMIT $6`, f.After, f.MemberID, f.IslandID, f.Status, f.Live, limit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("list pledges: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pledge, error) { return scanPledge(r) })
	if err != nil {
		return nil, fmt.Errorf("list pledges: %w", err)
	}
	return out, nil
}

// PledgeInput is a new pledge.
type PledgeInput struct {
	MemberID      int64
	IslandID      int64
	NodeID        string // 64 hex digits, or a unique prefix of at least 8
	Zone          string // default: the node's zone in the layout
	CapacityBytes int64
	Since         *time.Time // default now
}

var hexRE = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

// PledgeCreate records a pledge after checking with the island's Garage cluster that the
// node exists. Its status is derived at once from the live layout.
func (s *Service) PledgeCreate(ctx context.Context, in PledgeInput) (Pledge, error) {
	in.NodeID = strings.ToLower(strings.TrimSpace(in.NodeID))
	in.Zone = strings.TrimSpace(in.Zone)
	switch {
	case in.CapacityBytes <= 0:
		return Pledge{}, &FieldError{Field: "capacity_bytes", Problem: "must be a positive number of bytes"}
	case !hexRE.MatchString(in.NodeID):
		return Pledge{}, &FieldError{Field: "node_id", Problem: "must be a Garage node id: 64 hex digits (or a unique prefix of at least 8)"}
	case len(in.Zone) > 100:
		return Pledge{}, &FieldError{Field: "zone", Problem: "must be at most 100 characters"}
	}
	isl, err := IslandGetByID(ctx, s.pool, in.IslandID)
	if errors.Is(err, ErrNotFound) {
		return Pledge{}, &FieldError{Field: "island_id", Problem: "no such island"}
	} else if err != nil {
		return Pledge{}, err
	}
	if ok, err := IsOperator(ctx, s.pool, isl.ID, in.MemberID); err != nil {
		return Pledge{}, err
	} else if !ok {
		return Pledge{}, problem.Invalid("island_id", "the member does not operate island %q; only its operators pledge to it", isl.Name)
	}
	nodes, err := s.observeNow(ctx, isl)
	if err != nil {
		return Pledge{}, err
	}
	var node *NodeObservation
	for i := range nodes {
		if strings.HasPrefix(nodes[i].ID, in.NodeID) {
			if node != nil {
				return Pledge{}, &FieldError{Field: "node_id", Problem: "the prefix matches several nodes; give more digits"}
			}
			node = &nodes[i]
		}
	}
	if node == nil {
		return Pledge{}, problem.Invalid("node_id", "unknown node: island %q has no node %s", isl.Name, in.NodeID)
	}
	in.NodeID = node.ID
	if in.Zone == "" {
		if in.Zone = node.Zone; in.Zone == "" {
			return Pledge{}, &FieldError{Field: "zone", Problem: "is required: the node has no zone in the layout yet"}
		}
	}
	now := s.cfg.Now()
	since := now
	if in.Since != nil {
		since = *in.Since
	}
	st := DerivePledge(in.CapacityBytes, node, nil, now, s.cfg.DownAfter)
	var id int64
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO pledges (member_id, island_id, node_id, zone, capacity_bytes, since, status,
			status_detail, status_changed_at, layout_capacity_bytes, node_up, down_since, observed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $9) RETURNING id`,
			in.MemberID, in.IslandID, in.NodeID, in.Zone, in.CapacityBytes, since, st.Status, st.Detail, now,
			st.LayoutCapacity, st.NodeUp, st.DownSince).Scan(&id); err != nil {
			return err
		}
		if err := notify.OutboxAdd(ctx, tx, notify.SourcePledge, id, nil); err != nil {
			return err
		}
		mid := in.MemberID
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "pledge.create", MemberID: &mid, TargetType: "pledge",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"island_id": in.IslandID, "island": isl.Name,
				"node_id": in.NodeID, "zone": in.Zone, "capacity_bytes": in.CapacityBytes, "status": st.Status}})
		return err
	})
	if err != nil {
		return Pledge{}, fmt.Errorf("create pledge: %w", err)
	}
	return PledgeGetByID(ctx, s.pool, id)
}

// PledgeUpdate changes a live pledge's capacity and/or zone. Its status follows at the
// next poll.
func (s *Service) PledgeUpdate(ctx context.Context, id int64, capacity *int64, zone *string) (Pledge, error) {
	if capacity != nil && *capacity <= 0 {
		return Pledge{}, &FieldError{Field: "capacity_bytes", Problem: "must be a positive number of bytes"}
	}
	if zone != nil {
		z := strings.TrimSpace(*zone)
		if z == "" || len(z) > 100 {
			return Pledge{}, &FieldError{Field: "zone", Problem: "must be 1 to 100 characters"}
		}
		zone = &z
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var member int64
		var withdrawn *time.Time
		err := tx.QueryRow(ctx, `SELECT member_id, withdrawn_at FROM pledges WHERE id = $1 FOR UPDATE`, id).Scan(&member, &withdrawn)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if withdrawn != nil {
			return &FieldError{Field: "status", Problem: "the pledge is withdrawn; make a new one"}
		}
		if _, err := tx.Exec(ctx, `UPDATE pledges SET capacity_bytes = coalesce($2, capacity_bytes), zone = coalesce($3, zone),
			updated_at = now() WHERE id = $1`, id, capacity, zone); err != nil {
			return err
		}
		d := map[string]any{}
		if capacity != nil {
			d["capacity_bytes"] = *capacity
		}
		if zone != nil {
			d["zone"] = *zone
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "pledge.update", MemberID: &member, TargetType: "pledge",
			TargetID: strconv.FormatInt(id, 10), Details: d})
		return err
	})
	if err != nil {
		return Pledge{}, fmt.Errorf("update pledge %d: %w", id, err)
	}
	return PledgeGetByID(ctx, s.pool, id)
}

// PledgeWithdraw ends a pledge. Withdrawing a withdrawn pledge changes nothing.
func (s *Service) PledgeWithdraw(ctx context.Context, id int64) (Pledge, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var member int64
		var withdrawn *time.Time
		err := tx.QueryRow(ctx, `SELECT member_id, withdrawn_at FROM pledges WHERE id = $1 FOR UPDATE`, id).Scan(&member, &withdrawn)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || withdrawn != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE pledges SET withdrawn_at = now(), status = 'withdrawn', status_detail = '',
			status_changed_at = now(), updated_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		if err := notify.OutboxAdd(ctx, tx, notify.SourcePledge, id, nil); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "pledge.withdraw", MemberID: &member, TargetType: "pledge",
			TargetID: strconv.FormatInt(id, 10)})
		return err
	})
	if err != nil {
		return Pledge{}, fmt.Errorf("withdraw pledge %d: %w", id, err)
	}
	return PledgeGetByID(ctx, s.pool, id)
}

// Observation is one poll of an island.
type Observation struct {
	ID                  int64             `json:"id"`
	IslandID            int64             `json:"island_id"`
	ObservedAt          time.Time         `json:"observed_at"`
	OK                  bool              `json:"ok"`
	Error               string            `json:"error"`
	Health              *string           `json:"health"`
	KnownNodes          *int              `json:"known_nodes"`
	ConnectedNodes      *int              `json:"connected_nodes"`
	StorageNodes        *int              `json:"storage_nodes"`
	StorageNodesUp      *int              `json:"storage_nodes_up"`
	Partitions          *int              `json:"partitions"`
	PartitionsQuorum    *int              `json:"partitions_quorum"`
	PartitionsAllOK     *int              `json:"partitions_all_ok"`
	LayoutVersion       *int64            `json:"layout_version"`
	LayoutCapacityBytes *int64            `json:"layout_capacity_bytes"`
	Nodes               []NodeObservation `json:"nodes"`
}

const observationColumns = `id, island_id, observed_at, ok, error, health, known_nodes, connected_nodes, storage_nodes,
	storage_nodes_up, partitions, partitions_quorum, partitions_all_ok, layout_version, layout_capacity_bytes, nodes`

func scanObservation(r pgx.Row) (Observation, error) {
	var o Observation
	var nodes []byte
	err := r.Scan(&o.ID, &o.IslandID, &o.ObservedAt, &o.OK, &o.Error, &o.Health, &o.KnownNodes, &o.ConnectedNodes,
		&o.StorageNodes, &o.StorageNodesUp, &o.Partitions, &o.PartitionsQuorum, &o.PartitionsAllOK, &o.LayoutVersion,
		&o.LayoutCapacityBytes, &nodes)
	if errors.Is(err, pgx.ErrNoRows) {
		return Observation{}, ErrNotFound
	}
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(nodes, &o.Nodes); err != nil {
		return o, fmt.Errorf("observation %d nodes: %w", o.ID, err)
	}
	if o.Nodes == nil {
		o.Nodes = []NodeObservation{}
	}
	return o, nil
}

// ObservationList returns an island's observations since a time, oldest first, at most
// limit (the most recent ones).
func ObservationList(ctx context.Context, q Querier, islandID int64, since time.Time, max int) ([]Observation, error) {
	if max <= 0 {
		max = 500
	}
	rows, err := q.Query(ctx, `SELECT * FROM (SELECT `+observationColumns+` FROM island_observations
		WHERE island_id = $1 AND observed_at >= $2 ORDER BY observed_at DESC LIMIT $3) o ORDER BY observed_at`,
		islandID, since, min(max, 5000))
	if err != nil {
		return nil, fmt.Errorf("list observations of island %d: %w", islandID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Observation, error) { return scanObservation(r) })
	if err != nil {
		return nil, fmt.Errorf("list observations of island %d: %w", islandID, err)
	}
	return out, nil
}

// LatestGoodObservation returns an island's most recent successful observation.
func LatestGoodObservation(ctx context.Context, q Querier, islandID int64) (Observation, error) {
	return scanObservation(q.QueryRow(ctx, `SELECT `+observationColumns+` FROM island_observations
		WHERE island_id = $1 AND ok ORDER BY observed_at DESC LIMIT 1`, islandID))
}
