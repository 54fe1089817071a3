package garagesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
)

// ErrUnknownNode is returned by node methods given an ID the simulator does
// not know.
var ErrUnknownNode = errors.New("garagesim: unknown node")

// NodeState is a simulated node as tests see it.
type NodeState struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Up       bool   `json:"up"`
	// Zone and Capacity are the node's role in the current layout; Zone is
	// empty without role and Capacity nil for a gateway.
	Zone     string `json:"zone,omitempty"`
	Capacity *int64 `json:"capacity,omitempty"`
}

// Fault makes the next Count calls of an admin operation misbehave: wait
// Delay, then answer Status with Garage's error body (Status 0: answer
// normally after the delay).
//
// With Every > 0 the fault repeats until ClearFaults: of each Every calls of
// the operation, the first Count (at least 1) misbehave — {Every: 3, Count: 1}
// fails calls 1, 4, 7…; {Every: 3, Count: 2} fails calls 1, 2, 4, 5…, which
// also defeats a client that tries an idempotent call twice. A repeating
// fault replaces the operation's earlier one; one-shot faults queued for the
// operation are served first.
type Fault struct {
	Operation string        `json:"operation"`
	Status    int           `json:"status"`
	Count     int           `json:"count"`
	Delay     time.Duration `json:"delay"`
	Every     int           `json:"every,omitempty"`
}

// periodicFault is a repeating fault and the calls of its operation seen since
// it was injected.
type periodicFault struct {
	Fault
	calls int
}

// SelfID is the ID of the node answering as "self".
func (s *Sim) SelfID() string { return s.selfID }

// Nodes lists the simulated nodes in the order they were added.
func (s *Sim) Nodes() []NodeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeState, 0, len(s.nodes))
	for _, n := range s.nodes {
		ns := NodeState{ID: n.id, Hostname: n.hostname, Up: n.up}
		if r, ok := s.layout.roles[n.id]; ok {
			ns.Zone, ns.Capacity = r.zone, r.capacity
		}
		out = append(out, ns)
	}
	return out
}

// AddNode connects a new node and gives it a role (zone, capacity in bytes;
// capacity 0 makes a gateway) in a new layout version, as if an
// administrator had staged and applied it. It returns the node's 64-hex ID.
// Staged changes made through the API are left staged.
func (s *Sim) AddNode(zone string, capacity int64, hostname string) (string, error) {
	if zone == "" {
		return "", errors.New("garagesim: AddNode needs a zone (use ConnectNode for a node without role)")
	}
	if capacity != 0 && capacity < minCapacity {
		return "", fmt.Errorf("garagesim: capacity must be 0 (gateway) or at least %d bytes", minCapacity)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.connectNodeLocked(cmpOr(hostname, fmt.Sprintf("garagesim-%d", len(s.nodes)+1)))
	roles := maps.Clone(s.layout.roles)
	r := role{zone: zone, tags: []string{}}
	if capacity > 0 {
		r.capacity = &capacity
	}
	roles[n.id] = r
	if err := s.commitLayoutLocked(roles, s.layout.zoneRed); err != nil {
		// Not enough storage nodes yet for the replication factor: the node
		// stays connected with its role staged, like a partial setup.
		s.layout.staged[n.id] = stagedChange{role: r}
	}
	return n.id, nil
}

// ConnectNode connects a new node without role: it shows in
// GetClusterStatus, and a role can be staged for it with
// UpdateClusterLayout. It returns the node's 64-hex ID.
func (s *Sim) ConnectNode(hostname string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connectNodeLocked(cmpOr(hostname, fmt.Sprintf("garagesim-%d", len(s.nodes)+1))).id
}

// SetNodeUp marks a node up or down. A down node shows isUp false with a
// growing lastSeenSecsAgo, and degrades health (or makes the cluster
// unavailable when partitions lose their write quorum, in which case key and
// bucket operations answer 503).
func (s *Sim) SetNodeUp(id string, up bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.node(id)
	if n == nil {
		return fmt.Errorf("%w: %s", ErrUnknownNode, id)
	}
	if n.up && !up {
		n.lastSeen = s.now()
	}
	n.up = up
	return nil
}

// SetNodeCapacity changes a node's capacity in a new layout version (0 makes
// it a gateway), as if an administrator had applied it.
func (s *Sim) SetNodeCapacity(id string, capacity int64) error {
	if capacity != 0 && capacity < minCapacity {
		return fmt.Errorf("garagesim: capacity must be 0 (gateway) or at least %d bytes", minCapacity)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.layout.roles[id]
	if !ok {
		return fmt.Errorf("%w in layout: %s", ErrUnknownNode, id)
	}
	roles := maps.Clone(s.layout.roles)
	r.capacity = nil
	if capacity > 0 {
		r.capacity = &capacity
	}
	roles[id] = r
	return s.commitLayoutLocked(roles, s.layout.zoneRed)
}

// SetNodeDisk overrides the data partition a node reports (available and
// total bytes). By default a node reports its capacity as total and
// subtracts its share of the buckets' usage.
func (s *Sim) SetNodeDisk(id string, available, total int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.node(id)
	if n == nil {
		return fmt.Errorf("%w: %s", ErrUnknownNode, id)
	}
	n.diskAvail, n.diskTotal = &available, &total
	return nil
}

// RemoveNode disconnects a node for good and removes its role in a new
// layout version (if it had one).
func (s *Sim) RemoveNode(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.node(id)
	if n == nil {
		return fmt.Errorf("%w: %s", ErrUnknownNode, id)
	}
	if _, ok := s.layout.roles[id]; ok {
		roles := maps.Clone(s.layout.roles)
		delete(roles, id)
		if err := s.commitLayoutLocked(roles, s.layout.zoneRed); err != nil {
			return fmt.Errorf("garagesim: remove node %s: %w", id, err)
		}
	}
	for i, m := range s.nodes {
		if m == n {
			s.nodes = append(s.nodes[:i], s.nodes[i+1:]...)
			break
		}
	}
	delete(s.layout.staged, id)
	return nil
}

// InjectFault queues a fault for an admin operation (for instance
// {Operation: "ListKeys", Status: 503, Count: 2}), or sets a repeating one
// when f.Every > 0 (for instance {Operation: "CreateKey", Status: 503,
// Every: 3}: one call in three fails until ClearFaults).
func (s *Sim) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Every > 0 {
		f.Count = min(max(f.Count, 1), f.Every)
		s.every[f.Operation] = &periodicFault{Fault: f}
		return
	}
	s.faults[f.Operation] = append(s.faults[f.Operation], f)
}

// ClearFaults removes every fault, queued or repeating. The counts of
// FaultsServed are kept.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
	clear(s.every)
}

// FaultsServed returns how many calls of each operation met an injected
// fault since the simulator started (operations that met none are absent).
func (s *Sim) FaultsServed() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.served)
}

func (s *Sim) takeFault(op string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.faults[op]; len(q) > 0 {
		f := q[0]
		if f.Count--; f.Count <= 0 {
			s.faults[op] = q[1:]
		} else {
			q[0] = f
		}
		s.served[op]++
		return f, true
	}
	p := s.every[op]
	if p == nil {
		return Fault{}, false
	}
	p.calls++
	if (p.calls-1)%p.Every >= p.Count {
		return Fault{}, false
	}
	s.served[op]++
	return p.Fault, true
}

// controlRoutes serves the control API under /_sim/ (see
// docs/garage-simulator.md).
func (s *Sim) controlRoutes(mux *http.ServeMux) {
	h := func(pattern string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if s.cfg.ControlToken != "" {
				tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !constantTimeEqual(tok, s.cfg.ControlToken) {
					writeJSON(w, http.StatusForbidden, map[string]string{"error": "control token required"})
					return
				}
			}
			out, err := fn(r)
			switch {
			case errors.Is(err, ErrUnknownNode):
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			case err != nil:
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			default:
				writeJSON(w, http.StatusOK, out)
			}
		})
	}
	decode := func(r *http.Request, v any) error {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	}
	h("GET /_sim/nodes", func(*http.Request) (any, error) { return s.Nodes(), nil })
	h("POST /_sim/nodes", func(r *http.Request) (any, error) {
		var req struct {
			Hostname string `json:"hostname"`
			Zone     string `json:"zone"`
			Capacity int64  `json:"capacity"`
		}
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if req.Zone == "" {
			return map[string]string{"id": s.ConnectNode(req.Hostname)}, nil
		}
		id, err := s.AddNode(req.Zone, req.Capacity, req.Hostname)
		return map[string]string{"id": id}, err
	})
	h("POST /_sim/nodes/{id}/down", func(r *http.Request) (any, error) {
		return map[string]bool{"up": false}, s.SetNodeUp(r.PathValue("id"), false)
	})
	h("POST /_sim/nodes/{id}/up", func(r *http.Request) (any, error) {
		return map[string]bool{"up": true}, s.SetNodeUp(r.PathValue("id"), true)
	})
	h("POST /_sim/nodes/{id}/capacity", func(r *http.Request) (any, error) {
		var req struct {
			Capacity int64 `json:"capacity"`
		}
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return req, s.SetNodeCapacity(r.PathValue("id"), req.Capacity)
	})
	h("POST /_sim/nodes/{id}/disk", func(r *http.Request) (any, error) {
		var req struct {
			Available int64 `json:"available"`
			Total     int64 `json:"total"`
		}
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return req, s.SetNodeDisk(r.PathValue("id"), req.Available, req.Total)
	})
	h("DELETE /_sim/nodes/{id}", func(r *http.Request) (any, error) {
		return map[string]string{"removed": r.PathValue("id")}, s.RemoveNode(r.PathValue("id"))
	})
	h("POST /_sim/faults", func(r *http.Request) (any, error) {
		var f Fault
		if err := decode(r, &f); err != nil {
			return nil, err
		}
		if _, ok := operations[f.Operation]; !ok || f.Every < 0 || f.Every == 0 && f.Count < 1 || f.Every > 0 && f.Count > f.Every {
			return nil, fmt.Errorf("fault needs a known operation and count >= 1, or every >= 1 and count <= every")
		}
		s.InjectFault(f)
		return f, nil
	})
	h("GET /_sim/faults", func(*http.Request) (any, error) {
		return map[string]map[string]int{"served": s.FaultsServed()}, nil
	})
	h("DELETE /_sim/faults", func(*http.Request) (any, error) {
		s.ClearFaults()
		return map[string]map[string]int{"served": s.FaultsServed()}, nil
	})
}
