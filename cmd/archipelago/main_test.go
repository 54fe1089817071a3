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

// TestTheCommandLineSpeaksTheSessionsLanguage: LANG (or LC_ALL, LC_MESSAGES) in French gives
// the command list, every command's help and the CLI's own messages in French; in English
// (or with no locale set) in English.
func TestTheCommandLineSpeaksTheSessionsLanguage(t *testing.T) {
	t.Parallel()
	fr := map[string]string{"LANG": "fr_FR.UTF-8"}
	en := map[string]string{"LANG": "en_GB.UTF-8"}
	if code, out, _ := runCLI(t, fr, "--help"); code != 0 || !strings.Contains(out, "Commandes :") ||
		!strings.Contains(out, "servir le portail et l’API REST") || strings.Contains(out, "Commands:") {
		t.Errorf("--help in French: exit %d\n%s", code, out)
	}
	for _, vars := range []map[string]string{en, nil, {"LC_ALL": "C.UTF-8", "LANG": "fr_FR.UTF-8"}} {
		if code, out, _ := runCLI(t, vars, "--help"); code != 0 || !strings.Contains(out, "Commands:") ||
			!strings.Contains(out, "serve the portal and the REST API") {
			t.Errorf("--help with %v: exit %d\n%s", vars, code, out)
		}
	}
	if code, _, errOut := runCLI(t, map[string]string{"LC_ALL": "fr_FR.UTF-8"}, "frobnicate"); code != 2 ||
		!strings.Contains(errOut, `commande inconnue "frobnicate"`) {
		t.Errorf("unknown command in French: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, fr, "migrate", "sideways"); code != 1 || !strings.Contains(errOut, "usage : archipelago migrate up|status") {
		t.Errorf("migrate with a bad argument in French: exit %d %q", code, errOut)
	}
	// Every command's help exists in both languages and is not the English text in French.
	for name := range commands(nil) {
		_, outFR, _ := runCLI(t, fr, name, "--help")
		_, outEN, _ := runCLI(t, en, name, "--help")
		if outFR == "" || outFR == outEN || strings.Contains(outFR, "cli."+name) {
			t.Errorf("%s --help is not translated:\nfr: %s\nen: %s", name, outFR, outEN)
		}
	}
	if _, out, _ := runCLI(t, fr, "agent", "--help"); !strings.Contains(out, "Options :") || !strings.Contains(out, "fichier qui contient le mot de passe restic") {
		t.Errorf("agent --help in French:\n%s", out)
	}
}
