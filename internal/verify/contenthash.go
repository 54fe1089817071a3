package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/quota"
)

// Content-hash integrity: every restic repository file except config is named by the
// SHA-256 of its content. The level lists the objects under data/, index/, snapshots/ and
// keys/ with the vault's read-only verifier key, streams each through SHA-256 and compares
// the digest with the name. It needs no password, so it runs in every mode.
//
// Rotation: the objects never hashed (new uploads) and those whose size changed are read
// by every test; then those not hashed for a whole cycle; then, oldest first, a fair share
// of the repository (its bytes × time since the last hashing ÷ cycle), so that each object
// is read at least once per cycle and the work is spread over the cycle's tests.
//
// Fault attribution as elsewhere: an S3 or transport failure is an error (the verifier
// could not judge), a mismatch is read once more before it is called damage, an object that
// vanished between the listing and the read (a concurrent prune) is no damage.

// DefaultContentHashCycle is Config.ContentHashCycle's default.
const DefaultContentHashCycle = 30 * 24 * time.Hour

// chBufSize is the read buffer of one object: memory stays bounded whatever a pack's size.
const chBufSize = 1 << 20

var hexName = snapshotObject // 64 lower-case hex digits

// chKnown is what earlier tests recorded of one object.
type chKnown struct {
	size     int64
	hashedAt time.Time
}

// chObject is one listed object the level may hash.
type chObject struct {
	key  string // full key in the bucket
	rel  string // key below the repository's prefix, e.g. data/ab/ab12…
	name string // base name (the expected SHA-256)
	size int64
}

// chDamage is one object the level found bad.
type chDamage struct {
	Object string `json:"object"`
	Kind   string `json:"kind"` // zero_length, truncated, size_changed, mismatch
	Detail string `json:"detail"`
}

// contentHashResult is what the level leaves for the record: the objects hashed clean
// (their rows move to now), the keys present (rows of the others are dropped) and the
// cycle's coverage.
type contentHashResult struct {
	done         bool // the listing completed: present is the whole repository
	hashed       []chObject
	damaged      []string // keys found damaged: their rows go, so that the next test reads them again
	present      []string
	objectsTotal int64
	bytesTotal   int64
	objectsCycle int64
	bytesCycle   int64
	cycle        time.Duration
}

// chClassify sorts a key below the repository prefix: hashable (a content-named file in a
// known folder), ignored (config, locks) or unexpected (with why).
func chClassify(rel string) (hashable bool, why string) {
	dir, name := path.Split(rel)
	switch {
	case rel == "config":
		return false, ""
	case strings.HasPrefix(rel, "locks/"):
		return false, "" // locks come and go; they are not part of the backup
	case dir == "index/" || dir == "snapshots/" || dir == "keys/":
	case strings.HasPrefix(dir, "data/"):
		sub := strings.TrimSuffix(strings.TrimPrefix(dir, "data/"), "/")
		if !hexName.MatchString(name) {
			return false, "not a restic object name (64 hex digits)"
		}
		if sub != name[:2] {
			return false, "in the wrong data/ folder (restic keeps data/" + name[:2] + "/)"
		}
		return true, ""
	default:
		return false, "not in a restic folder (data/, index/, snapshots/, keys/, locks/)"
	}
	if !hexName.MatchString(name) {
		return false, "not a restic object name (64 hex digits)"
	}
	return true, ""
}

// chSelect picks the objects to hash this test (see the rotation above), in order.
func chSelect(objs []chObject, known map[string]chKnown, now time.Time, last *time.Time, cycle time.Duration) []chObject {
	var must, rest []chObject
	var total int64
	for _, o := range objs {
		total += o.size
		k, ok := known[o.key]
		switch {
		case !ok || k.size != o.size || !k.hashedAt.After(now.Add(-cycle)):
			must = append(must, o)
		default:
			rest = append(rest, o)
		}
	}
	elapsed := cycle
	if last != nil {
		elapsed = min(max(now.Sub(*last), 0), cycle)
	}
	budget := int64(float64(total) * elapsed.Seconds() / cycle.Seconds())
	for _, o := range must {
		budget -= o.size
	}
	slices.SortStableFunc(rest, func(a, b chObject) int { return known[a.key].hashedAt.Compare(known[b.key].hashedAt) })
	out := must
	for _, o := range rest {
		// The share is rounded to whole objects: one is read when at least half of it fits.
		if budget < (o.size+1)/2 {
			break
		}
		out = append(out, o)
		budget -= o.size
	}
	return out
}

// errVanished: the object was listed but is gone (a concurrent prune removed it).
var errVanished = errors.New("object vanished")

// hashObject streams one object through SHA-256 and returns its hex digest and length.
func hashObject(ctx context.Context, cl *minio.Client, bucket, key string, buf []byte) (string, int64, error) {
	o, err := cl.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", 0, classifyS3(fmt.Errorf("read %s: %w", key, err))
	}
	defer o.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, o, buf)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return "", 0, errVanished
		}
		return "", n, classifyS3(fmt.Errorf("read %s: %w", key, err))
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// contentHash runs the content-hash level.
func (e *executor) contentHash(ctx context.Context, l *LevelResult) {
	cycle := e.t.chCycle
	if cycle <= 0 {
		cycle = DefaultContentHashCycle
	}
	res := &contentHashResult{cycle: cycle}
	e.res.contentHash = res
	cl, err := s3Client(e.t.creds)
	if err != nil {
		probeFailed(l, err)
		return
	}
	prefix := strings.Trim(e.t.prefix, "/") + "/"
	var objs []chObject
	var unexpected []string
	var damaged []chDamage
	for obj := range cl.ListObjects(ctx, e.t.creds.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			probeFailed(l, classifyS3(fmt.Errorf("list %s: %w", prefix, obj.Err)))
			return
		}
		rel := strings.TrimPrefix(obj.Key, prefix)
		ok, why := chClassify(rel)
		if !ok {
			if why != "" {
				unexpected = append(unexpected, rel+" ("+why+")")
			}
			continue
		}
		o := chObject{key: obj.Key, rel: rel, name: path.Base(rel), size: obj.Size}
		res.present = append(res.present, o.key)
		res.objectsTotal++
		res.bytesTotal += o.size
		if o.size == 0 {
			damaged = append(damaged, chDamage{Object: rel, Kind: "zero_length", Detail: "the object is empty"})
			continue
		}
		objs = append(objs, o)
	}
	res.done = true
	if res.objectsTotal == 0 {
		l.Outcome = OutcomeError
		l.Summary = "no restic object under data/, index/, snapshots/ or keys/ at this path could be listed with the verifier key (check the repository's path; this says nothing about the backup)"
		return
	}

	now := e.now()
	todo := chSelect(objs, e.t.chKnown, now, e.t.chLast, cycle)
	var todoBytes int64
	for _, o := range todo {
		todoBytes += o.size
	}
	buf := make([]byte, chBufSize)
	var doneBytes int64
	var rereads []string
	vanished := 0
	for i, o := range todo {
		if ctx.Err() != nil {
			probeFailed(l, ctx.Err())
			return
		}
		e.progress(Progress{Level: LevelContentHash, Phase: "hashing objects", Percent: pct(doneBytes, todoBytes),
			BytesDone: uint64(doneBytes), BytesTotal: uint64(todoBytes), FilesDone: uint64(i), FilesTotal: uint64(len(todo))})
		sum, n, err := hashObject(ctx, cl, e.t.creds.Bucket, o.key, buf)
		if errors.Is(err, errVanished) {
			vanished++
			continue
		}
		if err == nil && n != o.size && n < o.size {
			// The body ended early without an error: the transport's fault until a second
			// read says the same.
			err = &blindError{err: fmt.Errorf("read %s: %d of %d bytes", o.rel, n, o.size)}
		}
		if err != nil {
			probeFailed(l, err)
			l.Details["object"] = o.rel
			l.Summary = "reading " + o.rel + " failed: " + l.Summary
			return
		}
		doneBytes += o.size
		if sum == o.name {
			res.hashed = append(res.hashed, o)
			continue
		}
		// A mismatch is read once more before it is believed.
		sum2, n2, err := hashObject(ctx, cl, e.t.creds.Bucket, o.key, buf)
		if errors.Is(err, errVanished) {
			vanished++
			continue
		}
		if err != nil {
			probeFailed(l, err)
			l.Details["object"] = o.rel
			l.Summary = "re-reading " + o.rel + " (whose first read did not match its name) failed: " + l.Summary
			return
		}
		if sum2 == o.name {
			rereads = append(rereads, o.rel)
			res.hashed = append(res.hashed, o)
			continue
		}
		d := chDamage{Object: o.rel, Kind: "mismatch", Detail: fmt.Sprintf("its %d bytes hash to %s", n2, sum2)}
		if k, ok := e.t.chKnown[o.key]; ok && k.size != o.size {
			d.Kind, d.Detail = "size_changed", fmt.Sprintf("it was %d bytes when last hashed, it is %d now; %s", k.size, o.size, d.Detail)
			if o.size < k.size {
				d.Kind = "truncated"
			}
		}
		damaged = append(damaged, d)
		res.damaged = append(res.damaged, o.key)
	}

	// Coverage of the cycle: the objects hashed within it, this test included.
	hashedNow := make(map[string]bool, len(res.hashed))
	for _, o := range res.hashed {
		hashedNow[o.key] = true
	}
	for _, o := range objs {
		k, ok := e.t.chKnown[o.key]
		if hashedNow[o.key] || (ok && k.size == o.size && k.hashedAt.After(now.Add(-cycle))) {
			res.objectsCycle++
			res.bytesCycle += o.size
		}
	}
	slices.SortFunc(damaged, func(a, b chDamage) int { return strings.Compare(a.Object, b.Object) })
	l.Details["objects_listed"], l.Details["bytes_listed"] = res.objectsTotal, res.bytesTotal
	l.Details["objects_hashed"], l.Details["bytes_hashed"] = len(todo)-vanished, doneBytes
	l.Details["cycle_days"] = cycle.Hours() / 24
	l.Details["cycle_objects"], l.Details["cycle_bytes"] = res.objectsCycle, res.bytesCycle
	if vanished > 0 {
		l.Details["vanished"] = vanished
	}
	if len(damaged) > 0 {
		l.Details["damaged"] = damaged[:min(len(damaged), 100)]
	}
	if len(unexpected) > 0 {
		l.Details["unexpected"] = capList(unexpected, 50)
	}
	if len(rereads) > 0 {
		l.Details["reread_matched"] = capList(rereads, 50)
	}
	coverage := fmt.Sprintf("this cycle (%s): %d of %d objects, %s of %s", human(cycle), res.objectsCycle, res.objectsTotal,
		quota.Bytes(res.bytesCycle), quota.Bytes(res.bytesTotal))
	switch {
	case len(damaged) > 0:
		var names []string
		for _, d := range damaged[:min(len(damaged), 5)] {
			names = append(names, d.Object+" ("+strings.ReplaceAll(d.Kind, "_", "-")+")")
		}
		more := ""
		if len(damaged) > 5 {
			more = fmt.Sprintf(" and %d more", len(damaged)-5)
		}
		l.Outcome = OutcomeFailed
		l.Summary = fmt.Sprintf("content-hash integrity: %d damaged object(s): %s%s — their content no longer matches their name (read twice); the data in them cannot be restored: run `restic check --read-data` and `restic repair packs`, then make a new backup",
			len(damaged), strings.Join(names, ", "), more)
	case len(unexpected) > 0:
		l.Outcome = OutcomeWarning
		l.Summary = fmt.Sprintf("content-hash integrity: %d unexpected object(s) in the repository: %s; %d objects (%s) hashed, all matching their names; %s",
			len(unexpected), strings.Join(unexpected[:min(len(unexpected), 5)], ", "), len(todo)-vanished, quota.Bytes(doneBytes), coverage)
	case len(rereads) > 0:
		l.Outcome = OutcomeWarning
		l.Summary = fmt.Sprintf("content-hash integrity: %s did not match its name on a first read but did on the second (a transfer fault, not damage); %s",
			strings.Join(rereads[:min(len(rereads), 3)], ", "), coverage)
	default:
		l.Outcome = OutcomePassed
		l.Summary = fmt.Sprintf("content-hash integrity: %d objects (%s) read, each matching its name; %s", len(todo)-vanished, quota.Bytes(doneBytes), coverage)
	}
}

func pct(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return float64(done) * 100 / float64(total)
}

// contentHashKnown reads what earlier tests recorded of the repository's objects, and
// when the last test hashed.
func contentHashKnown(ctx context.Context, q querier, repoID int64) (map[string]chKnown, *time.Time, error) {
	rows, err := q.Query(ctx, `SELECT key, size, hashed_at FROM contenthash_objects WHERE repository_id = $1`, repoID)
	if err != nil {
		return nil, nil, fmt.Errorf("read hashed objects of repository %d: %w", repoID, err)
	}
	out := map[string]chKnown{}
	var key string
	var k chKnown
	_, err = pgx.ForEachRow(rows, []any{&key, &k.size, &k.hashedAt}, func() error {
		out[key] = k
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read hashed objects of repository %d: %w", repoID, err)
	}
	var last *time.Time
	if err := q.QueryRow(ctx, `SELECT contenthash_at FROM restic_repositories WHERE id = $1`, repoID).Scan(&last); err != nil {
		return nil, nil, fmt.Errorf("read content-hash state of repository %d: %w", repoID, err)
	}
	return out, last, nil
}

// contentHashRecord stores what the level found, in the run's transaction.
func contentHashRecord(ctx context.Context, tx pgx.Tx, repoID int64, ch *contentHashResult, now time.Time) error {
	if ch == nil || !ch.done {
		return nil
	}
	keys := make([]string, len(ch.hashed))
	sizes := make([]int64, len(ch.hashed))
	for i, o := range ch.hashed {
		keys[i], sizes[i] = o.key, o.size
	}
	if _, err := tx.Exec(ctx, `DELETE FROM contenthash_objects WHERE repository_id = $1 AND NOT (key = ANY($2))`,
		repoID, ch.present); err != nil {
		return fmt.Errorf("drop vanished objects of repository %d: %w", repoID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM contenthash_objects WHERE repository_id = $1 AND key = ANY($2)`,
		repoID, ch.damaged); err != nil {
		return fmt.Errorf("drop damaged objects of repository %d: %w", repoID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO contenthash_objects (repository_id, key, size, hashed_at)
		SELECT $1, k, s, $4 FROM unnest($2::text[], $3::bigint[]) AS u (k, s)
		ON CONFLICT (repository_id, key) DO UPDATE SET size = EXCLUDED.size, hashed_at = EXCLUDED.hashed_at`,
		repoID, keys, sizes, now); err != nil {
		return fmt.Errorf("record hashed objects of repository %d: %w", repoID, err)
	}
	_, err := tx.Exec(ctx, `UPDATE restic_repositories SET contenthash_at = $2, contenthash_objects_total = $3,
		contenthash_bytes_total = $4, contenthash_objects_cycle = $5, contenthash_bytes_cycle = $6,
		contenthash_cycle_seconds = $7 WHERE id = $1`,
		repoID, now, ch.objectsTotal, ch.bytesTotal, ch.objectsCycle, ch.bytesCycle, int64(ch.cycle.Seconds()))
	if err != nil {
		return fmt.Errorf("record content-hash coverage of repository %d: %w", repoID, err)
	}
	return nil
}

// Coverage is a repository's content-hash coverage of the current cycle, as of its last
// test that hashed: objects and bytes present, and those whose hash matched their name
// within the cycle.
type Coverage struct {
	At           time.Time `json:"at"`
	CycleSeconds int64     `json:"cycle_seconds"`
	ObjectsTotal int64     `json:"objects_total"`
	BytesTotal   int64     `json:"bytes_total"`
	ObjectsCycle int64     `json:"objects_cycle"`
	BytesCycle   int64     `json:"bytes_cycle"`
}

func chDeref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Percent is the share of bytes hashed within the cycle.
func (c Coverage) Percent() float64 { return pct(c.BytesCycle, c.BytesTotal) }
