package image

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/chatons/archipelago/deploy/build"
	"github.com/chatons/archipelago/internal/restic"
)

// TestImage builds the image tarball the way `make image` does, reads it back with
// go-containerregistry, checks its config, unpacks its filesystem and runs the binary and
// restic it carries (static: they run on the host as they would in the image).
func TestImage(t *testing.T) {
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
	created := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	img, err := Build(Options{Binary: bin, Restic: resticBin, Version: version, Revision: "0123456789abcdef", Created: created})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Reference(version)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(work, "archipelago-image.tar")
	if err := Write(file, ref, img); err != nil {
		t.Fatal(err)
	}

	// What `docker load` reads: manifest.json names the tag.
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"archipelago:1.2.3-test"}) {
		t.Errorf("manifest.json = %+v, want one image tagged archipelago:1.2.3-test", m)
	}
	loaded, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := loaded.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532 (non-root)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/bin/archipelago"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("Entrypoint %q Cmd %q, want [/usr/bin/archipelago] [serve]", c.Entrypoint, c.Cmd)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v, want 8080/tcp", c.ExposedPorts)
	}
	if c.WorkingDir == "" || cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("WorkingDir %q OS %q Architecture %q", c.WorkingDir, cf.OS, cf.Architecture)
	}
	for _, want := range []string{"ARCHIPELAGO_RESTIC=/usr/lib/archipelago/restic", "ARCHIPELAGO_LISTEN=:8080", "TMPDIR=/tmp",
		"ARCHIPELAGO_SCRATCH_DIR=/tmp/archipelago-scratch"} {
		if !slices.Contains(c.Env, want) {
			t.Errorf("Env %q lacks %s", c.Env, want)
		}
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": "0123456789abcdef",
		"org.opencontainers.image.source":   "https://github.com/chatons/archipelago",
		"org.opencontainers.image.title":    "Archipelago",
		"org.opencontainers.image.licenses": "NOASSERTION",
		"org.opencontainers.image.created":  "2026-12-05T12:00:00Z",
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if c.Labels["org.opencontainers.image.description"] == "" {
		t.Error("label org.opencontainers.image.description is empty")
	}

	// The filesystem, as a container runtime would lay it out.
	fsDir := filepath.Join(work, "rootfs")
	modes := unpack(t, mutate.Extract(loaded), fsDir)
	if modes["tmp"] != 0o1777 {
		t.Errorf("/tmp has mode %o, want 1777 (the scratch directory)", modes["tmp"])
	}
	for _, exe := range []string{BinaryPath, ResticPath} {
		if modes[exe[1:]]&0o111 == 0 {
			t.Errorf("%s is not executable in the image (mode %o)", exe, modes[exe[1:]])
		}
		if interp := interpreter(t, filepath.Join(fsDir, exe)); interp != "" {
			t.Errorf("%s is dynamically linked (%s): the image has no C library", exe, interp)
		}
	}
	if got := runIn(t, filepath.Join(fsDir, BinaryPath), "version"); got != "archipelago "+version+"\n" {
		t.Errorf("archipelago version in the image = %q", got)
	}
	if got := runIn(t, filepath.Join(fsDir, ResticPath), "version"); !strings.HasPrefix(got, "restic "+restic.PinnedVersion+" ") {
		t.Errorf("restic version in the image = %q, want the pinned %s", got, restic.PinnedVersion)
	}
	// The image's own environment is a valid configuration (with a database and a key).
	key := runIn(t, filepath.Join(fsDir, BinaryPath), "keygen")
	if err := os.WriteFile(filepath.Join(work, "master.key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(fsDir, BinaryPath), "config")
	cmd.Env = append(slices.Clone(c.Env), "ARCHIPELAGO_DATABASE_URL=postgres://archipelago@db/archipelago",
		"ARCHIPELAGO_MASTER_KEY_FILE="+filepath.Join(work, "master.key"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("archipelago config with the image's environment: %v\n%s", err, out)
	}

	passwd, err := os.ReadFile(filepath.Join(fsDir, "etc/passwd"))
	if err != nil || !strings.Contains(string(passwd), "archipelago:x:65532:65532:") {
		t.Errorf("/etc/passwd has no archipelago user 65532: %v\n%s", err, passwd)
	}
	ca, err := os.ReadFile(filepath.Join(fsDir, CACerts))
	if err != nil {
		t.Fatal(err)
	}
	if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(ca) || len(bytes.Split(ca, []byte("BEGIN CERTIFICATE"))) < 50 {
		t.Errorf("%s does not hold the CA certificates", CACerts)
	}
	for _, zone := range []string{"Europe/Paris", "America/Montreal", "UTC"} {
		b, err := os.ReadFile(filepath.Join(fsDir, ZoneInfo, zone))
		if err != nil {
			t.Errorf("tzdata: %v", err)
			continue
		}
		if _, err := time.LoadLocationFromTZData(zone, b); err != nil {
			t.Errorf("tzdata: %s: %v", zone, err)
		}
	}
}

// unpack writes the flattened filesystem to dir and returns each entry's mode.
func unpack(t *testing.T, rc io.ReadCloser, dir string) map[string]int64 {
	t.Helper()
	defer rc.Close()
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return modes
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Clean(h.Name), "/")
		if !filepath.IsLocal(name) {
			t.Fatalf("unsafe path in the image: %q", h.Name)
		}
		modes[name] = h.Mode
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("unexpected entry type %q: %s", h.Typeflag, h.Name)
		}
	}
}

// interpreter is the ELF program interpreter of an executable ("" when static).
func interpreter(t *testing.T, p string) string {
	t.Helper()
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(prog.Open())
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

func runIn(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
