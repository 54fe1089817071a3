package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/minioserver"
)

// IslandInfo locates one simulated island of the sandbox (written to sandbox.json).
type IslandInfo struct {
	Name         string `json:"name"`
	AdminURL     string `json:"admin_url"`
	ControlURL   string `json:"control_url"` // the simulator's /_sim/ control API
	ControlToken string `json:"control_token"`
	S3Endpoint   string `json:"s3_endpoint"`
	Region       string `json:"region"`
}

const demoGB = int64(1_000_000_000)

// demoIsland is a sandbox island: its operators (one zone each, named after the member)
// and what they pledge. Capacity in the layout is 200 GB per node.
type demoIsland struct {
	Name      string
	Operators []string
	Pledge    map[string]int64 // member → pledged GB (more than 200 makes the pledge short)
	Down      string           // the member whose node is down
}

var demoIslands = []demoIsland{
	{Name: "Île Rhône", Operators: []string{"libre-nuage", "chaton-rouge", "vercors-libre"},
		Pledge: map[string]int64{"libre-nuage": 200, "chaton-rouge": 200, "vercors-libre": 150}},
	{Name: "Île Atlantique", Operators: []string{"breizh-host", "garrigue-net", "libre-nuage"},
		Pledge: map[string]int64{"breizh-host": 200, "garrigue-net": 300, "libre-nuage": 200}},
	{Name: "Île Rhin", Operators: []string{"alsace-numerique", "chaton-rouge", "breizh-host", "vercors-libre"},
		Pledge: map[string]int64{"alsace-numerique": 200, "chaton-rouge": 200, "breizh-host": 100, "vercors-libre": 200},
		Down:   "vercors-libre"},
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// seedIslands starts one Garage simulator per demo island on the sandbox's MinIO and
// registers the islands, operators and pledges through the domain service (so tokens are
// sealed and every change audited). stop closes the simulators. A kept sandbox started
// again gets new simulators: the islands are pointed at them and their pledges renewed.
// started (when not nil) is given each simulator once it serves, before it is called.
func seedIslands(ctx context.Context, a *app.App, s3 *minioserver.Server, log *slog.Logger,
	started func(name string, sim *garagesim.Sim)) (infos []IslandInfo, stop func(), err error) {
	var sims []*garagesim.Sim
	stop = func() {
		for _, s := range sims {
			_ = s.Close()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	existing, err := islands.IslandList(ctx, a.Pool, islands.IslandFilter{Limit: 500})
	if err != nil {
		return nil, stop, err
	}
	byName := map[string]islands.Island{}
	for _, i := range existing {
		byName[i.Name] = i
	}
	for _, d := range demoIslands {
		token, control := randomToken(), randomToken()
		var nodes []garagesim.NodeConfig
		for _, m := range d.Operators {
			nodes = append(nodes, garagesim.NodeConfig{Hostname: m + "-garage-1", Zone: m, Capacity: 200 * demoGB})
		}
		sim, err := garagesim.Start(ctx, garagesim.Config{AdminToken: token, ControlToken: control, ReplicationFactor: 3,
			S3Endpoint: s3.Endpoint, S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey, Nodes: nodes, Logger: log})
		if err != nil {
			return nil, stop, fmt.Errorf("start the simulator of %s: %w", d.Name, err)
		}
		sims = append(sims, sim)
		if started != nil {
			started(d.Name, sim)
		}
		infos = append(infos, IslandInfo{Name: d.Name, AdminURL: sim.URL(), ControlURL: sim.URL() + "/_sim/",
			ControlToken: control, S3Endpoint: sim.S3Endpoint(), Region: sim.Region()})
		in := islands.IslandInput{Name: &d.Name, AdminEndpoint: ptr(sim.URL()), AdminToken: &token,
			S3Endpoint: ptr("http://" + sim.S3Endpoint()), S3Region: ptr(sim.Region()), ReplicationFactor: ptr(3)}
		isl, ok := byName[d.Name]
		if ok {
			if isl, err = retrySeed(ctx, a.Log, "island "+d.Name, func(ctx context.Context) (islands.Island, error) {
				return a.Islands.IslandUpdate(ctx, isl.ID, islands.IslandInput{AdminEndpoint: in.AdminEndpoint,
					AdminToken: in.AdminToken, S3Endpoint: in.S3Endpoint})
			}); err != nil {
				return nil, stop, fmt.Errorf("island %s: %w", d.Name, err)
			}
			// The old simulator's nodes are gone: withdraw their pledges.
			live, err := islands.PledgeList(ctx, a.Pool, islands.PledgeFilter{IslandID: isl.ID, Live: true, Limit: 500})
			if err != nil {
				return nil, stop, err
			}
			for _, p := range live {
				if _, err := retrySeed(ctx, a.Log, "withdraw a pledge of "+d.Name, func(ctx context.Context) (islands.Pledge, error) {
					return a.Islands.PledgeWithdraw(ctx, p.ID)
				}); err != nil {
					return nil, stop, err
				}
			}
		} else if isl, err = retrySeed(ctx, a.Log, "island "+d.Name, func(ctx context.Context) (islands.Island, error) {
			return a.Islands.IslandCreate(ctx, in)
		}); err != nil {
			return nil, stop, fmt.Errorf("island %s: %w", d.Name, err)
		}
		nodeOf := map[string]string{}
		for _, n := range sim.Nodes() {
			nodeOf[n.Zone] = n.ID
		}
		if d.Down != "" {
			if err := sim.SetNodeUp(nodeOf[d.Down], false); err != nil {
				return nil, stop, err
			}
		}
		for _, slug := range d.Operators {
			m, err := islands.MemberGetBySlug(ctx, a.Pool, slug)
			if err != nil {
				return nil, stop, fmt.Errorf("operator %s of %s: %w", slug, d.Name, err)
			}
			if _, err := a.Islands.OperatorAdd(ctx, isl.ID, m.ID); err != nil {
				return nil, stop, err
			}
			if _, err := retrySeed(ctx, a.Log, "pledge of "+slug, func(ctx context.Context) (islands.Pledge, error) {
				return a.Islands.PledgeCreate(ctx, islands.PledgeInput{MemberID: m.ID, IslandID: isl.ID, NodeID: nodeOf[slug],
					CapacityBytes: d.Pledge[slug] * demoGB})
			}); err != nil && !errors.As(err, new(*islands.ConflictError)) {
				return nil, stop, fmt.Errorf("pledge of %s to %s: %w", slug, d.Name, err)
			}
		}
		if _, err := retrySeed(ctx, a.Log, "poll "+d.Name, func(ctx context.Context) (islands.Island, error) {
			return a.Islands.PollIsland(ctx, isl.ID)
		}); err != nil {
			return nil, stop, err
		}
	}
	return infos, stop, nil
}

func ptr[T any](v T) *T { return &v }
