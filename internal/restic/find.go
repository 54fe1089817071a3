package restic

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// EnvBinary names the environment variable that, when set, is the path of the
// restic binary to use. It wins over every other place [Find] looks.
const EnvBinary = "ARCHIPELAGO_RESTIC"

// toolsBinary is where `make tools` installs restic, relative to the module root.
var toolsBinary = filepath.Join(".tools", "bin", "restic")

// ErrBinaryNotFound is returned by [Find] (and [New] when Config.Binary is
// empty) when no usable restic binary exists.
var ErrBinaryNotFound = errors.New("restic binary not found")

// Find returns the path of the restic binary to run, looking in this order:
//
//  1. $ARCHIPELAGO_RESTIC, which must then name an executable file (a wrong
//     value is an error, not a reason to look elsewhere);
//  2. .tools/bin/restic in the directory of the running executable or of the
//     working directory, or in any of their parents (where `make tools`
//     installs the pinned version);
//  3. restic in $PATH.
//
// The error wraps [ErrBinaryNotFound] and says where it looked and how to get
// the binary. Find does not check the version: [New] does.
func Find(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	return find(os.Getenv(EnvBinary), starts, exec.LookPath)
}

// find is Find with its inputs explicit: the value of $ARCHIPELAGO_RESTIC,
// the directories to walk up from, and the $PATH lookup.
func find(envValue string, starts []string, lookPath func(string) (string, error)) (string, error) {
	if p := envValue; p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("%w: $%s=%q: %v", ErrBinaryNotFound, EnvBinary, p, err)
		}
		return p, nil
	}
	for _, start := range starts {
		if p, ok := findUpwards(start, toolsBinary); ok {
			return p, nil
		}
	}

	if p, err := lookPath("restic"); err == nil {
		return p, nil
	}

	return "", fmt.Errorf("%w: $%s is not set, there is no %s in %s or any parent directory, "+
		"and there is no restic in $PATH; run `make tools` at the repository root to build restic %s "+
		"into %s, or set $%s to the path of a restic %s.x binary",
		ErrBinaryNotFound, EnvBinary, toolsBinary, strings.Join(starts, " or "),
		PinnedVersion, toolsBinary, EnvBinary, SupportedSeries)
}

// findUpwards looks for rel in dir and each of its parents.
func findUpwards(dir, rel string) (string, bool) {
	for {
		p := filepath.Join(dir, rel)
		if checkExecutable(p) == nil {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}
