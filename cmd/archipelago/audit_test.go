package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

// auditLog is a log on a database of the test's own, with the CLI's configuration.
type auditLog struct {
	vars map[string]string
	pool *pgxpool.Pool
	svc  *audit.Service
	keys audit.Keys
}

func newAuditLog(t *testing.T) *auditLog {
	t.Helper()
	url := testenv.DBURL(t)
	vars := map[string]string{"ARCHIPELAGO_DATABASE_URL": url, "ARCHIPELAGO_MASTER_KEY": seal.NewKey()}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.ParseKeyring(cfg.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := mustPool(t, url)
	keys, err := audit.LoadKeys(context.Background(), pool, cfg.AuditKey, kr.Derive)
	if err != nil {
		t.Fatal(err)
	}
	return &auditLog{vars: vars, pool: pool, keys: keys, svc: audit.NewService(pool, keys, testenv.Logger(t))}
}

func recordN(t *testing.T, pool *pgxpool.Pool, n int, action string) {
	t.Helper()
	ctx := audit.WithRequest(audit.WithActor(context.Background(), audit.Actor{Kind: audit.ActorUser, ID: "1", Name: "ana@example.org"}),
		audit.Request{ID: "req", SourceIP: "192.0.2.9"})
	for i := 0; i < n; i++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := audit.Record(ctx, tx, audit.Entry{Action: action, TargetType: "island", TargetID: fmt.Sprint(i), Details: map[string]any{"i": i}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// superuser runs statements as the database superuser with the append-only triggers off.
func superuser(t *testing.T, pool *pgxpool.Pool, sql ...string) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
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

// TestAuditVerifyDetectsEveryKindOfTampering is the tamper suite: 30 entries, checkpoints
// at 20 and 30, then one kind of tampering per case; `archipelago audit verify` must fail
// and name where.
func TestAuditVerifyDetectsEveryKindOfTampering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper func(t *testing.T, l *auditLog)
		want   string // the first problem, as printed
	}{
		{"edit an entry", func(t *testing.T, l *auditLog) {
			superuser(t, l.pool, `UPDATE audit_entries SET details = '{"i": 999}' WHERE seq = 7`)
		}, "FAIL: entry 7: does not match its recorded leaf hash"},
		{"edit an entry's actor", func(t *testing.T, l *auditLog) {
			superuser(t, l.pool, `UPDATE audit_entries SET actor_name = 'someone-else' WHERE seq = 22`)
		}, "FAIL: entry 22: does not match"},
		{"delete an entry", func(t *testing.T, l *auditLog) {
			superuser(t, l.pool, `DELETE FROM audit_entries WHERE seq = 12`)
		}, "FAIL: entry 12: missing"},
		{"reorder two entries", func(t *testing.T, l *auditLog) {
			superuser(t, l.pool, `UPDATE audit_entries SET seq = 1000003 WHERE seq = 3`,
				`UPDATE audit_entries SET seq = 3 WHERE seq = 9`, `UPDATE audit_entries SET seq = 9 WHERE seq = 1000003`)
		}, "FAIL: entry 3: does not match"},
		{"truncate the tail", func(t *testing.T, l *auditLog) {
			superuser(t, l.pool, `DELETE FROM audit_entries WHERE seq >= 25`)
		}, "FAIL: entries 25–29: missing"},
		{"insert a forged entry in the middle", func(t *testing.T, l *auditLog) {
			superuser(t, l.pool, `UPDATE audit_entries SET seq = seq + 1000000 WHERE seq >= 15`,
				`UPDATE audit_entries SET seq = seq - 999999 WHERE seq >= 1000000`,
				`INSERT INTO audit_entries (seq, at, actor_kind, actor_id, actor_name, action, target_type, target_id, tree_hashes)
				 SELECT 15, at, actor_kind, actor_id, actor_name, 'island.delete', 'island', '3', tree_hashes FROM audit_entries WHERE seq = 14`)
		}, "FAIL: entry 15: does not match"},
		{"append a forged entry", func(t *testing.T, l *auditLog) {
			// Without the tree's hashes, a forger stores made-up ones.
			superuser(t, l.pool, `INSERT INTO audit_entries (seq, at, actor_kind, action, tree_hashes)
				VALUES (30, now(), 'system', 'island.delete', sha256('forged'))`)
		}, "FAIL: entry 30: does not match its recorded leaf hash"},
		{"fork the log from a checkpoint", func(t *testing.T, l *auditLog) {
			// An operator holding the signing key replaces everything after checkpoint 20
			// with another history, appended properly, and signs it.
			superuser(t, l.pool, `DELETE FROM audit_entries WHERE seq >= 20`)
			recordN(t, l.pool, 15, "island.rewritten")
			r := l.svc.Keys()
			var n int64 = 35
			root, err := tlog.TreeHash(n, hashReader{l.pool})
			if err != nil {
				t.Fatal(err)
			}
			msg, err := audit.SignCheckpoint(r, n, root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.pool.Exec(context.Background(), `INSERT INTO audit_checkpoints (tree_size, root_hash, note) VALUES ($1, $2, $3)`,
				n, root[:], string(msg)); err != nil {
				t.Fatal(err)
			}
		}, "FAIL: entries 20–29: the log no longer matches checkpoint 30"},
		{"forge a checkpoint", func(t *testing.T, l *auditLog) {
			superuser(t, l.pool, `UPDATE audit_checkpoints SET note = replace(note, E'\n30\n', E'\n31\n') WHERE tree_size = 30`)
		}, "FAIL: checkpoint of size 30"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := newAuditLog(t)
			recordN(t, l.pool, 20, "island.update")
			if _, err := l.svc.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			recordN(t, l.pool, 10, "island.update")
			if _, err := l.svc.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			if code, out, stderr := runCLI(t, l.vars, "audit", "verify"); code != 0 || !strings.Contains(out, "OK") {
				t.Fatalf("before tampering: exit %d\n%s%s", code, out, stderr)
			}
			c.tamper(t, l)
			code, out, stderr := runCLI(t, l.vars, "audit", "verify")
			if code != 1 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want 1 and %q in:\n%s%s", code, c.want, out, stderr)
			}
			t.Logf("%s:\n%s", c.name, out)
		})
	}
}

// hashReader reads the tree's stored hashes as migration 003 lays them out: the hash tlog
// numbers (level, n) is byte 32*level of the tree_hashes of entry ((n+1) << level) - 1.
type hashReader struct{ pool *pgxpool.Pool }

func (r hashReader) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		level, n := tlog.SplitStoredHashIndex(x)
		var h []byte
		if err := r.pool.QueryRow(context.Background(), `SELECT substring(tree_hashes FROM 32 * $1 + 1 FOR 32) FROM audit_entries WHERE seq = $2`,
			level, (n+1)<<level-1).Scan(&h); err != nil {
			return nil, err
		}
		out[i] = tlog.Hash(h)
	}
	return out, nil
}

// rehash rewrites every entry's stored tree hashes from the entries as they are now, as an
// operator covering up an edit would.
func rehash(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT seq, at, actor_kind, actor_id, actor_name, member_id, action, target_type,
		target_id, request_id, source_ip, details::text FROM audit_entries ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		stored  []tlog.Hash
		updates []string
	)
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for rows.Next() {
		var (
			e       audit.LogEntry
			kind    string
			details string
		)
		if err := rows.Scan(&e.Seq, &e.At, &kind, &e.Actor.ID, &e.Actor.Name, &e.MemberID, &e.Action, &e.TargetType, &e.TargetID,
			&e.RequestID, &e.SourceIP, &details); err != nil {
			t.Fatal(err)
		}
		e.Actor.Kind, e.Details = audit.ActorKind(kind), []byte(details)
		hs, err := tlog.StoredHashes(e.Seq, e.Leaf(), r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		var row []byte
		for _, h := range hs {
			row = append(row, h[:]...)
		}
		updates = append(updates, fmt.Sprintf(`UPDATE audit_entries SET tree_hashes = '\x%x' WHERE seq = %d`, row, e.Seq))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	superuser(t, pool, updates...)
}

// TestAuditVerifyRemote: a member saves a checkpoint, more happens, the saved log is still a
// prefix of today's; after an old entry is rewritten in the database it is not.
func TestAuditVerifyRemote(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture()
	dir := t.TempDir()
	saved := filepath.Join(dir, "checkpoint.txt")
	r := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/checkpoint"})
	if r.Status != 200 {
		t.Fatalf("checkpoint: %d %s", r.Status, r.Body)
	}
	if err := os.WriteFile(saved, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	recordN(t, env.App.Pool, 5, "island.update")

	code, out, stderr := runCLI(t, nil, "audit", "verify", "--remote", env.URL, "--checkpoint", saved)
	if code != 0 || !strings.Contains(out, "OK: today's checkpoint is validly signed") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, map[string]string{"ARCHIPELAGO_TOKEN": f.ViewerA.Access}, "audit", "verify", "--remote", env.URL,
		"--checkpoint", saved, "--save", filepath.Join(dir, "today.txt"))
	if code != 0 || !strings.Contains(out, "entries you can see are in today's signed tree") {
		t.Fatalf("with a token: exit %d\n%s%s", code, out, stderr)
	}

	// A rewrite of an old entry in place: the entries a member sees no longer check.
	superuser(t, env.App.Pool, `UPDATE audit_entries SET action = 'member.rename' WHERE seq = 1`)
	code, out, _ = runCLI(t, map[string]string{"ARCHIPELAGO_TOKEN": f.ViewerA.Access}, "audit", "verify", "--remote", env.URL, "--checkpoint", saved)
	if code != 1 || !strings.Contains(out, "FAIL: entry 1:") {
		t.Fatalf("after an in-place rewrite: exit %d\n%s", code, out)
	}
	// A thorough rewrite: the tree rebuilt from the edited entries and re-signed by an
	// operator holding the key (older checkpoints dropped). The saved checkpoint exposes it.
	rehash(t, env.App.Pool)
	superuser(t, env.App.Pool, `DELETE FROM audit_checkpoints`)
	recordN(t, env.App.Pool, 1, "island.update")
	code, out, _ = runCLI(t, nil, "audit", "verify", "--remote", env.URL, "--checkpoint", saved)
	if code != 1 || !strings.Contains(out, "is not a prefix of today's") {
		t.Fatalf("after a re-signed rewrite: exit %d\n%s", code, out)
	}
	// So does the checkpoint the member saved after the first check.
	code, out, _ = runCLI(t, nil, "audit", "verify", "--remote", env.URL, "--checkpoint", filepath.Join(dir, "today.txt"))
	if code != 1 {
		t.Fatalf("today's saved checkpoint after the rewrite: exit %d\n%s", code, out)
	}
}

// audit verify's findings are said in the session's language (LANG=fr_FR.UTF-8): the
// audit package words them in English, the CLI says them again from the catalog.
func TestAuditVerifyFindingsInTheSessionsLanguage(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t)
	recordN(t, l.pool, 10, "island.update")
	if _, err := l.svc.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	superuser(t, l.pool, `UPDATE audit_entries SET details = '{"i": 999}' WHERE seq = 7`)
	vars := map[string]string{"LANG": "fr_FR.UTF-8"}
	for k, v := range l.vars {
		vars[k] = v
	}
	code, out, stderr := runCLI(t, vars, "audit", "verify")
	if code != 1 || !strings.Contains(out, "entrée 7\u202f: ne correspond pas à son empreinte de feuille enregistrée") || strings.Contains(out, "does not match") {
		t.Fatalf("exit %d, want 1 and the finding in French:\n%s%s", code, out, stderr)
	}
}
