package islands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/paging"
)

// PollerActor is the audit actor of the health poller.
const PollerActor = "island-poller"

// observeNow reads an island's cluster status and layout within CallTimeout, for a
// request (pledging a node).
func (s *Service) observeNow(ctx context.Context, isl Island) ([]NodeObservation, error) {
	tok, err := s.adminToken(ctx, isl.ID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	c := s.client(isl.AdminEndpoint, tok, s.cfg.CallTimeout)
	st, err := c.GetClusterStatus(ctx)
	if err != nil {
		return nil, &UnreachableError{Island: isl.Name, Operation: "GetClusterStatus", Err: err}
	}
	layout, err := c.GetClusterLayout(ctx)
	if err != nil {
		return nil, &UnreachableError{Island: isl.Name, Operation: "GetClusterLayout", Err: err}
	}
	return ObserveNodes(st, layout), nil
}

// snapshot is what one poll of an island returned.
type snapshot struct {
	health *garage.ClusterHealth
	nodes  []NodeObservation
	layout *garage.ClusterLayout
	err    error
}

// fetch polls one island's admin API: health, status and layout, bounded by PollTimeout
// as a whole (each call gets a third of it, and one retry at most within the bound).
func (s *Service) fetch(ctx context.Context, isl Island) snapshot {
	tok, err := s.adminToken(ctx, isl.ID)
	if err != nil {
		return snapshot{err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PollTimeout)
	defer cancel()
	c := garage.New(garage.Config{Endpoint: isl.AdminEndpoint, Token: tok, Timeout: s.cfg.PollTimeout / 3, MaxAttempts: 1,
		Logger: s.log})
	var out snapshot
	if out.health, err = c.GetClusterHealth(ctx); err != nil {
		return snapshot{err: &UnreachableError{Island: isl.Name, Operation: "GetClusterHealth", Err: err}}
	}
	st, err := c.GetClusterStatus(ctx)
	if err != nil {
		return snapshot{err: &UnreachableError{Island: isl.Name, Operation: "GetClusterStatus", Err: err}}
	}
	if out.layout, err = c.GetClusterLayout(ctx); err != nil {
		return snapshot{err: &UnreachableError{Island: isl.Name, Operation: "GetClusterLayout", Err: err}}
	}
	out.nodes = ObserveNodes(st, out.layout)
	return out
}

// PollAll polls every island concurrently, each within PollTimeout, stores what it saw as
// history, derives pledge statuses, and marks an island whose admin API fails unreachable
// with the error. One slow or failing island delays none of the others. The returned error
// joins the islands' storage failures (an unreachable island is an observation, not an error).
func (s *Service) PollAll(ctx context.Context) error {
	ctx = audit.WithActor(ctx, audit.System(PollerActor))
	list, err := s.allIslands(ctx)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, isl := range list {
		wg.Go(func() {
			if _, err := s.poll(ctx, isl); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if _, err := s.pool.Exec(ctx, `DELETE FROM island_observations WHERE observed_at < $1`,
		s.cfg.Now().Add(-s.cfg.History)); err != nil {
		errs = append(errs, fmt.Errorf("prune island observations: %w", err))
	}
	return errors.Join(errs...)
}

func (s *Service) allIslands(ctx context.Context) ([]Island, error) {
	return paging.All(ctx, maxWholeList, func(ctx context.Context, r paging.Request) (paging.Page[Island], error) {
		return IslandPage(ctx, s.pool, IslandFilter{}, r)
	})
}

// maxWholeList bounds the lists read whole inside this package (far above any federation).
const maxWholeList = 1 << 20

// PollIsland polls one island now and returns it as updated.
func (s *Service) PollIsland(ctx context.Context, id int64) (Island, error) {
	isl, err := IslandGetByID(ctx, s.pool, id)
	if err != nil {
		return Island{}, err
	}
	return s.poll(audit.WithActor(ctx, audit.System(PollerActor)), isl)
}

// poll fetches and records one island.
func (s *Service) poll(ctx context.Context, isl Island) (Island, error) {
	snap := s.fetch(ctx, isl)
	now := s.cfg.Now().UTC()
	if snap.err != nil {
		if ctx.Err() != nil {
			return isl, ctx.Err() // shutting down: not the island's fault
		}
		s.log.WarnContext(ctx, "island unreachable", "island", isl.Name, "island_id", isl.ID, "err", snap.err)
	}
	err := s.tx(ctx, func(tx pgx.Tx) error { return s.record(ctx, tx, isl, snap, now) })
	if err != nil {
		return isl, fmt.Errorf("record poll of island %q: %w", isl.Name, err)
	}
	return IslandGetByID(ctx, s.pool, isl.ID)
}

// record stores one poll: the observation, the island's status, and its pledges' statuses.
// Status transitions are audited; routine observations are not.
func (s *Service) record(ctx context.Context, tx pgx.Tx, isl Island, snap snapshot, now time.Time) error {
	islandID := strconv.FormatInt(isl.ID, 10)
	if snap.err != nil {
		msg := snap.err.Error()
		if _, err := tx.Exec(ctx, `INSERT INTO island_observations (island_id, observed_at, ok, error) VALUES ($1, $2, false, $3)`,
			isl.ID, now, msg); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE islands SET status = 'unreachable', status_error = $2, last_polled_at = $3 WHERE id = $1`,
			isl.ID, msg, now); err != nil {
			return err
		}
		if isl.Status != StatusUnreachable {
			_, err := audit.Record(ctx, tx, audit.Entry{Action: "island.status_change", TargetType: "island", TargetID: islandID,
				Details: map[string]any{"from": isl.Status, "to": StatusUnreachable, "error": msg}})
			return err
		}
		return nil
	}
	h := snap.health
	capacity := LayoutCapacity(snap.nodes)
	nodes, err := json.Marshal(snap.nodes)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO island_observations (island_id, observed_at, ok, health, known_nodes, connected_nodes,
		storage_nodes, storage_nodes_up, partitions, partitions_quorum, partitions_all_ok, layout_version, layout_capacity_bytes, nodes)
		VALUES ($1, $2, true, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, isl.ID, now, h.Status, h.KnownNodes,
		h.ConnectedNodes, h.StorageNodes, h.StorageNodesUp, h.Partitions, h.PartitionsQuorum, h.PartitionsAllOK,
		snap.layout.Version, capacity, nodes); err != nil {
		return err
	}
	status := h.Status
	switch status {
	case StatusHealthy, StatusDegraded, StatusUnavailable:
	default:
		status = StatusUnavailable // an unknown health word from a newer Garage: assume the worst
	}
	if _, err := tx.Exec(ctx, `UPDATE islands SET status = $2, status_error = '', last_polled_at = $3, last_ok_at = $3,
		layout_version = $4, layout_capacity_bytes = $5 WHERE id = $1`, isl.ID, status, now, snap.layout.Version, capacity); err != nil {
		return err
	}
	if isl.Status != status {
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "island.status_change", TargetType: "island", TargetID: islandID,
			Details: map[string]any{"from": isl.Status, "to": status}}); err != nil {
			return err
		}
	}
	pledges, err := paging.All(ctx, maxWholeList, func(ctx context.Context, r paging.Request) (paging.Page[Pledge], error) {
		return PledgePage(ctx, tx, PledgeFilter{IslandID: isl.ID, Live: true}, r)
	})
	if err != nil {
		return err
	}
	byID := map[string]*NodeObservation{}
	for i := range snap.nodes {
		byID[snap.nodes[i].ID] = &snap.nodes[i]
	}
	for _, p := range pledges {
		st := DerivePledge(p.CapacityBytes, byID[p.NodeID], p.DownSince, now, s.cfg.DownAfter)
		changed := st.Status != p.Status
		if _, err := tx.Exec(ctx, `UPDATE pledges SET status = $2, status_detail = $3, layout_capacity_bytes = $4, node_up = $5,
			down_since = $6, observed_at = $7, status_changed_at = CASE WHEN $8 THEN $7 ELSE status_changed_at END
			WHERE id = $1`, p.ID, st.Status, st.Detail, st.LayoutCapacity, st.NodeUp, st.DownSince, now, changed); err != nil {
			return err
		}
		if changed {
			if err := notify.OutboxAdd(ctx, tx, notify.SourcePledge, p.ID, nil); err != nil {
				return err
			}
			member := p.MemberID
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "pledge.status_change", MemberID: &member, TargetType: "pledge",
				TargetID: strconv.FormatInt(p.ID, 10), Details: map[string]any{"island": isl.Name, "node_id": p.NodeID,
					"from": p.Status, "to": st.Status, "detail": st.Detail}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// RunPoller runs PollAll at once and then every interval until ctx ends. Errors are
// logged; the loop carries on.
func (s *Service) RunPoller(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return errors.New("islands: poll interval must be positive")
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.PollAll(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "island poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
