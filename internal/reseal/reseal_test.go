package reseal_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/islands"
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

// The new admin token of an island held by an open approval request is sealed inside the
// request's parameters: after a rotation, reseal moves it to the current key, so the request
// can still be executed (the executor opens it with islands.Service.OpenPendingToken) once the
// old key has left the file. A closed request's token is left as it is.
func TestResealMovesTheTokensOfOpenApprovalRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	oldKey, newKey := seal.NewKey(), seal.NewKey()
	old, rotated, newOnly := keyring(t, oldKey), keyring(t, newKey, oldKey), keyring(t, newKey)
	log := testenv.Logger(t)
	var user int64
	if err := pool.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ('admin@example.org', 'x') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	request := func(island int64, status, token string) int64 {
		t.Helper()
		params := map[string]any{"island_id": island, "name": "island", "change": map[string]any{
			"admin_token_sealed": islands.New(pool, old, log, islands.Config{}).SealPendingToken(island, token)}}
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO approval_requests (action, target_type, target_id, params, effect, requested_by,
				authority, required_approvals, status, created_at, approval_expires_at, finished_at)
			VALUES ($1, 'island', $2, $3, 'Replace the admin token', $4, 'federation_admin', 2, $5, now(), now() + interval '1 day',
				CASE WHEN $5 = 'executed' THEN now() END) RETURNING id`,
			string(approvals.ActionIslandToken), fmt.Sprint(island), params, user, status).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	sealed := func(id int64) string {
		t.Helper()
		var s string
		if err := pool.QueryRow(ctx, `SELECT params #>> '{change,admin_token_sealed}' FROM approval_requests WHERE id = $1`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	pending := request(7, "pending", "the-new-admin-token")
	executed := request(8, "executed", "an-old-replacement")
	closedBefore := sealed(executed)
	isl := islands.New(pool, newOnly, log, islands.Config{})
	if _, err := isl.OpenPendingToken(7, sealed(pending)); err == nil {
		t.Fatal("the new key alone opens the token before the reseal: the test proves nothing")
	}

	counts, err := reseal.Run(ctx, pool, rotated, nil, false, reseal.Fields()...)
	if err != nil || len(counts) != 1 || counts[0] != (reseal.Count{Column: "approval_requests.params.change.admin_token_sealed", Values: 1, Resealed: 1}) {
		t.Fatalf("reseal: %+v %v", counts, err)
	}
	if tok, err := isl.OpenPendingToken(7, sealed(pending)); err != nil || tok != "the-new-admin-token" {
		t.Fatalf("after the reseal, with the new key alone: %q %v", tok, err)
	}
	if sealed(executed) != closedBefore {
		t.Error("the token of an executed request was resealed")
	}
	// The rest of the parameters is untouched.
	var name string
	if err := pool.QueryRow(ctx, `SELECT params->>'name' FROM approval_requests WHERE id = $1`, pending).Scan(&name); err != nil || name != "island" {
		t.Errorf("params name %q %v", name, err)
	}
	var details string
	if err := pool.QueryRow(ctx, `SELECT details::text FROM audit_entries WHERE action = 'seal.reseal'`).Scan(&details); err != nil ||
		!strings.Contains(details, `"approval_requests.params.change.admin_token_sealed":1`) || strings.Contains(details, "the-new-admin-token") {
		t.Errorf("audit entry %q (%v)", details, err)
	}
	// `archipelago admin reseal` includes them.
	found := false
	for _, f := range reseal.Fields() {
		found = found || f.Name() == "approval_requests.params.change.admin_token_sealed"
	}
	if !found {
		t.Error("reseal.Fields does not list the tokens of approval requests")
	}
}
