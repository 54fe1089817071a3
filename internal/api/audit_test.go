package api_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/paging"
)

// recordFor appends an entry of member m (0: federation-level) directly, as a domain
// package would.
func recordFor(t *testing.T, env *apptest.Env, m int64, action string) {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	e := audit.Entry{Action: action, TargetType: "thing", TargetID: action, Details: map[string]any{"why": "test"}}
	if m != 0 {
		e.MemberID = &m
	}
	if err := pgx.BeginFunc(ctx, env.App.Pool, func(tx pgx.Tx) error { _, err := audit.Record(ctx, tx, e); return err }); err != nil {
		t.Fatal(err)
	}
}

type entriesPage struct {
	Entries    []audit.EntryView `json:"entries"`
	NextCursor *string           `json:"next_cursor"`
}

func TestAuditEntriesAreVisibleByScope(t *testing.T) {
	env, f := apptest.Parallel(t)
	recordFor(t, env, f.MemberA.ID, "vault.create")
	recordFor(t, env, f.MemberB.ID, "vault.create")
	recordFor(t, env, 0, "island.update")

	list := func(a *apptest.Actor, query string) entriesPage {
		t.Helper()
		r := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries?" + query, Token: a.Access})
		if r.Status != 200 {
			t.Fatalf("%s: list: %d %s", a.Name, r.Status, r.Body)
		}
		var p entriesPage
		r.Decode(t, &p)
		return p
	}
	for _, a := range []*apptest.Actor{f.ViewerA, f.AdminA, f.AdminB, f.FedAdmin} {
		for _, e := range list(a, "limit=500").Entries {
			if e.MemberID == nil || a == f.FedAdmin {
				continue
			}
			own := (*e.MemberID == f.MemberA.ID && a != f.AdminB) || (*e.MemberID == f.MemberB.ID && a == f.AdminB)
			if !own {
				t.Errorf("%s sees entry %d of member %d", a.Name, e.Seq, *e.MemberID)
			}
		}
	}
	// Viewer A sees A's private entry and the federation's, not B's.
	var sawA, sawB, sawFed bool
	for _, e := range list(f.ViewerA, "action=vault.*").Entries {
		sawA = sawA || *e.MemberID == f.MemberA.ID
		sawB = sawB || *e.MemberID == f.MemberB.ID
	}
	for _, e := range list(f.ViewerA, "member=federation&action=island.update").Entries {
		sawFed = sawFed || e.Action == "island.update"
	}
	if !sawA || sawB || !sawFed {
		t.Errorf("viewer A: own %v, B's %v, federation %v", sawA, sawB, sawFed)
	}
	if n := len(list(f.FedAdmin, "action=vault.create").Entries); n != 2 {
		t.Errorf("federation admin sees %d vault entries, want 2", n)
	}
	// B's entry by id: not found for A, shown to B with a leaf that checks.
	bEntries := list(f.AdminB, fmt.Sprintf("member=%d", f.MemberB.ID)).Entries
	if len(bEntries) == 0 {
		t.Fatal("admin B sees no entry of B")
	}
	path := fmt.Sprintf("/v1/audit/entries/%d", bEntries[0].Seq)
	if r := env.Do(apptest.Req{Method: "GET", Path: path, Token: f.AdminA.Access}); r.Status != 404 {
		t.Errorf("A reads B's entry: %d", r.Status)
	}
	r := env.Do(apptest.Req{Method: "GET", Path: path, Token: f.AdminB.Access})
	var e audit.EntryView
	r.Decode(t, &e)
	if _, err := audit.CheckView(e); r.Status != 200 || err != nil {
		t.Errorf("B reads its entry: %d %v", r.Status, err)
	}
	// Listing needs authentication; bad filters name the parameter.
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries"}); r.Status != 401 {
		t.Errorf("anonymous list: %d", r.Status)
	}
	for q, field := range map[string]string{"since=yesterday": "since", "limit=0": "limit", "limit=501": "limit",
		"actor_kind=robot": "actor_kind", "before=5": "before", "cursor=nonsense": "cursor",
		"cursor=" + paging.Encode("a", "b"): "cursor"} {
		r := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries?" + q, Token: f.FedAdmin.Access})
		if r.Status != 400 || r.ErrorField() != field {
			t.Errorf("%s: %d %q", q, r.Status, r.ErrorField())
		}
	}
	// ?member= is a member's id or slug, like on every list: one that does not exist is 404 naming member.
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries?member=x", Token: f.FedAdmin.Access}); r.Status != 404 || r.ErrorField() != "member" {
		t.Errorf("member=x: %d %q, want 404 naming member", r.Status, r.ErrorField())
	}
	// Pages follow each other without overlap.
	seen := map[int64]bool{}
	q := "limit=2"
	for {
		p := list(f.FedAdmin, q)
		for _, e := range p.Entries {
			if seen[e.Seq] {
				t.Fatalf("entry %d on two pages", e.Seq)
			}
			seen[e.Seq] = true
		}
		if p.NextCursor == nil {
			break
		}
		q = "limit=2&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	var total int
	env.App.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_entries`).Scan(&total)
	if len(seen) != total {
		t.Errorf("paged through %d of %d entries", len(seen), total)
	}
}

func TestAuditCheckpointAndProofsAreVerifiableByAnyone(t *testing.T) {
	env, f := apptest.Parallel(t)
	recordFor(t, env, f.MemberA.ID, "vault.create")

	key := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/key"})
	v, err := note.NewVerifier(strings.TrimSpace(string(key.Body)))
	if err != nil {
		t.Fatalf("key %q: %v", key.Body, err)
	}
	first := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/checkpoint"})
	c1, err := audit.OpenCheckpoint(first.Body, v)
	if first.Status != 200 || err != nil {
		t.Fatalf("checkpoint: %d %v\n%s", first.Status, err, first.Body)
	}
	recordFor(t, env, 0, "island.create")
	recordFor(t, env, f.MemberB.ID, "vault.create")
	second := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/checkpoint"})
	c2, err := audit.OpenCheckpoint(second.Body, v)
	if err != nil || c2.Size != c1.Size+2 {
		t.Fatalf("second checkpoint: %+v %v", c2, err)
	}
	var cons audit.ConsistencyView
	env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/audit/consistency?from=%d&to=%d", c1.Size, c2.Size)}).Decode(t, &cons)
	if err := tlog.CheckTree(cons.Proof, c2.Size, c2.Root, c1.Size, c1.Root); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	// Every entry A's viewer can see checks against the checkpoint, through public proofs.
	r := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries?limit=500", Token: f.ViewerA.Access})
	var page entriesPage
	r.Decode(t, &page)
	for _, e := range page.Entries {
		h, err := audit.CheckView(e)
		if err != nil {
			t.Fatalf("entry %d: %v", e.Seq, err)
		}
		var p audit.ProofView
		pr := env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/audit/entries/%d/proof?tree_size=%d", e.Seq, c2.Size)})
		pr.Decode(t, &p)
		if err := tlog.CheckRecord(p.Proof, c2.Size, c2.Root, e.Seq, h); err != nil {
			t.Fatalf("entry %d: %v", e.Seq, err)
		}
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/v1/audit/consistency?from=1", 400},
		{fmt.Sprintf("/v1/audit/consistency?from=1&to=%d", c2.Size+5), 400},
		{fmt.Sprintf("/v1/audit/entries/%d/proof?tree_size=%d", c2.Size, c2.Size), 400},
		{"/v1/audit/entries/99999/proof", 404},
		{"/v1/audit/entries/x/proof", 404},
	} {
		if r := env.Do(apptest.Req{Method: "GET", Path: c.path}); r.Status != c.status {
			t.Errorf("%s: %d, want %d (%s)", c.path, r.Status, c.status, r.Body)
		}
	}
}

func TestAMutationWhoseAuditEntryCannotBeWrittenIsRefused(t *testing.T) {
	env, f := apptest.Parallel(t)
	var before int
	env.App.Pool.QueryRow(t.Context(), `SELECT count(*) FROM api_tokens`).Scan(&before)
	// The audit table becomes unwritable (as if its tablespace were full).
	if _, err := env.App.Pool.Exec(t.Context(), `
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse();`); err != nil {
		t.Fatal(err)
	}
	r := env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: f.AdminA.Access,
		Body: map[string]any{"name": "unaudited", "member": "member-a", "role": "viewer"}, NoValidate: true})
	if r.Status != 500 {
		t.Fatalf("create without audit: %d %s", r.Status, r.Body)
	}
	var after int
	env.App.Pool.QueryRow(t.Context(), `SELECT count(*) FROM api_tokens`).Scan(&after)
	if after != before {
		t.Fatalf("%d tokens before, %d after a refused change", before, after)
	}
}
