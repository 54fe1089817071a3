// Package image builds Archipelago's OCI image without a container daemon, with
// go-containerregistry: three layers on an empty base — a minimal root (passwd and group
// with the non-root user, the CA certificates and the tz database of the build machine,
// /tmp), the restic pinned in tools/go.mod, and the static archipelago binary — and a
// config that runs `archipelago serve` as that user. Write saves it as a docker-archive
// tarball, which `docker load` and `podman load` read. docs/deploy.md describes it; the
// package test builds it, unpacks it and runs what it carries.
package image

import (
	"archive/tar"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image holds and how it runs; the Helm chart and the compose file match these.
const (
	Name       = "archipelago"                 // the repository part of the image reference
	UID        = 65532                         // the non-root user (and group) it runs as
	UserName   = "archipelago"                 // that user's name in /etc/passwd
	BinaryPath = "/usr/bin/archipelago"        // the entrypoint
	ResticPath = "/usr/lib/archipelago/restic" // ARCHIPELAGO_RESTIC
	Port       = 8080                          // ARCHIPELAGO_LISTEN=:8080
	ScratchDir = "/tmp"                        // TMPDIR: the one writable directory it needs
	CACerts    = "/etc/ssl/certs/ca-certificates.crt"
	ZoneInfo   = "/usr/share/zoneinfo"
)

// Options says what goes into the image.
type Options struct {
	Binary      string    // the static archipelago binary (build.Archipelago)
	Restic      string    // the pinned restic, static (build.Restic)
	Version     string    // archipelago's version (git describe)
	Revision    string    // the commit it was built from
	Source      string    // org.opencontainers.image.source; default https://github.com/chatons/archipelago
	Licenses    string    // org.opencontainers.image.licenses (SPDX); default NOASSERTION
	Created     time.Time // image and file times; default the Unix epoch (reproducible)
	CACertsFrom string    // the CA bundle to copy; default CACerts of the build machine
	ZoneInfoIn  string    // the tz database to copy; default ZoneInfo of the build machine
}

// Build assembles the image.
func Build(o Options) (v1.Image, error) {
	if o.Binary == "" || o.Restic == "" || o.Version == "" {
		return nil, fmt.Errorf("image: Binary, Restic and Version are required")
	}
	created := o.Created
	if created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}
	base, err := baseLayer(created, cmp.Or(o.CACertsFrom, CACerts), cmp.Or(o.ZoneInfoIn, ZoneInfo))
	if err != nil {
		return nil, err
	}
	restic, err := fileLayer(created, o.Restic, ResticPath)
	if err != nil {
		return nil, err
	}
	app, err := fileLayer(created, o.Binary, BinaryPath)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{CreatedBy: "archipelago: passwd, CA certificates, tzdata, /tmp", Created: v1.Time{Time: created}}},
		mutate.Addendum{Layer: restic, History: v1.History{CreatedBy: "archipelago: restic (tools/go.mod) " + ResticPath, Created: v1.Time{Time: created}}},
		mutate.Addendum{Layer: app, History: v1.History{CreatedBy: "archipelago: " + BinaryPath + " " + o.Version, Created: v1.Time{Time: created}}},
	)
	if err != nil {
		return nil, fmt.Errorf("image: append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       strconv.Itoa(UID) + ":" + strconv.Itoa(UID),
		Entrypoint: []string{BinaryPath},
		Cmd:        []string{"serve"},
		WorkingDir: ScratchDir,
		Env: []string{
			"PATH=/usr/bin:/bin",
			"ARCHIPELAGO_RESTIC=" + ResticPath,
			"ARCHIPELAGO_LISTEN=:" + strconv.Itoa(Port),
			"TMPDIR=" + ScratchDir,
			"ARCHIPELAGO_SCRATCH_DIR=" + path.Join(ScratchDir, "archipelago-scratch"),
			"SSL_CERT_FILE=" + CACerts,
		},
		ExposedPorts: map[string]struct{}{strconv.Itoa(Port) + "/tcp": {}},
		Volumes:      map[string]struct{}{ScratchDir: {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "Archipelago",
			"org.opencontainers.image.description": "Coordinator of a backup federation for small hosters (CHATONS): vaults on Garage islands, audit log, restore tests with restic",
			"org.opencontainers.image.source":      cmp.Or(o.Source, "https://github.com/chatons/archipelago"),
			"org.opencontainers.image.version":     o.Version,
			"org.opencontainers.image.revision":    o.Revision,
			"org.opencontainers.image.licenses":    cmp.Or(o.Licenses, "NOASSERTION"),
			"org.opencontainers.image.created":     created.Format(time.RFC3339),
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	return img, nil
}

// Reference is the image's reference for a version: archipelago:VERSION (Docker tags allow
// [A-Za-z0-9_.-]; other characters become '-').
func Reference(version string) (name.Tag, error) {
	tag := []byte(version)
	for i, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			tag[i] = '-'
		}
	}
	return name.NewTag(Name+":"+string(tag), name.WithDefaultRegistry(""))
}

// Write saves img as a docker-archive tarball at file, tagged ref.
func Write(file string, ref name.Tag, img v1.Image) error {
	if err := tarball.WriteToFile(file, ref, img); err != nil {
		return fmt.Errorf("image: write %s: %w", file, err)
	}
	return nil
}

// layerBuilder collects one layer's tar in memory.
type layerBuilder struct {
	buf   bytes.Buffer
	tw    *tar.Writer
	mtime time.Time
}

func newLayer(mtime time.Time) *layerBuilder {
	l := &layerBuilder{mtime: mtime}
	l.tw = tar.NewWriter(&l.buf)
	return l
}

func (l *layerBuilder) dir(name string, mode int64) error {
	return l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: l.mtime, Format: tar.FormatPAX})
}

func (l *layerBuilder) file(name string, mode int64, data []byte) error {
	if err := l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: l.mtime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := l.tw.Write(data)
	return err
}

func (l *layerBuilder) symlink(name, target string) error {
	return l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: l.mtime, Format: tar.FormatPAX})
}

// parents writes the directories leading to name (a path without a leading slash).
func (l *layerBuilder) parents(name string) error {
	var dirs []string
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := l.dir(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (l *layerBuilder) layer() (v1.Layer, error) {
	if err := l.tw.Close(); err != nil {
		return nil, err
	}
	b := l.buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// fileLayer is a layer holding one executable at dest.
func fileLayer(mtime time.Time, src, dest string) (v1.Layer, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	l := newLayer(mtime)
	name := dest[1:]
	if err := l.parents(name); err != nil {
		return nil, err
	}
	if err := l.file(name, 0o755, b); err != nil {
		return nil, err
	}
	return l.layer()
}

// baseLayer is the minimal root: passwd and group, nsswitch.conf, the CA bundle, the tz
// database (regular files and relative links; links out of it, such as localtime, are left
// out) and a world-writable /tmp.
func baseLayer(mtime time.Time, caFrom, zoneFrom string) (v1.Layer, error) {
	l := newLayer(mtime)
	id := strconv.Itoa(UID)
	for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs", "usr", "usr/bin", "usr/lib", "usr/lib/archipelago", "usr/share"} {
		if err := l.dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := l.dir("tmp", 0o1777); err != nil {
		return nil, err
	}
	etc := map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/sbin/nologin\n" + UserName + ":x:" + id + ":" + id + ":Archipelago:/nonexistent:/sbin/nologin\n",
		"etc/group":         "root:x:0:\n" + UserName + ":x:" + id + ":\n",
		"etc/nsswitch.conf": "hosts: files dns\n",
	}
	for _, n := range []string{"etc/passwd", "etc/group", "etc/nsswitch.conf"} {
		if err := l.file(n, 0o644, []byte(etc[n])); err != nil {
			return nil, err
		}
	}
	ca, err := os.ReadFile(caFrom)
	if err != nil {
		return nil, fmt.Errorf("image: CA certificates: %w", err)
	}
	if err := l.file(CACerts[1:], 0o644, ca); err != nil {
		return nil, err
	}
	err = filepath.WalkDir(zoneFrom, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(zoneFrom, p)
		if err != nil {
			return err
		}
		name := path.Join(ZoneInfo[1:], filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return l.dir(name, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				return nil
			}
			return l.symlink(name, target)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return l.file(name, 0o644, b)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: tz database: %w", err)
	}
	return l.layer()
}
