package minioserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestReapOrphansRemovesOnlyDeadOwnersDirectories: a throwaway MinIO directory
// whose owner died (a killed test binary) is removed when the next one starts; a
// live owner's directory, and one without a pid file, are left alone.
func TestReapOrphansRemovesOnlyDeadOwnersDirectories(t *testing.T) {
	parent := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name, pid string) string {
		d := filepath.Join(parent, tempPrefix+name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(d, "owner.pid"), []byte(pid+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	orphan := mk("orphan", strconv.Itoa(dead.Process.Pid))
	live := mk("live", strconv.Itoa(os.Getpid()))
	unknown := mk("unknown", "")
	other := filepath.Join(parent, "not-minio")
	if err := os.WriteFile(filepath.Join(parent, "owner.pid"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}

	reapOrphans(parent)

	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the dead owner's directory is still there (stat: %v)", err)
	}
	for _, d := range []string{live, unknown, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(d), err)
		}
	}
}

// TestTempParentHonoursTheSetting: ARCHIPELAGO_MINIO_TMPDIR chooses where
// throwaway data goes.
func TestTempParentHonoursTheSetting(t *testing.T) {
	d := t.TempDir()
	t.Setenv(EnvTempDir, d)
	if got := tempParent(); got != d {
		t.Errorf("tempParent() = %q, want %q", got, d)
	}
}
