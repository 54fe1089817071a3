// Package build compiles what Archipelago's Debian package and OCI image carry: the
// archipelago binary with its version stamped, and the restic pinned in tools/go.mod, both
// static (CGO_ENABLED=0), so that they run on any Linux, in an image without a C library
// too. `make deb`, `make image` and the packaging tests call it, so they build the same way.
package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// VersionVar is the linker variable that holds `archipelago version`'s answer.
const VersionVar = "github.com/chatons/archipelago/internal/api.Version"

// ModuleRoot returns the directory of Archipelago's go.mod, looking up from dir.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/chatons/archipelago\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no github.com/chatons/archipelago go.mod in this directory or its parents")
		}
		dir = parent
	}
}

// Archipelago builds ./cmd/archipelago of the module at root into out, static, with
// version stamped into VersionVar.
func Archipelago(ctx context.Context, root, out, version string) error {
	return goBuild(ctx, root, out, "./cmd/archipelago", "-ldflags", "-X "+VersionVar+"="+version)
}

// Restic builds the restic pinned in root/tools/go.mod into out, static.
func Restic(ctx context.Context, root, out string) error {
	return goBuild(ctx, filepath.Join(root, "tools"), out, "github.com/restic/restic/cmd/restic")
}

func goBuild(ctx context.Context, dir, out, pkg string, flags ...string) error {
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	args := append([]string{"build", "-trimpath"}, flags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, stderr.Bytes())
	}
	return nil
}

// goCommand is $GO (as the Makefile names it) or go.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// Version is what the Makefile stamps: `git describe --always --dirty` in root, or "dev".
func Version(ctx context.Context, root string) string {
	if v := gitOutput(ctx, root, "describe", "--always", "--dirty"); v != "" {
		return v
	}
	return "dev"
}

// Revision is the commit of HEAD in root ("" outside a git checkout).
func Revision(ctx context.Context, root string) string {
	return gitOutput(ctx, root, "rev-parse", "HEAD")
}

// CommitTime is the committer time of HEAD in root (the Unix epoch outside a git checkout),
// used as the packages' file times so that a rebuild of one commit gives the same files.
func CommitTime(ctx context.Context, root string) time.Time {
	var sec int64
	if _, err := fmt.Sscan(gitOutput(ctx, root, "log", "-1", "--format=%ct"), &sec); err != nil {
		return time.Unix(0, 0).UTC()
	}
	return time.Unix(sec, 0).UTC()
}

func gitOutput(ctx context.Context, dir string, args ...string) string {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
