// Command packager builds Archipelago's Debian package and OCI image (`make deb`,
// `make image`): it compiles the static archipelago binary and the pinned restic
// (deploy/build), then hands them to deploy/debian or deploy/image.
//
//	go run ./deploy/packager deb   [-out dist]   # dist/archipelago_VERSION_amd64.deb
//	go run ./deploy/packager image [-out dist]   # dist/archipelago-image.tar (docker-archive)
//
// It is a build tool: the archipelago binary does not import it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/chatons/archipelago/deploy/build"
	"github.com/chatons/archipelago/deploy/debian"
	"github.com/chatons/archipelago/deploy/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "packager:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "deb" && args[0] != "image") {
		return fmt.Errorf("usage: packager deb|image [-out DIR] [-version V]")
	}
	what := args[0]
	fs := flag.NewFlagSet(what, flag.ContinueOnError)
	out := fs.String("out", "dist", "directory for the binaries and the package or image")
	version := fs.String("version", "", "version to stamp (default: git describe --always --dirty)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	root, err := build.ModuleRoot(".")
	if err != nil {
		return err
	}
	v := *version
	if v == "" {
		v = build.Version(ctx, root)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	bin, restic := filepath.Join(*out, "archipelago"), filepath.Join(*out, "restic")
	fmt.Fprintf(os.Stderr, "building %s (version %s, static) …\n", bin, v)
	if err := build.Archipelago(ctx, root, bin, v); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "building %s (pinned in tools/go.mod, static) …\n", restic)
	if err := build.Restic(ctx, root, restic); err != nil {
		return err
	}
	mtime := build.CommitTime(ctx, root)
	switch what {
	case "deb":
		file := filepath.Join(*out, fmt.Sprintf("%s_%s_amd64.deb", debian.PackageName, debian.PackageVersion(v)))
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		err = debian.Build(f, debian.Options{Binary: bin, Restic: restic, Version: v, MTime: mtime,
			Docs: []string{filepath.Join(root, "docs", "deploy.md"), filepath.Join(root, "README.md")}})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(file)
			return err
		}
		fmt.Println(file)
	case "image":
		img, err := image.Build(image.Options{Binary: bin, Restic: restic, Version: v,
			Revision: build.Revision(ctx, root), Created: mtime})
		if err != nil {
			return err
		}
		ref, err := image.Reference(v)
		if err != nil {
			return err
		}
		file := filepath.Join(*out, "archipelago-image.tar")
		if err := image.Write(file, ref, img); err != nil {
			return err
		}
		fmt.Printf("%s (%s; docker load -i %s)\n", file, ref, file)
	}
	return nil
}
