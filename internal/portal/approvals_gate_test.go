package portal_test

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

// TestPledgeWithdrawFormIsGated: with protect_pledge_withdrawal on, member A's admin
// withdrawing the island's only pledge (replication factor 1) lands on a new approval
// request and the pledge stays.
func TestPledgeWithdrawFormIsGated(t *testing.T) {
	s := newPortalTest(t)
	north := vaultstest.StartIsland(t, s.env.App.Pool, s.env.App.Keyring, "north", 1, s.f.MemberA.ID)
	vaultstest.Pledge(t, s.env.App.Pool, north, s.f.MemberA.ID, 300_000_000_000)
	var id int64
	if err := s.env.App.Pool.QueryRow(s.ctx, `SELECT id FROM pledges WHERE island_id = $1`, north.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	on := true
	if _, err := s.env.App.Approvals.SettingsApply(s.ctx, approvals.SettingsInput{ProtectPledgeWithdrawal: &on}); err != nil {
		t.Fatal(err)
	}
	fedRedirect(t, "withdraw", s.post(s.f.AdminA, "/pledges/"+strconv.FormatInt(id, 10)+"/withdraw", url.Values{}), "/approvals/")
	pl, err := islands.PledgeGetByID(s.ctx, s.env.App.Pool, id)
	if err != nil {
		t.Fatal(err)
	}
	if pl.WithdrawnAt != nil {
		t.Fatal("the pledge was withdrawn although the action is protected")
	}
}
