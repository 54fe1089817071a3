package verify

import (
	"context"
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
)

// Before a test calls a member's data damaged it asks the island again: a degraded island
// (Garage without quorum, a proxy answering 503, a connection cut mid-body, a copy damaged
// in transit) must never turn a member's test failed. The island is probed again, and
// what restic named is read again: a pack straight from the bucket, checked against its
// name (a restic pack file is named by the SHA-256 of its content); restored files by a
// second restore of the same files.

// maxRereadPacks bounds the packs read again before a check's findings are believed.
const maxRereadPacks = 8

// packState is what reading a pack again from the island found.
type packState int

const (
	packIntact  packState = iota // its content hashes to its name: the data on the island is sound
	packDamaged                  // read to the end, and its content does not match its name, or it is gone
	packFault                    // it could not be read (the island or the network failed)
)

// rereadPack reads one pack from the bucket with the verifier key and checks its content
// against its name.
func rereadPack(ctx context.Context, c Credentials, prefix, id string) (packState, error) {
	if len(id) != 64 {
		return packFault, fmt.Errorf("pack id %q is not a full id", id)
	}
	cl, err := s3Client(c)
	if err != nil {
		return packFault, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	key := path.Join(prefix, "data", id[:2], id)
	obj, err := cl.GetObject(ctx, c.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return packFault, fmt.Errorf("read %s: %w", key, err)
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code == "NoSuchKey" {
			return packDamaged, fmt.Errorf("pack %s is not in the bucket", id[:8])
		}
		return packFault, fmt.Errorf("read %s: %w", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		return packDamaged, fmt.Errorf("pack %s read back whole, its content hashes to %s", id[:8], got[:8])
	}
	return packIntact, nil
}

// confirmPacks decides whether restic's broken packs are damaged on the island. It returns
// the packs confirmed damaged, or a non-empty fault saying why the damage is not
// confirmed (the island failed again, or every named pack reads back intact).
func (e *executor) confirmPacks(ctx context.Context, broken []string) (damaged []string, fault string) {
	if err := probe(ctx, e.t.creds, e.t.prefix); err != nil {
		return nil, "the island did not answer when probed again: " + short(err)
	}
	if len(broken) == 0 {
		return nil, "" // findings about the repository's structure, read twice by restic
	}
	var intact []string
	for i, id := range broken {
		if i == maxRereadPacks {
			damaged = append(damaged, broken[i:]...) // not read again: restic's word stands
			break
		}
		st, err := rereadPack(ctx, e.t.creds, e.t.prefix, id)
		switch st {
		case packFault:
			return nil, fmt.Sprintf("pack %s could not be read again from the island: %s", short8(id), short(err))
		case packIntact:
			intact = append(intact, short8(id))
		default:
			damaged = append(damaged, id)
		}
	}
	if len(damaged) == 0 {
		return nil, fmt.Sprintf("every pack it named (%s) reads back intact from the island: the data was damaged on its way, not in the repository",
			strings.Join(intact, ", "))
	}
	return damaged, ""
}

// confirmRestore decides whether a restore's errors are damage: the island is probed again
// and the same files are restored (and verified) a second time into a fresh directory. It
// returns a non-empty fault when the damage is not confirmed.
func (e *executor) confirmRestore(ctx context.Context, opts restic.RestoreOptions) string {
	if err := probe(ctx, e.t.creds, e.t.prefix); err != nil {
		return "the island did not answer when probed again: " + short(err)
	}
	_ = os.RemoveAll(opts.Target) // room for the second read (a full scratch disk)
	opts.Target = filepath.Join(e.t.scratch, "reread")
	defer os.RemoveAll(opts.Target)
	_, err := e.restic.Restore(ctx, e.repo, opts)
	switch {
	case err == nil:
		return "the same files restore and verify when read a second time: the first read was damaged on its way, not in the repository"
	case restic.Classify(err) != restic.FaultRepository:
		return "reading the files a second time failed on our side or the island's: " + short(err)
	}
	return ""
}

// islandFault records a level whose damage was not confirmed: an error (retried), never a
// failure.
func islandFault(l *LevelResult, what, why string, err error) {
	l.Outcome = OutcomeError
	l.Summary = what + ": restic reported damaged data, but " + why + " (an island or network fault; this says nothing about the backup)"
	l.Details["error"] = short(err)
	l.Details["damage_not_confirmed"] = why
}

func short8(id string) string { return id[:min(8, len(id))] }
