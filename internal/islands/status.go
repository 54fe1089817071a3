package islands

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/garage"
)

// Pledge statuses (pledges.status).
const (
	PledgePending   = "pending"   // the node has no storage role in the applied layout
	PledgeActive    = "active"    // in the layout with at least the pledged capacity
	PledgeShort     = "short"     // in the layout with less capacity than pledged
	PledgeDown      = "down"      // unreachable for longer than the threshold
	PledgeWithdrawn = "withdrawn" // withdrawn by its member
)

// NodeObservation is one node as a poll saw it, combining the applied layout (zone,
// capacity) with the cluster status (up, last seen).
type NodeObservation struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname,omitempty"`
	Zone     string `json:"zone,omitempty"`
	// Capacity is the node's storage capacity in the applied layout; nil when the node has
	// no storage role (not in the layout, or a gateway).
	Capacity        *int64 `json:"capacity"`
	Up              bool   `json:"up"`
	LastSeenSecsAgo *int64 `json:"last_seen_secs_ago,omitempty"`
}

// Storage reports whether the node holds data in the applied layout.
func (n NodeObservation) Storage() bool { return n.Capacity != nil && *n.Capacity > 0 }

// ObserveNodes combines a cluster status and layout into node observations, ordered by
// zone then id. Nodes of the layout missing from the status count as down.
func ObserveNodes(st *garage.ClusterStatus, layout *garage.ClusterLayout) []NodeObservation {
	byID := map[string]*NodeObservation{}
	for _, n := range st.Nodes {
		o := &NodeObservation{ID: n.ID, Hostname: n.Hostname, Up: n.IsUp, LastSeenSecsAgo: n.LastSeenSecsAgo}
		if n.Role != nil {
			o.Zone = n.Role.Zone
		}
		byID[n.ID] = o
	}
	for _, r := range layout.Roles {
		o, ok := byID[r.ID]
		if !ok {
			o = &NodeObservation{ID: r.ID}
			byID[r.ID] = o
		}
		o.Zone = r.Zone
		if r.Capacity != nil {
			c := *r.Capacity
			o.Capacity = &c
		}
	}
	out := make([]NodeObservation, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, *byID[id])
	}
	slices.SortStableFunc(out, func(a, b NodeObservation) int { return strings.Compare(a.Zone, b.Zone) })
	return out
}

// LayoutCapacity is the total storage capacity of the nodes in the layout.
func LayoutCapacity(nodes []NodeObservation) int64 {
	var sum int64
	for _, n := range nodes {
		if n.Storage() {
			sum += *n.Capacity
		}
	}
	return sum
}

// PledgeState is a pledge's derived status and the facts behind it.
type PledgeState struct {
	Status         string
	Detail         string
	LayoutCapacity *int64
	NodeUp         *bool
	DownSince      *time.Time
}

// DerivePledge computes a live pledge's status from what a poll saw of its node (nil when
// the cluster does not know the node). prevDownSince is what the previous poll recorded,
// so a node without lastSeenSecsAgo is still counted down from when it was first seen down.
func DerivePledge(capacity int64, node *NodeObservation, prevDownSince *time.Time, now time.Time, downAfter time.Duration) PledgeState {
	if node == nil {
		return PledgeState{Status: PledgePending, Detail: "the node is unknown to the cluster (not connected, not in the layout)"}
	}
	var st PledgeState
	up := node.Up
	st.NodeUp = &up
	if node.Storage() {
		c := *node.Capacity
		st.LayoutCapacity = &c
	}
	if !node.Up {
		since := now
		switch {
		case node.LastSeenSecsAgo != nil:
			since = now.Add(-time.Duration(*node.LastSeenSecsAgo) * time.Second).Truncate(time.Second)
		case prevDownSince != nil:
			since = *prevDownSince
		}
		st.DownSince = &since
		if now.Sub(since) >= downAfter {
			st.Status = PledgeDown
			st.Detail = fmt.Sprintf("unreachable since %s", since.UTC().Format(time.RFC3339))
			return st
		}
	}
	switch {
	case !node.Storage():
		st.Status, st.Detail = PledgePending, "the node has no storage role in the applied layout yet"
	case *node.Capacity < capacity:
		st.Status, st.Detail = PledgeShort, fmt.Sprintf("the layout gives the node %d bytes, %d pledged", *node.Capacity, capacity)
	default:
		st.Status, st.Detail = PledgeActive, ""
	}
	if st.DownSince != nil {
		st.Detail = strings.TrimPrefix(st.Detail+"; unreachable since "+st.DownSince.UTC().Format(time.RFC3339)+", not yet long enough to count as down", "; ")
	}
	return st
}

// IslandWarnings lists what weakens an island's redundancy: fewer distinct zones (member
// organisations) than its replication factor, a member holding more than one zone, or a
// zone shared by several members. nodes is the last observation (nil if none: the live
// pledges' zones are used), pledges the island's pledges.
func IslandWarnings(rf int, nodes []NodeObservation, pledges []Pledge) []string {
	var warnings []string
	zones := map[string]bool{}
	for _, n := range nodes {
		if n.Storage() {
			zones[n.Zone] = true
		}
	}
	live := make([]Pledge, 0, len(pledges))
	for _, p := range pledges {
		if p.WithdrawnAt == nil {
			live = append(live, p)
		}
	}
	if nodes == nil {
		for _, p := range live {
			zones[p.Zone] = true
		}
	}
	if len(zones) < rf {
		warnings = append(warnings, fmt.Sprintf("only %d distinct zones (member organisations) for replication factor %d: some data has several copies in one organisation", len(zones), rf))
	}
	// The zone each live pledge really is in: the layout's when the node has a role.
	zoneOf := map[string]string{}
	for _, n := range nodes {
		if n.Zone != "" {
			zoneOf[n.ID] = n.Zone
		}
	}
	memberZones := map[string]map[string]bool{}
	zoneMembers := map[string]map[string]bool{}
	for _, p := range live {
		z := p.Zone
		if lz, ok := zoneOf[p.NodeID]; ok {
			z = lz
		}
		who := p.MemberSlug
		if who == "" {
			who = fmt.Sprint(p.MemberID)
		}
		if memberZones[who] == nil {
			memberZones[who] = map[string]bool{}
		}
		memberZones[who][z] = true
		if zoneMembers[z] == nil {
			zoneMembers[z] = map[string]bool{}
		}
		zoneMembers[z][who] = true
	}
	for _, m := range slices.Sorted(maps.Keys(memberZones)) {
		if zs := memberZones[m]; len(zs) > 1 && rf > 1 {
			warnings = append(warnings, fmt.Sprintf("member %s holds %d zones (%s): it would hold more than one copy of some data",
				m, len(zs), strings.Join(slices.Sorted(maps.Keys(zs)), ", ")))
		}
	}
	for _, z := range slices.Sorted(maps.Keys(zoneMembers)) {
		if ms := zoneMembers[z]; len(ms) > 1 {
			warnings = append(warnings, fmt.Sprintf("zone %s is shared by members %s: a zone should be one organisation",
				z, strings.Join(slices.Sorted(maps.Keys(ms)), ", ")))
		}
	}
	return warnings
}
