package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/testenv"
)

const gb = int64(1_000_000_000)

// startSim starts a simulated Garage cluster over the test MinIO with one node per zone.
func startSim(t *testing.T, token string, zones ...string) *garagesim.Sim {
	t.Helper()
	s3 := testenv.S3(t)
	var nodes []garagesim.NodeConfig
	for _, z := range zones {
		nodes = append(nodes, garagesim.NodeConfig{Hostname: "node-" + z, Zone: z, Capacity: 100 * gb})
	}
	sim, err := garagesim.Start(context.Background(), garagesim.Config{AdminToken: token, ReplicationFactor: 3,
		S3Endpoint: s3.Endpoint, S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey, Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func nodeIn(t *testing.T, sim *garagesim.Sim, zone string) string {
	t.Helper()
	for _, n := range sim.Nodes() {
		if n.Zone == zone {
			return n.ID
		}
	}
	t.Fatalf("no node in zone %s", zone)
	return ""
}

// recorder keeps every API response body, to prove a secret never appears in one.
type recorder struct {
	env    *apptest.Env
	bodies []string
}

func (r *recorder) do(a *apptest.Actor, method, path string, body any) *apptest.Response {
	r.env.T.Helper()
	res := r.env.Do(apptest.Req{Method: method, Path: path, Body: body, Token: a.Access})
	r.bodies = append(r.bodies, string(res.Body))
	return res
}

func expect(t *testing.T, res *apptest.Response, status int, field string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	if field != "" && res.ErrorField() != field {
		t.Fatalf("error field %q, want %q: %s", res.ErrorField(), field, res.Body)
	}
}

// TestIslandLifecycleOnTheSimulator is the end-to-end path: register an island on the
// simulator, add operators and pledges, take a node down → its pledge is down after one
// poll; the admin token never appears in a response or the audit log.
func TestIslandLifecycleOnTheSimulator(t *testing.T) {
	env, f := apptest.Parallel(t)
	token := "garage-admin-" + testenv.Unique("secret-")
	sim := startSim(t, token, "member-a", "member-b", "member-c")
	rec := &recorder{env: env}
	fed, adminA, adminB, viewerA := f.FedAdmin, f.AdminA, f.AdminB, f.ViewerA

	island := map[string]any{"name": "Isle of Test", "admin_endpoint": sim.URL(), "admin_token": token,
		"s3_endpoint": "http://" + sim.S3Endpoint(), "s3_region": sim.Region(), "replication_factor": 3}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range island {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	// Bad input names the field.
	expect(t, rec.do(fed, "POST", "/v1/islands", with("admin_endpoint", "ftp://nope")), 400, "admin_endpoint")
	expect(t, rec.do(fed, "POST", "/v1/islands", with("s3_endpoint", "not a url")), 400, "s3_endpoint")
	expect(t, rec.do(fed, "POST", "/v1/islands", with("replication_factor", 0)), 400, "replication_factor")
	expect(t, rec.do(fed, "POST", "/v1/islands", with("admin_token", "wrong-token")), 400, "admin_token")
	// Only federation admins register islands.
	expect(t, rec.do(adminA, "POST", "/v1/islands", island), 403, "")

	res := rec.do(fed, "POST", "/v1/islands", island)
	expect(t, res, 201, "")
	var isl islands.Island
	res.Decode(t, &isl)
	expect(t, rec.do(fed, "POST", "/v1/islands", with("name", "ISLE of test")), 409, "name")

	// Operators, then pledges; a member is named by its id or its slug.
	for _, m := range []string{fmt.Sprint(f.MemberA.ID), f.MemberB.Slug} {
		expect(t, rec.do(fed, "PUT", fmt.Sprintf("/v1/islands/%d/operators/%s", isl.ID, m), nil), 200, "")
	}
	for _, m := range []string{"no-such-member", "999999"} {
		expect(t, rec.do(fed, "PUT", fmt.Sprintf("/v1/islands/%d/operators/%s", isl.ID, m), nil), 404, "member")
	}
	expect(t, rec.do(adminA, "PUT", fmt.Sprintf("/v1/islands/%d/operators/%d", isl.ID, f.MemberA.ID), nil), 403, "")
	nodeA, nodeB := nodeIn(t, sim, "member-a"), nodeIn(t, sim, "member-b")
	pledge := func(member any, node string, capacity int64) map[string]any {
		return map[string]any{"member": member, "island_id": isl.ID, "node_id": node, "capacity_bytes": capacity}
	}
	expect(t, rec.do(adminA, "POST", "/v1/pledges", pledge(f.MemberA.ID, nodeA, 0)), 400, "capacity_bytes")
	expect(t, rec.do(adminA, "POST", "/v1/pledges", pledge(f.MemberA.ID, nodeA, -5)), 400, "capacity_bytes")
	expect(t, rec.do(adminA, "POST", "/v1/pledges", pledge(f.MemberA.ID, strings.Repeat("ab", 32), gb)), 400, "node_id")
	expect(t, rec.do(adminA, "POST", "/v1/pledges", pledge(f.MemberA.ID, "zz", gb)), 400, "node_id")
	expect(t, rec.do(adminA, "POST", "/v1/pledges", pledge(f.MemberB.ID, nodeB, gb)), 403, "")
	expect(t, rec.do(viewerA, "POST", "/v1/pledges", pledge(f.MemberA.ID, nodeA, gb)), 403, "")

	res = rec.do(adminA, "POST", "/v1/pledges", pledge(f.MemberA.ID, nodeA[:16], 100*gb))
	expect(t, res, 201, "")
	var pa islands.Pledge
	res.Decode(t, &pa)
	if pa.Status != islands.PledgeActive || pa.NodeID != nodeA || pa.Zone != "member-a" {
		t.Fatalf("pledge A: %+v", pa)
	}
	expect(t, rec.do(adminA, "POST", "/v1/pledges", pledge(f.MemberA.ID, nodeA, gb)), 409, "node_id")
	res = rec.do(adminB, "POST", "/v1/pledges", pledge(f.MemberB.Slug, nodeB, 150*gb))
	expect(t, res, 201, "")
	var pb islands.Pledge
	res.Decode(t, &pb)
	if pb.Status != islands.PledgeShort {
		t.Fatalf("pledge B above its layout capacity: %+v", pb)
	}

	// A node goes down: after one poll its pledge is down; the others keep their status.
	if err := sim.SetNodeUp(nodeA, false); err != nil {
		t.Fatal(err)
	}
	if err := env.App.Islands.PollAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	res = rec.do(viewerA, "GET", fmt.Sprintf("/v1/pledges/%d", pa.ID), nil)
	expect(t, res, 200, "")
	res.Decode(t, &pa)
	if pa.Status != islands.PledgeDown || pa.NodeUp == nil || *pa.NodeUp || pa.DownSince == nil {
		t.Fatalf("pledge on a down node: %+v", pa)
	}
	res = rec.do(viewerA, "GET", fmt.Sprintf("/v1/pledges?island=%d&status=short", isl.ID), nil)
	expect(t, res, 200, "")
	var page struct{ Pledges []islands.Pledge }
	res.Decode(t, &page)
	if len(page.Pledges) != 1 || page.Pledges[0].ID != pb.ID {
		t.Fatalf("short pledges: %+v", page.Pledges)
	}

	// Every member reads islands with their warnings: 2 zones pledged for rf 3 is fine (3 in the layout).
	res = rec.do(adminB, "GET", fmt.Sprintf("/v1/islands/%d", isl.ID), nil)
	expect(t, res, 200, "")
	var detail struct {
		islands.Island
		Nodes     []islands.NodeObservation
		Warnings  []string
		Operators []islands.Operator
	}
	res.Decode(t, &detail)
	if detail.Status != islands.StatusDegraded || len(detail.Nodes) != 3 || len(detail.Operators) != 2 {
		t.Fatalf("island detail: %s", res.Body)
	}
	expect(t, rec.do(viewerA, "GET", fmt.Sprintf("/v1/islands/%d/observations", isl.ID), nil), 200, "")

	// Pledges of another member are visible but not changeable.
	expect(t, rec.do(adminB, "POST", fmt.Sprintf("/v1/pledges/%d/withdraw", pa.ID), nil), 403, "")
	expect(t, rec.do(adminB, "PATCH", fmt.Sprintf("/v1/pledges/%d", pa.ID), map[string]any{"capacity_bytes": 1}), 403, "")
	expect(t, rec.do(adminA, "PATCH", fmt.Sprintf("/v1/pledges/%d", pa.ID), map[string]any{"capacity_bytes": 0}), 400, "capacity_bytes")
	res = rec.do(adminA, "POST", fmt.Sprintf("/v1/pledges/%d/withdraw", pa.ID), nil)
	expect(t, res, 200, "")
	res.Decode(t, &pa)
	if pa.Status != islands.PledgeWithdrawn || pa.WithdrawnAt == nil {
		t.Fatalf("withdrawn: %+v", pa)
	}
	// An island with a live pledge cannot be deleted; an operator with one cannot leave.
	expect(t, rec.do(fed, "DELETE", fmt.Sprintf("/v1/islands/%d/operators/%d", isl.ID, f.MemberB.ID), nil), 409, "")
	expect(t, rec.do(fed, "DELETE", fmt.Sprintf("/v1/islands/%d", isl.ID), nil), 409, "")

	// The token was never shown, and never written to the audit log in clear.
	for _, b := range rec.bodies {
		if strings.Contains(b, token) {
			t.Fatalf("a response holds the island admin token: %s", b)
		}
	}
	var leaks int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE details::text LIKE '%' || $1 || '%'`,
		token).Scan(&leaks); err != nil {
		t.Fatal(err)
	}
	var sealed string
	_ = env.App.Pool.QueryRow(context.Background(), `SELECT admin_token_sealed FROM islands WHERE id = $1`, isl.ID).Scan(&sealed)
	if leaks != 0 || strings.Contains(sealed, token) {
		t.Fatalf("token in the audit log (%d entries) or unsealed", leaks)
	}
	var actions []string
	rows, _ := env.App.Pool.Query(context.Background(), `SELECT action FROM audit_entries WHERE target_type IN ('island', 'pledge') ORDER BY seq`)
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	got := strings.Join(actions, " ")
	for _, want := range []string{"island.create", "island.operator_add", "pledge.create", "pledge.status_change", "pledge.withdraw", "island.status_change"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log lacks %s: %s", want, got)
		}
	}
}

// TestUnreachableIslandFailsFastAndNamesIslandAndOperation: registering an island whose
// admin API hangs or is closed answers 502 within the call timeout; a poll marks an
// island unreachable with the error.
func TestUnreachableIslandFailsFastAndNamesIslandAndOperation(t *testing.T) {
	env, f := apptest.Parallel(t)
	token := testenv.Unique("tok-")
	sim := startSim(t, token, "z1", "z2", "z3")

	start := time.Now()
	res := env.Do(apptest.Req{Method: "POST", Path: "/v1/islands", Token: f.FedAdmin.Access, Body: map[string]any{
		"name": "Closed", "admin_endpoint": "http://127.0.0.1:1", "admin_token": token, "s3_endpoint": "http://127.0.0.1:2"}})
	if res.Status != http.StatusBadGateway || !strings.Contains(string(res.Body), `island \"Closed\": GetClusterStatus failed`) {
		t.Fatalf("closed port: %d %s", res.Status, res.Body)
	}
	sim.InjectFault(garagesim.Fault{Operation: "GetClusterStatus", Delay: time.Minute, Count: 10})
	res = env.Do(apptest.Req{Method: "POST", Path: "/v1/islands", Token: f.FedAdmin.Access, Body: map[string]any{
		"name": "Hanging", "admin_endpoint": sim.URL(), "admin_token": token, "s3_endpoint": "http://127.0.0.1:2"}})
	if res.Status != http.StatusBadGateway || !strings.Contains(string(res.Body), "Hanging") {
		t.Fatalf("hanging admin API: %d %s", res.Status, res.Body)
	}
	if d := time.Since(start); d > 2*islands.DefaultCallTimeout+5*time.Second {
		t.Fatalf("took %s: not bounded", d)
	}
}
