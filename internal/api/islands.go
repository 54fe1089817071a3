package api

import (
	"context"
	"net/http"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/islands"
)

// islandView is an island as the API shows it: never its admin token.
type islandView struct {
	islands.Island
	Operators            []islands.Operator `json:"operators"`
	PledgedCapacityBytes int64              `json:"pledged_capacity_bytes"`
}

type islandDetail struct {
	islandView
	Warnings []string                  `json:"warnings"`
	Nodes    []islands.NodeObservation `json:"nodes"`
	Pledges  []islands.Pledge          `json:"pledges"`
}

type islandPage struct {
	Islands    []islandView `json:"islands"`
	NextCursor *string      `json:"next_cursor"`
}

// IslandList answers GET /v1/islands: every island with its operators and pledged capacity.
func (a *API) IslandList(w http.ResponseWriter, r *http.Request) error {
	req, q, err := listQuery(r, authz.FederationRead, authz.Federation)
	if err != nil {
		return err
	}
	var f islands.IslandFilter
	if f.Status, err = queryOneOf(q, "status", islands.StatusUnknown, islands.StatusHealthy, islands.StatusDegraded,
		islands.StatusUnavailable, islands.StatusUnreachable); err != nil {
		return err
	}
	if ref := memberRef(q.Get("operator")); ref != "" {
		m, err := a.memberByRef(r, "operator", ref)
		if err != nil {
			return err
		}
		f.Operator = m.ID
	}
	pg, err := islands.IslandPage(r.Context(), a.pool, f, req)
	if err != nil {
		return pagingError(err)
	}
	list := pg.Items
	ids := make([]int64, len(list))
	for i, isl := range list {
		ids[i] = isl.ID
	}
	ops, err := islands.OperatorsByIsland(r.Context(), a.pool, ids)
	if err != nil {
		return err
	}
	pledged, err := islands.PledgedByIsland(r.Context(), a.pool, ids)
	if err != nil {
		return err
	}
	out := islandPage{Islands: make([]islandView, 0, len(list))}
	for _, i := range list {
		out.Islands = append(out.Islands, islandView{Island: i, Operators: nonNil(ops[i.ID]), PledgedCapacityBytes: pledged[i.ID]})
	}
	out.NextCursor = nextCursor(pg.Next)
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// islandFor checks act on the federation, then loads the island of the path's {id}.
func (a *API) islandFor(r *http.Request, act authz.Action) (islands.Island, error) {
	return federationObject(r, act, "island", func(ctx context.Context, id int64) (islands.Island, error) {
		return islands.IslandGetByID(ctx, a.pool, id)
	})
}

// IslandGet answers GET /v1/islands/{id}: the island, its operators, nodes as last seen,
// pledges and redundancy warnings.
func (a *API) IslandGet(w http.ResponseWriter, r *http.Request) error {
	isl, err := a.islandFor(r, authz.FederationRead)
	if err != nil {
		return err
	}
	d, err := islands.Detail(r.Context(), a.pool, isl)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, islandDetail{
		islandView: islandView{Island: isl, Operators: nonNil(d.Operators), PledgedCapacityBytes: d.PledgedBytes},
		Warnings:   nonNil(d.Warnings), Nodes: nonNil(d.Nodes), Pledges: nonNil(d.Pledges)})
	return nil
}

type islandRequest struct {
	Name              *string `json:"name"`
	AdminEndpoint     *string `json:"admin_endpoint"`
	AdminToken        *string `json:"admin_token"`
	S3Endpoint        *string `json:"s3_endpoint"`
	S3Region          *string `json:"s3_region"`
	ReplicationFactor *int    `json:"replication_factor"`
}

func (i islandRequest) input() islands.IslandInput {
	return islands.IslandInput{Name: i.Name, AdminEndpoint: i.AdminEndpoint, AdminToken: i.AdminToken,
		S3Endpoint: i.S3Endpoint, S3Region: i.S3Region, ReplicationFactor: i.ReplicationFactor}
}

func (a *API) islandView(r *http.Request, i islands.Island) (islandView, error) {
	ops, err := islands.OperatorList(r.Context(), a.pool, i.ID)
	if err != nil {
		return islandView{}, err
	}
	pledged, err := islands.PledgedByIsland(r.Context(), a.pool, []int64{i.ID})
	return islandView{Island: i, Operators: nonNil(ops), PledgedCapacityBytes: pledged[i.ID]}, err
}

// islandReply answers with the island i as the API shows it (islandView), or err.
func (a *API) islandReply(w http.ResponseWriter, r *http.Request, status int, i islands.Island, err error) error {
	if err != nil {
		return err
	}
	v, err := a.islandView(r, i)
	return reply(w, status, v, err)
}

// IslandCreate answers POST /v1/islands (federation admins). The admin API is checked
// with the token first; the token is sealed and never shown again.
func (a *API) IslandCreate(w http.ResponseWriter, r *http.Request) error {
	req, err := withBody[islandRequest](r, check(principal(r), authz.FederationManage, authz.Federation))
	if err != nil {
		return err
	}
	i, err := a.islands.IslandCreate(r.Context(), req.input())
	return a.islandReply(w, r, http.StatusCreated, i, err)
}

// IslandUpdate answers PATCH /v1/islands/{id} (federation admins).
func (a *API) IslandUpdate(w http.ResponseWriter, r *http.Request) error {
	if done, err := a.gate(w, r, a.planIslandToken); done { // protected when the federation says so: 202 with an approval request
		return err
	}
	cur, err := a.islandFor(r, authz.FederationManage)
	req, err := withBody[islandRequest](r, err)
	if err != nil {
		return err
	}
	i, err := a.islands.IslandUpdate(r.Context(), cur.ID, req.input())
	return a.islandReply(w, r, http.StatusOK, i, err)
}

// IslandDelete answers DELETE /v1/islands/{id} (federation admins): refused while it has
// live pledges.
func (a *API) IslandDelete(w http.ResponseWriter, r *http.Request) error {
	return gatedOn(a, w, r, a.islandFor, authz.FederationManage, a.approvals.PlanIslandDelete, func(cur islands.Island) error {
		return noContent(w, a.islands.IslandDelete(r.Context(), cur.ID))
	})
}

// IslandPoll answers POST /v1/islands/{id}/poll (federation admins): poll it now.
func (a *API) IslandPoll(w http.ResponseWriter, r *http.Request) error {
	cur, err := a.islandFor(r, authz.FederationManage)
	if err != nil {
		return err
	}
	i, err := a.islands.PollIsland(r.Context(), cur.ID)
	return a.islandReply(w, r, http.StatusOK, i, err)
}

// IslandObservations answers GET /v1/islands/{id}/observations: the poll history.
func (a *API) IslandObservations(w http.ResponseWriter, r *http.Request) error {
	isl, err := a.islandFor(r, authz.FederationRead)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	since := time.Now().Add(-24 * time.Hour)
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			return Invalid("since", "must be an RFC 3339 time such as 2025-01-31T12:00:00Z")
		}
	}
	limit, err := queryInt(q.Get("limit"), "limit", 1, 5000)
	if err != nil {
		return err
	}
	obs, err := islands.ObservationList(r.Context(), a.pool, isl.ID, since, int(limit))
	return reply(w, http.StatusOK, map[string]any{"observations": nonNil(obs)}, err)
}

// OperatorList answers GET /v1/islands/{id}/operators.
func (a *API) OperatorList(w http.ResponseWriter, r *http.Request) error {
	isl, err := a.islandFor(r, authz.FederationRead)
	if err != nil {
		return err
	}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := islands.OperatorPage(r.Context(), a.pool, isl.ID, req)
	return replyPage(w, "operators", pg, err)
}

func (a *API) operatorTarget(r *http.Request) (islands.Island, int64, error) {
	isl, err := a.islandFor(r, authz.FederationManage)
	if err != nil {
		return isl, 0, err
	}
	m, err := a.memberFromPath(r, "member", nil)
	return isl, m.ID, err
}

// OperatorAdd answers PUT /v1/islands/{id}/operators/{member} (federation admins).
func (a *API) OperatorAdd(w http.ResponseWriter, r *http.Request) error {
	isl, mid, err := a.operatorTarget(r)
	if err != nil {
		return err
	}
	op, err := a.islands.OperatorAdd(r.Context(), isl.ID, mid)
	return reply(w, http.StatusOK, op, err)
}

// OperatorRemove answers DELETE /v1/islands/{id}/operators/{member} (federation admins).
func (a *API) OperatorRemove(w http.ResponseWriter, r *http.Request) error {
	if done, err := a.gate(w, r, a.planOperatorRemove); done { // protected action: 202 with an approval request
		return err
	}
	isl, mid, err := a.operatorTarget(r)
	if err != nil {
		return err
	}
	return noContent(w, a.islands.OperatorRemove(r.Context(), isl.ID, mid))
}
