package restic

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/testenv"
)

// newTestRunner returns a Runner on the real restic binary. A missing or
// wrong binary fails the test (never skips it), saying how to get it.
func newTestRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	ctx := t.Context()
	r, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("these tests run the real restic %s binary: %v\n(run `make tools` at the repository root, or set $%s)",
			PinnedVersion, err, EnvBinary)
	}
	return r
}

// execLog records what every child of a Runner was started with.
type execLog struct {
	mu   sync.Mutex
	args [][]string
	envs [][]string
}

func (l *execLog) hook(args, env []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.args = append(l.args, append([]string(nil), args...))
	l.envs = append(l.envs, append([]string(nil), env...))
}

// bundle is what most tests need: a runner, an initialised repository in a
// temporary directory and a source tree to back up.
type bundle struct {
	r       *Runner
	repo    Repo
	src     string // directory with the files below
	execs   *execLog
	logs    *testenv.Logs // the runner's slog output
	content map[string][]byte
}

// setup initialises a fresh local repository and a small source tree:
// a.bin (randomBytes random bytes), sub/b.txt and sub/link (a symlink).
func setup(t *testing.T, randomBytes int) *bundle {
	t.Helper()
	dir := t.TempDir()
	b := &bundle{
		execs:   &execLog{},
		logs:    &testenv.Logs{},
		content: map[string][]byte{},
	}
	b.r = newTestRunner(t, Config{
		Logger:           testenv.LoggerTo(b.logs, slog.LevelDebug),
		KillGrace:        5 * time.Second,
		ProgressInterval: 50 * time.Millisecond,
	})
	b.r.execHook = b.execs.hook
	b.repo = Repo{
		URL:      filepath.Join(dir, "repo"),
		Password: "correct horse battery staple " + rand.Text(),
		CacheDir: filepath.Join(dir, "cache"),
	}
	b.src = filepath.Join(dir, "src")
	write := func(rel string, data []byte) {
		p := filepath.Join(b.src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		b.content[rel] = data
	}
	random := make([]byte, randomBytes)
	_, _ = rand.Read(random)
	write("a.bin", random)
	write("sub/b.txt", []byte("hello restic\n"))
	if err := os.Symlink("b.txt", filepath.Join(b.src, "sub", "link")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := b.r.Init(ctx, b.repo); err != nil {
		t.Fatalf("init: %v", err)
	}
	return b
}

// backup makes a snapshot of b.src and returns its ID.
func (b *bundle) backup(t *testing.T) *BackupSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sum, err := b.r.Backup(ctx, b.repo, BackupOptions{Paths: []string{b.src}, Host: "test-host", Tags: []string{"t1"}})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return sum
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute) // generous: a busy machine
	t.Cleanup(cancel)
	return ctx
}
