package verify

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/faultproxy"
)

// Tests of content-hash integrity (contenthash.go): every object's SHA-256 against its
// name, with the read-only verifier key and no password, on real restic repositories in
// real MinIO.

func detailsJSON(t *testing.T, l LevelResult) string {
	t.Helper()
	b, err := json.Marshal(l.Details)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestContentHashNamesDamageInABlindRepository: a blind repository (the federation holds
// no password) passes and its coverage is recorded; a test right after reads nothing again
// (the rotation); once the cycle has passed, one pack overwritten in the bucket makes the
// next test fail naming it. Then a truncated index, a zero-length object and unexpected
// objects are named too.
func TestContentHashNamesDamageInABlindRepository(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	f := b.newRepo("restic/ch-blind", true, false, Policy{})
	b.worker(nil)

	run := b.test(f)
	l := level(run, LevelContentHash)
	if run.Status != StatusPassed || l.Outcome != OutcomePassed {
		t.Fatalf("healthy blind repository: %s", describe(run))
	}
	repo, err := RepositoryGetByID(b.ctx, b.pool, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := repo.ContentHash; c == nil || c.ObjectsTotal == 0 || c.ObjectsCycle != c.ObjectsTotal || c.BytesCycle != c.BytesTotal ||
		c.CycleSeconds != int64(DefaultContentHashCycle.Seconds()) {
		t.Fatalf("coverage after the first test: %+v", repo.ContentHash)
	}

	// Rotation: everything was hashed within the cycle, nothing new: nothing is read again.
	run = b.test(f)
	if l := level(run, LevelContentHash); l.Outcome != OutcomePassed || l.Details["objects_hashed"] != float64(0) {
		t.Fatalf("second test right after the first re-read objects: %s %s", describe(run), detailsJSON(t, l))
	}

	// A cycle later (the hashes are made older than the cycle), one pack was overwritten.
	if _, err := b.pool.Exec(b.ctx, `UPDATE contenthash_objects SET hashed_at = hashed_at - interval '31 days' WHERE repository_id = $1`, f.repo.ID); err != nil {
		t.Fatal(err)
	}
	pack := packKeys(t, b, f)[0]
	data := b.getObject(pack.Key)
	for i := len(data) / 2; i < len(data)/2+16; i++ {
		data[i] ^= 0xff
	}
	b.putObject(pack.Key, data)
	rel := strings.TrimPrefix(pack.Key, f.repo.Path+"/")
	run = b.test(f)
	l = level(run, LevelContentHash)
	if run.Status != StatusFailed || l.Outcome != OutcomeFailed || !strings.Contains(l.Summary, rel) || !strings.Contains(run.Reason, rel) {
		t.Fatalf("overwritten pack %s: %s", rel, describe(run))
	}
	if !strings.Contains(detailsJSON(t, l), `"kind": "mismatch"`) && !strings.Contains(detailsJSON(t, l), `"kind":"mismatch"`) {
		t.Fatalf("details: %s", detailsJSON(t, l))
	}
	// ... and the federation holds no password for this repository.
	var sealedIsNull bool
	if err := b.pool.QueryRow(b.ctx, `SELECT password_sealed IS NULL FROM restic_repositories WHERE id = $1`, f.repo.ID).Scan(&sealedIsNull); err != nil || !sealedIsNull {
		t.Fatalf("blind repository holds a password: %v %v", sealedIsNull, err)
	}
	// A damaged object stays failed at the next test (its hash is not recorded as good).
	if run := b.test(f); run.Status != StatusFailed || !strings.Contains(level(run, LevelContentHash).Summary, rel) {
		t.Fatalf("damage forgotten at the next test: %s", describe(run))
	}

	// A truncated index, a zero-length object, and objects restic never writes.
	var index minio.ObjectInfo
	for obj := range b.root.ListObjects(b.ctx, b.bucket, minio.ListObjectsOptions{Prefix: f.repo.Path + "/index/", Recursive: true}) {
		index = obj
	}
	idx := b.getObject(index.Key)
	b.putObject(index.Key, idx[:len(idx)/2])
	empty := "data/ab/ab" + strings.Repeat("0", 62)
	b.putObject(f.repo.Path+"/"+empty, nil)
	b.putObject(f.repo.Path+"/data/ab/not-a-restic-object", []byte("x"))
	b.putObject(f.repo.Path+"/stray/file.txt", []byte("x"))
	run = b.test(f)
	l = level(run, LevelContentHash)
	d := detailsJSON(t, l)
	idxRel := strings.TrimPrefix(index.Key, f.repo.Path+"/")
	var found struct {
		Damaged    []chDamage `json:"damaged"`
		Unexpected []string   `json:"unexpected"`
	}
	if err := json.Unmarshal([]byte(d), &found); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, x := range found.Damaged {
		kinds[x.Object] = x.Kind
	}
	if kinds[idxRel] != "truncated" || kinds[empty] != "zero_length" || kinds[rel] != "mismatch" || len(kinds) != 3 {
		t.Errorf("damaged objects: %v", kinds)
	}
	if u := strings.Join(found.Unexpected, " "); !strings.Contains(u, "data/ab/not-a-restic-object") || !strings.Contains(u, "stray/file.txt") {
		t.Errorf("unexpected objects not named: %s", d)
	}
	if run.Status != StatusFailed || !strings.Contains(l.Summary, idxRel) || !strings.Contains(l.Summary, empty) {
		t.Fatalf("truncated index and empty object: %s", describe(run))
	}
}

// TestContentHashIslandFaultsAreErrors: the island answers 503 or cuts the body of a pack
// short while it is being hashed: error (the verifier could not judge), naming the object,
// never failed. A pack damaged on its way once but intact when read again is no damage.
func TestContentHashIslandFaultsAreErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	f := b.newRepo("restic/ch-faults", true, false, Policy{})
	pack := bigPack(t, b, f)
	p := behindProxy(t, b)
	b.worker(nil)
	for _, kind := range []faultproxy.Kind{faultproxy.Unavailable, faultproxy.Truncate} {
		remove := p.Add(faultproxy.Rule{Kind: kind, Method: "GET", PathContains: pack})
		run := b.test(f)
		remove()
		if p.Faults(kind) == 0 {
			t.Fatalf("no %s injected: %s", kind, describe(run))
		}
		l := level(run, LevelContentHash)
		if run.Status != StatusError || l.Outcome != OutcomeError || !strings.Contains(l.Summary, pack) ||
			!strings.Contains(l.Summary, "says nothing about the backup") {
			t.Fatalf("island %s mid-hash: %s", kind, describe(run))
		}
	}
	// One read of the pack is damaged in transit; the re-read is intact.
	var once atomic.Bool
	p.Add(faultproxy.Rule{Kind: faultproxy.Corrupt, Method: "GET", PathContains: pack,
		Match: func(*http.Request) bool { return once.CompareAndSwap(false, true) }})
	run := b.test(f)
	l := level(run, LevelContentHash)
	if p.Faults(faultproxy.Corrupt) == 0 {
		t.Fatalf("no corruption injected: %s", describe(run))
	}
	if run.Status != StatusWarning || l.Outcome != OutcomeWarning || !strings.Contains(l.Summary, pack) {
		t.Fatalf("damage in transit: %s", describe(run))
	}
}

// TestContentHashInFullModeAndConsent: full mode is refused without the consent; with it the
// consent is recorded, content-hash runs beside restic check, and the evidence says who
// produced what. Leaving full mode erases the password (audited).
func TestContentHashInFullModeAndConsent(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	_, err := b.svc.RepositoryCreate(b.ctx, RepositoryInput{MemberID: b.memberID, VaultID: b.vaultID, Name: "no-consent",
		Path: "restic/no-consent", Password: "a password of the key"})
	if fe, ok := err.(*FieldError); !ok || fe.Field != "full_mode_consent" || !strings.Contains(fe.Problem, "cat masterkey") {
		t.Fatalf("full mode without consent: %v", err)
	}
	f := b.newRepo("restic/ch-full", false, false, Policy{CheckSubsets: ptr(1)})
	if c := f.repo.FullConsent; c == nil || c.StatementVersion != FullModeStatementVersion || c.By == "" || c.At.IsZero() {
		t.Fatalf("consent not recorded: %+v", f.repo.FullConsent)
	}
	b.worker(nil)
	run := b.test(f)
	if run.Status != StatusPassed || level(run, LevelContentHash).Outcome != OutcomePassed || level(run, LevelIntegrity).Outcome != OutcomePassed {
		t.Fatalf("full mode: %s", describe(run))
	}
	repo, err := RepositoryGetByID(b.ctx, b.pool, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := b.svc.EvidenceList(b.ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range ev {
		kinds[e.Kind] = e.Producer + ":" + e.Outcome
	}
	if kinds[LevelContentHash] != "federation:passed" || kinds[LevelIntegrity] != "federation:passed" {
		t.Fatalf("evidence: %+v", ev)
	}
	b.svc.AddEvidenceSource(func(_ context.Context, id int64) ([]Evidence, error) {
		return []Evidence{{Kind: "attestation", Producer: ProducerMember, Outcome: OutcomePassed, At: time.Now()}}, nil
	})
	if ev, _ := b.svc.EvidenceList(b.ctx, repo); ev[len(ev)-1].Producer != ProducerMember {
		t.Fatalf("source not listed: %+v", ev)
	}

	r, err := b.svc.ModeSet(b.ctx, f.repo.ID, ModeAttested)
	if err != nil || r.Mode != ModeAttested || r.HasPassword {
		t.Fatalf("full → attested: %+v %v", r, err)
	}
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM restic_repositories r JOIN audit_entries a ON a.target_id = r.id::text
		WHERE r.id = $1 AND r.password_sealed IS NULL AND a.action = 'repository.mode_change' AND a.details->>'password_erased' = 'true'`,
		f.repo.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("password not erased or not audited: %d %v", n, err)
	}
	run = b.test(f)
	if level(run, LevelContentHash).Outcome != OutcomePassed || !strings.Contains(level(run, LevelSample).Summary, "agent") {
		t.Fatalf("attested mode: %s", describe(run))
	}
}

func TestContentHashRotation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	cycle := 30 * 24 * time.Hour
	obj := func(k string, size int64) chObject { return chObject{key: k, size: size} }
	objs := []chObject{obj("new", 10), obj("resized", 10), obj("overdue", 10), obj("old", 10), obj("older", 10), obj("fresh", 10)}
	known := map[string]chKnown{
		"resized": {size: 20, hashedAt: now.Add(-time.Hour)},
		"overdue": {size: 10, hashedAt: now.Add(-cycle - time.Minute)},
		"old":     {size: 10, hashedAt: now.Add(-20 * 24 * time.Hour)},
		"older":   {size: 10, hashedAt: now.Add(-25 * 24 * time.Hour)},
		"fresh":   {size: 10, hashedAt: now.Add(-time.Hour)},
	}
	keys := func(os []chObject) string {
		var s []string
		for _, o := range os {
			s = append(s, o.key)
		}
		return strings.Join(s, ",")
	}
	last := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, c := range []struct {
		last *time.Time
		want string
	}{
		// A test right after the last: only what must be read.
		{last(time.Minute), "new,resized,overdue"},
		// Half a cycle since the last: half the bytes (30), the oldest first.
		{last(15 * 24 * time.Hour), "new,resized,overdue"},
		{last(20 * 24 * time.Hour), "new,resized,overdue,older"},
		// A whole cycle (or never): everything.
		{nil, "new,resized,overdue,older,old,fresh"},
	} {
		if got := keys(chSelect(objs, known, now, c.last, cycle)); got != c.want {
			t.Errorf("last %v: %s, want %s", c.last, got, c.want)
		}
	}
}

func TestContentHashClassify(t *testing.T) {
	t.Parallel()
	h := strings.Repeat("ab", 32)
	for rel, want := range map[string]bool{"config": false, "locks/" + h: false, "data/ab/" + h: true, "index/" + h: true,
		"snapshots/" + h: true, "keys/" + h: true} {
		ok, why := chClassify(rel)
		if ok != want || why != "" {
			t.Errorf("%s: %v %q", rel, ok, why)
		}
	}
	for _, rel := range []string{"data/cd/" + h, "data/ab/xyz", "index/" + h + ".tmp", "stray", "data/" + h, "snapshots/sub/" + h} {
		if ok, why := chClassify(rel); ok || why == "" {
			t.Errorf("%s not unexpected: %v %q", rel, ok, why)
		}
	}
}
