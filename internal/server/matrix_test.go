package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
	"github.com/chatons/archipelago/internal/verify"
)

// want is the expected status for each actor of the fixture.
type want struct{ anon, viewerA, adminA, adminB, fed int }

// row is one route of the tenant isolation matrix. Path and body may name objects of the
// fixture as {name}; member A owns every named object unless its name says otherwise.
type row struct {
	method, route string
	path          string
	body          any  // JSON for API routes; url.Values for portal forms
	fresh         bool // give each actor a fresh session first (the route ends sessions)
	want          want
}

// everyone answers the same status to every actor.
func everyone(s int) want { return want{s, s, s, s, s} }

// matrix lists every route the router has. A route missing here fails
// TestTenantIsolationMatrix: every capability extends it with its routes.
var matrix = []row{
	// Operations and public API.
	{method: "GET", route: "/healthz", want: everyone(200)},
	{method: "GET", route: "/readyz", want: everyone(200)},
	// Metrics name every member's vaults and repositories: only Prometheus, with the scrape
	// token (ARCHIPELAGO_METRICS_TOKEN), reads them; no person's credential does.
	{method: "GET", route: "/metrics", want: everyone(401)},
	{method: "GET", route: "/v1/openapi.json", want: everyone(200)},
	{method: "GET", route: "/api-reference", want: everyone(200)},
	{method: "GET", route: "/v1/version", want: everyone(200)},
	{method: "GET", route: "/static/*", path: "/static/app.css", want: everyone(200)},

	// Identity and access.
	{method: "POST", route: "/v1/auth/login", body: map[string]string{"email": "nobody-api@x.example", "password": "wrong-password!"}, want: everyone(401)},
	{method: "POST", route: "/v1/auth/refresh", body: map[string]string{"refresh_token": "arses_nope"}, want: everyone(401)},
	{method: "POST", route: "/v1/auth/logout", fresh: true, want: want{401, 204, 204, 204, 204}},
	{method: "GET", route: "/v1/me", want: want{401, 200, 200, 200, 200}},
	{method: "GET", route: "/v1/tokens", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/tokens", body: map[string]any{"name": "m", "member": "member-a"}, want: want{401, 201, 201, 404, 201}},
	{method: "GET", route: "/v1/tokens/{id}", path: "/v1/tokens/{tokenA}", want: want{401, 404, 200, 404, 200}},
	{method: "DELETE", route: "/v1/tokens/{id}", path: "/v1/tokens/{tokenA}", want: want{401, 404, 204, 404, 204}},

	// Federation: members, islands, pledges. Everyone reads; federation admins manage
	// members and islands (others 403: the objects are federation-visible); a member's
	// admins manage its pledges. Ids 999999 exist nowhere.
	{method: "GET", route: "/v1/members", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/members", body: map[string]any{"slug": "matrix-member", "name": "Matrix"}, want: want{401, 403, 403, 403, 201}},
	{method: "GET", route: "/v1/members/{id}", path: "/v1/members/999999", want: want{401, 404, 404, 404, 404}},
	{method: "PATCH", route: "/v1/members/{id}", path: "/v1/members/999999", body: map[string]any{"name": "X"}, want: want{401, 403, 403, 403, 404}},
	{method: "DELETE", route: "/v1/members/{id}", path: "/v1/members/999999", want: want{401, 403, 403, 403, 404}},
	// A member's people: read by its users, changed by its admins (the viewer gets 403); B sees nothing.
	{method: "GET", route: "/v1/members/{id}/people", path: "/v1/members/{memberA}/people", want: want{401, 200, 200, 404, 200}},
	{method: "POST", route: "/v1/members/{id}/people", path: "/v1/members/{memberA}/people", body: map[string]any{"email": "mx-api-person@a.example", "role": "viewer"}, want: want{401, 403, 201, 404, 200}},
	{method: "GET", route: "/v1/members/{id}/people/{user_id}", path: "/v1/members/{memberA}/people/{viewerAUser}", want: want{401, 200, 200, 404, 200}},
	{method: "PATCH", route: "/v1/members/{id}/people/{user_id}", path: "/v1/members/{memberA}/people/{viewerAUser}", body: map[string]any{"role": "viewer"}, want: want{401, 403, 200, 404, 200}},
	{method: "DELETE", route: "/v1/members/{id}/people/{user_id}", path: "/v1/members/{memberA}/people/{personA}", want: want{401, 403, 204, 404, 404}},
	{method: "GET", route: "/v1/members/{id}/language", path: "/v1/members/{memberA}/language", want: want{401, 200, 200, 404, 200}},
	{method: "PUT", route: "/v1/members/{id}/language", path: "/v1/members/{memberA}/language", body: map[string]any{"language": "fr"}, want: want{401, 403, 200, 404, 200}},
	{method: "GET", route: "/v1/islands", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/islands", body: map[string]any{"name": "m", "admin_endpoint": "ftp://x"}, want: want{401, 403, 403, 403, 400}},
	{method: "GET", route: "/v1/islands/{id}", path: "/v1/islands/999999", want: want{401, 404, 404, 404, 404}},
	{method: "PATCH", route: "/v1/islands/{id}", path: "/v1/islands/999999", body: map[string]any{"name": "X"}, want: want{401, 403, 403, 403, 404}},
	{method: "DELETE", route: "/v1/islands/{id}", path: "/v1/islands/999999", want: want{401, 403, 403, 403, 404}},
	{method: "POST", route: "/v1/islands/{id}/poll", path: "/v1/islands/999999/poll", want: want{401, 403, 403, 403, 404}},
	{method: "GET", route: "/v1/islands/{id}/observations", path: "/v1/islands/999999/observations", want: want{401, 404, 404, 404, 404}},
	{method: "GET", route: "/v1/islands/{id}/operators", path: "/v1/islands/999999/operators", want: want{401, 404, 404, 404, 404}},
	{method: "PUT", route: "/v1/islands/{id}/operators/{member}", path: "/v1/islands/999999/operators/1", want: want{401, 403, 403, 403, 404}},
	{method: "DELETE", route: "/v1/islands/{id}/operators/{member}", path: "/v1/islands/999999/operators/1", want: want{401, 403, 403, 403, 404}},
	{method: "GET", route: "/v1/pledges", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/pledges", body: map[string]any{"island_id": 999999, "node_id": "abcdef12", "capacity_bytes": 1}, want: want{401, 403, 400, 400, 400}},
	{method: "GET", route: "/v1/pledges/{id}", path: "/v1/pledges/999999", want: want{401, 404, 404, 404, 404}},
	{method: "PATCH", route: "/v1/pledges/{id}", path: "/v1/pledges/999999", body: map[string]any{"capacity_bytes": 1}, want: want{401, 404, 404, 404, 404}},
	{method: "POST", route: "/v1/pledges/{id}/withdraw", path: "/v1/pledges/999999/withdraw", want: want{401, 404, 404, 404, 404}},

	// Portal.
	{method: "GET", route: "/login", want: want{200, 303, 303, 303, 303}},
	{method: "POST", route: "/login", body: url.Values{"email": {"nobody@x.example"}, "password": {"wrong-password!"}}, want: everyone(401)},
	// Login through an identity provider: not configured in this fixture, so 404 for all
	// (internal/oidclogin's tests run it against a real provider).
	{method: "POST", route: "/login/oidc", body: url.Values{}, want: everyone(404)},
	{method: "GET", route: "/login/oidc/callback", path: "/login/oidc/callback?state=x&code=y", want: everyone(404)},
	{method: "POST", route: "/logout", fresh: true, body: url.Values{}, want: want{303, 303, 303, 303, 303}},
	{method: "GET", route: "/", want: want{303, 200, 200, 200, 200}},
	{method: "GET", route: "/account", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/account/time-zone", body: url.Values{"time_zone": {"Mars/Olympus"}}, want: want{303, 400, 400, 400, 400}},
	{method: "POST", route: "/account/federation-time-zone", body: url.Values{"time_zone": {"UTC"}}, want: want{303, 403, 403, 403, 303}},
	{method: "POST", route: "/account/federation-language", body: url.Values{"language": {"fr"}}, want: want{303, 403, 403, 403, 303}},
	{method: "POST", route: "/account/language", body: url.Values{"language": {"tlh"}}, want: want{303, 400, 400, 400, 400}},
	{method: "POST", route: "/account/password", body: url.Values{"current_password": {"x"}, "new_password": {"a"}, "confirm_password": {"b"}}, want: want{303, 400, 400, 400, 400}},
	{method: "GET", route: "/tokens", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/tokens", body: url.Values{"name": {"p"}, "member": {"member-a"}, "role": {"viewer"}}, want: want{303, 303, 303, 400, 303}},
	{method: "POST", route: "/tokens/{id}/revoke", path: "/tokens/{tokenA2}/revoke", body: url.Values{"confirm": {"yes"}}, want: want{303, 404, 303, 404, 303}},
	{method: "GET", route: "/vaults", want: want{303, 200, 200, 200, 200}},
	{method: "GET", route: "/islands", want: want{303, 200, 200, 200, 200}},
	{method: "GET", route: "/islands/{id}", path: "/islands/999999", want: want{303, 404, 404, 404, 404}},
	{method: "GET", route: "/members", want: want{303, 200, 200, 200, 200}},
	// Portal federation administration: federation admins only (others 403, before any lookup).
	{method: "POST", route: "/members", body: url.Values{"slug": {"matrix-portal-member"}, "name": {"Matrix portal"}}, want: want{303, 403, 403, 403, 303}},
	{method: "POST", route: "/members/{id}/edit", path: "/members/{memberA}/edit", body: url.Values{"name": {"Member A"}}, want: want{303, 403, 403, 403, 303}},
	{method: "POST", route: "/members/{id}/delete", path: "/members/999999/delete", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 403, 403, 404}},
	{method: "POST", route: "/members/{id}/language", path: "/members/{memberA}/language", body: url.Values{"language": {""}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/islands", body: url.Values{"name": {"m"}, "admin_endpoint": {"ftp://x"}}, want: want{303, 403, 403, 403, 400}},
	{method: "POST", route: "/islands/{id}/edit", path: "/islands/999999/edit", body: url.Values{"name": {"X"}}, want: want{303, 403, 403, 403, 404}},
	{method: "POST", route: "/islands/{id}/poll", path: "/islands/999999/poll", body: url.Values{}, want: want{303, 403, 403, 403, 404}},
	{method: "POST", route: "/islands/{id}/delete", path: "/islands/999999/delete", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 403, 403, 404}},
	{method: "POST", route: "/islands/{id}/operators", path: "/islands/999999/operators", body: url.Values{"member": {"1"}}, want: want{303, 403, 403, 403, 404}},
	{method: "POST", route: "/islands/{id}/operators/{member_id}/remove", path: "/islands/999999/operators/1/remove", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 403, 403, 404}},
	{method: "GET", route: "/people", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/people", body: url.Values{"member": {"member-a"}, "email": {"mx-portal-person@a.example"}, "role": {"viewer"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/people/{user_id}/role", path: "/people/{viewerAUser}/role", body: url.Values{"member": {"member-a"}, "role": {"viewer"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/people/{user_id}/remove", path: "/people/{personA2}/remove", body: url.Values{"member": {"member-a"}, "confirm": {"yes"}}, want: want{303, 403, 303, 404, 404}},
	{method: "GET", route: "/pledges", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/pledges", body: url.Values{"member": {"member-a"}, "island": {"999999"}, "node_id": {"abcdef12"}, "capacity_gb": {"1"}}, want: want{303, 400, 400, 400, 400}},
	{method: "POST", route: "/pledges/{id}/withdraw", path: "/pledges/999999/withdraw", body: url.Values{"confirm": {"yes"}}, want: want{303, 404, 404, 404, 404}},
	{method: "GET", route: "/restore-tests", want: want{303, 200, 200, 200, 200}},
	// Reports and notifications: member A's report and channels ({reportA}, {channelA…}) are
	// read by A's users and changed by A's admins (the viewer gets 403); B sees nothing of them.
	{method: "GET", route: "/reports", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/reports", body: url.Values{"member": {"member-a"}, "period": {"custom"}}, want: want{303, 400, 303, 400, 303}},
	{method: "GET", route: "/reports/{id}", path: "/reports/{reportA}", want: want{303, 200, 200, 404, 200}},
	{method: "GET", route: "/notifications", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/notifications/channels", body: url.Values{"member": {"member-a"}, "kind": {"email"}, "name": {"p"}, "target": {"p@a.example"}}, want: want{303, 400, 303, 400, 303}},
	{method: "POST", route: "/notifications/channels/{id}/test", path: "/notifications/channels/{channelA}/test", body: url.Values{}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/notifications/channels/{id}/delete", path: "/notifications/channels/{channelA3}/delete", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 303, 404, 404}},
	{method: "GET", route: "/v1/reports", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/reports", body: map[string]any{"member": "member-a", "period": "custom"}, want: want{401, 403, 201, 404, 201}},
	{method: "GET", route: "/v1/reports/{id}", path: "/v1/reports/{reportA}", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/reports/{id}/report.json", path: "/v1/reports/{reportA}/report.json", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/reports/{id}/report.html", path: "/v1/reports/{reportA}/report.html", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/reports/{id}/report.csv", path: "/v1/reports/{reportA}/report.csv", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/reports/{id}/checkpoint", path: "/v1/reports/{reportA}/checkpoint", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/notify/channels", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/notify/channels", body: map[string]any{"member": "member-a", "kind": "email", "name": "m", "target": "ops@a.example"}, want: want{401, 403, 201, 404, 201}},
	{method: "GET", route: "/v1/notify/channels/{id}", path: "/v1/notify/channels/{channelA}", want: want{401, 200, 200, 404, 200}},
	{method: "PATCH", route: "/v1/notify/channels/{id}", path: "/v1/notify/channels/{channelA}", body: map[string]any{"name": "renamed"}, want: want{401, 403, 200, 404, 200}},
	{method: "DELETE", route: "/v1/notify/channels/{id}", path: "/v1/notify/channels/{channelA2}", want: want{401, 403, 204, 404, 404}},
	{method: "POST", route: "/v1/notify/channels/{id}/test", path: "/v1/notify/channels/{channelA}/test", want: want{401, 403, 202, 404, 202}},
	{method: "GET", route: "/v1/notify/channels/{id}/deliveries", path: "/v1/notify/channels/{channelA}/deliveries", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/notify/events", want: want{401, 200, 200, 200, 200}},
	// Restore verification: member A's repositories ({repoA…}) and tests ({runA}) are read by
	// A's users and changed by A's admins (the viewer gets 403); B sees nothing of them.
	{method: "GET", route: "/v1/repositories", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/repositories", body: map[string]any{"vault_id": 999999, "name": "m", "path": "m"}, want: want{401, 404, 404, 404, 404}},
	{method: "GET", route: "/v1/repositories/{id}", path: "/v1/repositories/{repoA}", want: want{401, 200, 200, 404, 200}},
	{method: "PATCH", route: "/v1/repositories/{id}", path: "/v1/repositories/{repoA}", body: map[string]any{"paused": true}, want: want{401, 403, 200, 404, 200}},
	{method: "DELETE", route: "/v1/repositories/{id}", path: "/v1/repositories/{repoA2}", want: want{401, 403, 204, 404, 404}},
	// Member-side agents: keys and schedules changed by A's admins; attestations pushed with
	// read access (the signature is what counts), so A's viewer reaches the envelope check.
	{method: "GET", route: "/v1/repositories/{id}/agent", path: "/v1/repositories/{repoA}/agent", want: want{401, 200, 200, 404, 200}},
	{method: "PUT", route: "/v1/repositories/{id}/agent/schedule", path: "/v1/repositories/{repoA}/agent/schedule", body: map[string]any{"interval_seconds": 86400, "grace_seconds": 3600}, want: want{401, 403, 200, 404, 200}},
	{method: "GET", route: "/v1/repositories/{id}/agent/keys", path: "/v1/repositories/{repoA}/agent/keys", want: want{401, 200, 200, 404, 200}},
	{method: "POST", route: "/v1/repositories/{id}/agent/keys", path: "/v1/repositories/{repoA}/agent/keys", body: map[string]any{"name": "m", "public_key": "not a key"}, want: want{401, 403, 400, 404, 400}},
	{method: "DELETE", route: "/v1/repositories/{id}/agent/keys/{key_id}", path: "/v1/repositories/{repoA}/agent/keys/{agentKeyA}", want: want{401, 403, 200, 404, 200}},
	{method: "GET", route: "/v1/repositories/{id}/attestations", path: "/v1/repositories/{repoA}/attestations", want: want{401, 200, 200, 404, 200}},
	{method: "POST", route: "/v1/repositories/{id}/attestations", path: "/v1/repositories/{repoA}/attestations", body: map[string]any{"payloadType": "application/vnd.in-toto+json", "payload": "!!", "signatures": []any{map[string]any{"keyid": "x", "sig": "x"}}}, want: want{401, 400, 400, 404, 400}},
	{method: "GET", route: "/v1/repositories/{id}/attestations/{att_id}", path: "/v1/repositories/{repoA}/attestations/{attestationA}", want: want{401, 200, 200, 404, 200}},
	{method: "PUT", route: "/v1/repositories/{id}/password", path: "/v1/repositories/{repoA}/password", body: map[string]any{"password": "matrix password 123"}, want: want{401, 403, 200, 404, 200}},
	{method: "DELETE", route: "/v1/repositories/{id}/password", path: "/v1/repositories/{repoA3}/password", want: want{401, 403, 200, 404, 202}}, // fed: approval request (another member's tests)
	{method: "PUT", route: "/v1/repositories/{id}/mode", path: "/v1/repositories/{repoM}/mode", body: map[string]any{"mode": "attested"}, want: want{401, 403, 200, 404, 200}},
	{method: "GET", route: "/v1/repositories/{id}/evidence", path: "/v1/repositories/{repoA}/evidence", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/full-mode-statement", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/repositories/{id}/tests", path: "/v1/repositories/{repoA}/tests", want: want{401, 403, 202, 404, 200}},
	{method: "GET", route: "/v1/restore-tests", want: want{401, 200, 200, 200, 200}},
	// Multi-party approval: requests about member A ({approvalA…}, asked by the federation
	// admin) are read by A's people, by the requester and by admins of other members (the
	// approvers); B's admin votes, A's people and the requester do not; A's admin cancels.
	{method: "GET", route: "/v1/approvals", want: want{401, 200, 200, 200, 200}},
	{method: "GET", route: "/v1/approvals/settings", want: want{401, 200, 200, 200, 200}},
	{method: "PATCH", route: "/v1/approvals/settings", body: map[string]any{"required_approvals": 3}, want: want{401, 403, 403, 403, 202}},
	{method: "POST", route: "/v1/approvals/ping", want: want{401, 204, 204, 204, 204}},
	{method: "GET", route: "/v1/approvals/{id}", path: "/v1/approvals/{approvalA}", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/approvals/{id}/approve", path: "/v1/approvals/{approvalA}/approve", want: want{401, 403, 403, 200, 403}},
	{method: "POST", route: "/v1/approvals/{id}/reject", path: "/v1/approvals/{approvalA2}/reject", want: want{401, 403, 403, 200, 403}},
	{method: "POST", route: "/v1/approvals/{id}/cancel", path: "/v1/approvals/{approvalA3}/cancel", want: want{401, 403, 200, 403, 409}},
	{method: "GET", route: "/approvals", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/approvals/ping", body: url.Values{}, want: want{303, 303, 303, 303, 303}},
	{method: "GET", route: "/approvals/{id}", path: "/approvals/{approvalA}", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/approvals/{id}/approve", path: "/approvals/{approvalP}/approve", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 403, 303, 403}},
	{method: "POST", route: "/approvals/{id}/reject", path: "/approvals/{approvalP2}/reject", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 403, 303, 403}},
	{method: "POST", route: "/approvals/{id}/cancel", path: "/approvals/{approvalP3}/cancel", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 303, 403, 409}},
	{method: "GET", route: "/v1/restore-tests/{id}", path: "/v1/restore-tests/{runA}", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/restore-tests/{id}/log", path: "/v1/restore-tests/{runA}/log", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/restore-tests/{id}/progress", path: "/v1/restore-tests/{runA}/progress", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/restore-tests/{id}/events", path: "/v1/restore-tests/{runA}/events", want: want{401, 200, 200, 404, 200}},
	{method: "POST", route: "/restore-tests/repositories", body: url.Values{"vault": {"999999"}, "name": {"p"}, "path": {"p"}, "mode": {"blind"}}, want: want{303, 400, 400, 400, 400}},
	{method: "GET", route: "/restore-tests/repositories/{id}", path: "/restore-tests/repositories/{repoA}", want: want{303, 200, 200, 404, 200}},
	{method: "POST", route: "/restore-tests/repositories/{id}/run", path: "/restore-tests/repositories/{repoP}/run", body: url.Values{}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/restore-tests/repositories/{id}/policy", path: "/restore-tests/repositories/{repoP}/policy", body: url.Values{"rpo_hours": {"36"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/restore-tests/repositories/{id}/password", path: "/restore-tests/repositories/{repoP}/password", body: url.Values{"password": {"matrix password 123"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/restore-tests/repositories/{id}/password/remove", path: "/restore-tests/repositories/{repoP2}/password/remove", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 303, 404, 303}}, // fed: approval request
	{method: "POST", route: "/restore-tests/repositories/{id}/mode", path: "/restore-tests/repositories/{repoPM}/mode", body: url.Values{"mode": {"blind"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/restore-tests/repositories/{id}/delete", path: "/restore-tests/repositories/{repoP3}/delete", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 303, 404, 404}},
	{method: "POST", route: "/restore-tests/repositories/{id}/agent/keys", path: "/restore-tests/repositories/{repoP}/agent/keys", body: url.Values{"name": {"p"}, "public_key": {"not a key"}}, want: want{303, 403, 400, 404, 400}},
	{method: "POST", route: "/restore-tests/repositories/{id}/agent/keys/{key_id}/revoke", path: "/restore-tests/repositories/{repoA}/agent/keys/{agentKeyA2}/revoke", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/restore-tests/repositories/{id}/agent/schedule", path: "/restore-tests/repositories/{repoP}/agent/schedule", body: url.Values{"interval_hours": {"24"}, "grace_hours": {"2"}}, want: want{303, 403, 303, 404, 303}},
	{method: "GET", route: "/restore-tests/runs/{id}", path: "/restore-tests/runs/{runA}", want: want{303, 200, 200, 404, 200}},
	// Vaults, keys and quotas: member A's vaults ({vaultA…}, on an island operated by B) are
	// read by A's users and changed by A's admins (the viewer gets 403); B sees nothing of them.
	{method: "GET", route: "/v1/vaults", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/vaults", body: map[string]any{"member": "member-a", "name": matrixVaultName, "quota_bytes": 1_000_000_000}, want: want{401, 403, 201, 404, 409}},
	{method: "GET", route: "/v1/vaults/{id}", path: "/v1/vaults/{vaultA}", want: want{401, 200, 200, 404, 200}},
	{method: "PATCH", route: "/v1/vaults/{id}", path: "/v1/vaults/{vaultA}", body: map[string]any{"quota_bytes": 2_000_000_000}, want: want{401, 403, 200, 404, 200}},
	{method: "DELETE", route: "/v1/vaults/{id}", path: "/v1/vaults/{vaultA2}", want: want{401, 403, 204, 404, 404}},
	{method: "POST", route: "/v1/vaults/{id}/restore", path: "/v1/vaults/{vaultA3}/restore", want: want{401, 403, 200, 404, 409}},
	{method: "POST", route: "/v1/vaults/{id}/reconcile", path: "/v1/vaults/{vaultA}/reconcile", want: want{401, 403, 200, 404, 200}},
	{method: "GET", route: "/v1/vaults/{id}/usage", path: "/v1/vaults/{vaultA}/usage", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/vaults/{id}/keys", path: "/v1/vaults/{vaultA}/keys", want: want{401, 200, 200, 404, 200}},
	{method: "POST", route: "/v1/vaults/{id}/keys", path: "/v1/vaults/{vaultA}/keys", body: map[string]any{"name": "m"}, want: want{401, 403, 201, 404, 201}},
	{method: "GET", route: "/v1/vaults/{id}/keys/{key_id}", path: "/v1/vaults/{vaultA}/keys/{keyA}", want: want{401, 200, 200, 404, 200}},
	{method: "DELETE", route: "/v1/vaults/{id}/keys/{key_id}", path: "/v1/vaults/{vaultA}/keys/{keyA2}", want: want{401, 403, 204, 404, 204}},
	{method: "POST", route: "/v1/vaults/{id}/keys/{key_id}/rotate", path: "/v1/vaults/{vaultA}/keys/{keyA}/rotate", want: want{401, 403, 201, 404, 409}},
	// Protected vaults: the fixture's vault has no copy (no third island), so the reader key is a conflict.
	{method: "GET", route: "/v1/vaults/{id}/protection", path: "/v1/vaults/{vaultA}/protection", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/vaults/{id}/protection/runs", path: "/v1/vaults/{vaultA}/protection/runs", want: want{401, 200, 200, 404, 200}},
	{method: "POST", route: "/v1/vaults/{id}/protection/freeze", path: "/v1/vaults/{vaultA}/protection/freeze", body: map[string]any{"reason": "m"}, want: want{401, 403, 200, 404, 200}},
	{method: "POST", route: "/v1/vaults/{id}/protection/unfreeze", path: "/v1/vaults/{vaultA}/protection/unfreeze", want: want{401, 403, 200, 404, 409}},
	{method: "POST", route: "/v1/vaults/{id}/protection/reader-key", path: "/v1/vaults/{vaultA}/protection/reader-key", want: want{401, 403, 409, 404, 409}},
	{method: "GET", route: "/v1/protection/settings", want: want{401, 200, 200, 200, 200}},
	{method: "PATCH", route: "/v1/protection/settings", body: map[string]any{"deletion_grace_seconds": 2592000}, want: want{401, 403, 403, 403, 200}},
	{method: "GET", route: "/v1/quota", path: "/v1/quota?member=member-a", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/federation/settings", want: want{401, 200, 200, 200, 200}},
	{method: "PATCH", route: "/v1/federation/settings", body: map[string]any{"time_zone": "UTC"}, want: want{401, 403, 403, 403, 200}},
	{method: "GET", route: "/v1/quota/settings", want: want{401, 200, 200, 200, 200}},
	{method: "PATCH", route: "/v1/quota/settings", body: map[string]any{"quota_ratio": 1.0}, want: want{401, 403, 403, 403, 200}},
	{method: "GET", route: "/v1/quota/grants", want: want{401, 200, 200, 200, 200}},
	{method: "POST", route: "/v1/quota/grants", body: map[string]any{"member": "member-a", "bytes": 1, "reason": "m"}, want: want{401, 403, 403, 403, 201}},
	{method: "DELETE", route: "/v1/quota/grants/{id}", path: "/v1/quota/grants/{grantA2}", want: want{401, 403, 403, 404, 204}},
	{method: "POST", route: "/vaults", body: url.Values{"member": {"member-a"}, "name": {matrixPortalVaultName}, "quota_gb": {"1"}, "idempotency_key": {"matrix"}}, want: want{303, 400, 303, 400, 303}},
	{method: "GET", route: "/vaults/{id}", path: "/vaults/{vaultA}", want: want{303, 200, 200, 404, 200}},
	{method: "POST", route: "/vaults/{id}/keys", path: "/vaults/{vaultA}/keys", body: url.Values{"name": {"p"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/vaults/{id}/keys/{key_id}/rotate", path: "/vaults/{vaultA}/keys/{keyA3}/rotate", body: url.Values{}, want: want{303, 403, 303, 404, 409}},
	{method: "POST", route: "/vaults/{id}/keys/{key_id}/revoke", path: "/vaults/{vaultA}/keys/{keyA4}/revoke", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/vaults/{id}/quota", path: "/vaults/{vaultA}/quota", body: url.Values{"quota_gb": {"2"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/vaults/{id}/delete", path: "/vaults/{vaultA4}/delete", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 303, 404, 404}},
	{method: "POST", route: "/vaults/{id}/restore", path: "/vaults/{vaultA5}/restore", body: url.Values{}, want: want{303, 403, 303, 404, 409}},
	{method: "POST", route: "/vaults/{id}/freeze", path: "/vaults/{vaultA}/freeze", body: url.Values{"confirm": {"yes"}, "reason": {"m"}}, want: want{303, 403, 303, 404, 303}},
	{method: "POST", route: "/vaults/{id}/unfreeze", path: "/vaults/{vaultA}/unfreeze", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 303, 404, 409}},
	{method: "GET", route: "/quota", want: want{303, 200, 200, 200, 200}},
	{method: "POST", route: "/quota/settings", body: url.Values{"quota_ratio": {"1.0"}}, want: want{303, 403, 403, 403, 303}},
	{method: "POST", route: "/quota/grants", body: url.Values{"member": {"member-a"}, "amount": {"1"}, "unit": {"GB"}, "reason": {"matrix"}}, want: want{303, 403, 403, 403, 303}},
	{method: "POST", route: "/quota/grants/{id}/revoke", path: "/quota/grants/{grantA2}/revoke", body: url.Values{"confirm": {"yes"}}, want: want{303, 403, 403, 404, 303}},
	// Audit log.
	{method: "GET", route: "/audit", want: want{303, 200, 200, 200, 200}},
	// A personal entry (admin A's login): admin A, federation admins — not A's viewer, not B.
	{method: "GET", route: "/audit/entries/{seq}", path: "/audit/entries/{loginAdminA}", want: want{303, 404, 200, 404, 200}},
	{method: "GET", route: "/audit/checkpoint", want: want{303, 200, 200, 200, 200}},
	{method: "GET", route: "/v1/audit/entries", want: want{401, 200, 200, 200, 200}},
	{method: "GET", route: "/v1/audit/entries/{seq}", path: "/v1/audit/entries/{auditA}", want: want{401, 200, 200, 404, 200}},
	{method: "GET", route: "/v1/audit/entries/{seq}/proof", path: "/v1/audit/entries/{auditA}/proof", want: everyone(200)},
	{method: "GET", route: "/v1/audit/checkpoint", want: everyone(200)},
	{method: "GET", route: "/v1/audit/key", want: everyone(200)},
	{method: "GET", route: "/v1/audit/consistency", path: "/v1/audit/consistency?from=1&to=2", want: everyone(200)},
}

// matrixObjects creates the objects the matrix names, owned by member A (or B when the
// name says so), and returns their ids by name.
func matrixObjects(t *testing.T, env *apptest.Env, f *apptest.Fixture) map[string]string {
	t.Helper()
	objs := map[string]string{}
	admin, err := env.App.Identity.SessionPrincipal(context.Background(), f.AdminA.Session)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenA", "tokenA2"} {
		tok, _, err := env.App.Identity.TokenCreate(identity.WithPrincipal(context.Background(), admin), admin,
			identity.NewToken{Name: name, MemberID: f.MemberA.ID, Role: identity.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		objs[name] = strconv.FormatInt(tok.ID, 10)
	}
	// A member-private audit entry of member A.
	actx := audit.WithActor(context.Background(), audit.System("matrix"))
	if err := pgx.BeginFunc(actx, env.App.Pool, func(tx pgx.Tx) error {
		seq, err := audit.Record(actx, tx, audit.Entry{Action: "matrix.test", MemberID: &f.MemberA.ID})
		objs["auditA"] = strconv.FormatInt(seq, 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A personal entry: admin A's login (the fixture logged everyone in).
	var login int64
	if err := env.App.Pool.QueryRow(actx, `SELECT min(seq) FROM audit_entries WHERE action = 'auth.login' AND actor_name = $1`,
		f.AdminA.Email).Scan(&login); err != nil {
		t.Fatal(err)
	}
	objs["loginAdminA"] = strconv.FormatInt(login, 10)
	// Reports and notifications.
	st, err := env.App.Reports.Generate(actx, reports.Request{Scope: reports.ScopeMember,
		Member: &reports.MemberRef{ID: f.MemberA.ID, Slug: f.MemberA.Slug, Name: f.MemberA.Name},
		Period: reports.Period{Kind: reports.PeriodCustom, Start: time.Now().AddDate(0, 0, -7), End: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	objs["reportA"] = strconv.FormatInt(st.ID, 10)
	for _, name := range []string{"channelA", "channelA2", "channelA3"} {
		kind, target := "email", name+"@a.example"
		c, _, err := env.App.Notify.ChannelCreate(actx, notify.ChannelInput{MemberID: &f.MemberA.ID, Kind: &kind, Name: &name, Target: &target})
		if err != nil {
			t.Fatal(err)
		}
		objs[name] = strconv.FormatInt(c.ID, 10)
	}
	matrixVaults(t, env, f, objs)
	matrixRestore(t, env, f, objs)
	matrixAgent(t, env, objs)
	matrixApprovals(t, env, f, objs)
	// People: member A, its viewer's user id, and two people of A to remove.
	objs["memberA"] = strconv.FormatInt(f.MemberA.ID, 10)
	var viewerA int64
	if err := env.App.Pool.QueryRow(actx, `SELECT id FROM users WHERE email = $1`, f.ViewerA.Email).Scan(&viewerA); err != nil {
		t.Fatal(err)
	}
	objs["viewerAUser"] = strconv.FormatInt(viewerA, 10)
	for _, name := range []string{"personA", "personA2"} {
		added, err := env.App.Identity.PersonAdd(actx, f.MemberA.ID, identity.NewPerson{Email: strings.ToLower(name) + "@a.example", Role: identity.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		objs[name] = strconv.FormatInt(added.UserID, 10)
	}
	return objs
}

// matrixRestore registers member A's repositories in a vault of its own (rows inserted as
// internal/verify's tests do; no verifier key, so passwords are accepted unchecked) and
// records one finished test.
func matrixRestore(t *testing.T, env *apptest.Env, f *apptest.Fixture, objs map[string]string) {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("matrix"))
	var islandID, vaultID int64
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
		replication_factor) VALUES ($1, 'http://127.0.0.1:1', 'x', 'https://s3.matrix.example', 'garage', 1) RETURNING id`,
		testenv.Unique("mx-restore-")).Scan(&islandID); err != nil {
		t.Fatal(err)
	}
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes,
		status, placement) VALUES ($1, $2, $3, $3, $4, 1, 'active', 'automatic') RETURNING id`,
		f.MemberA.ID, islandID, testenv.Unique("mx-restore-"), strings.Repeat("cd", 32)).Scan(&vaultID); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"repoA", "repoA2", "repoA3", "repoP", "repoP2", "repoP3", "repoM", "repoPM"} {
		repo, err := env.App.Verify.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: f.MemberA.ID, VaultID: vaultID,
			Name: name, Path: "restic/" + name, Password: "matrix repository password", FullModeConsent: verify.FullModeStatementVersion})
		if err != nil {
			t.Fatal(err)
		}
		objs[name] = strconv.FormatInt(repo.ID, 10)
	}
	var runID int64
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode,
		status, reason, started_at, finished_at, duration_ms, rpo_target_seconds, rto_target_seconds, log)
		VALUES ($1, $2, $3, 'schedule', 'full', 'passed', 'every level passed', now() - interval '1 minute', now(), 60000,
		93600, 86400, 'restic output') RETURNING id`, objs["repoA"], f.MemberA.ID, islandID).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	objs["runA"] = strconv.FormatInt(runID, 10)
}

// Names of the vaults the matrix creates (unique: the tests share one MinIO).
var (
	matrixVaultName       = testenv.Unique("mx-api-")
	matrixPortalVaultName = testenv.Unique("mx-portal-")
)

// matrixVaults creates member A's vaults, keys and grant on an island operated by B.
func matrixVaults(t *testing.T, env *apptest.Env, f *apptest.Fixture, objs map[string]string) {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("matrix"))
	isl := vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "matrix", 3, f.MemberB.ID)
	g, err := env.App.Vaults.GrantCreate(ctx, vaults.GrantInput{MemberID: f.MemberA.ID, Bytes: 50_000_000_000, Reason: "matrix"})
	if err != nil {
		t.Fatal(err)
	}
	objs["grantA"] = strconv.FormatInt(g.ID, 10)
	g2, err := env.App.Vaults.GrantCreate(ctx, vaults.GrantInput{MemberID: f.MemberA.ID, Bytes: 1, Reason: "matrix: to revoke"})
	if err != nil {
		t.Fatal(err)
	}
	objs["grantA2"] = strconv.FormatInt(g2.ID, 10)
	for _, name := range []string{"vaultA", "vaultA2", "vaultA3", "vaultA4", "vaultA5"} {
		v, _, err := env.App.Vaults.Create(ctx, vaults.CreateInput{MemberID: f.MemberA.ID, Name: testenv.Unique("mx-"), QuotaBytes: 1_000_000_000})
		if err != nil {
			t.Fatal(err)
		}
		objs[name] = strconv.FormatInt(v.ID, 10)
		if name == "vaultA3" || name == "vaultA5" { // scheduled for deletion: the island refuses to delete the bucket
			isl.Sim.InjectFault(garagesim.Fault{Operation: "DeleteBucket", Status: 503, Count: 2}) // the client retries once
			if _, immediate, err := env.App.Vaults.Delete(ctx, v.ID, "matrix"); err != nil || immediate {
				t.Fatalf("schedule deletion: %v (immediate %v)", err, immediate)
			}
		}
	}
	vaultA, _ := strconv.ParseInt(objs["vaultA"], 10, 64)
	for _, name := range []string{"keyA", "keyA2", "keyA3", "keyA4"} {
		k, err := env.App.Vaults.KeyCreate(ctx, vaultA, vaults.KeyInput{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		objs[name] = strconv.FormatInt(k.ID, 10)
	}
}

// TestTenantIsolationMatrix walks every route the router really has and, for each actor,
// asserts the expected status. A route without a row fails the test, so no capability can
// add a route that bypasses it.
func TestTenantIsolationMatrix(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_METRICS_TOKEN", "matrix-metrics-scrape-token"))
	f := env.Fixture()
	objs := matrixObjects(t, env, f)

	rows := map[string]row{}
	for _, r := range matrix {
		key := r.method + " " + r.route
		if _, dup := rows[key]; dup {
			t.Errorf("matrix lists %s twice", key)
		}
		rows[key] = r
	}
	var routes []string
	if err := chi.Walk(env.App.Server.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(routes)
	if missing := unlisted(routes, rows); len(missing) > 0 {
		t.Fatalf("routes without a row in the tenant isolation matrix (add one):\n  %s", strings.Join(missing, "\n  "))
	}
	walked := map[string]bool{}
	for _, r := range routes {
		walked[r] = true
	}
	for key := range rows {
		if !walked[key] {
			t.Errorf("matrix row %s names no route", key)
		}
	}

	// Actors run in this order so that an admin's change does not hide what a weaker actor
	// should have been refused.
	order := []struct {
		actor *apptest.Actor
		want  func(want) int
	}{
		{f.Anonymous, func(w want) int { return w.anon }},
		{f.ViewerA, func(w want) int { return w.viewerA }},
		{f.AdminB, func(w want) int { return w.adminB }},
		{f.AdminA, func(w want) int { return w.adminA }},
		{f.FedAdmin, func(w want) int { return w.fed }},
	}
	for _, key := range routes {
		r := rows[key]
		path := r.path
		if path == "" {
			path = r.route
		}
		for name, id := range objs {
			path = strings.ReplaceAll(path, "{"+name+"}", id)
		}
		if strings.Contains(path, "{") {
			t.Errorf("%s: path %s names an object the matrix fixture lacks", key, path)
			continue
		}
		for _, o := range order {
			actor := o.actor
			if r.fresh && actor.Email != "" {
				actor = relogin(t, env, actor)
			}
			got := send(env, actor, r.method, path, r.body)
			if want := o.want(r.want); got.Status != want {
				t.Errorf("%s as %s: status %d, want %d (%s)", key, o.actor.Name, got.Status, want, trim(got.Body))
			}
		}
	}
}

func unlisted(routes []string, rows map[string]row) []string {
	var out []string
	for _, r := range routes {
		if _, ok := rows[r]; !ok {
			out = append(out, r)
		}
	}
	return out
}

// TestMatrixFailsOnAnUnlistedRoute shows the matrix catches a route nobody listed.
func TestMatrixFailsOnAnUnlistedRoute(t *testing.T) {
	t.Parallel()
	rows := map[string]row{}
	for _, r := range matrix {
		rows[r.method+" "+r.route] = r
	}
	got := unlisted([]string{"GET /healthz", "POST /v1/backdoor"}, rows)
	if len(got) != 1 || got[0] != "POST /v1/backdoor" {
		t.Fatalf("unlisted = %v", got)
	}
}

func relogin(t *testing.T, env *apptest.Env, a *apptest.Actor) *apptest.Actor {
	t.Helper()
	res, err := env.App.Identity.Login(context.Background(), a.Email, a.Password, "192.0.2.9", "matrix")
	if err != nil {
		t.Fatalf("relogin %s: %v", a.Email, err)
	}
	return &apptest.Actor{Name: a.Name, Email: a.Email, Password: a.Password, Access: res.AccessToken,
		Session: res.SessionSecret, CSRF: res.Principal.CSRF}
}

// send makes the request as the actor: API routes with its bearer token, portal routes
// with its session cookie (and the CSRF token in forms).
func send(env *apptest.Env, a *apptest.Actor, method, path string, body any) *apptest.Response {
	req := apptest.Req{Method: method, Path: path, NoValidate: true, Header: map[string]string{}}
	if apptest.IsAPIPath(path) {
		req.Token = a.Access
		req.Body = body
		req.NoValidate = false
	} else {
		if a.Session != "" {
			req.Header["Cookie"] = "archipelago_session=" + a.Session
		}
		if form, ok := body.(url.Values); ok {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf", a.CSRF)
			req.Body = f.Encode()
			req.Header["Content-Type"] = "application/x-www-form-urlencoded"
		}
	}
	return env.Do(req)
}

func trim(b []byte) string {
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// matrixAgent registers two agent keys on member A's repoA and records one attestation
// signed by the first (rows inserted directly; internal/attest's tests cover acceptance).
func matrixAgent(t *testing.T, env *apptest.Env, objs map[string]string) {
	t.Helper()
	ctx := context.Background()
	var att int64
	for i, name := range []string{"agentKeyA", "agentKeyA2"} {
		var id int64
		if err := env.App.Pool.QueryRow(ctx, `INSERT INTO agent_keys (repository_id, name, public_key, key_id)
			VALUES ($1, $2, $3, $4) RETURNING id`, objs["repoA"], name, make([]byte, 32), fmt.Sprintf("%064x", i+1)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		objs[name] = strconv.FormatInt(id, 10)
		if i == 0 {
			if err := env.App.Pool.QueryRow(ctx, `INSERT INTO agent_attestations (repository_id, agent_key_id, statement_sha256, envelope,
				status, started_at, finished_at, audit_seq) VALUES ($1, $2, $3, $4, 'passed', now(), now(), 0) RETURNING id`,
				objs["repoA"], id, fmt.Sprintf("%064x", 99),
				`{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": [{"keyid": "x", "sig": "x"}]}`).Scan(&att); err != nil {
				t.Fatal(err)
			}
		}
	}
	objs["attestationA"] = strconv.FormatInt(att, 10)
}

// matrixApprovals records approval requests about member A, asked by the federation admin.
func matrixApprovals(t *testing.T, env *apptest.Env, f *apptest.Fixture, objs map[string]string) {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("matrix"))
	fed, err := env.App.Identity.AccessPrincipal(ctx, f.FedAdmin.Access)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"approvalA", "approvalA2", "approvalA3", "approvalP", "approvalP2", "approvalP3"} {
		r, err := env.App.Approvals.RequestCreate(audit.WithActor(ctx, fed.Actor()), fed, approvals.Ask{Action: approvals.ActionVaultDelete,
			TargetType: "vault", TargetID: "matrix-" + name, AffectedMemberID: &f.MemberA.ID, Effect: "matrix: " + name})
		if err != nil {
			t.Fatal(err)
		}
		objs[name] = strconv.FormatInt(r.ID, 10)
	}
}
