package sandbox

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/minioserver"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

// islandFaults are what TestSeedingMeetsFailingIslands makes every island's admin API do
// while it is seeded. The operations that Archipelago's Garage client never tries twice
// (CreateKey, CreateBucket) fail one call in three; those it tries a second time after a
// 503 (AllowBucketKey, DenyBucketKey, UpdateBucket: idempotent) fail two calls in four, so
// that the client's own retry meets the second failure and the error reaches the seeding
// step.
var islandFaults = []garagesim.Fault{
	{Operation: "CreateKey", Status: 503, Count: 1, Every: 3},
	{Operation: "CreateBucket", Status: 503, Count: 1, Every: 3},
	{Operation: "AllowBucketKey", Status: 503, Count: 2, Every: 4},
	{Operation: "DenyBucketKey", Status: 503, Count: 2, Every: 4},
	{Operation: "UpdateBucket", Status: 503, Count: 2, Every: 4},
}

// TestSeedingMeetsFailingIslands: a whole seeding run (Seed: islands, vaults, protected
// vaults, restic repositories) against islands whose admin API keeps failing transiently
// (islandFaults, from the first call on) completes — every step that calls an island
// tries again — and leaves the demo complete: every demo vault active, the member keys of
// the protection demo made, both copies active, the lagging copy's write permission taken
// away, the tripwire's removal of the planted rule audited. It also checks that each
// fault was met, else it would prove nothing.
func TestSeedingMeetsFailingIslands(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var logs testenv.Logs
	log := testenv.LoggerTo(io.MultiWriter(&logs, testenv.LogWriter(t)), slog.LevelInfo)
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{
			"ARCHIPELAGO_DATABASE_URL": testenv.DBURL(t),
			"ARCHIPELAGO_MASTER_KEY":   seal.NewKey(),
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.PasswordHashMemoryKiB, cfg.PasswordHashPasses = 1024, 1 // the demo logins' hashes
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s3 := testenv.S3(t)

	var mu sync.Mutex
	sims := map[string]*garagesim.Sim{}
	env := SeedEnv{S3: &minioserver.Server{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Region: s3.Region},
		islandStarted: func(name string, sim *garagesim.Sim) {
			for _, f := range islandFaults {
				sim.InjectFault(f)
			}
			mu.Lock()
			sims[name] = sim
			mu.Unlock()
		}}
	seeded, err := Seed(ctx, a, env)
	if err != nil {
		t.Fatalf("seeding against failing islands: %v", err)
	}
	defer seeded.StopIslands()
	served := map[string]int{}
	mu.Lock()
	for _, s := range sims {
		s.ClearFaults()
		for op, n := range s.FaultsServed() {
			served[op] += n
		}
	}
	mu.Unlock()
	t.Logf("injected faults served: %v; seeding retried %d times", served, strings.Count(logs.String(), "seeding step failed, retrying"))
	for _, f := range islandFaults {
		if served[f.Operation] == 0 {
			t.Errorf("no call of %s met its fault: the run proves nothing about it", f.Operation)
		}
	}

	// seedProtection's failures are only logged (Seed goes on without the protection demo).
	if strings.Contains(logs.String(), "protection demo incomplete") {
		t.Errorf("the protection demo is incomplete:\n%s", grepLines(logs.String(), "protection demo incomplete"))
	}
	status := map[string]string{}
	rows, err := a.Pool.Query(ctx, `SELECT name, status FROM vaults`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, st string
		if err := rows.Scan(&name, &st); err != nil {
			t.Fatal(err)
		}
		status[name] = st
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{protectedVault, laggingVault, trippedVault}
	for _, d := range sandboxVaults {
		want = append(want, d.Name)
	}
	for _, name := range want {
		if status[name] != "active" {
			t.Errorf("demo vault %s: status %q, want active", name, status[name])
		}
	}
	for name, st := range status {
		if st != "active" {
			t.Errorf("vault %s is %s", name, st)
		}
	}
	keys := map[string][]string{}
	rows, err = a.Pool.Query(ctx, `SELECT v.name, k.name FROM vault_keys k JOIN vaults v ON v.id = k.vault_id WHERE k.deleted_at IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var vault, key string
		if err := rows.Scan(&vault, &key); err != nil {
			t.Fatal(err)
		}
		keys[vault] = append(keys[vault], key)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for vault, key := range map[string]string{protectedVault: "protection demo", laggingVault: "protection demo",
		trippedVault: "compromised laptop", "chaton-rouge-mail": "mail server"} {
		if !slices.Contains(keys[vault], key) {
			t.Errorf("vault %s has no key %q (keys: %v)", vault, key, keys[vault])
		}
	}
	if !slices.Contains(keys[protectedVault], "backup backup01") {
		t.Errorf("the repository tested on the copy has no key in %s (keys: %v)", protectedVault, keys[protectedVault])
	}
	copies := map[string]string{}
	rows, err = a.Pool.Query(ctx, `SELECT v.name, p.copy_status FROM vault_protection p JOIN vaults v ON v.id = p.vault_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var vault, st string
		if err := rows.Scan(&vault, &st); err != nil {
			t.Fatal(err)
		}
		copies[vault] = st
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{protectedVault, laggingVault} {
		if copies[v] != "active" {
			t.Errorf("copy of %s: %q, want active (copies: %v)", v, copies[v], copies)
		}
	}
	var partial, removed int
	if err := a.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM vault_copy_runs r JOIN vaults v ON v.id = r.vault_id WHERE v.name = $1 AND r.status = 'partial'),
		(SELECT count(*) FROM audit_entries e JOIN vaults v ON e.target_type = 'vault' AND e.target_id = v.id::text
		  WHERE v.name = $2 AND e.action = 'vault.lifecycle_removed')`, laggingVault, trippedVault).Scan(&partial, &removed); err != nil {
		t.Fatal(err)
	}
	if partial == 0 {
		t.Errorf("the lagging copy of %s never ran short of write permission (no partial run)", laggingVault)
	}
	if removed == 0 {
		t.Errorf("the tripwire did not remove the rule planted in %s", trippedVault)
	}
	if len(seeded.Round) == 0 {
		t.Error("no restore test was enqueued for the demo repositories")
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
