package main

import (
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"strconv"
	"testing"
)

// TestNoPackageInitAllocatesMuch re-runs this test binary (which links every package the
// command links) with GODEBUG=inittrace=1 and no tests, and fails when one package's init
// allocates more than 4 MiB. It guards the start-up memory of every process, even
// `archipelago version`: identity once hashed an argon2id password (64 MiB, seconds of CPU)
// at init.
func TestNoPackageInitAllocatesMuch(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`(?m)^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes`)
	matches := re.FindAllSubmatch(out, -1)
	if len(matches) < 50 {
		t.Fatalf("inittrace printed %d package inits; expected the whole program's:\n%s", len(matches), out)
	}
	const limit = 4 << 20
	for _, m := range matches {
		n, _ := strconv.Atoi(string(m[2]))
		if n > limit {
			t.Errorf("init of %s allocates %d bytes (limit %d)", m[1], n, limit)
		}
	}
}

func TestMemoryLimitDefaultsUnlessGOMEMLIMITIsSet(t *testing.T) {
	// Not parallel: it changes the process's memory limit (and restores it).
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	if got := applyMemoryLimit(func(string) (string, bool) { return "", false }); got != defaultMemoryLimit ||
		debug.SetMemoryLimit(-1) != defaultMemoryLimit {
		t.Fatalf("unset GOMEMLIMIT: limit %d", got)
	}
	debug.SetMemoryLimit(1 << 40) // as the runtime would have from GOMEMLIMIT=1TiB
	if got := applyMemoryLimit(func(k string) (string, bool) { return "1TiB", k == "GOMEMLIMIT" }); got != 1<<40 {
		t.Fatalf("GOMEMLIMIT set: limit %d", got)
	}
}
