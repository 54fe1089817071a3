package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

// TestClientCommandsAgainstARealServer drives the client commands as automation would: an API
// token of member A's admin in ARCHIPELAGO_API_TOKEN, the server in ARCHIPELAGO_API_URL; a
// vault and a key are created, listed and described in table, JSON and YAML; errors name what
// is wrong; lists follow the cursor to the end; another member's token sees nothing of A.
func TestClientCommandsAgainstARealServer(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture()
	north := vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "north", 3, f.MemberA.ID)
	vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "south", 3, f.MemberB.ID)
	vaultstest.Pledge(t, env.App.Pool, north, f.MemberA.ID, 300_000_000_000)

	token := func(a *apptest.Actor, member string) string {
		res := env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: a.Access,
			Body: map[string]any{"name": "cli", "member": member, "role": "admin"}})
		if res.Status != 201 {
			t.Fatalf("token: %d %s", res.Status, res.Body)
		}
		var tok struct{ Token string }
		res.Decode(t, &tok)
		return tok.Token
	}
	varsA := map[string]string{"ARCHIPELAGO_API_URL": env.URL, "ARCHIPELAGO_API_TOKEN": token(f.AdminA, "member-a")}
	varsB := map[string]string{"ARCHIPELAGO_API_URL": env.URL, "ARCHIPELAGO_API_TOKEN": token(f.AdminB, "member-b")}
	cli := func(vars map[string]string, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := runCLI(t, vars, args...)
		if code != 0 {
			t.Fatalf("archipelago %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out, errOut
	}

	name := testenv.Unique("cli-")
	out, _ := cli(varsA, "vaults", "create", "--member", "member-a", "--name", name, "--quota", "10GB", "-o", "json")
	var v struct {
		ID         int64  `json:"id"`
		Status     string `json:"status"`
		QuotaBytes int64  `json:"quota_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Status != "active" || v.QuotaBytes != 10_000_000_000 {
		t.Fatalf("create: %v %+v\n%s", err, v, out)
	}
	id := fmt.Sprint(v.ID)

	// get: a table with a header and SI sizes; JSON and YAML hold the same vault.
	out, _ = cli(varsA, "vaults", "get")
	if !strings.Contains(out, "MEMBER") || !strings.Contains(out, name) || !strings.Contains(out, "10 GB") {
		t.Fatalf("table:\n%s", out)
	}
	out, _ = cli(varsA, "vaults", "get", "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0]["name"] != name {
		t.Fatalf("json list: %v\n%s", err, out)
	}
	// --member takes the member's id as well as its slug; the table names the member by slug.
	out, _ = cli(varsA, "vaults", "get", "--member", fmt.Sprint(f.MemberA.ID), "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0]["member_slug"] != "member-a" {
		t.Fatalf("json list by member id: %v\n%s", err, out)
	}
	out, _ = cli(varsA, "vaults", "get", id, "-o", "yaml")
	var y map[string]any
	if err := yaml.Unmarshal([]byte(out), &y); err != nil || y["name"] != name || y["quota_bytes"] != 10_000_000_000 {
		t.Fatalf("yaml: %v %v\n%s", err, y, out)
	}

	// A key: the secret once, at creation (with a note saying so); never in a listing.
	out, errOut := cli(varsA, "keys", "create", "--vault", id, "--name", "laptop", "-o", "json")
	var k struct {
		Secret  string `json:"secret_access_key"`
		Snippet string `json:"restic_snippet"`
	}
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Secret == "" || !strings.Contains(k.Snippet, "RESTIC_REPOSITORY") ||
		!strings.Contains(errOut, "shown once") {
		t.Fatalf("key create: %v\n%s\n%s", err, out, errOut)
	}
	out, _ = cli(varsA, "keys", "get", "--vault", id)
	if !strings.Contains(out, "laptop") || strings.Contains(out, k.Secret) {
		t.Fatalf("keys table (must not hold the secret):\n%s", out)
	}
	out, _ = cli(varsA, "vaults", "describe", id, "-o", "json")
	var d struct {
		Name    string
		Related map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Name != name || !strings.Contains(string(d.Related["Keys"]), "laptop") ||
		strings.Contains(out, k.Secret) {
		t.Fatalf("describe: %v\n%s", err, out)
	}

	// Member B's token sees none of A's vaults and gets a 404 for A's vault.
	out, _ = cli(varsB, "vaults", "get", "-o", "json")
	if strings.Contains(out, name) {
		t.Fatalf("B lists A's vault:\n%s", out)
	}
	if code, _, errOut := runCLI(t, varsB, "vaults", "get", id); code != 1 || !strings.Contains(errOut, "404 not_found") {
		t.Fatalf("B gets A's vault: exit %d %q", code, errOut)
	}

	// Mistakes are named, before or by the server.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "get"}, "--vault is required"},
		{[]string{"vaults", "create", "--member", "member-a", "--name", name}, "--quota is required"},
		{[]string{"vaults", "create", "--member", "member-a", "--name", "x", "--quota", "lots"}, "--quota"},
		{[]string{"vaults", "create", "--member", "member-a", "--name", "Bad_Name", "--quota", "1GB"}, "(field name)"},
		{[]string{"vaults", "get", "-o", "xml"}, "want table, json or yaml"},
		{[]string{"vaults", "fly"}, "unknown verb"},
		{[]string{"tests", "create"}, "--repository is required"},
	} {
		code, _, errOut := runCLI(t, varsA, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q (want %q)", c.args, code, errOut, c.want)
		}
	}
	// In a French session, the server's messages (the client sends Accept-Language) and the
	// command's own words are French.
	fr := func(vars map[string]string) map[string]string {
		out := map[string]string{"LANG": "fr_FR.UTF-8"}
		for k, v := range vars {
			out[k] = v
		}
		return out
	}
	for _, c := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{fr(varsB), []string{"vaults", "get", id}, "coffre " + id + " introuvable"},
		{fr(varsA), []string{"keys", "get"}, "--vault est obligatoire pour keys"},
		{fr(varsA), []string{"vaults", "create", "--member", "member-a", "--name", "Bad_Name", "--quota", "1GB"}, "(champ name)"},
	} {
		if code, _, errOut := runCLI(t, c.vars, c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("French %v: exit %d, stderr %q (want %q)", c.args, code, errOut, c.want)
		}
	}
	if code, _, errOut := runCLI(t, map[string]string{"ARCHIPELAGO_API_URL": env.URL}, "vaults", "get"); code == 0 ||
		!strings.Contains(errOut, "ARCHIPELAGO_API_TOKEN") {
		t.Errorf("without a token: exit %d %q", code, errOut)
	}
}

// TestClientListsFollowEveryPage: a list longer than the server's page (50) comes back whole,
// and --limit stops early, saying more exist.
func TestClientListsFollowEveryPage(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture()
	for i := 0; i < 60; i++ {
		env.Member(fmt.Sprintf("m-%03d", i), fmt.Sprintf("Member %d", i))
	}
	vars := map[string]string{"ARCHIPELAGO_API_URL": env.URL, "ARCHIPELAGO_API_TOKEN": f.FedAdmin.Access}
	code, out, errOut := runCLI(t, vars, "members", "get", "-o", "json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 62 {
		t.Fatalf("exit %d, %d members (want 62)\n%s", code, len(list), errOut)
	}
	code, out, errOut = runCLI(t, vars, "members", "get", "--limit", "5")
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 5 || !strings.Contains(errOut, "more members exist") {
		t.Fatalf("limit 5: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestEveryCommandHasHelpThatDoesNothingElse: `--help` on any command prints its usage and
// exits 0 without settings, without starting anything (testenv would start PostgreSQL and
// MinIO; keygen would print a key; serve would fail on missing settings).
func TestEveryCommandHasHelpThatDoesNothingElse(t *testing.T) {
	t.Parallel()
	for name := range commands(nil) {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			start := time.Now()
			code, out, errOut := runCLI(t, nil, args...)
			if code != 0 || !strings.Contains(strings.ToLower(out), "usage") || errOut != "" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
			if name == "keygen" && strings.Count(out, "\n") > 4 {
				t.Errorf("keygen --help printed more than its usage: %q", out)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%v took %s: it did more than print help", args, d)
			}
		}
	}
	for _, args := range [][]string{{"audit", "key", "--help"}, {"admin", "reseal", "--help"}, {"vaults", "get", "--help"}, {"migrate", "up", "-h"}} {
		if code, out, _ := runCLI(t, nil, args...); code != 0 || !strings.Contains(strings.ToLower(out), "usage") {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
	code, out, _ := runCLI(t, nil, "--version")
	if code != 0 || !strings.HasPrefix(out, "archipelago ") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	// testenv's own arguments after the command are the command's, not testenv's.
	if !wantsHelp("vaults", []string{"get", "--help"}) || wantsHelp("testenv", []string{"go", "test", "-h"}) ||
		wantsHelp("audit", []string{"verify", "--", "--help"}) {
		t.Error("wantsHelp")
	}
}
