package islands

import (
	"testing"
	"time"
)

func TestDerivePledge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := func(v int64) *int64 { return &v }
	earlier := now.Add(-10 * time.Minute)
	for _, tc := range []struct {
		name      string
		node      *NodeObservation
		prev      *time.Time
		downAfter time.Duration
		want      string
	}{
		{"unknown node", nil, nil, 0, PledgePending},
		{"no role", &NodeObservation{ID: "n", Up: true}, nil, 0, PledgePending},
		{"gateway", &NodeObservation{ID: "n", Up: true, Capacity: c(0)}, nil, 0, PledgePending},
		{"full", &NodeObservation{ID: "n", Up: true, Capacity: c(100)}, nil, 0, PledgeActive},
		{"more than pledged", &NodeObservation{ID: "n", Up: true, Capacity: c(200)}, nil, 0, PledgeActive},
		{"short", &NodeObservation{ID: "n", Up: true, Capacity: c(99)}, nil, 0, PledgeShort},
		{"down, no threshold", &NodeObservation{ID: "n", Capacity: c(100), LastSeenSecsAgo: c(1)}, nil, 0, PledgeDown},
		{"down under threshold", &NodeObservation{ID: "n", Capacity: c(100), LastSeenSecsAgo: c(30)}, nil, time.Minute, PledgeActive},
		{"down past threshold", &NodeObservation{ID: "n", Capacity: c(100), LastSeenSecsAgo: c(61)}, nil, time.Minute, PledgeDown},
		{"down, unknown last seen, first time", &NodeObservation{ID: "n", Capacity: c(100)}, nil, time.Minute, PledgeActive},
		{"down, unknown last seen, seen before", &NodeObservation{ID: "n", Capacity: c(100)}, &earlier, time.Minute, PledgeDown},
	} {
		got := DerivePledge(100, tc.node, tc.prev, now, tc.downAfter)
		if got.Status != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, got.Status, got.Detail, tc.want)
		}
	}
}

func TestIslandWarnings(t *testing.T) {
	t.Parallel()
	c := func(v int64) *int64 { return &v }
	nodes := []NodeObservation{{ID: "a", Zone: "za", Capacity: c(1)}, {ID: "b", Zone: "zb", Capacity: c(1)}, {ID: "b2", Zone: "zb", Capacity: c(1)}}
	pledges := []Pledge{{MemberSlug: "m1", NodeID: "a", Zone: "za"}, {MemberSlug: "m1", NodeID: "b", Zone: "zb"}, {MemberSlug: "m2", NodeID: "b2", Zone: "zb"}}
	w := IslandWarnings(3, nodes, pledges)
	if len(w) != 3 {
		t.Fatalf("want 3 warnings (2 zones < rf 3; m1 holds 2 zones; zb shared), got %q", w)
	}
	if w := IslandWarnings(2, nodes[:2], []Pledge{{MemberSlug: "m1", NodeID: "a"}, {MemberSlug: "m2", NodeID: "b"}}); len(w) != 0 {
		t.Fatalf("a sound island has warnings: %q", w)
	}
}
