package garage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
)

// Health statuses reported by GetClusterHealth.
const (
	// HealthHealthy: connected to every storage node.
	HealthHealthy = "healthy"
	// HealthDegraded: some storage node is unreachable, but every partition
	// still has a write quorum.
	HealthDegraded = "degraded"
	// HealthUnavailable: some partition has no write quorum.
	HealthUnavailable = "unavailable"
)

// ClusterHealth is Garage's summary of the cluster's health.
type ClusterHealth struct {
	// Status is HealthHealthy, HealthDegraded or HealthUnavailable.
	Status           string `json:"status"`
	KnownNodes       int    `json:"knownNodes"`
	ConnectedNodes   int    `json:"connectedNodes"`
	StorageNodes     int    `json:"storageNodes"`
	StorageNodesUp   int    `json:"storageNodesUp"`
	Partitions       int    `json:"partitions"`
	PartitionsQuorum int    `json:"partitionsQuorum"`
	PartitionsAllOK  int    `json:"partitionsAllOk"`
}

// UnmarshalJSON also accepts storageNodesOk, the name of storageNodesUp
// before Garage v2.1.0.
func (h *ClusterHealth) UnmarshalJSON(data []byte) error {
	type plain ClusterHealth
	var w struct {
		plain
		StorageNodesOK *int `json:"storageNodesOk"`
		StorageNodesUp *int `json:"storageNodesUp"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*h = ClusterHealth(w.plain)
	switch {
	case w.StorageNodesUp != nil:
		h.StorageNodesUp = *w.StorageNodesUp
	case w.StorageNodesOK != nil:
		h.StorageNodesUp = *w.StorageNodesOK
	}
	return nil
}

// FreeSpace is the available and total size of a disk partition, in bytes.
type FreeSpace struct {
	Available int64 `json:"available"`
	Total     int64 `json:"total"`
}

// NodeRole is the role of a node in the current layout.
type NodeRole struct {
	Zone string `json:"zone"`
	// Capacity is nil for a gateway node.
	Capacity *int64   `json:"capacity,omitempty"`
	Tags     []string `json:"tags"`
}

// NodeStatus is one node of GetClusterStatus.
type NodeStatus struct {
	ID   string `json:"id"`
	IsUp bool   `json:"isUp"`
	// LastSeenSecsAgo is set for disconnected nodes that were seen since
	// Garage started.
	LastSeenSecsAgo   *int64     `json:"lastSeenSecsAgo,omitempty"`
	Hostname          string     `json:"hostname,omitempty"`
	Addr              string     `json:"addr,omitempty"`
	GarageVersion     string     `json:"garageVersion,omitempty"`
	Draining          bool       `json:"draining"`
	Role              *NodeRole  `json:"role,omitempty"`
	DataPartition     *FreeSpace `json:"dataPartition,omitempty"`
	MetadataPartition *FreeSpace `json:"metadataPartition,omitempty"`
}

// ClusterStatus lists the nodes known to the answering node.
type ClusterStatus struct {
	LayoutVersion int64        `json:"layoutVersion"`
	Nodes         []NodeStatus `json:"nodes"`
}

// Node returns the node whose ID is id, if listed.
func (s *ClusterStatus) Node(id string) (NodeStatus, bool) {
	i := slices.IndexFunc(s.Nodes, func(n NodeStatus) bool { return n.ID == id })
	if i < 0 {
		return NodeStatus{}, false
	}
	return s.Nodes[i], true
}

// NodeInfo describes the Garage daemon of one node.
type NodeInfo struct {
	NodeID         string   `json:"nodeId"`
	GarageVersion  string   `json:"garageVersion"`
	GarageFeatures []string `json:"garageFeatures,omitempty"`
	RustVersion    string   `json:"rustVersion"`
	DBEngine       string   `json:"dbEngine"`
	Hostname       string   `json:"hostname,omitempty"`
}

// NodeInfoResult is GetNodeInfo's answer: per node ID, the info or the error.
type NodeInfoResult struct {
	Success map[string]NodeInfo `json:"success"`
	Error   map[string]string   `json:"error"`
}

// Node selectors accepted by GetNodeInfo besides a node ID (or hex prefix).
const (
	NodeSelf = "self"
	NodeAll  = "*"
)

// GetClusterHealth returns the cluster's health summary.
func (c *Client) GetClusterHealth(ctx context.Context) (*ClusterHealth, error) {
	var out ClusterHealth
	if err := c.get(ctx, "GetClusterHealth", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetClusterStatus returns the nodes, their roles, liveness and disk space.
func (c *Client) GetClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	var out ClusterStatus
	if err := c.get(ctx, "GetClusterStatus", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetNodeInfo returns daemon information of node: NodeSelf, NodeAll, or a
// node ID.
func (c *Client) GetNodeInfo(ctx context.Context, node string) (*NodeInfoResult, error) {
	if node == "" {
		return nil, fmt.Errorf("garage GetNodeInfo: %w: empty node selector", ErrInvalidRequest)
	}
	var out NodeInfoResult
	if err := c.get(ctx, "GetNodeInfo", url.Values{"node": {node}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ZoneRedundancy is the number of distinct zones each partition is stored
// in. The zero value means "maximum" (as many zones as replicas).
type ZoneRedundancy struct {
	// AtLeast is the required number of zones; 0 means maximum.
	AtLeast int
}

// MarshalJSON writes "maximum" or {"atLeast": n}.
func (z ZoneRedundancy) MarshalJSON() ([]byte, error) {
	if z.AtLeast == 0 {
		return []byte(`"maximum"`), nil
	}
	return json.Marshal(struct {
		AtLeast int `json:"atLeast"`
	}{z.AtLeast})
}

// UnmarshalJSON reads "maximum" or {"atLeast": n}.
func (z *ZoneRedundancy) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		if s != "maximum" {
			return fmt.Errorf("unknown zone redundancy %q", s)
		}
		*z = ZoneRedundancy{}
		return nil
	}
	var w struct {
		AtLeast *int `json:"atLeast"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	if w.AtLeast == nil || *w.AtLeast < 1 {
		return errors.New(`zone redundancy must be "maximum" or {"atLeast": n>0}`)
	}
	z.AtLeast = *w.AtLeast
	return nil
}

// LayoutParameters are the parameters of the layout computation.
type LayoutParameters struct {
	ZoneRedundancy ZoneRedundancy `json:"zoneRedundancy"`
}

// LayoutRole is a node's role in the current layout.
type LayoutRole struct {
	ID   string `json:"id"`
	Zone string `json:"zone"`
	// Capacity is nil for a gateway node.
	Capacity         *int64   `json:"capacity,omitempty"`
	StoredPartitions *int64   `json:"storedPartitions,omitempty"`
	UsableCapacity   *int64   `json:"usableCapacity,omitempty"`
	Tags             []string `json:"tags"`
}

// RoleChange is a staged change of a node's role: an assignment (zone,
// capacity, tags, all sent) or a removal. Build it with StorageRole,
// GatewayRole or RemoveRole.
type RoleChange struct {
	ID     string
	Remove bool
	Zone   string
	// Capacity is nil for a gateway node.
	Capacity *int64
	Tags     []string
}

// MinCapacity is the smallest storage capacity Garage accepts, in bytes.
const MinCapacity = 1024

// StorageRole assigns a storage role: zone and capacity in bytes (SI units).
func StorageRole(nodeID, zone string, capacity int64, tags ...string) RoleChange {
	return RoleChange{ID: nodeID, Zone: zone, Capacity: &capacity, Tags: tags}
}

// GatewayRole assigns a gateway role (no storage) in zone.
func GatewayRole(nodeID, zone string, tags ...string) RoleChange {
	return RoleChange{ID: nodeID, Zone: zone, Tags: tags}
}

// RemoveRole removes a node from the layout.
func RemoveRole(nodeID string) RoleChange { return RoleChange{ID: nodeID, Remove: true} }

func (r RoleChange) validate() error {
	switch {
	case r.ID == "":
		return errors.New("role change without node ID")
	case r.Remove:
		if r.Zone != "" || r.Capacity != nil || len(r.Tags) > 0 {
			return fmt.Errorf("removal of node %s carries a role", r.ID)
		}
	case r.Zone == "":
		return fmt.Errorf("role of node %s has no zone", r.ID)
	case r.Capacity != nil && *r.Capacity < MinCapacity:
		return fmt.Errorf("role of node %s: capacity %d below %d bytes", r.ID, *r.Capacity, MinCapacity)
	}
	return nil
}

// MarshalJSON writes {id, remove:true} or {id, zone, capacity, tags} with
// every field present (capacity null for a gateway, tags [] when none).
func (r RoleChange) MarshalJSON() ([]byte, error) {
	if r.Remove {
		return json.Marshal(struct {
			ID     string `json:"id"`
			Remove bool   `json:"remove"`
		}{r.ID, true})
	}
	return json.Marshal(struct {
		ID       string   `json:"id"`
		Zone     string   `json:"zone"`
		Capacity *int64   `json:"capacity"`
		Tags     []string `json:"tags"`
	}{r.ID, r.Zone, r.Capacity, nonNil(r.Tags)})
}

// UnmarshalJSON reads a staged change as Garage reports it.
func (r *RoleChange) UnmarshalJSON(data []byte) error {
	var w struct {
		ID       string   `json:"id"`
		Remove   bool     `json:"remove"`
		Zone     string   `json:"zone"`
		Capacity *int64   `json:"capacity"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*r = RoleChange{ID: w.ID, Remove: w.Remove, Zone: w.Zone, Capacity: w.Capacity, Tags: w.Tags}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ClusterLayout is the current layout and the staged changes.
type ClusterLayout struct {
	Version           int64             `json:"version"`
	Roles             []LayoutRole      `json:"roles"`
	PartitionSize     int64             `json:"partitionSize"`
	Parameters        LayoutParameters  `json:"parameters"`
	StagedRoleChanges []RoleChange      `json:"stagedRoleChanges"`
	StagedParameters  *LayoutParameters `json:"stagedParameters,omitempty"`
}

// Role returns the current role of node id, if any.
func (l *ClusterLayout) Role(id string) (LayoutRole, bool) {
	i := slices.IndexFunc(l.Roles, func(r LayoutRole) bool { return r.ID == id })
	if i < 0 {
		return LayoutRole{}, false
	}
	return l.Roles[i], true
}

// UpdateLayoutParams are changes to stage: role changes and/or parameters.
type UpdateLayoutParams struct {
	Roles      []RoleChange
	Parameters *LayoutParameters
}

// ApplyLayoutResult is ApplyClusterLayout's answer. Message is free text
// (Garage asks not to parse it).
type ApplyLayoutResult struct {
	Message []string      `json:"message"`
	Layout  ClusterLayout `json:"layout"`
}

// GetClusterLayout returns the current layout and the staged changes.
func (c *Client) GetClusterLayout(ctx context.Context) (*ClusterLayout, error) {
	var out ClusterLayout
	if err := c.get(ctx, "GetClusterLayout", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateClusterLayout stages role changes and/or parameters; nothing
// changes until ApplyClusterLayout. Staging the same change again is
// harmless.
func (c *Client) UpdateClusterLayout(ctx context.Context, p UpdateLayoutParams) (*ClusterLayout, error) {
	for _, r := range p.Roles {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("garage UpdateClusterLayout: %w: %w", ErrInvalidRequest, err)
		}
	}
	body := struct {
		Roles      []RoleChange      `json:"roles,omitempty"`
		Parameters *LayoutParameters `json:"parameters,omitempty"`
	}{p.Roles, p.Parameters}
	var out ClusterLayout
	if err := c.post(ctx, "UpdateClusterLayout", nil, body, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApplyClusterLayout applies the staged changes as layout version, which
// Garage requires to be exactly the current version + 1. It is not retried:
// never apply the same version twice. See ApplyStagedLayout.
func (c *Client) ApplyClusterLayout(ctx context.Context, version int64) (*ApplyLayoutResult, error) {
	if version < 1 {
		return nil, fmt.Errorf("garage ApplyClusterLayout: %w: version %d", ErrInvalidRequest, version)
	}
	body := struct {
		Version int64 `json:"version"`
	}{version}
	var out ApplyLayoutResult
	if err := c.post(ctx, "ApplyClusterLayout", nil, body, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApplyStagedLayout reads the current layout version and applies the staged
// changes as version+1. Run it from one place only: two concurrent callers
// race, and one of them gets an error matching ErrInvalidRequest.
func (c *Client) ApplyStagedLayout(ctx context.Context) (*ApplyLayoutResult, error) {
	cur, err := c.GetClusterLayout(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply staged layout: %w", err)
	}
	res, err := c.ApplyClusterLayout(ctx, cur.Version+1)
	if err != nil {
		return nil, fmt.Errorf("apply staged layout as version %d: %w", cur.Version+1, err)
	}
	return res, nil
}
