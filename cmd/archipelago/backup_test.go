package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `archipelago admin backup --help` prints its own help, in the session's language.
func TestAdminBackupHelpInBothLanguages(t *testing.T) {
	t.Parallel()
	_, en, _ := runCLI(t, map[string]string{"LANG": "en_GB.UTF-8"}, "admin", "backup", "--help")
	_, fr, _ := runCLI(t, map[string]string{"LANG": "fr_FR.UTF-8"}, "admin", "backup", "--help")
	if !strings.Contains(en, "archipelago admin backup restore --kit FILE") || !strings.Contains(en, "recovery kit") {
		t.Errorf("English help:\n%s", en)
	}
	if !strings.Contains(fr, "archipelago admin backup restore --kit FICHIER") || !strings.Contains(fr, "kit de secours") {
		t.Errorf("French help:\n%s", fr)
	}
	if _, out, _ := runCLI(t, map[string]string{"LANG": "fr_FR.UTF-8"}, "admin", "--help"); !strings.Contains(out, "archipelago admin backup") {
		t.Errorf("admin --help does not name backup:\n%s", out)
	}
}

// The disaster-recovery command needs no database URL and no master key: only the kit and
// the target; a kit missing its secrets is refused before anything is touched.
func TestAdminBackupRestoreNeedsOnlyTheKit(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, nil, "admin", "backup", "restore", "--target-url", "postgres://x@127.0.0.1:1/x")
	if code != 1 || !strings.Contains(errOut, "--kit FILE and --target-url URL are required") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	kit := filepath.Join(t.TempDir(), "kit.env")
	if err := os.WriteFile(kit, []byte("export RESTIC_REPOSITORY='s3:http://127.0.0.1:1/b/p'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, nil, "admin", "backup", "restore", "--kit", kit, "--target-url", "postgres://x@127.0.0.1:1/x")
	if code != 1 || !strings.Contains(errOut, "RESTIC_PASSWORD is missing") || strings.Contains(errOut, "ARCHIPELAGO_DATABASE_URL") ||
		strings.Contains(errOut, "MASTER_KEY") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
