package server_test

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
)

// /metrics names every member's vaults and repositories: it answers only the scrape token
// (ARCHIPELAGO_METRICS_TOKEN), and nobody at all when none is configured.
func TestMetricsNeedTheScrapeToken(t *testing.T) {
	t.Parallel()
	const token = "metrics-test-scrape-token-0123"
	env := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_METRICS_TOKEN", token))
	f := env.Fixture()
	for name, tok := range map[string]string{"no credential": "", "a wrong token": token + "x", "a federation admin's access token": f.FedAdmin.Access} {
		if r := env.Do(apptest.Req{Method: "GET", Path: "/metrics", Token: tok}); r.Status != 401 {
			t.Errorf("/metrics with %s: %d", name, r.Status)
		}
	}
	if r := env.Do(apptest.Req{Method: "GET", Path: "/metrics", Token: token}); r.Status != 200 {
		t.Errorf("/metrics with the scrape token: %d %s", r.Status, r.Body)
	}
	unset := apptest.New(t)
	if r := unset.Do(apptest.Req{Method: "GET", Path: "/metrics"}); r.Status != 403 {
		t.Errorf("/metrics without a configured token: %d %s", r.Status, r.Body)
	}
	// An empty bearer token is what an unset token would compare equal to.
	if r := unset.Do(apptest.Req{Method: "GET", Path: "/metrics", Header: map[string]string{"Authorization": "Bearer "}}); r.Status != 403 {
		t.Errorf("/metrics without a configured token, with an empty bearer token: %d", r.Status)
	}
}

// /metrics counts the process's audit appends by who computed the tree (audit.Appender):
// its first append, and those after another process's, are the database's; the others the
// process's own.
func TestMetricsCountTheProcesssAuditAppends(t *testing.T) {
	t.Parallel()
	const token = "metrics-test-scrape-token-0123"
	env := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_METRICS_TOKEN", token))
	f := env.Fixture() // its logins append through the server's Appender
	for i := range 3 {
		if r := env.Do(apptest.Req{Method: "POST", Path: "/v1/members", Token: f.FedAdmin.Access,
			Body: map[string]any{"slug": fmt.Sprintf("appends-%d", i), "name": "Appends"}}); r.Status != 201 {
			t.Fatalf("create a member: %d %s", r.Status, r.Body)
		}
	}
	r := env.Do(apptest.Req{Method: "GET", Path: "/metrics", Token: token})
	count := func(by string) int {
		m := regexp.MustCompile(`(?m)^archipelago_audit_appends_total\{by="` + by + `"\} (\d+)$`).FindStringSubmatch(string(r.Body))
		if m == nil {
			t.Fatalf("/metrics lacks archipelago_audit_appends_total{by=%q}", by)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if p, d := count("process"), count("database"); p < 2 || d < 1 {
		t.Fatalf("%d appends computed by the process, %d by the database: want at least 2 and 1", p, d)
	}
}
