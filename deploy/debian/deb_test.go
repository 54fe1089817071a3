package debian

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chatons/archipelago/deploy/build"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
)

func TestPackageVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"v1.2.3":             "1.2.3",
		"v1.2.3-4-gabcdef0":  "1.2.3+4.gabcdef0",
		"1.2.3-dirty":        "1.2.3+dirty",
		"b93f56c":            "0~git.b93f56c",
		"b93f56c-dirty":      "0~git.b93f56c+dirty",
		"dev":                "0~git.dev",
		"v2.0.0-rc1-2-g1234": "2.0.0+rc1.2.g1234",
		"weird/name with sp": "0~git.weird.name.with.sp",
	} {
		if got := PackageVersion(in); got != want {
			t.Errorf("PackageVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDebianPackage builds the .deb the way `make deb` does, checks what dpkg-deb lists,
// installs it with dpkg into a temporary root (dpkg --root with the maintainer scripts run
// outside a chroot, honouring $DPKG_ROOT: the machine's own dpkg database and /etc are not
// touched), runs the installed binaries, verifies the installed units with
// systemd-analyze, then reinstalls (an upgrade keeps the master key and the edited
// settings), removes and purges it.
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED, NOT TESTED: installing the Debian package (dpkg --root) needs root; CI runs as root")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to test the Debian package (Debian: apt-get install dpkg systemd): %v", tool, err)
		}
	}
	ctx := t.Context()
	root, err := build.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	const version = "1.2.3-test"
	bin, resticBin := filepath.Join(work, "archipelago"), filepath.Join(work, "restic")
	if err := build.Archipelago(ctx, root, bin, version); err != nil {
		t.Fatal(err)
	}
	if err := build.Restic(ctx, root, resticBin); err != nil {
		t.Fatal(err)
	}
	debFile := filepath.Join(work, "archipelago.deb")
	f, err := os.Create(debFile)
	if err != nil {
		t.Fatal(err)
	}
	err = Build(f, Options{Binary: bin, Restic: resticBin, Version: version, Docs: []string{filepath.Join(root, "docs", "deploy.md")}})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	t.Run("control", func(t *testing.T) { checkControl(t, ctx, debFile, filepath.Join(work, "control")) })
	t.Run("contents", func(t *testing.T) { checkContents(t, ctx, debFile) })

	// An empty dpkg database in a temporary root, and the machine's own systemd units
	// (sysinit.target, …) so that systemd-analyze can resolve the units' dependencies there.
	inst := filepath.Join(work, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "usr/lib/systemd"} {
		mustMkdir(t, filepath.Join(inst, d))
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(inst, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", "/usr/lib/systemd/system", filepath.Join(inst, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy the machine's systemd units: %v\n%s", err, out)
	}
	for _, u := range Units {
		if _, err := os.Lstat(filepath.Join(inst, UnitDir, u)); err == nil {
			t.Fatalf("this machine already has %s in %s: the test would verify that one", u, UnitDir)
		}
	}
	dpkg := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "dpkg", append([]string{"--root=" + inst, "--force-script-chrootless"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	in := func(p string) string { return filepath.Join(inst, p) }

	out := dpkg("-i", debFile)
	for _, want := range []string{"nothing has been started", "master key was generated", "BACK IT UP",
		"ARCHIPELAGO_DATABASE_URL", "archipelago-env migrate up", "systemctl enable --now archipelago",
		"archipelago-env admin create-user"} {
		if !strings.Contains(out, want) {
			t.Errorf("the first installation does not say %q:\n%s", want, out)
		}
	}

	t.Run("binaries", func(t *testing.T) {
		if got := run(t, ctx, nil, in(BinaryPath), "version"); got != "archipelago "+version+"\n" {
			t.Errorf("installed archipelago version = %q, want archipelago %s", got, version)
		}
		for _, sub := range []string{"serve", "worker", "migrate", "keygen"} {
			run(t, ctx, nil, in(BinaryPath), sub, "--help") // an unknown command exits 2
		}
		if got := run(t, ctx, nil, in(ResticPath), "version"); !strings.HasPrefix(got, "restic "+restic.PinnedVersion+" ") {
			t.Errorf("installed restic version = %q, want the pinned restic %s", got, restic.PinnedVersion)
		}
	})

	key := readFile(t, in(MasterKey))
	t.Run("master key", func(t *testing.T) {
		checkMode(t, in(MasterKey), 0o600)
		checkMode(t, in(EnvFile), 0o600)
		if _, err := seal.ParseKeyring(key); err != nil {
			t.Errorf("the generated master key does not parse: %v", err)
		}
	})

	t.Run("units", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, "systemd-analyze", append([]string{"verify", "--root=" + inst}, Units...)...)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		for _, u := range Units {
			checkUnit(t, in(UnitDir+"/"+u), u, inst)
			// systemd's own exposure score (0 = most restricted, 10 = none): 2.0 at most.
			cmd := exec.CommandContext(ctx, "systemd-analyze", "security", "--offline=yes", "--root="+inst, "--threshold=20", u)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v):\n%s", u, err, out)
			}
		}
	})

	// The settings file is read by archipelago-env as systemd reads it (quotes, & in a URL).
	settings := "ARCHIPELAGO_DATABASE_URL=postgres://archipelago@db.example.org/archipelago?sslmode=require&application_name=x\n" +
		"ARCHIPELAGO_PUBLIC_URL=\"https://archipelago.example.org\"\n"
	if err := os.WriteFile(in(EnvFile), []byte(readFile(t, in(EnvFile))+settings), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("archipelago-env", func(t *testing.T) {
		env := []string{"ARCHIPELAGO_ENV_FILE=" + in(EnvFile), "ARCHIPELAGO_MASTER_KEY_FILE=" + in(MasterKey)}
		out := run(t, ctx, env, in(EnvWrapper), "config")
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^ARCHIPELAGO_PUBLIC_URL\s+https://archipelago\.example\.org$`),
			regexp.MustCompile(`(?m)^ARCHIPELAGO_MASTER_KEY_FILE\s+` + regexp.QuoteMeta(in(MasterKey)) + `$`),
			regexp.MustCompile(`(?m)^ARCHIPELAGO_DATABASE_URL\s+\S`),
		} {
			if !want.MatchString(out) {
				t.Errorf("archipelago-env config: no line matching %s:\n%s", want, out)
			}
		}
	})

	// A reinstall runs the scripts of an upgrade: the key and the edited settings stay.
	out = dpkg("-i", debFile)
	if !strings.Contains(out, "upgraded from") || !strings.Contains(out, "archipelago-env migrate up") {
		t.Errorf("an upgrade does not say to migrate before restarting:\n%s", out)
	}
	if readFile(t, in(MasterKey)) != key {
		t.Error("an upgrade replaced the master key")
	}
	if !strings.Contains(readFile(t, in(EnvFile)), settings) {
		t.Error("an upgrade lost the edited settings")
	}

	dpkg("--remove", PackageName)
	if _, err := os.Stat(in(BinaryPath)); err == nil {
		t.Error("remove left the binary")
	}
	if !strings.Contains(readFile(t, in(EnvFile)), settings) || readFile(t, in(MasterKey)) != key {
		t.Error("remove did not keep the settings and the master key")
	}
	out = dpkg("--purge", PackageName)
	if _, err := os.Stat(in(EnvFile)); err == nil {
		t.Error("purge left the settings file")
	}
	if readFile(t, in(MasterKey)) != key {
		t.Error("purge deleted or changed the master key")
	}
	if !strings.Contains(out, "master key was NOT deleted") {
		t.Errorf("purge does not say it kept the master key:\n%s", out)
	}
}

// checkControl checks the control archive: the fields, the conffile, the scripts.
func checkControl(t *testing.T, ctx context.Context, debFile, dir string) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--info", debFile).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --info: %v\n%s", err, out)
	}
	for _, want := range []string{"Package: archipelago", "Version: 1.2.3+test", "Architecture: amd64", "Section: admin", " conffiles", " postinst", " prerm", " postrm"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dpkg-deb --info does not show %q:\n%s", want, out)
		}
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "--control", debFile, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	if got := readFile(t, filepath.Join(dir, "conffiles")); got != EnvFile+"\n" {
		t.Errorf("conffiles = %q, want %s only", got, EnvFile)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		checkMode(t, filepath.Join(dir, s), 0o755)
	}
}

// checkContents checks what dpkg-deb lists: paths, modes, owners; no master key shipped.
func checkContents(t *testing.T, ctx context.Context, debFile string) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--contents", debFile).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --contents: %v\n%s", err, out)
	}
	listed := map[string]string{} // path → "mode owner"
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 6 {
			listed[strings.TrimPrefix(strings.TrimSuffix(f[5], "/"), ".")] = f[0] + " " + f[1]
		}
	}
	for p, want := range map[string]string{
		BinaryPath:                              "-rwxr-xr-x root/root",
		ResticPath:                              "-rwxr-xr-x root/root",
		EnvWrapper:                              "-rwxr-xr-x root/root",
		EnvFile:                                 "-rw------- root/root",
		UnitDir + "/archipelago.service":        "-rw-r--r-- root/root",
		UnitDir + "/archipelago-worker.service": "-rw-r--r-- root/root",
		DocDir + "/deploy.md":                   "-rw-r--r-- root/root",
	} {
		if got, ok := listed[p]; !ok {
			t.Errorf("the package does not hold %s:\n%s", p, out)
		} else if got != want {
			t.Errorf("%s is %s, want %s", p, got, want)
		}
	}
	if _, ok := listed[MasterKey]; ok {
		t.Errorf("the package ships a master key")
	}
}

// directive is one Key=Value line of a unit.
type directive struct{ key, value string }

// checkUnit checks the hardening a unit must keep, and that it runs the installed files.
func checkUnit(t *testing.T, file, unit, inst string) {
	var ds []directive
	for _, line := range strings.Split(readFile(t, file), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		ds = append(ds, directive{k, v})
	}
	values := func(k string) []string {
		var vs []string
		for _, d := range ds {
			if d.key == k {
				vs = append(vs, d.value)
			}
		}
		return vs
	}
	want := map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "PrivateMounts": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "UMask": "0077",
		"EnvironmentFile": EnvFile, "LoadCredential": "master.key:" + MasterKey, "CacheDirectory": "archipelago",
		"MemoryMax": "2G", "TasksMax": "512",
	}
	for k, v := range want {
		if got := values(k); !slices.Contains(got, v) {
			t.Errorf("%s: %s=%s is missing (has %q)", unit, k, v, got)
		}
	}
	if got := values("SystemCallFilter"); !slices.Contains(got, "@system-service") {
		t.Errorf("%s: SystemCallFilter=@system-service is missing (has %q)", unit, got)
	}
	env := map[string]string{}
	for _, e := range values("Environment") {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	if env["ARCHIPELAGO_MASTER_KEY_FILE"] != "%d/master.key" {
		t.Errorf("%s: ARCHIPELAGO_MASTER_KEY_FILE is %q, want the credential %%d/master.key", unit, env["ARCHIPELAGO_MASTER_KEY_FILE"])
	}
	if env["ARCHIPELAGO_RESTIC"] != ResticPath {
		t.Errorf("%s: ARCHIPELAGO_RESTIC is %q, want the packaged %s", unit, env["ARCHIPELAGO_RESTIC"], ResticPath)
	}
	if st, err := os.Stat(filepath.Join(inst, ResticPath)); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("%s: ARCHIPELAGO_RESTIC names %s, not an installed executable: %v", unit, ResticPath, err)
	}
	if env["ARCHIPELAGO_SCRATCH_DIR"] != "%C/archipelago" {
		t.Errorf("%s: ARCHIPELAGO_SCRATCH_DIR is %q, want the cache directory %%C/archipelago", unit, env["ARCHIPELAGO_SCRATCH_DIR"])
	}
	limit, max := env["GOMEMLIMIT"], values("MemoryMax")
	if limit == "" || len(max) != 1 || bytesOf(t, limit) >= bytesOf(t, max[0]) {
		t.Errorf("%s: GOMEMLIMIT=%s must be set below MemoryMax=%v", unit, limit, max)
	}
	wantExec := map[string]string{"archipelago.service": BinaryPath + " serve", "archipelago-worker.service": BinaryPath + " worker"}[unit]
	if got := values("ExecStart"); !slices.Equal(got, []string{wantExec}) {
		t.Errorf("%s: ExecStart=%q, want %s", unit, got, wantExec)
	}
}

// bytesOf reads a size as systemd (2G, 1536M) or Go (256MiB) writes it.
func bytesOf(t *testing.T, s string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^([0-9]+)([KMGT]?)(iB|B)?$`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("cannot read the size %q", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n << (10 * strings.Index(" KMGT", cmp.Or(m[2], " ")))
}

func run(t *testing.T, ctx context.Context, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkMode(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Error(err)
		return
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), want)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
		t.Errorf("%s is owned by uid %d, want root", p, sys.Uid)
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}
