package portal

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/quota"
	"github.com/chatons/archipelago/internal/vaults"
)

type quotaData struct {
	Members                                              memberPicker
	Member                                               string
	Report                                               vaults.QuotaReport
	Best, Pledged, Granted, Allocated, Ratio, Overcommit string
	Rows                                                 []quotaRow
	// The federation's settings (every signed-in user reads them) and the member's grants.
	Settings quotaSettingsView
	Grants   []grantRow
	// FedAdmin is true when the user may change settings and grants: only then are the
	// forms shown.
	FedAdmin     bool
	SettingsForm settingsForm
	GrantForm    grantForm
}

type quotaRow struct {
	Name, Status, MemberExpl, IslandExpl, UpTo string
	Operated, Placeable                        bool
}

// quotaSettingsView is the federation's settings in the units people use.
type quotaSettingsView struct {
	QuotaRatio, Overcommit, KeyGraceDays, VaultDeleteGraceDays string
	UpdatedAt                                                  time.Time
}

type grantRow struct {
	ID                        int64
	Amount, Reason, GrantedBy string
	CreatedAt                 time.Time
	ExpiresAt                 *time.Time
	State, StateClass         string // live, expired, revoked
	Live                      bool
	RevokedAt                 *time.Time
	MemberSlug                string
}

// settingsForm is the settings form as typed: ratios as decimals, grace periods in days.
type settingsForm struct {
	QuotaRatio, Overcommit, KeyGraceDays, VaultDeleteGraceDays string
}

// grantForm is the grant form as typed: an amount in GB or TB, an optional expiry date.
type grantForm struct {
	Member, Amount, Unit, Reason, Expires string
}

// byteUnits are the units the grant form offers (SI, as Garage counts capacity).
var byteUnits = map[string]float64{"GB": 1e9, "TB": 1e12}

// quotaFields names the domain's fields for messages, in the form's terms.
var quotaFields = map[string]string{
	"quota_ratio":                "portal.quota.field.quota_ratio",
	"overcommit":                 "portal.quota.field.overcommit",
	"key_grace_seconds":          "portal.quota.field.key_grace",
	"vault_delete_grace_seconds": "portal.quota.field.vault_delete_grace",
	"member":                     "portal.quota.field.member",
	"bytes":                      "portal.quota.field.amount",
	"reason":                     "portal.quota.field.reason",
	"expires_at":                 "portal.quota.field.expiry",
}

func days(d time.Duration) string {
	return strconv.FormatFloat(d.Hours()/24, 'f', -1, 64)
}

func settingsView(st vaults.Settings) quotaSettingsView {
	return quotaSettingsView{QuotaRatio: quota.Ratio(st.QuotaRatio), Overcommit: quota.Ratio(st.Overcommit),
		KeyGraceDays: days(st.KeyGrace), VaultDeleteGraceDays: days(st.VaultDeleteGrace), UpdatedAt: st.UpdatedAt}
}

// canManageQuota is the one decision for every quota form: federation admins only.
func canManageQuota(u *identity.Principal) bool {
	return authz.ManagesFederation(u)
}

// Quota is the "why is my quota X" page: the policy's arithmetic for one member, the
// federation's settings and the member's grants; federation admins also change them here.
func (p *Portal) Quota(w http.ResponseWriter, r *http.Request) {
	p.renderQuota(w, r, http.StatusOK, Page{Flash: quotaFlashes.in(r, p.l(r))}, r.URL.Query().Get("member"), nil, grantForm{})
}

// quotaFlashes are the messages shown after a form, by the done= of the redirect.
var quotaFlashes = flashes{
	"settings":  "portal.quota.flash.settings",
	"unchanged": "portal.quota.flash.unchanged",
	"granted":   "portal.quota.flash.granted",
	"revoked":   "portal.quota.flash.revoked",
}

// renderQuota shows the page for the member slug (the user's first member when empty).
// sf and gf are the forms as typed after a refusal (nil sf: the current settings).
func (p *Portal) renderQuota(w http.ResponseWriter, r *http.Request, status int, page Page, slug string, sf *settingsForm, gf grantForm) {
	ctx := r.Context()
	u := user(r)
	members := memberPicker{Options: u.Members}
	if authz.ManagesFederation(u) {
		var err error
		if members, err = p.adminMembers(r, u); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	if slug == "" && len(members.Options) > 0 {
		slug = members.Options[0].Slug
	}
	d := quotaData{Members: members, Member: slug, FedAdmin: canManageQuota(u)}
	if authz.Check(u, authz.FederationRead, authz.Federation) == nil {
		st, err := p.vaults.SettingsGet(ctx)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		d.Settings = settingsView(st)
	}
	if sf != nil {
		d.SettingsForm = *sf
	} else {
		d.SettingsForm = settingsForm{QuotaRatio: d.Settings.QuotaRatio, Overcommit: d.Settings.Overcommit,
			KeyGraceDays: d.Settings.KeyGraceDays, VaultDeleteGraceDays: d.Settings.VaultDeleteGraceDays}
	}
	d.GrantForm = gf
	if d.GrantForm.Unit == "" {
		d.GrantForm.Unit = "GB"
	}
	if d.GrantForm.Member == "" {
		d.GrantForm.Member = slug
	}
	page.Title, page.Nav = p.l(r).T("portal.quota.go.title"), "vaults"
	if slug != "" {
		m, err := islands.MemberGetBySlug(ctx, p.pool, slug)
		if err != nil || authz.Check(u, authz.MemberRead, authz.Member(m.ID)) != nil {
			p.NotFound(w, r)
			return
		}
		rep, err := p.vaults.Explain(ctx, m.ID)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		d.Report = rep
		lp := p.l(r)
		d.Best, d.Pledged, d.Granted, d.Allocated = sizer(lp)(rep.BestAvailableBytes), sizer(lp)(rep.PledgedBytes),
			sizer(lp)(rep.GrantedBytes), sizer(lp)(rep.AllocatedBytes)
		d.Ratio, d.Overcommit = ratioIn(lp, rep.QuotaRatio), ratioIn(lp, rep.Overcommit)
		for _, iq := range rep.Islands {
			// The formulas are stored in English by internal/quota; said in the page's language.
			d.Rows = append(d.Rows, quotaRow{Name: iq.IslandName, Status: iq.Status, MemberExpl: lp.Retell(iq.Decision.MemberExplanation),
				IslandExpl: lp.Retell(iq.Decision.IslandExplanation), Operated: iq.Operated, Placeable: iq.Placeable,
				UpTo: sizer(lp)(min(iq.Decision.MemberAvailableBytes, iq.Decision.IslandAvailableBytes))})
		}
		gs, err := p.vaults.GrantList(ctx, m.ID)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		now := time.Now()
		for _, g := range gs {
			d.Grants = append(d.Grants, newGrantRow(p.l(r), g, now))
		}
	}
	page.Data = d
	p.render(w, r, status, "quota", page)
}

func newGrantRow(lp *i18n.Printer, g vaults.Grant, now time.Time) grantRow {
	row := grantRow{ID: g.ID, Amount: sizer(lp)(g.Bytes), Reason: g.Reason, GrantedBy: g.GrantedBy, CreatedAt: g.CreatedAt,
		ExpiresAt: g.ExpiresAt, RevokedAt: g.RevokedAt, MemberSlug: g.MemberSlug, Live: g.Live(now)}
	switch {
	case g.RevokedAt != nil:
		row.State, row.StateClass = "revoked", "bad"
	case !row.Live:
		row.State, row.StateClass = "expired", "warn"
	default:
		row.State, row.StateClass = "live", "good"
	}
	return row
}

// quotaURL is the quota page of a member, with a flash marker.
func quotaURL(slug, done string) string {
	q := url.Values{"done": {done}}
	if slug != "" {
		q.Set("member", slug)
	}
	return "/quota?" + q.Encode()
}

// forbidQuota answers a quota form posted by someone who is not a federation admin.
func (p *Portal) forbidQuota(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusForbidden, "error", Page{Title: p.l(r).T("portal.common.not_allowed"),
		Error: p.l(r).T("portal.quota.go.forbidden")})
}

// quotaRefusal re-renders the page for a refused form (see refuse), naming the field in the
// form's terms; an unexpected error is answered as such.
func (p *Portal) quotaRefusal(w http.ResponseWriter, r *http.Request, err error, slug string, sf *settingsForm, gf grantForm) {
	err = inFormUnits(err, p.l(r).T("portal.quota.go.bytes_problem"), "bytes")
	p.refuse(w, r, err, quotaFields, func(status int, msg string) { p.renderQuota(w, r, status, Page{Error: msg}, slug, sf, gf) })
}

// QuotaSettingsUpdate handles the settings form (federation admins). Only the settings
// that differ from the current ones are changed, so the audit entry says what changed; an
// empty field is left as it is.
func (p *Portal) QuotaSettingsUpdate(w http.ResponseWriter, r *http.Request) {
	if !canManageQuota(user(r)) {
		p.forbidQuota(w, r)
		return
	}
	slug := r.PostFormValue("member")
	form := settingsForm{QuotaRatio: strings.TrimSpace(r.PostFormValue("quota_ratio")),
		Overcommit: strings.TrimSpace(r.PostFormValue("overcommit")), KeyGraceDays: strings.TrimSpace(r.PostFormValue("key_grace_days")),
		VaultDeleteGraceDays: strings.TrimSpace(r.PostFormValue("vault_delete_grace_days"))}
	cur, err := p.vaults.SettingsGet(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	in, changed, err := form.input(cur)
	if err == nil && changed {
		_, err = p.vaults.SettingsUpdate(r.Context(), in)
	}
	if err != nil {
		p.quotaRefusal(w, r, err, slug, &form, grantForm{})
		return
	}
	done := "settings"
	if !changed {
		done = "unchanged"
	}
	http.Redirect(w, r, quotaURL(slug, done), http.StatusSeeOther)
}

// input parses the form into the settings that differ from cur.
func (f settingsForm) input(cur vaults.Settings) (vaults.SettingsInput, bool, error) {
	var in vaults.SettingsInput
	changed := false
	ratio := func(s, label string, now float64, dst **float64) error {
		if s == "" {
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return &keyError{Key: "portal.quota.go.bad_ratio", Field: label}
		}
		if v != now {
			*dst, changed = &v, true
		}
		return nil
	}
	grace := func(s, label string, now time.Duration, dst **time.Duration) error {
		if s == "" {
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 1e6 {
			return &keyError{Key: "portal.quota.go.bad_days", Field: label}
		}
		d := time.Duration(math.Round(v*24*3600)) * time.Second
		if d != now {
			*dst, changed = &d, true
		}
		return nil
	}
	for _, err := range []error{
		ratio(f.QuotaRatio, "portal.quota.field.quota_ratio", cur.QuotaRatio, &in.QuotaRatio),
		ratio(f.Overcommit, "portal.quota.field.overcommit", cur.Overcommit, &in.Overcommit),
		grace(f.KeyGraceDays, "portal.quota.field.key_grace", cur.KeyGrace, &in.KeyGrace),
		grace(f.VaultDeleteGraceDays, "portal.quota.field.vault_delete_grace", cur.VaultDeleteGrace, &in.VaultDeleteGrace),
	} {
		if err != nil {
			return in, false, err
		}
	}
	return in, changed, nil
}

// parseAmount reads an amount typed in the form's units ("500" and "GB", "1.5" and "TB")
// as bytes.
func parseAmount(amount, unit string) (int64, error) {
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, &keyError{Key: "portal.quota.go.bad_unit"}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(amount), 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v*mult > 1e18 {
		return 0, &keyError{Key: "portal.quota.go.bad_amount", Unit: unit}
	}
	return int64(math.Round(v * mult)), nil
}

// parseExpiry reads the optional expiry date (YYYY-MM-DD): the grant ends at 00:00 UTC
// on that day.
func parseExpiry(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return nil, &keyError{Key: "portal.quota.go.bad_expiry"}
	}
	return &t, nil
}

// QuotaGrantCreate handles the grant form (federation admins; the domain audits it with
// its reason).
func (p *Portal) QuotaGrantCreate(w http.ResponseWriter, r *http.Request) {
	if !canManageQuota(user(r)) {
		p.forbidQuota(w, r)
		return
	}
	form := grantForm{Member: r.PostFormValue("member"), Amount: strings.TrimSpace(r.PostFormValue("amount")),
		Unit: r.PostFormValue("unit"), Reason: strings.TrimSpace(r.PostFormValue("reason")),
		Expires: strings.TrimSpace(r.PostFormValue("expires"))}
	m, err := islands.MemberGetBySlug(r.Context(), p.pool, form.Member)
	if err != nil {
		form.Member = ""
		p.quotaRefusal(w, r, &keyError{Key: "portal.quota.go.bad_member"}, "", nil, form)
		return
	}
	in := vaults.GrantInput{MemberID: m.ID, Reason: form.Reason}
	in.Bytes, err = parseAmount(form.Amount, form.Unit)
	if err == nil {
		in.ExpiresAt, err = parseExpiry(form.Expires)
	}
	if err == nil {
		_, err = p.vaults.GrantCreate(r.Context(), in)
	}
	if err != nil {
		p.quotaRefusal(w, r, err, m.Slug, nil, form)
		return
	}
	http.Redirect(w, r, quotaURL(m.Slug, "granted"), http.StatusSeeOther)
}

// QuotaGrantRevoke handles a grant's revoke button: a grant of a member the user cannot
// see is not found (404); one it sees but may not revoke is refused (403). Revoking twice
// is harmless.
func (p *Portal) QuotaGrantRevoke(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		p.NotFound(w, r)
		return
	}
	g, err := p.vaults.GrantGetByID(r.Context(), id)
	if errors.Is(err, vaults.ErrNotFound) || (err == nil && !authz.CanSee(u, g.MemberID)) {
		p.NotFound(w, r)
		return
	} else if err != nil {
		p.fail(w, r, err)
		return
	}
	if !canManageQuota(u) {
		p.forbidQuota(w, r)
		return
	}
	if !p.confirmed(w, r, confirmAsk{Kind: "grant-revoke", Name: p.l(r).T("portal.quota.go.grant_name", "Size", sizer(p.l(r))(g.Bytes), "Member", g.MemberSlug), Back: "/quota"}) {
		return
	}
	if _, err := p.vaults.GrantRevoke(r.Context(), g.ID); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, quotaURL(g.MemberSlug, "revoked"), http.StatusSeeOther)
}

// ratioIn writes a ratio as quota.Ratio does ("1.0"), with lp's decimal mark (« 1,0 »).
func ratioIn(lp *i18n.Printer, f float64) string {
	s := quota.Ratio(f)
	if lp.Lang() == i18n.French {
		s = strings.ReplaceAll(s, ".", ",")
	}
	return s
}
