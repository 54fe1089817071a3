package reseal_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/reseal"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

// Every column of the schema named *_sealed is re-sealed: a new one not listed fails here.
func TestEverySealedColumnIsListed(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	rows, err := pool.Query(context.Background(), `SELECT table_name || '.' || column_name FROM information_schema.columns
		WHERE table_schema = 'public' AND column_name LIKE '%\_sealed' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var inSchema []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		inSchema = append(inSchema, c)
	}
	listed := map[string]bool{}
	for _, c := range reseal.Columns() {
		listed[c.Table+"."+c.Column] = true
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'
			AND table_name = $1 AND column_name = $2`, c.Table, c.IDColumn).Scan(&n); err != nil || n != 1 {
			t.Errorf("%s.%s: no id column %s (%v)", c.Table, c.Column, c.IDColumn, err)
		}
	}
	for _, c := range inSchema {
		if !listed[c] {
			t.Errorf("sealed column %s is not re-sealed by reseal.Columns", c)
		}
	}
	if len(inSchema) != len(listed) {
		t.Errorf("schema has %v, listed %v", inSchema, listed)
	}
}

func keyring(t *testing.T, keys ...string) *seal.Keyring {
	t.Helper()
	kr, err := seal.ParseKeyring(strings.Join(keys, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// After a rotation, reseal moves every value to the new key, so the old key can leave the
// file; a value no key opens stops it before it changes anything.
func TestResealMovesValuesToTheCurrentKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	oldKey, newKey, lostKey := seal.NewKey(), seal.NewKey(), seal.NewKey()
	old, rotated := keyring(t, oldKey), keyring(t, newKey, oldKey)
	if _, err := pool.Exec(ctx, `CREATE TABLE things (id bigint PRIMARY KEY, secret_sealed text)`); err != nil {
		t.Fatal(err)
	}
	col := seal.Column{Table: "things", IDColumn: "id", Column: "secret_sealed", Purpose: func(id int64) string { return fmt.Sprintf("thing/%d", id) }}
	for id, v := range map[int64]string{1: old.SealString("thing/1", "s3cret-one"), 2: old.SealString("thing/2", "s3cret-two"),
		3: rotated.SealString("thing/3", "s3cret-three"), 4: ""} {
		if _, err := pool.Exec(ctx, `INSERT INTO things VALUES ($1, $2)`, id, v); err != nil {
			t.Fatal(err)
		}
	}
	read := func(id int64) string {
		var s string
		if err := pool.QueryRow(ctx, `SELECT secret_sealed FROM things WHERE id = $1`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := read(1)

	counts, err := reseal.Run(ctx, pool, rotated, []seal.Column{col}, true)
	if err != nil || len(counts) != 1 || counts[0] != (reseal.Count{Column: "things.secret_sealed", Values: 3, Current: 1, Resealed: 2}) {
		t.Fatalf("dry run: %+v %v", counts, err)
	}
	if read(1) != before {
		t.Fatal("a dry run changed a value")
	}
	if counts, err = reseal.Run(ctx, pool, rotated, []seal.Column{col}, false); err != nil || counts[0].Resealed != 2 {
		t.Fatalf("run: %+v %v", counts, err)
	}
	newOnly := keyring(t, newKey)
	for id, want := range map[int64]string{1: "s3cret-one", 2: "s3cret-two", 3: "s3cret-three"} {
		got, err := newOnly.OpenString(fmt.Sprintf("thing/%d", id), read(id))
		if err != nil || got != want {
			t.Errorf("thing %d with the new key alone: %q %v", id, got, err)
		}
	}
	var details string
	if err := pool.QueryRow(ctx, `SELECT details::text FROM audit_entries WHERE action = 'seal.reseal'`).Scan(&details); err != nil ||
		!strings.Contains(details, `"things.secret_sealed":2`) || strings.Contains(details, "s3cret") {
		t.Errorf("audit entry %q (%v)", details, err)
	}
	if counts, err = reseal.Run(ctx, pool, rotated, []seal.Column{col}, false); err != nil || counts[0].Resealed != 0 || counts[0].Current != 3 {
		t.Errorf("second run: %+v %v", counts, err)
	}

	// A value sealed with a key the file no longer holds: refused, nothing changed.
	lost := keyring(t, lostKey)
	if _, err := pool.Exec(ctx, `INSERT INTO things VALUES (5, $1), (6, $2)`, lost.SealString("thing/5", "x"), old.SealString("thing/6", "y")); err != nil {
		t.Fatal(err)
	}
	_, err = reseal.Run(ctx, pool, rotated, []seal.Column{col}, false)
	if !errors.Is(err, reseal.ErrUnopenable) || !strings.Contains(err.Error(), "id=5") {
		t.Fatalf("err = %v", err)
	}
	if seal.SealedKeyID(read(6)) != keyring(t, oldKey).CurrentKeyID() {
		t.Error("a failed run changed a value")
	}
}
