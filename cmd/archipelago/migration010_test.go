package main

import (
	"context"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/chatons/archipelago/migrations"
)

// migration010Statements returns the statements of migration 010 that start with prefix
// (its data statements, re-run here on a database put back in an older state).
func migration010Statements(t *testing.T, prefix string) []string {
	t.Helper()
	names, err := fs.Glob(migrations.FS, "010_*.sql")
	if err != nil || len(names) != 1 {
		t.Fatalf("migration 010: %v %v", names, err)
	}
	b, err := fs.ReadFile(migrations.FS, names[0])
	if err != nil {
		t.Fatal(err)
	}
	comments := regexp.MustCompile(`(?m)^--.*$`)
	var out []string
	for _, s := range strings.Split(comments.ReplaceAllString(string(b), ""), ";\n") {
		if s = strings.TrimSpace(s); strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatalf("migration 010 has no statement starting %q", prefix)
	}
	return out
}

// Migration 010 names an existing log after its latest checkpoint (what members saved) and
// keeps the names of older checkpoints as former names; a log without checkpoints gets a
// name of its own.
func TestMigration010KeepsTheNameMembersSaved(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t)
	ctx := context.Background()
	names := migration010Statements(t, "INSERT INTO audit_key_names")
	superuser(t, l.pool, append([]string{`DELETE FROM audit_key_names`,
		`INSERT INTO audit_checkpoints (tree_size, root_hash, note) VALUES
			(3, sha256('a'), E'old.example.org/archipelago-audit\n3\nroot\n\n— sig'),
			(9, sha256('b'), E'new.example.org/archipelago-audit\n9\nroot\n\n— sig')`}, names...)...)
	rows, err := l.pool.Query(ctx, `SELECT name, current FROM audit_key_names ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for rows.Next() {
		var (
			n string
			c bool
		)
		if err := rows.Scan(&n, &c); err != nil {
			t.Fatal(err)
		}
		got[n] = c
	}
	if len(got) != 2 || !got["new.example.org/archipelago-audit"] || got["old.example.org/archipelago-audit"] {
		t.Fatalf("names after migrating a log with checkpoints: %v (want new… current, old… former)", got)
	}

	superuser(t, l.pool, append([]string{`DELETE FROM audit_key_names`, `DELETE FROM audit_checkpoints`}, names...)...)
	var name string
	if err := l.pool.QueryRow(ctx, `SELECT name FROM audit_key_names WHERE current`).Scan(&name); err != nil ||
		!regexp.MustCompile(`^archipelago-audit/[0-9a-f]{16}$`).MatchString(name) {
		t.Fatalf("name of a log without checkpoints: %q %v", name, err)
	}
}

// Migration 010 makes the authentication and account entries written before it personal,
// each concerning the right person.
func TestMigration010ClassifiesEarlierPersonalEntries(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t)
	ctx := context.Background()
	var ana int64
	if err := l.pool.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ('ana@a.example', 'x') RETURNING id`).Scan(&ana); err != nil {
		t.Fatal(err)
	}
	recordN(t, l.pool, 2, "island.update") // actor: user 1 (ana@example.org in recordN), not personal
	// Entry 2 names Ana as its target; entry 3 is her login under the address she had then
	// (found by her user id, not her email); entry 4 only by the email she typed; entry 5 is
	// no one's.
	superuser(t, l.pool,
		`INSERT INTO audit_entries (seq, at, actor_kind, actor_id, actor_name, action, target_type, target_id, tree_hashes) VALUES
			(2, now(), 'system', 'cli', 'cli', 'user.create', 'user', '`+itoa(ana)+`', sha256('x')),
			(3, now(), 'user', '`+itoa(ana)+`', 'ana.before@a.example', 'auth.login', 'session', '1', sha256('x')),
			(4, now(), 'anonymous', '', 'ana@a.example', 'auth.login_failed', '', '', sha256('x')),
			(5, now(), 'anonymous', '', 'nobody@x.example', 'auth.login_failed', '', '', sha256('x'))`,
		`DELETE FROM audit_entry_people`)
	superuser(t, l.pool, migration010Statements(t, "INSERT INTO audit_entry_people")...)
	rows, err := l.pool.Query(ctx, `SELECT seq, coalesce(person_id, 0) FROM audit_entry_people ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]int64{}
	for rows.Next() {
		var seq, person int64
		if err := rows.Scan(&seq, &person); err != nil {
			t.Fatal(err)
		}
		got[seq] = person
	}
	want := map[int64]int64{2: ana, 3: ana, 4: ana, 5: 0}
	if len(got) != len(want) {
		t.Fatalf("personal entries %v, want %v", got, want)
	}
	for seq, p := range want {
		if person, ok := got[seq]; !ok || person != p {
			t.Fatalf("personal entries %v, want %v", got, want)
		}
	}
}
