package portal

import (
	"fmt"
	"github.com/chatons/archipelago/internal/i18n"
	"net/http"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// Protected vaults on the vault page (docs/protection.md): the protection state is shown
// with the vault (renderVault loads it), and member admins freeze and unfreeze here. Both
// forms need a ticked confirmation box: the portal works without JavaScript.

// protectionState loads a vault's protection state for its page; nil (and logged) when
// it cannot be read, so the rest of the page still shows.
func (p *Portal) protectionState(r *http.Request, v vaults.Vault) *protection.State {
	if p.protection == nil {
		return nil
	}
	st, err := p.protection.State(r.Context(), v.ID)
	if err != nil {
		p.log.WarnContext(r.Context(), "vault page: protection state", "vault", v.ID, "err", err)
		return nil
	}
	return &st
}

func (p *Portal) protectionAction(w http.ResponseWriter, r *http.Request, done string,
	do func(v vaults.Vault) error) {
	v, ok := p.vaultFor(w, r, authz.MemberWrite)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		p.renderVault(w, r, http.StatusBadRequest, Page{Error: p.l(r).T("portal.common.tick_confirm")}, v, nil)
		return
	}
	if err := do(v); err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) { p.renderVault(w, r, status, Page{Error: msg}, v, nil) })
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/vaults/%d?done=%s", v.ID, done), http.StatusSeeOther)
}

// VaultFreeze handles the freeze form.
func (p *Portal) VaultFreeze(w http.ResponseWriter, r *http.Request) {
	p.protectionAction(w, r, "frozen", func(v vaults.Vault) error {
		_, err := p.protection.Freeze(r.Context(), v.ID, r.PostFormValue("reason"))
		return err
	})
}

// VaultUnfreeze handles the unfreeze form: the freeze ends after the federation's delay.
func (p *Portal) VaultUnfreeze(w http.ResponseWriter, r *http.Request) {
	p.protectionAction(w, r, "unfreeze", func(v vaults.Vault) error {
		_, err := p.protection.RequestUnfreeze(r.Context(), v.ID)
		return err
	})
}

// protectionViewData is what the vault page's protection section needs.
type protectionViewData struct {
	State    protection.State
	Vault    vaults.Vault
	CSRF     string
	CanWrite bool
	Clock    clock // the page's, for the moments of the section
}

// protectionView builds the protection section's data from the vault page.
func protectionView(page Page, st *protection.State) protectionViewData {
	d, _ := page.Data.(vaultData)
	return protectionViewData{State: *st, Vault: d.Vault, CSRF: page.CSRF, CanWrite: d.CanWrite, Clock: page.Clock}
}

// humanSeconds writes a number of seconds (int64, *int64 or time.Duration) as "3 h 5 min".
func humanSeconds(v any) string {
	var s int64
	switch x := v.(type) {
	case int64:
		s = x
	case *int64:
		if x == nil {
			return "—"
		}
		s = *x
	case time.Duration:
		s = int64(x / time.Second)
	}
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min", s/60)
	case s < 48*3600:
		return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%d days", s/86400)
}

// testedSide says in words which side of a vault a repository's restore tests read.
func testedSide(l *i18n.Printer, target string) string {
	if target == verify.TargetCopy {
		return l.T("portal.restore.policy.side_copy")
	}
	return l.T("portal.restore.policy.side_source")
}

// durationIn writes a duration made by humanSeconds, humanDuration or formatSeconds in l's
// language: French writes days « j » and « jours ».
func durationIn(l *i18n.Printer, s string) string {
	if l.Lang() != i18n.French {
		return s
	}
	return strings.NewReplacer(" days", " jours", " d", " j").Replace(s)
}
