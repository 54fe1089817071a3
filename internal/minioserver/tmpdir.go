package minioserver

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// EnvTempDir names the directory under which a throwaway MinIO (Options.Dir
// empty) keeps its data, instead of the one tempParent picks.
const EnvTempDir = "ARCHIPELAGO_MINIO_TMPDIR"

// minRAMFree is the room a RAM-backed directory must have for a throwaway MinIO.
const minRAMFree = 4 << 30

// tempPrefix starts the name of every throwaway MinIO directory.
const tempPrefix = "archipelago-minio-"

// tempParent picks where a throwaway MinIO keeps its data: $ARCHIPELAGO_MINIO_TMPDIR
// when set, else a RAM-backed directory (/dev/shm) with room to spare, else the
// system's temporary directory ("").
//
// MinIO syncs every IAM write (each user and canned policy) to its drive; on a disk
// shared with a busy machine that made the Garage simulator's CreateKey and
// AllowBucketKey take hundreds of milliseconds. Throwaway data needs no durability,
// like the test PostgreSQL that runs with fsync=off.
func tempParent() string {
	if d := os.Getenv(EnvTempDir); d != "" {
		return d
	}
	if ramBacked("/dev/shm", minRAMFree) {
		return "/dev/shm"
	}
	return ""
}

// reapOrphans removes the throwaway MinIO directories under parent left by
// processes that died without stopping their server (a killed test binary):
// in a RAM-backed directory they would hold memory until the next boot. A
// directory is an orphan when the pid file its owner wrote names no live process.
func reapOrphans(parent string) {
	if parent == "" {
		parent = os.TempDir()
	}
	dirs, _ := filepath.Glob(filepath.Join(parent, tempPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue // not ours to judge (no pid file: an older layout, or still starting)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// writeOwner records the calling process as the owner of a throwaway directory.
func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// alive reports whether a process with this pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
