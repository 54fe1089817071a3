package portal_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestPortalShowsIslandsAndPledgeStates sets up an island on the simulator through the API
// (an active pledge, a short one, and one whose node goes down) and checks that a member
// admin sees those states on the Islands, Island and Pledges pages.
func TestPortalShowsIslandsAndPledgeStates(t *testing.T) {
	s := newPortalTest(t)
	s3 := testenv.S3(t)
	const gb = int64(1_000_000_000)
	token := testenv.Unique("garage-token-")
	sim, err := garagesim.Start(context.Background(), garagesim.Config{AdminToken: token, ReplicationFactor: 3,
		S3Endpoint: s3.Endpoint, S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey,
		Nodes: []garagesim.NodeConfig{{Hostname: "a1", Zone: "member-a", Capacity: 100 * gb},
			{Hostname: "b1", Zone: "member-b", Capacity: 100 * gb}, {Hostname: "c1", Zone: "fed", Capacity: 100 * gb}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	api := func(a *apptest.Actor, method, path string, body any, want int) *apptest.Response {
		t.Helper()
		r := s.env.Do(apptest.Req{Method: method, Path: path, Body: body, Token: a.Access})
		if r.Status != want {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		return r
	}
	var isl struct{ ID int64 }
	api(s.f.FedAdmin, "POST", "/v1/islands", map[string]any{"name": "Ile Test", "admin_endpoint": sim.URL(), "admin_token": token,
		"s3_endpoint": "http://" + sim.S3Endpoint(), "s3_region": sim.Region(), "replication_factor": 3}, 201).Decode(t, &isl)
	for _, m := range []int64{s.f.MemberA.ID, s.f.MemberB.ID} {
		api(s.f.FedAdmin, "PUT", fmt.Sprintf("/v1/islands/%d/operators/%d", isl.ID, m), nil, 200)
	}
	node := map[string]string{}
	for _, n := range sim.Nodes() {
		node[n.Zone] = n.ID
	}
	api(s.f.AdminA, "POST", "/v1/pledges", map[string]any{"member": s.f.MemberA.ID, "island_id": isl.ID, "node_id": node["member-a"], "capacity_bytes": 100 * gb}, 201)
	api(s.f.AdminB, "POST", "/v1/pledges", map[string]any{"member": s.f.MemberB.ID, "island_id": isl.ID, "node_id": node["member-b"], "capacity_bytes": 150 * gb}, 201)
	if err := sim.SetNodeUp(node["member-a"], false); err != nil {
		t.Fatal(err)
	}
	api(s.f.FedAdmin, "POST", fmt.Sprintf("/v1/islands/%d/poll", isl.ID), nil, 200)

	ctx := s.login(s.f.AdminA, "/login", "section.cards")
	browsertest.Step(t, ctx, "islands page", chromedp.Click(css(`nav a[href="/islands"]`)), chromedp.WaitVisible(css("table.islands")))
	if row := browsertest.Text(t, ctx, "table.islands tbody"); !strings.Contains(row, "Ile Test") || !strings.Contains(row, "down") {
		t.Errorf("islands page row: %q", row)
	}
	browsertest.Screenshot(t, ctx, "islands")
	browsertest.Step(t, ctx, "island detail", chromedp.Click(css(`table.islands a[href="/islands/`+fmt.Sprint(isl.ID)+`"]`)),
		chromedp.WaitVisible(css("svg")))
	detail := browsertest.Text(t, ctx, "main")
	for _, want := range []string{"down", "short", "Member A", "Member B"} {
		if !strings.Contains(detail, want) {
			t.Errorf("island page lacks %q", want)
		}
	}
	browsertest.Screenshot(t, ctx, "island-detail")
	browsertest.Step(t, ctx, "pledges page", chromedp.Click(css(`nav a[href="/pledges"]`)), chromedp.WaitVisible(css("main table")))
	if txt := browsertest.Text(t, ctx, "main"); !strings.Contains(txt, "down") {
		t.Errorf("my pledges page does not show the down pledge: %q", txt)
	}
	browsertest.Screenshot(t, ctx, "pledges")
}
