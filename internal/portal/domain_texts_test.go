package portal_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
	"github.com/chatons/archipelago/internal/verify"
)

// The domains store some sentences in English when they happen (a restore test's reason,
// an approval request's effect) and explain refused input in English: a French page says
// them in French (i18n.Printer.Retell, problem.Localize), restic's own words excepted.
func TestDomainTextsInTheReadersLanguage(t *testing.T) {
	s := newPortalTest(t)
	page := func(what, path string, fr, en []string) {
		t.Helper()
		body := getIn(s.env, s.f.AdminA, path, "fr")
		for _, w := range fr {
			if !strings.Contains(body, w) {
				t.Errorf("%s in French: %q missing", what, w)
			}
		}
		for _, w := range en {
			if strings.Contains(body, w) {
				t.Errorf("%s in French still says %q", what, w)
			}
		}
	}

	// A failed restore test, its reason written by the verifier.
	w := newRestoreWorld(t, s.env, s.f.MemberA.ID)
	repo := w.repo(t, s.f.MemberA.ID, "mail-server", "pw-"+t.Name())
	snap := time.Now().Add(-3 * time.Hour)
	reason := "restic check (data subset 1/5) found damaged data: broken pack 5f3ae1c2; the files whose data is in it cannot be restored — " +
		"run `restic repair packs` and make a new backup; restore a sample of snapshot 1a2b3c4d: the repository is damaged: Fatal: pack 5f3ae1c2 is damaged"
	run := finishedRun(t, s.env, repo, w.islandID, verify.StatusFailed, reason, time.Now().Add(-time.Hour), &snap, 60)
	french := []string{"restic check (sous-ensemble de données 1/5) a trouvé des données endommagées", "pack cassé 5f3ae1c2",
		"restaurer un échantillon de l’instantané 1a2b3c4d\u202f: le dépôt est endommagé\u202f: Fatal: pack 5f3ae1c2 is damaged"}
	english := []string{"found damaged data", "cannot be restored", "restore a sample of", "the repository is damaged"}
	page("the run's page", "/restore-tests/runs/"+strconv.FormatInt(run, 10), french, english)
	page("the repository's page", "/restore-tests/repositories/"+strconv.FormatInt(repo.ID, 10), french[:1], english[:1])
	page("the dashboard", "/", french[:1], english[:1])

	// A pending approval: withdrawing the island's only pledge is protected.
	north := vaultstest.StartIsland(t, s.env.App.Pool, s.env.App.Keyring, "north", 1, s.f.MemberA.ID)
	vaultstest.Pledge(t, s.env.App.Pool, north, s.f.MemberA.ID, 300_000_000_000)
	var pledge int64
	if err := s.env.App.Pool.QueryRow(s.ctx, `SELECT id FROM pledges WHERE island_id = $1`, north.ID).Scan(&pledge); err != nil {
		t.Fatal(err)
	}
	on := true
	if _, err := s.env.App.Approvals.SettingsApply(s.ctx, approvals.SettingsInput{ProtectPledgeWithdrawal: &on}); err != nil {
		t.Fatal(err)
	}
	loc := fedRedirect(t, "withdraw", s.post(s.f.AdminA, "/pledges/"+strconv.FormatInt(pledge, 10)+"/withdraw", url.Values{}), "/approvals/")
	effect := []string{"Retirer l’engagement nº\u00a0" + strconv.FormatInt(pledge, 10), "300\u00a0Go", "sous son facteur de réplication 1"}
	page("the approval's page", strings.SplitN(loc, "?", 2)[0], effect, []string{"Withdraw pledge", "replication factor", "300.0 GB"})
	page("the approvals page", "/approvals", effect[:1], []string{"Withdraw pledge"})

	// A refused field: the domain's explanation in French.
	if r := s.post(s.f.FedAdmin, "/account/language", url.Values{"language": {"fr"}}); r.Status != 303 {
		t.Fatalf("set French: %d", r.Status)
	}
	r := s.post(s.f.FedAdmin, "/members", url.Values{"slug": {"Pas Bon!"}, "name": {"Pas bon"}})
	body := string(r.Body)
	if r.Status != 400 || !strings.Contains(body, "doit faire de 2 à 63 lettres minuscules, chiffres ou tirets") || strings.Contains(body, "lowercase letters") {
		t.Errorf("a refused slug in French: %d\n%s", r.Status, body)
	}
}
