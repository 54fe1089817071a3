package paging_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// walk reads every page of a list with the given limit and checks the pages: each full but
// the last, none empty (unless the list is), no item twice, the expected total.
func walk[T any](t *testing.T, name string, limit, want int, key func(T) string,
	list func(context.Context, paging.Request) (paging.Page[T], error)) []T {
	t.Helper()
	var all []T
	seen := map[string]bool{}
	req := paging.Request{Limit: limit}
	for pages := 1; ; pages++ {
		p, err := list(t.Context(), req)
		if err != nil {
			t.Fatalf("%s limit %d page %d: %v", name, limit, pages, err)
		}
		if len(p.Items) > limit || (len(p.Items) == 0 && want > 0) || (p.Next != "" && len(p.Items) != limit) {
			t.Fatalf("%s limit %d page %d: %d items, next %q", name, limit, pages, len(p.Items), p.Next)
		}
		for _, it := range p.Items {
			if k := key(it); seen[k] {
				t.Fatalf("%s limit %d: %s twice", name, limit, k)
			} else {
				seen[k] = true
			}
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			if len(all) != want {
				t.Fatalf("%s limit %d: %d items in %d pages, want %d", name, limit, len(all), pages, want)
			}
			return all
		}
		req.Cursor = p.Next
	}
}

// TestEveryDomainListPagesCompletely walks every paged list of the domain packages over a
// seeded federation, with limits that divide the totals exactly and limits that do not.
func TestEveryDomainListPagesCompletely(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	size := scaleseed.Size{Members: 12, VaultsPerMember: 2, Days: 2, ChannelsPerMember: 2, ReportsPerMember: 2}
	if err := scaleseed.Seed(ctx, pool, size); err != nil {
		t.Fatal(err)
	}
	var first int64
	if err := pool.QueryRow(ctx, `SELECT min(id) FROM members`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	// Seven people in the first member (two admins), each with an API token.
	if _, err := pool.Exec(ctx, `WITH u AS (INSERT INTO users (email, password_hash)
			SELECT 'p' || g || '@people.example', 'x' FROM generate_series(1, 7) g RETURNING id, email)
		INSERT INTO memberships (user_id, member_id, role)
			SELECT id, $1, CASE WHEN email IN ('p3@people.example', 'p6@people.example') THEN 'admin' ELSE 'viewer' END FROM u`, first); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO api_tokens (prefix, secret_hash, name, user_id, member_id, role)
		SELECT 'tok' || lpad(user_id::text, 5, '0'), '\x00', 'token', user_id, member_id, role FROM memberships`); err != nil {
		t.Fatal(err)
	}
	ids := identity.New(pool, testenv.Logger(t), identity.Config{JWTKey: make([]byte, 32)})
	vs := vaults.New(pool, nil, nil, testenv.Logger(t), vaults.Config{})
	fed := &identity.Principal{FederationAdmin: true}
	id := func(n int64) string { return fmt.Sprint(n) }

	for _, limit := range []int{1, 4, 5, 12, 24, 500} {
		walk(t, "members", limit, 12, func(m islands.Member) string { return id(m.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[islands.Member], error) {
				return islands.MemberPage(ctx, pool, islands.MemberFilter{}, r)
			})
		walk(t, "islands", limit, size.Islands(), func(i islands.Island) string { return id(i.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[islands.Island], error) {
				return islands.IslandPage(ctx, pool, islands.IslandFilter{}, r)
			})
		walk(t, "pledges", limit, 12, func(p islands.Pledge) string { return id(p.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[islands.Pledge], error) {
				return islands.PledgePage(ctx, pool, islands.PledgeFilter{Live: true}, r)
			})
		walk(t, "vaults", limit, 24, func(v vaults.Vault) string { return id(v.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[vaults.Vault], error) {
				return vs.VaultPage(ctx, vaults.VaultFilter{All: true}, r)
			})
		walk(t, "repositories", limit, 24, func(r verify.Repository) string { return id(r.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[verify.Repository], error) {
				return verify.RepositoryPage(ctx, pool, verify.RepositoryFilter{}, r)
			})
		walk(t, "runs", limit, 48, func(r verify.Run) string { return id(r.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[verify.Run], error) {
				return verify.RunPage(ctx, pool, verify.RunFilter{}, r)
			})
		walk(t, "channels", limit, 24, func(c notify.Channel) string { return id(c.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[notify.Channel], error) {
				return notify.ChannelPage(ctx, pool, notify.ChannelFilter{All: true}, r)
			})
		walk(t, "reports", limit, 24, func(s reports.Stored) string { return id(s.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[reports.Stored], error) {
				return reports.Page(ctx, pool, reports.Filter{All: true}, r)
			})
		walk(t, "tokens", limit, 7, func(k identity.APIToken) string { return id(k.ID) },
			func(ctx context.Context, r paging.Request) (paging.Page[identity.APIToken], error) {
				return ids.TokenPage(ctx, fed, r)
			})
		people := walk(t, "people", limit, 7, func(p identity.Person) string { return id(p.UserID) },
			func(ctx context.Context, r paging.Request) (paging.Page[identity.Person], error) {
				return ids.PersonPage(ctx, first, r)
			})
		if people[0].Email != "p3@people.example" || people[1].Email != "p6@people.example" || people[2].Email != "p1@people.example" {
			t.Fatalf("people not admins first, then by email: %v", people)
		}
	}
	// A member's own view is filtered before paging.
	own := walk(t, "member vaults", 1, 2, func(v vaults.Vault) string { return id(v.ID) },
		func(ctx context.Context, r paging.Request) (paging.Page[vaults.Vault], error) {
			return vs.VaultPage(ctx, vaults.VaultFilter{MemberIDs: []int64{first}}, r)
		})
	if own[0].MemberID != first {
		t.Fatalf("member filter: %+v", own[0])
	}
	// A cursor of another list, and a limit above the maximum, are refused.
	p, err := verify.RunPage(ctx, pool, verify.RunFilter{}, paging.Request{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vs.VaultPage(ctx, vaults.VaultFilter{All: true}, paging.Request{Cursor: p.Next}); err == nil {
		t.Fatal("a runs cursor was accepted by the vault list")
	}
	if _, err := islands.MemberPage(ctx, pool, islands.MemberFilter{}, paging.Request{Limit: paging.MaxLimit + 1}); err == nil {
		t.Fatal("a limit above the maximum was accepted")
	}
}
