package audit_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/migrations"
)

// bundle is a log on a database of the test's own.
type bundle struct {
	pool *pgxpool.Pool
	keys audit.Keys
	svc  *audit.Service
	ctx  context.Context
}

func setup(t *testing.T) *bundle {
	t.Helper()
	pool := testenv.DB(t)
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	keys, err := audit.KeysFromSeed("test.example/archipelago-audit", seed)
	if err != nil {
		t.Fatal(err)
	}
	ctx := audit.WithRequest(audit.WithActor(context.Background(), audit.Actor{Kind: audit.ActorUser, ID: "7", Name: "ana@example.org"}),
		audit.Request{ID: "req-1", SourceIP: "192.0.2.1"})
	return &bundle{pool: pool, keys: keys, svc: audit.NewService(pool, keys, testenv.Logger(t)), ctx: ctx}
}

// record appends n entries, each in its own committed transaction; member entries
// alternate between member m (when not nil) and the federation.
func (b *bundle) record(t *testing.T, n int, m *int64) {
	t.Helper()
	for i := 0; i < n; i++ {
		e := audit.Entry{Action: "test.append", TargetType: "thing", TargetID: fmt.Sprint(i), Details: map[string]any{"i": i, "note": "n° " + fmt.Sprint(i)}}
		if m != nil && i%2 == 1 {
			e.MemberID, e.Action = m, "vault.create"
		}
		if err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error { _, err := audit.Record(b.ctx, tx, e); return err }); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *bundle) checkpoint(t *testing.T) audit.Checkpoint {
	t.Helper()
	c, err := b.svc.Checkpoint(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b *bundle) verify(t *testing.T) *audit.Report {
	t.Helper()
	r, err := audit.Verify(b.ctx, b.pool, b.keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tamper runs SQL as the database superuser with the append-only triggers off, as an
// operator with full access to the database could.
func (b *bundle) tamper(t *testing.T, sql ...string) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		for _, s := range sql {
			if _, err := tx.Exec(context.Background(), s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func member(t *testing.T, pool *pgxpool.Pool, slug string) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO members (slug, name) VALUES ($1, $1) RETURNING id`, slug).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLeafRoundTripsAndCoversEveryField(t *testing.T) {
	t.Parallel()
	m := int64(42)
	e := audit.LogEntry{Seq: 9, At: time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC), Actor: audit.Actor{Kind: "token", ID: "3", Name: "x (token y)"},
		MemberID: &m, Action: "vault.create", TargetType: "vault", TargetID: "17", RequestID: "r", SourceIP: "::1", Details: json.RawMessage(`{"a": 1}`)}
	got, err := audit.DecodeLeaf(e.Leaf())
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Leaf()) != string(e.Leaf()) || *got.MemberID != 42 || !got.At.Equal(e.At) {
		t.Fatalf("round trip: %+v", got)
	}
	edits := []func(*audit.LogEntry){
		func(x *audit.LogEntry) { x.Seq++ },
		func(x *audit.LogEntry) { x.At = x.At.Add(time.Microsecond) },
		func(x *audit.LogEntry) { x.Actor.Kind = "user" },
		func(x *audit.LogEntry) { x.Actor.ID = "4" },
		func(x *audit.LogEntry) { x.Actor.Name = "y" },
		func(x *audit.LogEntry) { x.MemberID = nil },
		func(x *audit.LogEntry) { x.Action = "vault.delete" },
		func(x *audit.LogEntry) { x.TargetType = "key" },
		func(x *audit.LogEntry) { x.TargetID = "1" },
		func(x *audit.LogEntry) { x.RequestID = "s" },
		func(x *audit.LogEntry) { x.SourceIP = "::2" },
		func(x *audit.LogEntry) { x.Details = json.RawMessage(`{"a": 2}`) },
		// Moving bytes between adjacent fields must change the leaf too.
		func(x *audit.LogEntry) { x.TargetType, x.TargetID = "vault1", "7" },
	}
	for i, edit := range edits {
		x := e
		edit(&x)
		if x.LeafHash() == e.LeafHash() {
			t.Errorf("edit %d does not change the leaf hash", i)
		}
	}
	if _, err := audit.DecodeLeaf([]byte("archipelago-audit-leaf/v0\n")); !errors.Is(err, audit.ErrBadLeaf) {
		t.Errorf("bad version: %v", err)
	}
}

func TestKeysFromSeedAndFromPrivateAgree(t *testing.T) {
	t.Parallel()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.org/archipelago-audit")
	if err != nil {
		t.Fatal(err)
	}
	k, err := audit.KeysFromPrivate(skey)
	if err != nil {
		t.Fatal(err)
	}
	if k.VerifierKey != vkey {
		t.Fatalf("verifier key %q, want %q", k.VerifierKey, vkey)
	}
	seed := make([]byte, 32)
	a, err := audit.KeysFromSeed("n/archipelago-audit", seed)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := audit.SignCheckpoint(a, 3, tlog.Hash{1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := audit.OpenCheckpoint(msg, a.Verifier)
	if err != nil || c.Size != 3 || c.Root != (tlog.Hash{1}) || c.Origin != "n/archipelago-audit" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := audit.OpenCheckpoint(msg, k.Verifier); !errors.Is(err, audit.ErrBadCheckpoint) {
		t.Fatalf("another key verified it: %v", err)
	}
	if _, err := audit.KeysFromPrivate("PRIVATE+KEY+nope"); err == nil {
		t.Fatal("accepted a malformed key")
	}
}

func TestTheLogVerifiesAndProvesInclusionAndConsistency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := member(t, b.pool, "alpha")
	b.record(t, 13, &m)
	c1 := b.checkpoint(t)
	if c1.Size != 13 {
		t.Fatalf("checkpoint size %d", c1.Size)
	}
	if again := b.checkpoint(t); again.Size != 13 || string(again.Note) != string(c1.Note) {
		t.Fatal("an unchanged log got a new checkpoint")
	}
	b.record(t, 8, nil)
	c2 := b.checkpoint(t)
	rep := b.verify(t)
	if !rep.OK() || rep.Entries != 21 || rep.Checkpoints != 2 || rep.Uncovered != 0 {
		t.Fatalf("report %+v", rep)
	}
	for seq := int64(0); seq < c2.Size; seq++ {
		p, err := b.svc.ProveEntry(b.ctx, seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		e, err := b.svc.Get(b.ctx, seq, audit.Visibility{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if h, err := audit.CheckView(e.View()); err != nil || h != p.LeafHash {
			t.Fatalf("entry %d: view %v", seq, err)
		}
		if err := tlog.CheckRecord(p.Proof, c2.Size, c2.Root, seq, e.LeafHash()); err != nil {
			t.Fatalf("entry %d: %v", seq, err)
		}
	}
	proof, err := b.svc.ProveConsistency(b.ctx, c1.Size, c2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(proof, c2.Size, c2.Root, c1.Size, c1.Root); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.ProveConsistency(b.ctx, 5, 99); !errors.Is(err, audit.ErrBadRange) {
		t.Fatalf("beyond the log: %v", err)
	}
	if _, err := b.svc.ProveEntry(b.ctx, 21, 21); !errors.Is(err, audit.ErrBadRange) {
		t.Fatalf("beyond the tree: %v", err)
	}
}

func TestListFiltersPagesAndHidesOtherMembers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alpha, beta := member(t, b.pool, "alpha"), member(t, b.pool, "beta")
	b.record(t, 6, &alpha) // 3 federation, 3 alpha
	b.record(t, 4, &beta)  // 2 federation, 2 beta
	count := func(f audit.Filter, v audit.Visibility) int {
		t.Helper()
		n, before := 0, int64(0)
		for {
			f.Before, f.Limit = before, 2
			p, err := b.svc.List(b.ctx, f, v)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Entries {
				if !v.Sees(e.MemberID) {
					t.Fatalf("entry %d of member %d shown", e.Seq, *e.MemberID)
				}
			}
			n += len(p.Entries)
			if p.NextBefore == 0 {
				return n
			}
			before = p.NextBefore
		}
	}
	alphaUser := audit.Visibility{MemberIDs: []int64{alpha}}
	cases := []struct {
		name string
		f    audit.Filter
		v    audit.Visibility
		want int
	}{
		{"admin sees all", audit.Filter{}, audit.Visibility{All: true}, 10},
		{"alpha sees federation and its own", audit.Filter{}, alphaUser, 8},
		{"a stranger sees the federation's", audit.Filter{}, audit.Visibility{}, 5},
		{"member filter", audit.Filter{MemberID: &beta}, audit.Visibility{All: true}, 2},
		{"member filter cannot reveal", audit.Filter{MemberID: &beta}, alphaUser, 0},
		{"federation only", audit.Filter{Federation: true}, alphaUser, 5},
		{"action", audit.Filter{Action: "vault.create"}, alphaUser, 3},
		{"action prefix", audit.Filter{Action: "vault.*"}, audit.Visibility{All: true}, 5},
		{"unknown target", audit.Filter{TargetType: "thing", TargetID: "99"}, audit.Visibility{All: true}, 0},
		{"target id", audit.Filter{TargetType: "thing", TargetID: "0"}, audit.Visibility{All: true}, 2},
		{"actor", audit.Filter{Actor: "ana@example.org", ActorKind: audit.ActorUser}, audit.Visibility{}, 5},
		{"other actor", audit.Filter{Actor: "8"}, audit.Visibility{All: true}, 0},
		{"since", audit.Filter{Since: time.Now().Add(-time.Hour)}, audit.Visibility{}, 5},
		{"until", audit.Filter{Until: time.Now().Add(-time.Hour)}, audit.Visibility{All: true}, 0},
	}
	for _, c := range cases {
		if got := count(c.f, c.v); got != c.want {
			t.Errorf("%s: %d entries, want %d", c.name, got, c.want)
		}
	}
	if _, err := b.svc.Get(b.ctx, 1, audit.Visibility{MemberIDs: []int64{beta}}); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("alpha's entry shown to beta: %v", err)
	}
	e, err := b.svc.Get(b.ctx, 1, alphaUser)
	if err != nil || e.Actor.Name != "ana@example.org" || e.RequestID != "req-1" || e.SourceIP != "192.0.2.1" {
		t.Fatalf("%+v %v", e, err)
	}
}

func TestTheLogIsAppendOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.record(t, 3, nil)
	b.checkpoint(t)
	for _, sql := range []string{
		`UPDATE audit_entries SET action = 'x' WHERE seq = 1`,
		`DELETE FROM audit_entries WHERE seq = 2`,
		`TRUNCATE audit_entries CASCADE`,
		`UPDATE audit_entries SET tree_hashes = tree_hashes WHERE seq = 0`,
		`DELETE FROM audit_checkpoints`,
		`TRUNCATE audit_checkpoints`,
	} {
		_, err := b.pool.Exec(context.Background(), sql)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", sql, err)
		}
	}
	if !b.verify(t).OK() {
		t.Fatal("the log changed")
	}
}

func TestAMutationWhoseEntryCannotBeWrittenIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Make the log unwritable.
	if _, err := b.pool.Exec(context.Background(), `
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse();`); err != nil {
		t.Fatal(err)
	}
	err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(b.ctx, `INSERT INTO members (slug, name) VALUES ('gamma', 'Gamma')`); err != nil {
			return err
		}
		_, err := audit.Record(b.ctx, tx, audit.Entry{Action: "member.create", TargetType: "member", TargetID: "gamma"})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM members`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d members after a refused change (%v)", n, err)
	}
}

// An append whose sibling hash is gone (an entry deleted by hand) fails, rather than extend
// a tree nobody can check: at level 1 (entry 3 combines with the node stored with entry 1),
// and at levels 1 and 2 (entry 7 combines with nodes stored with entries 5 and 3).
func TestAnAppendOverAMissingSiblingFails(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ entries, deleted int }{{3, 1}, {7, 5}, {7, 3}} {
		t.Run(fmt.Sprintf("%d entries, entry %d deleted", c.entries, c.deleted), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.record(t, c.entries, nil)
			b.tamper(t, fmt.Sprintf(`DELETE FROM audit_entries WHERE seq = %d`, c.deleted))
			err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
				_, err := audit.Record(b.ctx, tx, audit.Entry{Action: "member.create"})
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "lacks a stored hash") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// Stored tree hashes are whole hashes, at least one and at most 64 (migration 003's check,
// a domain's since migration 025, audit_append).
func TestTreeHashesOfABadLengthAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, n := range []int{0, 31, 33, 65 * 32} {
		_, err := b.pool.Exec(b.ctx, `INSERT INTO audit_entries (seq, at, actor_kind, action, tree_hashes)
			VALUES (0, now(), 'system', 'test.append', $1)`, make([]byte, n))
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" /* check_violation */ {
			t.Errorf("%d bytes of tree hashes: err = %v", n, err)
		}
	}
	if _, err := b.pool.Exec(b.ctx, `INSERT INTO audit_entries (seq, at, actor_kind, action, tree_hashes)
		VALUES (0, now(), 'system', 'test.append', $1)`, make([]byte, 64)); err != nil {
		t.Errorf("64 bytes of tree hashes: %v", err)
	}
}

func TestCheckpointsAreSignedPeriodicallyUntilCancelled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.record(t, 2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- audit.RunCheckpointer(ctx, b.svc, 20*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := b.svc.LatestCheckpoint(context.Background())
		if err == nil && c.Size == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.record(t, 1, nil)
	for {
		if c, err := b.svc.LatestCheckpoint(context.Background()); err == nil && c.Size == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no second checkpoint")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestTheServerRefusesToSignOverABrokenTree(t *testing.T) {
	t.Parallel()
	for name, sql := range map[string]string{
		"altered tree hash": `UPDATE audit_entries SET tree_hashes = substring(tree_hashes FOR 64) || sha256(substring(tree_hashes FROM 65)) WHERE seq = 3`,
		"truncated":         `DELETE FROM audit_entries WHERE seq >= 3`, // into the checkpoint of 4
		"edited new entry":  `UPDATE audit_entries SET action = 'x' WHERE seq = 5`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.record(t, 4, nil)
			b.checkpoint(t)
			b.record(t, 2, nil)
			b.tamper(t, sql)
			if _, err := b.svc.Checkpoint(b.ctx); err == nil || !strings.Contains(err.Error(), "refusing to sign") {
				t.Fatalf("err = %v", err)
			}
			if rep := b.verify(t); rep.OK() {
				t.Fatal("verify passed")
			}
		})
	}
}

// The database hashes the leaves it appends (appendSQL) as LogEntry.Leaf encodes them, and
// keeps the details the leaf covers byte for byte: fields of every length class of the
// varint prefix, non-ASCII text, member and federation entries, JSON that jsonb would
// render differently from Go.
func TestServerEncodedLeavesVerify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := member(t, b.pool, "alpha")
	long := strings.Repeat("é", 100)   // 200 bytes: a two-byte length
	huge := strings.Repeat("x", 20000) // a three-byte length
	entries := []audit.Entry{
		{Action: "a"},
		{Action: "vault.create", MemberID: &m, TargetType: "vault", TargetID: long, Details: map[string]any{"b": 1, "a": []any{1.5, "ü", nil}, "long": huge}},
		{Action: "x." + long, TargetType: huge, Details: map[string]any{"n": 1e21, "s": "<&>\u2028\"\\"}},
	}
	for i, e := range entries {
		ctx := audit.WithRequest(audit.WithActor(context.Background(), audit.Actor{Kind: audit.ActorToken, ID: fmt.Sprint(i), Name: long}),
			audit.Request{ID: huge[:i*200], SourceIP: "2001:db8::1"})
		if err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { _, err := audit.Record(ctx, tx, e); return err }); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	b.record(t, 5, &m)
	b.checkpoint(t)
	if rep := b.verify(t); !rep.OK() || rep.Entries != int64(len(entries))+5 {
		t.Fatalf("%+v", rep)
	}
}

// TestConcurrentSignersAgree: the periodic task, reports and the API may sign at the same
// moment; every caller gets the one checkpoint of that size, none an error.
func TestConcurrentSignersAgree(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for round := 0; round < 5; round++ {
		b.record(t, 3, nil)
		var wg sync.WaitGroup
		sizes := make([]int64, 6)
		errs := make([]error, 6)
		for i := range sizes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := b.svc.Checkpoint(context.Background())
				sizes[i], errs[i] = c.Size, err
			}()
		}
		wg.Wait()
		for i := range sizes {
			if errs[i] != nil || sizes[i] != int64(3*(round+1)) {
				t.Fatalf("round %d signer %d: size %d, err %v", round, i, sizes[i], errs[i])
			}
		}
	}
}

// Migration 025 (audit_append: the length check of tree_hashes as a domain's) leaves an
// existing log as it was: the entries appended before it still verify, with the checkpoint
// signed before it, and appends after it (by the new append statement) extend the same tree.
func TestMigrationAuditAppendKeepsTheLogVerifying(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.record(t, 13, nil) // (every kind of append: seqs ending in 0, 01, 011 and 111)
	c := b.checkpoint(t)
	// The schema as migration 003 left it, then the migration run again over the 13 entries
	// (found by its name: the lead numbers migrations when they land).
	names, err := fs.Glob(migrations.FS, "*_audit_append.sql")
	if err != nil || len(names) != 1 {
		t.Fatalf("migration audit_append: %v %v", names, err)
	}
	m, err := fs.ReadFile(migrations.FS, names[0])
	if err != nil {
		t.Fatal(err)
	}
	b.tamper(t, `ALTER TABLE audit_entries ALTER COLUMN tree_hashes TYPE bytea`,
		`ALTER TABLE audit_entries ADD CONSTRAINT audit_entries_tree_hashes_check
			CHECK (length(tree_hashes) BETWEEN 32 AND 64 * 32 AND length(tree_hashes) % 32 = 0)`,
		`DROP DOMAIN audit_tree_hashes_bytes`, string(m))
	// (Migrations run before the server connects; here the pool's connections prepared their
	// statements against the older column type: new connections, as after an upgrade.)
	b.pool.Reset()
	if rep := b.verify(t); !rep.OK() || rep.Entries != 13 || rep.Checkpoints != 1 {
		t.Fatalf("after the migration: report %+v", rep)
	}
	b.record(t, 11, nil)
	c2 := b.checkpoint(t)
	if rep := b.verify(t); !rep.OK() || rep.Entries != 24 || rep.Checkpoints != 2 {
		t.Fatalf("after 11 more appends: report %+v", rep)
	}
	if c2.Size != 24 || c.Size != 13 {
		t.Fatalf("checkpoints of %d and %d entries", c.Size, c2.Size)
	}
}

// The first entry of a log (no last row to follow) takes the append's other statement: seq
// 0, its leaf hash alone, personal or not, and the entries after it extend the same tree.
func TestTheFirstEntryStartsTheTree(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"member.create", "auth.login"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var seq int64
			if err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
				var err error
				seq, err = audit.Record(b.ctx, tx, audit.Entry{Action: action, TargetType: "user", TargetID: "7"})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var n, people int
			if err := b.pool.QueryRow(b.ctx, `SELECT (SELECT count(*) FROM audit_entries), (SELECT count(*) FROM audit_entry_people)`).Scan(&n, &people); err != nil {
				t.Fatal(err)
			}
			if wantPeople := map[bool]int{true: 1, false: 0}[audit.Personal(action)]; seq != 0 || n != 1 || people != wantPeople {
				t.Fatalf("seq %d, %d entries, %d personal rows (want 0, 1, %d)", seq, n, people, wantPeople)
			}
			b.record(t, 4, nil)
			if rep := b.verify(t); !rep.OK() || rep.Entries != 5 {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}
