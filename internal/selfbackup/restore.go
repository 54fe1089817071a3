package selfbackup

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/restic"
)

// RestoreOptions say which dump to restore where.
type RestoreOptions struct {
	// Restic runs restic; Repo is the repository (Kit.Repo, or the coordinator's own).
	Restic *restic.Runner
	Repo   restic.Repo
	// SnapshotID is the snapshot to restore; empty: the newest of the coordinator's.
	SnapshotID string
	// DatabaseURL is the database to load the dump into: it must exist and be empty.
	DatabaseURL string
	// PGRestore is pg_restore's path; empty: FindPGTool("pg_restore").
	PGRestore string
	// ScratchDir receives the dump while it is loaded (removed afterwards); empty: $TMPDIR.
	ScratchDir string
	// KeepDump, when set, is where the restored dump file is kept (moved there) instead.
	KeepDump string
}

// Restored is what Restore did.
type Restored struct {
	Snapshot  restic.Snapshot
	DumpBytes int64
	// Expected is what the snapshot's tags recorded at backup time; Found what the loaded
	// database holds. Restore returns an error when they differ.
	Expected, Found Metadata
}

// Restore restores a dump of the coordinator (the newest by default) from the repository,
// loads it with pg_restore into opts.DatabaseURL and compares the loaded database's schema
// version and row counts with the snapshot's. It needs neither the coordinator's database
// nor its master key: the recovery kit's values are enough.
func Restore(ctx context.Context, o RestoreOptions) (Restored, error) {
	var res Restored
	if o.Restic == nil {
		return res, errors.New("restic is not available")
	}
	snaps, err := o.Restic.Snapshots(ctx, o.Repo)
	if err != nil {
		return res, fmt.Errorf("list the snapshots: %w", err)
	}
	var snap *restic.Snapshot
	for i := range snaps {
		s := &snaps[i]
		switch {
		case o.SnapshotID != "":
			if strings.HasPrefix(s.ID, o.SnapshotID) {
				snap = s
			}
		case containsTag(s.Tags, Tag) && (snap == nil || !s.Time.Before(snap.Time)):
			snap = s
		}
	}
	if snap == nil {
		if o.SnapshotID != "" {
			return res, fmt.Errorf("no snapshot %s in the repository", o.SnapshotID)
		}
		return res, errors.New("the repository has no snapshot of the coordinator yet (run archipelago admin backup run)")
	}
	res.Snapshot = *snap
	if res.Expected, err = metadataFromTags(snap.Tags); err != nil {
		return res, fmt.Errorf("snapshot %s: %w", short(snap.ID), err)
	}
	pgRestore := o.PGRestore
	if pgRestore == "" {
		if pgRestore, err = FindPGTool("pg_restore"); err != nil {
			return res, err
		}
	}
	scratch, err := os.MkdirTemp(cmp.Or(o.ScratchDir, os.TempDir()), "archipelago-selfrestore-")
	if err != nil {
		return res, fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	target := filepath.Join(scratch, "restore")
	if _, err := o.Restic.Restore(ctx, o.Repo, restic.RestoreOptions{SnapshotID: snap.ID, Target: target,
		Include: []string{"/" + DumpFile}, Verify: true}); err != nil {
		return res, fmt.Errorf("restore snapshot %s: %w", short(snap.ID), err)
	}
	dump := filepath.Join(target, DumpFile)
	fi, err := os.Stat(dump)
	if err != nil {
		return res, fmt.Errorf("snapshot %s restored without %s: %w", short(snap.ID), DumpFile, err)
	}
	res.DumpBytes = fi.Size()
	if err := pgRestoreRun(ctx, pgRestore, o.DatabaseURL, dump); err != nil {
		return res, err
	}
	conn, err := pgx.Connect(ctx, o.DatabaseURL)
	if err != nil {
		return res, fmt.Errorf("connect to the restored database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if res.Found, err = readMetadata(ctx, conn); err != nil {
		return res, fmt.Errorf("the restored database: %w", err)
	}
	if err := res.Expected.compare(res.Found); err != nil {
		return res, err
	}
	if o.KeepDump != "" {
		if err := os.Rename(dump, o.KeepDump); err != nil {
			return res, fmt.Errorf("keep the dump: %w", err)
		}
	}
	return res, nil
}

// pgRestoreRun loads dump into the database with pg_restore: objects owned by whoever
// loads it (the coordinator's database role need not exist), in one transaction, stopping
// at the first error.
func pgRestoreRun(ctx context.Context, pgRestore, dbURL, dump string) error {
	conn, password, err := libpqConn(dbURL)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, pgRestore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
		"--no-password", "--dbname="+conn, dump)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if password != "" {
			msg = strings.ReplaceAll(msg, password, "[REDACTED]")
		}
		if len(msg) > 1000 {
			msg = msg[len(msg)-1000:]
		}
		return fmt.Errorf("pg_restore failed (%v): %s", err, msg)
	}
	return nil
}

func containsTag(tags []string, t string) bool {
	for _, x := range tags {
		if x == t {
			return true
		}
	}
	return false
}

func short(id string) string { return id[:min(len(id), 8)] }
