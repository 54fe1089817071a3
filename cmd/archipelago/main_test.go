package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func runCLI(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, env, args)
	return code, out.String(), errOut.String()
}

func TestServeWithAnUnreachableDatabaseFailsFastNamingTheVariable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	code, _, stderr := runCLI(t, map[string]string{
		"ARCHIPELAGO_DATABASE_URL": "postgres://nobody@127.0.0.1:1/x",
		"ARCHIPELAGO_MASTER_KEY":   seal.NewKey(),
	}, "serve")
	if code == 0 || !strings.Contains(stderr, "ARCHIPELAGO_DATABASE_URL") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestServeRefusesAnOutdatedSchemaWithTheMigrateHint(t *testing.T) {
	t.Parallel()
	url := testenv.DBURL(t)
	vars := map[string]string{"ARCHIPELAGO_DATABASE_URL": url, "ARCHIPELAGO_MASTER_KEY": seal.NewKey(), "ARCHIPELAGO_LISTEN": "127.0.0.1:0"}
	code, _, _ := runCLI(t, map[string]string{"ARCHIPELAGO_DATABASE_URL": url}, "migrate", "status")
	if code != 0 {
		t.Fatalf("migrate status exit %d", code)
	}
	// Roll the recorded version back: the binary now sees a schema behind it.
	if _, err := mustPool(t, url).Exec(context.Background(), `UPDATE schema_version SET version = 0`); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, vars, "serve")
	if code == 0 || !strings.Contains(stderr, "archipelago migrate up") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, out, _ := runCLI(t, vars, "migrate", "status")
	if code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("status after rollback: %d %q", code, out)
	}
}

func TestConfigRedactsSecretsAndNamesBadVariables(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, map[string]string{
		"ARCHIPELAGO_DATABASE_URL": "postgres://app:hunter2hunter2@db:5432/arch",
		"ARCHIPELAGO_MASTER_KEY":   "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	}, "config")
	if code != 0 || strings.Contains(out, "hunter2") || strings.Contains(out, "00112233") {
		t.Fatalf("exit %d; secrets visible:\n%s", code, out)
	}
	code, _, stderr := runCLI(t, map[string]string{"ARCHIPELAGO_LOG_LEVEL": "loud", "ARCHIPELAGO_LISTEN": "nope"}, "config")
	if code == 0 || !strings.Contains(stderr, "ARCHIPELAGO_LOG_LEVEL") || !strings.Contains(stderr, "ARCHIPELAGO_LISTEN") {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	if code, _, stderr := runCLI(t, nil, "fly"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("exit %d %q", code, stderr)
	}
}
