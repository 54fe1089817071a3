package portal_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

// TestPortalVaultProtection: the vault page shows the protection state (copy island, last
// copy, freeze, lifecycle), turns red when the copy is behind schedule, and member admins
// freeze (only with the confirmation ticked) and ask to unfreeze; viewers see no forms.
func TestPortalVaultProtection(t *testing.T) {
	s := newPortalTest(t)
	s.islandsAB(1, 100_000_000_000)
	east := vaultstest.StartIsland(t, s.env.App.Pool, s.env.App.Keyring, "east", 1)
	v, _, err := s.env.App.Vaults.Create(s.ctx, vaults.CreateInput{MemberID: s.f.MemberA.ID, Name: testenv.Unique("prot-"), QuotaBytes: 1_000_000_000})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(6 * time.Minute); ; { // Garage may be slow on a loaded machine
		if v, err = s.env.App.Vaults.VaultGetByID(s.ctx, v.ID); err == nil && v.Status == vaults.StatusActive {
			if status, _ := s.env.App.Protection.EnsureCopy(s.ctx, v.ID); status == "active" {
				break
			}
		} else {
			_, _ = s.env.App.Vaults.ReconcileVault(s.ctx, v.ID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault %s / copy not provisioned in time", v.Status)
		}
		time.Sleep(time.Second) // polling, not an assertion
	}
	if _, err := s.env.App.Protection.CopyVault(s.ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	page := "/vaults/" + strconv.FormatInt(v.ID, 10)
	get := func(a *apptest.Actor) string {
		res := pageGet(s.env, a, page)
		if res.Status != 200 {
			t.Fatalf("GET %s: %d", page, res.Status)
		}
		return string(res.Body)
	}
	post := func(a *apptest.Actor, path string, form url.Values) *apptest.Response {
		return formPost(s.env, a, path, form)
	}

	body := get(s.f.ViewerA)
	if !strings.Contains(body, `id="protection"`) || !strings.Contains(body, "up to date") || !strings.Contains(body, east.Name) ||
		!strings.Contains(body, "not frozen") || strings.Contains(body, "alert-bad") {
		t.Fatalf("protection section for the viewer:\n%s", section(body))
	}
	if strings.Contains(body, `action="`+page+`/freeze"`) {
		t.Fatal("a viewer sees the freeze form")
	}
	if !strings.Contains(get(s.f.AdminA), `action="`+page+`/freeze"`) {
		t.Fatal("the member admin has no freeze form")
	}
	if res := post(s.f.AdminA, page+"/freeze", url.Values{"reason": {"laptop stolen"}}); res.Status != 400 ||
		!strings.Contains(string(res.Body), "Tick the confirmation box") {
		t.Fatalf("freeze without confirmation: %d", res.Status)
	}
	if res := post(s.f.ViewerA, page+"/freeze", url.Values{"confirm": {"yes"}}); res.Status != 403 {
		t.Fatalf("viewer freeze: %d", res.Status)
	}
	if res := post(s.f.AdminA, page+"/freeze", url.Values{"reason": {"laptop stolen"}, "confirm": {"yes"}}); res.Status != 303 {
		t.Fatalf("freeze: %d %s", res.Status, res.Body)
	}
	body = get(s.f.AdminA)
	if !strings.Contains(body, "frozen</span> since") || !strings.Contains(body, "laptop stolen") || !strings.Contains(body, `action="`+page+`/unfreeze"`) {
		t.Fatalf("after freezing:\n%s", section(body))
	}
	if res := post(s.f.AdminA, page+"/unfreeze", url.Values{"confirm": {"yes"}}); res.Status != 303 {
		t.Fatalf("unfreeze: %d", res.Status)
	}
	if body = get(s.f.AdminA); !strings.Contains(body, "unfreezes at") {
		t.Fatalf("after the unfreeze request:\n%s", section(body))
	}

	// The copy falls behind its schedule: the section turns red.
	if _, err := s.env.App.Pool.Exec(s.ctx, `UPDATE vault_protection SET copied_through = now() - interval '3 hours' WHERE vault_id = $1`, v.ID); err != nil {
		t.Fatal(err)
	}
	if body = get(s.f.ViewerA); !strings.Contains(body, "alert-bad") || !strings.Contains(body, "behind schedule") {
		t.Fatalf("a 3 h old copy on an hourly schedule is not shown behind:\n%s", section(body))
	}
}

func section(body string) string {
	i := strings.Index(body, `id="protection"`)
	if i < 0 {
		return body
	}
	return body[i:min(len(body), i+3000)]
}
