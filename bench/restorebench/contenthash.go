package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/verify"
)

// contentHash: one blind repository of sizeMiB; the content-hash level reading every object
// (a whole cycle: the record of earlier hashes is cleared before each round) vs plain
// SHA-256 of the same objects streamed from the same S3 server (list, then GET each and
// hash it). Ratio = plain time / level time (goal ≥ 0.8).
func (r *rig) contentHash(ctx context.Context, sizeMiB, rounds int) error {
	fmt.Printf("== contenthash: content-hash integrity of a %d MiB repository vs plain SHA-256 of its objects from the same S3 server\n", sizeMiB)
	src := filepath.Join(r.dir, "src")
	if err := writeFiles(src, max(sizeMiB/10, 1), 10<<20); err != nil {
		return err
	}
	const prefix = "restic/contenthash"
	repo := r.repo(prefix, rand.Text()+rand.Text())
	if _, err := r.restic.Init(ctx, repo); err != nil {
		return err
	}
	start := time.Now()
	if _, err := r.restic.Backup(ctx, repo, restic.BackupOptions{Paths: []string{src}}); err != nil {
		return err
	}
	fmt.Printf("setup: backup of %d MiB in %.1fs\n", sizeMiB, time.Since(start).Seconds())
	_ = os.RemoveAll(src)
	reg, err := r.svc.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: r.member, VaultID: r.vaultID, Name: "contenthash",
		Path: prefix, Mode: verify.ModeBlind})
	if err != nil {
		return err
	}

	plainOnce := func() (time.Duration, int64, error) {
		t0 := time.Now()
		var n int64
		buf := make([]byte, 1<<20)
		for obj := range r.root.ListObjects(ctx, r.bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
			if obj.Err != nil {
				return 0, 0, obj.Err
			}
			rel := strings.TrimPrefix(obj.Key, prefix+"/")
			if rel == "config" || strings.HasPrefix(rel, "locks/") {
				continue
			}
			o, err := r.root.GetObject(ctx, r.bucket, obj.Key, minio.GetObjectOptions{})
			if err != nil {
				return 0, 0, err
			}
			h := sha256.New()
			m, err := io.CopyBuffer(h, o, buf)
			o.Close()
			if err != nil {
				return 0, 0, err
			}
			if hex.EncodeToString(h.Sum(nil)) != path.Base(rel) {
				return 0, 0, fmt.Errorf("%s does not match its name", rel)
			}
			n += m
		}
		return time.Since(t0), n, nil
	}
	levelOnce := func() (time.Duration, time.Duration, int64, error) {
		// A whole cycle: nothing hashed before, every object is read.
		if _, err := r.pool.Exec(ctx, `DELETE FROM contenthash_objects WHERE repository_id = $1`, reg.ID); err != nil {
			return 0, 0, 0, err
		}
		if _, err := r.pool.Exec(ctx, `UPDATE restic_repositories SET contenthash_at = NULL WHERE id = $1`, reg.ID); err != nil {
			return 0, 0, 0, err
		}
		run, whole, err := r.runTest(ctx, reg.ID)
		if err != nil {
			return 0, 0, 0, err
		}
		run, err = verify.RunGetByID(ctx, r.pool, run.ID)
		if err != nil {
			return 0, 0, 0, err
		}
		for _, l := range run.Levels {
			if l.Level == verify.LevelContentHash {
				if l.Outcome != verify.OutcomePassed {
					return 0, 0, 0, fmt.Errorf("content-hash level %s: %s", l.Outcome, l.Summary)
				}
				b, _ := l.Details["bytes_hashed"].(float64)
				return time.Duration(l.DurationMS) * time.Millisecond, whole, int64(b), nil
			}
		}
		return 0, 0, 0, fmt.Errorf("run %d has no content-hash level: %s", run.ID, run.Reason)
	}
	// Warm-up of both sides (connections, page cache of MinIO's disk), not measured.
	if _, _, err := plainOnce(); err != nil {
		return err
	}
	if _, _, _, err := levelOnce(); err != nil {
		return err
	}
	var plains, levels, wholes []time.Duration
	for i := range rounds {
		var p, l, w time.Duration
		var pn, ln int64
		var err error
		if i%2 == 0 {
			if p, pn, err = plainOnce(); err == nil {
				l, w, ln, err = levelOnce()
			}
		} else {
			if l, w, ln, err = levelOnce(); err == nil {
				p, pn, err = plainOnce()
			}
		}
		if err != nil {
			return err
		}
		if pn != ln {
			return fmt.Errorf("round %d: plain hashed %d bytes, the level %d", i+1, pn, ln)
		}
		plains, levels, wholes = append(plains, p), append(levels, l), append(wholes, w)
		fmt.Printf("round %d: plain %.2fs, level %.2fs (whole test %.2fs), %d MiB\n", i+1, p.Seconds(), l.Seconds(), w.Seconds(), pn>>20)
	}
	p, l, w := median(plains), median(levels), median(wholes)
	ratio := p.Seconds() / l.Seconds()
	verdict := "MET"
	if ratio < 0.8 {
		verdict = "NOT MET"
	}
	fmt.Printf("plain SHA-256  %s  median %.2fs\n", secs(plains), p.Seconds())
	fmt.Printf("content-hash   %s  median %.2fs (whole blind test, enqueue to outcome: median %.2fs)\n", secs(levels), l.Seconds(), w.Seconds())
	fmt.Printf("RATIO contenthash = plain / level = %.3f (goal >= 0.8: %s; plain / whole test = %.3f)\n", ratio, verdict, p.Seconds()/w.Seconds())
	return nil
}
