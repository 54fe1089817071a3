package paging_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
)

// TestSmallListsArePagedInSQL walks the lists that were read whole and cut in the handler
// (an island's operators, a vault's keys, a repository's agent keys) with limits that divide
// their length and limits that do not: every item once, in the list's order, pages full but
// the last. A cursor of another list is refused.
func TestSmallListsArePagedInSQL(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 12, VaultsPerMember: 1, Days: 1}); err != nil {
		t.Fatal(err)
	}
	var island, vault, repo int64
	if err := pool.QueryRow(ctx, `SELECT min(island_id) FROM island_operators`).Scan(&island); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT min(id), (SELECT min(id) FROM restic_repositories) FROM vaults`).Scan(&vault, &repo); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO vault_keys (vault_id, name, access_key_id)
		SELECT $1::bigint, 'key ' || g, 'GK' || $1::bigint || '-' || g FROM generate_series(1, 7) g`, vault); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO agent_keys (repository_id, name, public_key, key_id)
		SELECT $1, 'agent ' || g, sha256(g::text::bytea), encode(sha256(('k' || g)::bytea), 'hex') FROM generate_series(1, 5) g`, repo); err != nil {
		t.Fatal(err)
	}
	// Another vault's and repository's keys are not listed.
	if _, err := pool.Exec(ctx, `INSERT INTO vault_keys (vault_id, name, access_key_id) SELECT $1::bigint + 1, 'other', 'GKother'`, vault); err != nil {
		t.Fatal(err)
	}
	vs := vaults.New(pool, nil, nil, testenv.Logger(t), vaults.Config{})
	at := attest.New(pool, testenv.Logger(t), attest.Config{})
	id := func(n int64) string { return fmt.Sprint(n) }
	for _, limit := range []int{1, 2, 3, 4, 5, 7, 500} {
		ops := walk(t, "operators", limit, 4, func(o islands.Operator) string { return o.MemberSlug },
			func(ctx context.Context, r paging.Request) (paging.Page[islands.Operator], error) {
				return islands.OperatorPage(ctx, pool, island, r)
			})
		if !slices.IsSortedFunc(ops, func(a, b islands.Operator) int { return compare(a.MemberSlug, b.MemberSlug) }) || ops[0].IslandID != island {
			t.Fatalf("operators not by slug, or of another island: %+v", ops)
		}
		keys := walk(t, "vault keys", limit, 7, func(k vaults.Key) string { return id(k.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[vaults.Key], error) {
				return vs.KeyPage(ctx, vault, r)
			})
		if !slices.IsSortedFunc(keys, func(a, b vaults.Key) int { return int(b.ID - a.ID) }) {
			t.Fatalf("vault keys not newest first: %+v", keys)
		}
		agents := walk(t, "agent keys", limit, 5, func(k attest.Key) string { return id(k.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[attest.Key], error) {
				return at.KeyPage(ctx, repo, r)
			})
		if !slices.IsSortedFunc(agents, func(a, b attest.Key) int { return int(b.ID - a.ID) }) {
			t.Fatalf("agent keys not newest first: %+v", agents)
		}
	}
	p, err := vs.KeyPage(ctx, vault, paging.Request{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := islands.OperatorPage(ctx, pool, island, paging.Request{Cursor: p.Next}); err == nil {
		t.Fatal("a vault keys cursor was accepted by the operators list")
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestApprovalPagesSayWhatCanSeeAndMayVoteSay: the API's approval requests are chosen and
// paged in SQL; for people with every kind of role (federation admin, admins, a viewer, the
// requester), with and without a restricted list of approver organisations, the pages hold
// exactly the requests CanSee lets them read, with mine=to_approve (MineToApprove) exactly
// those MayVote says they may still vote on, and with MineOthers (the portal's "other open
// requests") exactly the rest, newest first.
func TestApprovalPagesSayWhatCanSeeAndMayVoteSay(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 6, VaultsPerMember: 1, Days: 1}); err != nil {
		t.Fatal(err)
	}
	var m []int64 // the six members
	if err := pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM members`).Scan(&m); err != nil {
		t.Fatal(err)
	}
	// People: u[0] admin of m0; u[1] admin of m1; u[2] admin of m2 and viewer of m3; u[3]
	// viewer of m4; u[4] admin of m5, disabled; u[5] admin of m5.
	type membership struct {
		member int
		role   identity.Role
	}
	people := [][]membership{{{0, identity.RoleAdmin}}, {{1, identity.RoleAdmin}}, {{2, identity.RoleAdmin}, {3, identity.RoleViewer}},
		{{4, identity.RoleViewer}}, {{5, identity.RoleAdmin}}, {{5, identity.RoleAdmin}}}
	u := make([]int64, len(people))
	principals := []*identity.Principal{{UserID: 0, FederationAdmin: true}}
	for i, ms := range people {
		status := "active"
		if i == 4 {
			status = "disabled"
		}
		if err := pool.QueryRow(ctx, `INSERT INTO users (email, password_hash, status) VALUES ($1, 'x', $2) RETURNING id`,
			fmt.Sprintf("u%d@approvals.example", i), status).Scan(&u[i]); err != nil {
			t.Fatal(err)
		}
		p := &identity.Principal{UserID: u[i]}
		for _, x := range ms {
			if _, err := pool.Exec(ctx, `INSERT INTO memberships (user_id, member_id, role) VALUES ($1, $2, $3)`, u[i], m[x.member], x.role); err != nil {
				t.Fatal(err)
			}
			p.Members = append(p.Members, identity.MemberRef{ID: m[x.member], Role: x.role})
		}
		principals = append(principals, p)
	}
	principals[0].UserID = u[0] // the federation admin is u[0] too
	// Requests: every combination of requester, affected member, status and expiry that
	// matters, and votes by some organisations.
	type request struct {
		by, affected int // affected -1: none
		requesters   []int
		status       string
		expired      bool
		votes        [][2]int // member, person
	}
	reqs := []request{
		{by: 0, affected: 1, requesters: []int{0}, status: "pending"},
		{by: 0, affected: 1, requesters: []int{0}, status: "pending", votes: [][2]int{{2, 2}}},
		{by: 1, affected: 2, requesters: []int{1}, status: "pending"},
		{by: 1, affected: -1, requesters: []int{1}, status: "pending", expired: true},
		{by: 2, affected: 4, requesters: []int{2, 3}, status: "pending"},
		{by: 3, affected: 3, status: "pending", votes: [][2]int{{5, 5}}},
		{by: 0, affected: 1, requesters: []int{0}, status: "approved"},
		{by: 1, affected: 0, requesters: []int{1}, status: "rejected"},
		{by: 5, affected: -1, requesters: []int{5}, status: "pending"},
		{by: 0, affected: 5, requesters: []int{0}, status: "pending", votes: [][2]int{{1, 1}}},
		{by: 3, affected: 4, status: "cancelled"},
		{by: 2, affected: 0, requesters: []int{2, 3}, status: "pending"},
	}
	for i, r := range reqs {
		var affected *int64
		if r.affected >= 0 {
			affected = &m[r.affected]
		}
		var requesters []int64
		for _, x := range r.requesters {
			requesters = append(requesters, m[x])
		}
		expires := "now() + interval '2 days'"
		if r.expired {
			expires = "now() - interval '1 hour'"
		}
		var rid int64
		if err := pool.QueryRow(ctx, `INSERT INTO approval_requests (action, target_type, target_id, affected_member_id, effect,
				requested_by, requester_member_ids, authority, required_approvals, status, created_at, approval_expires_at,
				execute_after, execute_before)
			VALUES ('vault.delete', 'vault', $1, $2, 'test', $3, $4, 'federation_admin', 2, $5, now(), `+expires+`,
				CASE WHEN $5 = 'approved' THEN now() END, CASE WHEN $5 = 'approved' THEN now() + interval '1 day' END) RETURNING id`,
			fmt.Sprint(i), affected, u[r.by], append([]int64{}, requesters...), r.status).Scan(&rid); err != nil {
			t.Fatal(err)
		}
		for _, v := range r.votes {
			if _, err := pool.Exec(ctx, `INSERT INTO approval_votes (request_id, member_id, user_id, decision, at)
				VALUES ($1, $2, $3, 'approve', now())`, rid, m[v[0]], u[v[1]]); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc := approvals.New(pool, testenv.Logger(t), approvals.Config{})
	var ids []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id DESC) FROM approval_requests`).Scan(&ids); err != nil || len(ids) != len(reqs) {
		t.Fatalf("%d requests (%v)", len(ids), err)
	}
	var all []approvals.Request // every request, newest first, read one by one (not by the list under test)
	for _, id := range ids {
		r, err := svc.RequestGetByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	check := func(t *testing.T, setting string) {
		seen, voters := 0, 0 // the test's own check: the cases are not all empty or all full
		defer func() {
			if seen == 0 || voters == 0 || voters == seen {
				t.Errorf("%s: %d requests seen, %d to approve, over every person: the cases prove nothing", setting, seen, voters)
			}
		}()
		for pi, p := range principals {
			for _, mine := range []approvals.Mine{approvals.MineAll, approvals.MineToApprove, approvals.MineOthers} {
				for _, f := range []approvals.RequestFilter{{Mine: mine}, {Open: true, Mine: mine}, {Closed: true, Mine: mine}} {
					var want []int64
					for _, r := range all {
						if !approvals.CanSee(p, r) || f.Open && !r.Open() || f.Closed && r.Open() {
							continue
						}
						if mine != approvals.MineAll {
							may, err := svc.MayVote(ctx, p, r)
							if err != nil {
								t.Fatal(err)
							}
							if may != (mine == approvals.MineToApprove) {
								continue
							}
						}
						want = append(want, r.ID)
					}
					switch f {
					case approvals.RequestFilter{}:
						seen += len(want)
					case approvals.RequestFilter{Mine: approvals.MineToApprove}:
						voters += len(want)
					}
					for _, limit := range []int{1, 2, 5, 500} {
						var got []int64
						req := paging.Request{Limit: limit}
						for {
							pg, err := svc.RequestPage(ctx, p, f, req)
							if err != nil {
								t.Fatal(err)
							}
							if len(pg.Items) > limit || pg.Next != "" && len(pg.Items) != limit {
								t.Fatalf("limit %d: a page of %d, next %q", limit, len(pg.Items), pg.Next)
							}
							for _, r := range pg.Items {
								got = append(got, r.ID)
							}
							if pg.Next == "" {
								break
							}
							req.Cursor = pg.Next
						}
						if !slices.Equal(got, want) {
							t.Errorf("%s: person %d, filter %+v, limit %d: pages hold %v, CanSee/MayVote say %v",
								setting, pi, f, limit, got, want)
						}
					}
				}
			}
		}
	}
	check(t, "every organisation approves")
	if _, err := pool.Exec(ctx, `UPDATE approval_settings SET approver_member_ids = $1`, []int64{m[1], m[2], m[5]}); err != nil {
		t.Fatal(err)
	}
	check(t, "only three organisations approve")
	if got, err := svc.RequestPage(ctx, nil, approvals.RequestFilter{}, paging.Request{}); err != nil || len(got.Items) != 0 {
		t.Fatalf("no principal: %+v, %v", got, err)
	}
}

// TestChannelPagesWalkInTheListsOrder: channel pages are two index walks merged (the
// federation's channels, then the members' by slug); walked at every limit, with and without
// a member filter and the federation's channels, they hold what ChannelList says, in its
// order, the cursor crossing from the federation's channels to the members'.
func TestChannelPagesWalkInTheListsOrder(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 12, VaultsPerMember: 1, Days: 1, ChannelsPerMember: 2}); err != nil {
		t.Fatal(err)
	}
	var m []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY slug DESC) FROM members`).Scan(&m); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO notify_channels (member_id, kind, name, target)
		VALUES (NULL, 'email', 'b federation', 'b@x.example'), (NULL, 'email', 'a federation', 'a@x.example'),
			(NULL, 'email', 'c federation', 'c@x.example'), ($1, 'email', 'a first', 'f@x.example'), ($1, 'email', 'zz last', 'l@x.example')`,
		m[0]); err != nil {
		t.Fatal(err)
	}
	for _, f := range []notify.ChannelFilter{{All: true}, {MemberIDs: []int64{m[0], m[3], m[7]}, Federation: true},
		{MemberIDs: []int64{m[3], m[0]}}, {Federation: true}} {
		all, err := notify.ChannelList(ctx, pool, f)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]int64, len(all))
		for i, c := range all {
			want[i] = c.ID
		}
		for _, limit := range []int{1, 2, 3, 5, 500} {
			got := walk(t, "channels", limit, len(want), func(c notify.Channel) string { return fmt.Sprint(c.ID) },
				func(ctx context.Context, r paging.Request) (paging.Page[notify.Channel], error) {
					return notify.ChannelPage(ctx, pool, f, r)
				})
			ids := make([]int64, len(got))
			for i, c := range got {
				ids[i] = c.ID
			}
			if !slices.Equal(ids, want) {
				t.Errorf("filter %+v, limit %d: pages hold %v, the list %v", f, limit, ids, want)
			}
		}
	}
}

// TestChannelPageReadsItsRows: a page of channels reads about its own rows from the channels
// and members, as PostgreSQL counts them, not every channel of the federation (it joined and
// sorted all of them for each page).
func TestChannelPageReadsItsRows(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 300, VaultsPerMember: 1, Days: 1, ChannelsPerMember: 2}); err != nil {
		t.Fatal(err)
	}
	req := paging.Request{Limit: 10}
	for page := range 3 {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		count := func() int64 {
			var n int64
			if err := tx.QueryRow(ctx, `SELECT sum(pg_stat_get_xact_tuples_returned(c.oid) + pg_stat_get_xact_tuples_fetched(c.oid))::bigint
				FROM pg_class c WHERE c.relname IN ('members', 'notify_channels')`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		pg, err := notify.ChannelPage(ctx, tx, notify.ChannelFilter{All: true}, req)
		if err != nil {
			t.Fatal(err)
		}
		n := count() - before
		_ = tx.Rollback(ctx)
		if len(pg.Items) != 10 || pg.Next == "" {
			t.Fatalf("page %d: %d channels, next %q", page, len(pg.Items), pg.Next)
		}
		// 11 channels and their members, through indexes: never the federation's 600.
		if n > 100 {
			t.Fatalf("page %d: %d rows read for a page of 10 channels (of 600)", page, n)
		}
		req.Cursor = pg.Next
	}
}
