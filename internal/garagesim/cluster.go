package garagesim

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// partitions is Garage's fixed number of partitions (PARTITION_BITS = 8).
const partitions = 256

// minCapacity is the smallest storage capacity Garage accepts.
const minCapacity = 1024

// simNode is a simulated Garage node.
type simNode struct {
	id       string
	hostname string
	addr     string
	up       bool
	lastSeen time.Time
	// disk overrides the simulated data partition when set.
	diskAvail, diskTotal *int64
}

type role struct {
	zone     string
	capacity *int64 // nil: gateway
	tags     []string
}

// stagedChange is a staged role assignment or removal.
type stagedChange struct {
	remove bool
	role   role
}

// layoutState is the current layout, its partition assignment and what is
// staged for the next version.
type layoutState struct {
	version       int64
	roles         map[string]role
	zoneRed       int // 0: maximum
	staged        map[string]stagedChange
	stagedZoneRed *int
	// assignment[p] lists the nodes storing partition p.
	assignment    [][]string
	stored        map[string]int64
	partitionSize int64
}

func (s *Sim) initCluster() error {
	s.layout.roles = map[string]role{}
	s.layout.staged = map[string]stagedChange{}
	nodes := s.cfg.Nodes
	if len(nodes) == 0 {
		for i := range s.cfg.ReplicationFactor {
			nodes = append(nodes, NodeConfig{Hostname: fmt.Sprintf("garagesim-%d", i+1), Zone: fmt.Sprintf("zone-%d", i+1), Capacity: DefaultNodeCapacity})
		}
	}
	roles := map[string]role{}
	for i, nc := range nodes {
		n := s.connectNodeLocked(cmpOr(nc.Hostname, fmt.Sprintf("garagesim-%d", i+1)))
		if i == 0 {
			s.selfID = n.id
		}
		if nc.Zone != "" {
			r := role{zone: nc.Zone, tags: []string{}}
			if nc.Capacity > 0 {
				c := nc.Capacity
				r.capacity = &c
			}
			roles[n.id] = r
		}
	}
	if len(roles) > 0 {
		if err := s.commitLayoutLocked(roles, 0); err != nil {
			return fmt.Errorf("garagesim: initial layout: %w", err)
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Sim) connectNodeLocked(hostname string) *simNode {
	n := &simNode{id: randomHex(32), hostname: hostname, up: true, lastSeen: s.now(),
		addr: fmt.Sprintf("10.42.0.%d:3901", len(s.nodes)+1)}
	s.nodes = append(s.nodes, n)
	return n
}

func (s *Sim) node(id string) *simNode {
	for _, n := range s.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// commitLayoutLocked installs roles as the next layout version after
// checking Garage's constraints, and computes the partition assignment.
func (s *Sim) commitLayoutLocked(roles map[string]role, zoneRed int) error {
	assign, stored, psize, err := assignPartitions(roles, s.cfg.ReplicationFactor, zoneRed)
	if err != nil {
		return err
	}
	s.layout.version++
	s.layout.roles = roles
	s.layout.zoneRed = zoneRed
	s.layout.assignment, s.layout.stored, s.layout.partitionSize = assign, stored, psize
	return nil
}

// assignPartitions spreads the 256 partitions over the storage nodes: each
// partition gets rf replicas, one in each of zr distinct zones first, then on
// any other node. It ignores capacities when placing (Garage optimises a
// flow graph), but computes partitionSize from them as Garage does: the
// largest size such that every node holds its partitions.
func assignPartitions(roles map[string]role, rf, zoneRed int) ([][]string, map[string]int64, int64, error) {
	var storage []string
	zoneNodes := map[string][]string{}
	for _, id := range slices.Sorted(maps.Keys(roles)) {
		r := roles[id]
		if r.capacity != nil {
			storage = append(storage, id)
			zoneNodes[r.zone] = append(zoneNodes[r.zone], id)
		}
	}
	zones := slices.Sorted(maps.Keys(zoneNodes))
	if len(storage) < rf {
		return nil, nil, 0, fmt.Errorf("The number of nodes with positive capacity (%d) is smaller than the replication factor (%d).", len(storage), rf)
	}
	zr := min(len(zones), rf)
	if zoneRed > 0 {
		if zoneRed > len(zones) {
			return nil, nil, 0, fmt.Errorf("The number of zones with non-zero capacity (%d) is smaller than the redundancy parameter (%d)", len(zones), zoneRed)
		}
		zr = zoneRed
	}
	assign := make([][]string, partitions)
	stored := map[string]int64{}
	for p := range partitions {
		var reps []string
		for i := range zr {
			zn := zoneNodes[zones[(p+i)%len(zones)]]
			reps = append(reps, zn[(p/len(zones))%len(zn)])
		}
		for i := 0; len(reps) < rf; i++ {
			if id := storage[(p+i)%len(storage)]; !slices.Contains(reps, id) {
				reps = append(reps, id)
			}
		}
		assign[p] = reps
		for _, id := range reps {
			stored[id]++
		}
	}
	var psize int64 = -1
	for id, n := range stored {
		if sz := *roles[id].capacity / n; psize < 0 || sz < psize {
			psize = sz
		}
	}
	return assign, stored, max(psize, 0), nil
}

// Wire shapes.

type healthWire struct {
	Status           string `json:"status"`
	KnownNodes       int    `json:"knownNodes"`
	ConnectedNodes   int    `json:"connectedNodes"`
	StorageNodes     int    `json:"storageNodes"`
	StorageNodesUp   int    `json:"storageNodesUp"`
	Partitions       int    `json:"partitions"`
	PartitionsQuorum int    `json:"partitionsQuorum"`
	PartitionsAllOk  int    `json:"partitionsAllOk"`
}

type freeSpaceWire struct {
	Available int64 `json:"available"`
	Total     int64 `json:"total"`
}

type nodeRoleWire struct {
	Zone     string   `json:"zone"`
	Capacity *int64   `json:"capacity"`
	Tags     []string `json:"tags"`
}

type nodeWire struct {
	ID                string         `json:"id"`
	IsUp              bool           `json:"isUp"`
	LastSeenSecsAgo   *int64         `json:"lastSeenSecsAgo"`
	Hostname          *string        `json:"hostname"`
	Addr              *string        `json:"addr"`
	GarageVersion     *string        `json:"garageVersion"`
	Draining          bool           `json:"draining"`
	Role              *nodeRoleWire  `json:"role"`
	DataPartition     *freeSpaceWire `json:"dataPartition"`
	MetadataPartition *freeSpaceWire `json:"metadataPartition"`
}

type statusWire struct {
	LayoutVersion int64      `json:"layoutVersion"`
	Nodes         []nodeWire `json:"nodes"`
}

type layoutRoleWire struct {
	ID               string   `json:"id"`
	Zone             string   `json:"zone"`
	Capacity         *int64   `json:"capacity"`
	StoredPartitions *int64   `json:"storedPartitions"`
	UsableCapacity   *int64   `json:"usableCapacity"`
	Tags             []string `json:"tags"`
}

type layoutParamsWire struct {
	ZoneRedundancy any `json:"zoneRedundancy"`
}

func zoneRedWire(zr int) layoutParamsWire {
	if zr == 0 {
		return layoutParamsWire{ZoneRedundancy: "maximum"}
	}
	return layoutParamsWire{ZoneRedundancy: map[string]int{"atLeast": zr}}
}

type layoutWire struct {
	Version           int64             `json:"version"`
	Roles             []layoutRoleWire  `json:"roles"`
	PartitionSize     int64             `json:"partitionSize"`
	Parameters        layoutParamsWire  `json:"parameters"`
	StagedRoleChanges []any             `json:"stagedRoleChanges"`
	StagedParameters  *layoutParamsWire `json:"stagedParameters"`
}

// healthLocked computes Garage's health summary from the nodes' liveness and
// the partition assignment: quorum is the write quorum of consistent mode
// (rf - (rf+1)/2 + 1).
func (s *Sim) healthLocked() healthWire {
	h := healthWire{KnownNodes: len(s.nodes), Partitions: partitions}
	up := map[string]bool{}
	for _, n := range s.nodes {
		if n.up {
			h.ConnectedNodes++
			up[n.id] = true
		}
	}
	for id, r := range s.layout.roles {
		if r.capacity != nil {
			h.StorageNodes++
			if up[id] {
				h.StorageNodesUp++
			}
		}
	}
	rf := s.cfg.ReplicationFactor
	quorum := rf - (rf+1)/2 + 1
	for _, reps := range s.layout.assignment {
		n := 0
		for _, id := range reps {
			if up[id] {
				n++
			}
		}
		if n >= min(quorum, len(reps)) && n > 0 {
			h.PartitionsQuorum++
		}
		if n == len(reps) && n > 0 {
			h.PartitionsAllOk++
		}
	}
	switch {
	case h.PartitionsAllOk == partitions && h.StorageNodesUp == h.StorageNodes:
		h.Status = "healthy"
	case h.PartitionsQuorum == partitions:
		h.Status = "degraded"
	default:
		h.Status = "unavailable"
	}
	return h
}

func (s *Sim) getClusterHealth(_ *http.Request) (any, *apiError) { return s.healthLocked(), nil }

func (s *Sim) getClusterStatus(_ *http.Request) (any, *apiError) {
	now := s.now()
	version := GarageVersion
	out := statusWire{LayoutVersion: s.layout.version, Nodes: []nodeWire{}}
	var storageNodes int64
	for _, r := range s.layout.roles {
		if r.capacity != nil {
			storageNodes++
		}
	}
	used := s.totalUsedBytes() * int64(s.cfg.ReplicationFactor) / max(storageNodes, 1)
	for _, n := range s.nodes {
		w := nodeWire{ID: n.id, IsUp: n.up, Hostname: &n.hostname, Addr: &n.addr, GarageVersion: &version}
		if !n.up {
			secs := int64(now.Sub(n.lastSeen) / time.Second)
			w.LastSeenSecsAgo = &secs
		}
		total := DefaultNodeCapacity
		if r, ok := s.layout.roles[n.id]; ok {
			w.Role = &nodeRoleWire{Zone: r.zone, Capacity: r.capacity, Tags: nonNil(r.tags)}
			if r.capacity != nil {
				total = *r.capacity
			}
		}
		disk := freeSpaceWire{Total: total, Available: max(total-used, 0)}
		if n.diskTotal != nil {
			disk = freeSpaceWire{Total: *n.diskTotal, Available: *n.diskAvail}
		}
		w.DataPartition = &disk
		w.MetadataPartition = &freeSpaceWire{Total: disk.Total, Available: disk.Available}
		out.Nodes = append(out.Nodes, w)
	}
	return out, nil
}

func (s *Sim) layoutWire() layoutWire {
	out := layoutWire{
		Version: s.layout.version, Roles: []layoutRoleWire{}, PartitionSize: s.layout.partitionSize,
		Parameters: zoneRedWire(s.layout.zoneRed), StagedRoleChanges: []any{},
	}
	for _, id := range slices.Sorted(maps.Keys(s.layout.roles)) {
		r := s.layout.roles[id]
		w := layoutRoleWire{ID: id, Zone: r.zone, Capacity: r.capacity, Tags: nonNil(r.tags)}
		if r.capacity != nil {
			st := s.layout.stored[id]
			usable := st * s.layout.partitionSize
			w.StoredPartitions, w.UsableCapacity = &st, &usable
		}
		out.Roles = append(out.Roles, w)
	}
	for _, id := range slices.Sorted(maps.Keys(s.layout.staged)) {
		c := s.layout.staged[id]
		if c.remove {
			out.StagedRoleChanges = append(out.StagedRoleChanges, map[string]any{"id": id, "remove": true})
			continue
		}
		out.StagedRoleChanges = append(out.StagedRoleChanges, struct {
			ID string `json:"id"`
			nodeRoleWire
		}{id, nodeRoleWire{Zone: c.role.zone, Capacity: c.role.capacity, Tags: nonNil(c.role.tags)}})
	}
	if s.layout.stagedZoneRed != nil {
		p := zoneRedWire(*s.layout.stagedZoneRed)
		out.StagedParameters = &p
	}
	return out
}

func (s *Sim) getClusterLayout(_ *http.Request) (any, *apiError) { return s.layoutWire(), nil }

type roleChangeWire struct {
	ID       *string         `json:"id"`
	Remove   *bool           `json:"remove"`
	Zone     *string         `json:"zone"`
	Capacity json.RawMessage `json:"capacity"`
	Tags     *[]string       `json:"tags"`
}

type updateLayoutWire struct {
	Roles      []roleChangeWire `json:"roles"`
	Parameters *struct {
		ZoneRedundancy json.RawMessage `json:"zoneRedundancy"`
	} `json:"parameters"`
}

func validNodeID(id string) bool {
	b, err := hex.DecodeString(id)
	return err == nil && len(b) == 32
}

// parseZoneRed reads "maximum" (0) or {"atLeast": n} with 1 <= n <= rf.
func parseZoneRed(raw json.RawMessage, rf int) (int, *apiError) {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		if str == "maximum" {
			return 0, nil
		}
		return 0, badRequest("Invalid zoneRedundancy %q", str)
	}
	var obj struct {
		AtLeast *int `json:"atLeast"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.AtLeast == nil {
		return 0, badRequest("Invalid zoneRedundancy: expected \"maximum\" or {\"atLeast\": n}")
	}
	if *obj.AtLeast < 1 || *obj.AtLeast > rf {
		return 0, badRequest("zone redundancy must be between 1 and replication factor (%d)", rf)
	}
	return *obj.AtLeast, nil
}

// updateClusterLayout stages changes. Each role needs zone, capacity (bytes
// >= 1024, or null for a gateway) and tags, or {id, remove: true}.
func (s *Sim) updateClusterLayout(r *http.Request) (any, *apiError) {
	var req updateLayoutWire
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, aerr
	}
	changes := map[string]stagedChange{}
	for i, rc := range req.Roles {
		if rc.ID == nil || !validNodeID(*rc.ID) {
			return nil, badRequest("roles[%d]: id must be a full 64-hex node ID", i)
		}
		id := *rc.ID
		if rc.Remove != nil {
			if !*rc.Remove || rc.Zone != nil || rc.Capacity != nil || rc.Tags != nil {
				return nil, badRequest("roles[%d]: a removal is {id, remove: true}", i)
			}
			changes[id] = stagedChange{remove: true}
			continue
		}
		if rc.Zone == nil || *rc.Zone == "" || rc.Capacity == nil || rc.Tags == nil {
			return nil, badRequest("roles[%d]: zone, capacity and tags are all required", i)
		}
		ro := role{zone: *rc.Zone, tags: slices.Clone(*rc.Tags)}
		if !isNull(rc.Capacity) {
			var c int64
			if err := json.Unmarshal(rc.Capacity, &c); err != nil {
				return nil, badRequest("roles[%d]: capacity must be an integer number of bytes or null", i)
			}
			if c < minCapacity {
				return nil, badRequest("roles[%d]: capacity must be at least %d bytes", i, minCapacity)
			}
			ro.capacity = &c
		}
		changes[id] = stagedChange{role: ro}
	}
	var zr *int
	if p := req.Parameters; p != nil {
		v, aerr := parseZoneRed(p.ZoneRedundancy, s.cfg.ReplicationFactor)
		if aerr != nil {
			return nil, aerr
		}
		zr = &v
	}
	maps.Copy(s.layout.staged, changes)
	if zr != nil {
		s.layout.stagedZoneRed = zr
	}
	return s.layoutWire(), nil
}

// stagedRoles is the role map the staged changes would produce.
func (s *Sim) stagedRoles() map[string]role {
	roles := maps.Clone(s.layout.roles)
	for id, c := range s.layout.staged {
		if c.remove {
			delete(roles, id)
		} else {
			roles[id] = c.role
		}
	}
	return roles
}

func (s *Sim) applyClusterLayout(r *http.Request) (any, *apiError) {
	var req struct {
		Version *int64 `json:"version"`
	}
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, aerr
	}
	if req.Version == nil {
		return nil, badRequest("version is required")
	}
	if *req.Version != s.layout.version+1 {
		return nil, badRequest("Invalid new layout version: expected %d, got %d", s.layout.version+1, *req.Version)
	}
	zr := s.layout.zoneRed
	if s.layout.stagedZoneRed != nil {
		zr = *s.layout.stagedZoneRed
	}
	if err := s.commitLayoutLocked(s.stagedRoles(), zr); err != nil {
		return nil, badRequest("%s", err.Error())
	}
	s.layout.staged = map[string]stagedChange{}
	s.layout.stagedZoneRed = nil
	msg := []string{
		fmt.Sprintf("Layout version %d applied by garagesim.", s.layout.version),
		fmt.Sprintf("Partition size: %d bytes.", s.layout.partitionSize),
	}
	return struct {
		Message []string   `json:"message"`
		Layout  layoutWire `json:"layout"`
	}{msg, s.layoutWire()}, nil
}

func (s *Sim) revertClusterLayout(_ *http.Request) (any, *apiError) {
	s.layout.staged = map[string]stagedChange{}
	s.layout.stagedZoneRed = nil
	return s.layoutWire(), nil
}

type nodeInfoWire struct {
	NodeID         string   `json:"nodeId"`
	GarageVersion  string   `json:"garageVersion"`
	GarageFeatures []string `json:"garageFeatures"`
	RustVersion    string   `json:"rustVersion"`
	DBEngine       string   `json:"dbEngine"`
	Hostname       *string  `json:"hostname"`
}

// getNodeInfo answers ?node=self|*|<hex prefix>. A node that is down lands in
// the error map, as in Garage's multi-node responses.
func (s *Sim) getNodeInfo(r *http.Request) (any, *apiError) {
	sel := r.URL.Query().Get("node")
	var targets []*simNode
	switch sel {
	case "":
		return nil, badRequest("node is required")
	case "self":
		targets = []*simNode{s.node(s.selfID)}
	case "*":
		targets = s.nodes
	default:
		for _, n := range s.nodes {
			if strings.HasPrefix(n.id, strings.ToLower(sel)) {
				targets = append(targets, n)
			}
		}
		if len(targets) != 1 {
			return nil, badRequest("%d nodes match %q", len(targets), sel)
		}
	}
	out := struct {
		Success map[string]nodeInfoWire `json:"success"`
		Error   map[string]string       `json:"error"`
	}{map[string]nodeInfoWire{}, map[string]string{}}
	for _, n := range targets {
		if !n.up {
			out.Error[n.id] = "Could not reach node (simulated: node is down)"
			continue
		}
		out.Success[n.id] = nodeInfoWire{
			NodeID: n.id, GarageVersion: GarageVersion, GarageFeatures: []string{"k2v", "lmdb", "metrics"},
			RustVersion: "1.86.0", DBEngine: "LMDB (simulated)", Hostname: &n.hostname,
		}
	}
	return out, nil
}
