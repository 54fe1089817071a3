package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/restic"
)

// keyHintFile, in a repository's restic cache directory, names the repository key the
// password Archipelago holds opens. restic tries a repository's keys in listing order, each
// costing its key derivation (scrypt, about half a second of CPU) until one opens: with the
// member's own key and the verifier's, every restic run of a test paid one wasted
// derivation about half the time. Given the id (RESTIC_KEY_HINT), restic tries that key
// first. restic ignores the file (its cache directories are named by repository id).
const keyHintFile = "archipelago-key-hint.json"

// keyHint is the content of keyHintFile.
type keyHint struct {
	KeyID string `json:"key_id"`
	// PasswordSetAt is when the password the key belongs to was set: a hint learnt for
	// another password is not used.
	PasswordSetAt time.Time `json:"password_set_at"`
}

// readKeyHint returns the key id recorded in the cache directory for the password set at
// setAt, or "".
func readKeyHint(cacheDir string, setAt *time.Time) string {
	if cacheDir == "" || setAt == nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(cacheDir, keyHintFile))
	if err != nil {
		return ""
	}
	var h keyHint
	if json.Unmarshal(b, &h) != nil || !h.PasswordSetAt.Equal(*setAt) || !snapshotObject.MatchString(h.KeyID) {
		return ""
	}
	return h.KeyID
}

// learnKeyHint records which key the test's password opens, when the repository holds
// several keys and the recorded hint is missing or names a key that is gone. It runs after
// the outcome is recorded (restic key list costs a key derivation of its own, once per
// repository and password on each worker machine).
func (s *Service) learnKeyHint(ctx context.Context, rr *restic.Runner, t target, setAt *time.Time) {
	if rr == nil || t.mode != ModeFull || t.cacheDir == "" || setAt == nil {
		return
	}
	keys, err := listKeyObjects(ctx, t.creds, t.prefix)
	if err != nil || len(keys) < 2 || (t.keyHint != "" && slices.Contains(keys, t.keyHint)) {
		return
	}
	repo := t.resticRepo()
	repo.KeyHint = ""
	list, err := rr.KeyList(ctx, repo)
	if err != nil {
		s.log.DebugContext(ctx, "learn the repository key's id", "repository_id", t.repoID, "err", err)
		return
	}
	for _, k := range list {
		if k.Current && snapshotObject.MatchString(k.ID) {
			b, _ := json.Marshal(keyHint{KeyID: k.ID, PasswordSetAt: *setAt})
			tmp := filepath.Join(t.cacheDir, keyHintFile+".tmp")
			if err := os.WriteFile(tmp, b, 0o600); err == nil {
				err = os.Rename(tmp, filepath.Join(t.cacheDir, keyHintFile))
			}
			if err != nil {
				s.log.WarnContext(ctx, "record the repository key's id", "repository_id", t.repoID, "err", err)
			}
			return
		}
	}
}

// listKeyObjects lists the names of the objects under <prefix>/keys/ (the key ids).
func listKeyObjects(ctx context.Context, c Credentials, prefix string) ([]string, error) {
	cl, err := s3Client(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []string
	for obj := range cl.ListObjects(ctx, c.Bucket, minio.ListObjectsOptions{Prefix: path.Join(prefix, "keys") + "/", Recursive: true}) {
		if obj.Err != nil {
			return nil, classifyS3(fmt.Errorf("list %s/keys: %w", prefix, obj.Err))
		}
		out = append(out, path.Base(obj.Key))
	}
	return out, nil
}
