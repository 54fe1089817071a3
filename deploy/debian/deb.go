// Package debian builds Archipelago's Debian package with nfpm (as a library, no packaging
// tool to install) from the files in this directory, which it embeds: the hardened systemd
// units archipelago.service (serve) and archipelago-worker.service (workers only), the
// settings file /etc/archipelago/archipelago.env (a conffile), the archipelago-env wrapper
// and the maintainer scripts. The package carries the static archipelago binary and the
// restic pinned in tools/go.mod under /usr/lib/archipelago (Debian's own restic is too old).
// docs/deploy.md describes the installed system; the package test installs it for real.
package debian

import (
	"cmp"
	"embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

//go:embed archipelago.service archipelago-worker.service archipelago.env archipelago-env postinst prerm postrm
var sources embed.FS

// Where the package installs things.
const (
	PackageName = "archipelago"
	BinaryPath  = "/usr/bin/archipelago"
	ResticPath  = "/usr/lib/archipelago/restic"
	EnvWrapper  = "/usr/sbin/archipelago-env"
	UnitDir     = "/usr/lib/systemd/system"
	ConfigDir   = "/etc/archipelago"
	EnvFile     = "/etc/archipelago/archipelago.env"
	MasterKey   = "/etc/archipelago/master.key" // made by postinst, never shipped
	DocDir      = "/usr/share/doc/archipelago"
)

// Units are the systemd units the package installs in UnitDir.
var Units = []string{"archipelago.service", "archipelago-worker.service"}

// Options says what goes into the package.
type Options struct {
	Binary  string    // the static archipelago binary (build.Archipelago)
	Restic  string    // the pinned restic, static (build.Restic)
	Version string    // archipelago's version (git describe); see PackageVersion
	Arch    string    // Debian architecture; default amd64
	MTime   time.Time // file times; default the Unix epoch (reproducible)
	// Docs are copied into DocDir under their base names (e.g. docs/deploy.md, README.md).
	Docs []string
}

// Build writes the .deb to w.
func Build(w io.Writer, o Options) error {
	if o.Binary == "" || o.Restic == "" || o.Version == "" {
		return fmt.Errorf("debian: Binary, Restic and Version are required")
	}
	stage, err := os.MkdirTemp("", "archipelago-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	src := func(name string) string { return filepath.Join(stage, name) }
	for _, name := range []string{"archipelago.service", "archipelago-worker.service", "archipelago.env", "archipelago-env", "postinst", "prerm", "postrm"} {
		b, err := sources.ReadFile(name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(src(name), b, 0o644); err != nil {
			return err
		}
	}
	mtime := o.MTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0).UTC()
	}
	file := func(source, dest string, mode os.FileMode) *files.Content {
		return &files.Content{Source: source, Destination: dest, Type: files.TypeFile,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mtime}}
	}
	contents := files.Contents{
		file(o.Binary, BinaryPath, 0o755),
		file(o.Restic, ResticPath, 0o755),
		file(src("archipelago-env"), EnvWrapper, 0o755),
		{Destination: ConfigDir, Type: files.TypeDir,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o755, MTime: mtime}},
		{Source: src("archipelago.env"), Destination: EnvFile, Type: files.TypeConfigNoReplace,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o600, MTime: mtime}},
	}
	for _, u := range Units {
		contents = append(contents, file(src(u), UnitDir+"/"+u, 0o644))
	}
	for _, d := range o.Docs {
		contents = append(contents, file(d, DocDir+"/"+filepath.Base(d), 0o644))
	}
	info := &nfpm.Info{
		Name:          PackageName,
		Arch:          cmp.Or(o.Arch, "amd64"),
		Platform:      "linux",
		Version:       PackageVersion(o.Version),
		VersionSchema: "none",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "Archipelago developers <archipelago@chatons.org>",
		Homepage:      "https://github.com/chatons/archipelago",
		Description: "coordinator of a backup federation for small hosters\n" +
			"Archipelago coordinates a backup federation of CHATONS members on Garage S3\n" +
			"islands: vaults, pledges, quotas, a verifiable audit log and regular restore\n" +
			"tests of every member's restic repository. This package ships the server with\n" +
			"hardened systemd units and the pinned restic it runs.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Contents:   contents,
			Recommends: []string{"systemd", "postgresql-client"}, // pg_dump and pg_restore: the coordinator's own backup (archipelago admin backup)
			Suggests:   []string{"postgresql"},
			Scripts: nfpm.Scripts{
				PostInstall: src("postinst"),
				PreRemove:   src("prerm"),
				PostRemove:  src("postrm"),
			},
		},
	}
	if err := nfpm.Validate(info); err != nil {
		return fmt.Errorf("debian: %w", err)
	}
	if err := deb.Default.Package(info, w); err != nil {
		return fmt.Errorf("debian: build package: %w", err)
	}
	return nil
}

// bareCommit is what `git describe --always` answers without a tag (an abbreviated
// commit, which may start with a digit).
var bareCommit = regexp.MustCompile(`^[0-9a-f]{7,40}(-dirty)?$`)

// debVersion is what Debian accepts as an upstream version without a revision.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

// PackageVersion turns a `git describe` answer into a Debian version: v1.2.3 → 1.2.3,
// v1.2.3-4-gabcdef → 1.2.3+4.gabcdef, a bare commit abcdef → 0~git.abcdef (sorts before
// any release), -dirty → +dirty.
func PackageVersion(describe string) string {
	v := strings.TrimPrefix(describe, "v")
	if v == "" || v[0] < '0' || v[0] > '9' || bareCommit.MatchString(describe) {
		v = "0~git." + v
	}
	v = strings.Replace(v, "-", "+", 1)
	v = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '+', r == '~':
			return r
		}
		return '.'
	}, v)
	if !debVersion.MatchString(v) {
		return "0~unknown"
	}
	return v
}
