package portal_test

import (
	"context"
	"net/url"
	"strconv"
	"testing"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

// TestPledgeWithdrawFormIsGated: with protect_pledge_withdrawal on, member A's admin
// withdrawing the island's only pledge (replication factor 1) lands on a new approval
// request and the pledge stays.
func TestPledgeWithdrawFormIsGated(t *testing.T) {
	env, f := apptest.Parallel(t)
	c := fedClient{t, env}
	ctx := audit.WithActor(context.Background(), audit.System("portal-test"))
	north := vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "north", 1, f.MemberA.ID)
	vaultstest.Pledge(t, env.App.Pool, north, f.MemberA.ID, 300_000_000_000)
	var id int64
	if err := env.App.Pool.QueryRow(ctx, `SELECT id FROM pledges WHERE island_id = $1`, north.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	on := true
	if _, err := env.App.Approvals.SettingsApply(ctx, approvals.SettingsInput{ProtectPledgeWithdrawal: &on}); err != nil {
		t.Fatal(err)
	}
	fedRedirect(t, "withdraw", c.post(f.AdminA, "/pledges/"+strconv.FormatInt(id, 10)+"/withdraw", url.Values{}), "/approvals/")
	pl, err := islands.PledgeGetByID(ctx, env.App.Pool, id)
	if err != nil {
		t.Fatal(err)
	}
	if pl.WithdrawnAt != nil {
		t.Fatal("the pledge was withdrawn although the action is protected")
	}
}
