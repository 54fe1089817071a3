package portal

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/vaults"
)

// UsageBar is a server-rendered SVG usage bar (no inline style: the CSP forbids it).
type UsageBar struct {
	Fraction float64 // used ÷ quota, capped at 1 for drawing
	Width    string  // percentage of the bar, e.g. "42.0"
	Class    string  // good, warn, bad
	Label    string  // "42% of 10 GB used"
}

func usageBar(l *i18n.Printer, v vaults.Vault) UsageBar {
	f := v.UsedFraction()
	b := UsageBar{Fraction: f, Width: fmt.Sprintf("%.1f", math.Min(f, 1)*100), Class: "good"}
	switch vaults.UsageLevel(int64(f*1000), 1000) {
	case vaults.ThresholdCritical:
		b.Class = "bad"
	case vaults.ThresholdWarn:
		b.Class = "warn"
	}
	if v.UsageBytes == nil {
		b.Label = l.T("portal.vaults.go.bar_uncollected", "Quota", sizer(l)(v.QuotaBytes))
	} else {
		b.Label = l.T("portal.vaults.go.bar_used", "Percent", l.Percent(f), "Quota", sizer(l)(v.QuotaBytes), "Used", sizer(l)(*v.UsageBytes))
	}
	return b
}

type vaultRow struct {
	vaults.Vault
	Bar UsageBar
}

type vaultsData struct {
	Vaults    []vaultRow
	Members   memberPicker // members the user may create vaults for
	Islands   islandPicker
	FedAdmin  bool
	Form      vaultForm
	QuotaHint string
}

type vaultForm struct {
	// IslandName is the typed island (when the islands are too many for a select).
	Member, Name, QuotaGB, IslandID, IslandName, OverrideReason, IdempotencyKey string
}

// adminMembers are the members whose vaults u may change: every member for a federation
// admin (a typed slug field when they are many, everyMemberPicker), else u's own.
func (p *Portal) adminMembers(r *http.Request, u *identity.Principal) (memberPicker, error) {
	if authz.ManagesFederation(u) {
		return p.everyMemberPicker(r.Context())
	}
	var out memberPicker
	for _, m := range u.Members {
		if authz.Check(u, authz.MemberWrite, authz.Member(m.ID)) == nil {
			out.Options = append(out.Options, m)
		}
	}
	return out, nil
}

// Vaults lists the vaults the user may see, with their usage, and offers to create one.
func (p *Portal) Vaults(w http.ResponseWriter, r *http.Request) {
	p.renderVaults(w, r, http.StatusOK, Page{Flash: vaultFlashes.in(r, p.l(r))}, vaultForm{QuotaGB: "100", IdempotencyKey: newFormKey()})
}

func (p *Portal) renderVaults(w http.ResponseWriter, r *http.Request, status int, page Page, form vaultForm) {
	u := user(r)
	scope := authz.ReadScope(u)
	f := vaults.VaultFilter{All: scope.All, MemberIDs: scope.MemberIDs}
	vp, err := p.vaults.VaultPage(r.Context(), f, pageRequest(r))
	vs, ok := pageItems(p, w, r, &page, vp, err)
	if !ok {
		return
	}
	isl, err := p.everyIslandPicker(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	members, err := p.adminMembers(r, u)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := vaultsData{Members: members, Islands: isl, FedAdmin: authz.ManagesFederation(u), Form: form}
	for _, v := range vs {
		d.Vaults = append(d.Vaults, vaultRow{Vault: v, Bar: usageBar(p.l(r), v)})
	}
	if form.Member == "" && !members.Typed && len(members.Options) > 0 {
		d.Form.Member = members.Options[0].Slug
	}
	page.Title, page.Nav, page.Data = p.l(r).T("portal.vaults.go.title"), "vaults", d
	p.render(w, r, status, "vaults", page)
}

// newFormKey is the idempotency key a create form carries, so that a double submit
// creates one vault.
func newFormKey() string { return "form-" + strconv.FormatInt(time.Now().UnixNano(), 36) }

// VaultCreate handles the create form.
func (p *Portal) VaultCreate(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	form := vaultForm{Member: r.PostFormValue("member"), Name: strings.TrimSpace(r.PostFormValue("name")),
		QuotaGB: strings.TrimSpace(r.PostFormValue("quota_gb")), IslandID: r.PostFormValue("island_id"),
		IslandName:     strings.TrimSpace(r.PostFormValue("island")),
		OverrideReason: strings.TrimSpace(r.PostFormValue("override_reason")), IdempotencyKey: r.PostFormValue("idempotency_key")}
	bad := func(status int, msg string) { p.renderVaults(w, r, status, Page{Error: msg}, form) }
	l := p.l(r)
	m, err := islands.MemberGetBySlug(r.Context(), p.pool, strings.TrimSpace(form.Member))
	if err != nil || authz.Check(u, authz.MemberWrite, authz.Member(m.ID)) != nil {
		bad(http.StatusBadRequest, l.T("portal.vaults.go.choose_member"))
		return
	}
	gbs, err := strconv.ParseFloat(form.QuotaGB, 64)
	if err != nil || gbs <= 0 || gbs > 1e9 {
		bad(http.StatusBadRequest, l.T("portal.vaults.go.bad_quota"))
		return
	}
	in := vaults.CreateInput{MemberID: m.ID, Name: form.Name, QuotaBytes: int64(gbs * 1e9), IdempotencyKey: form.IdempotencyKey}
	if form.IslandID != "" && form.IslandID != "0" {
		if in.IslandID, err = strconv.ParseInt(form.IslandID, 10, 64); err != nil {
			bad(http.StatusBadRequest, l.T("portal.vaults.go.choose_island"))
			return
		}
	} else if form.IslandName != "" {
		isl, err := islands.IslandGetByName(r.Context(), p.pool, form.IslandName)
		if err != nil {
			bad(http.StatusBadRequest, l.T("portal.vaults.go.no_island", "Name", strconv.Quote(problem.Truncate(form.IslandName, 100))))
			return
		}
		in.IslandID = isl.ID
	}
	if form.OverrideReason != "" {
		if !authz.ManagesFederation(u) {
			bad(http.StatusForbidden, l.T("portal.vaults.go.override_refused"))
			return
		}
		in.OverrideReason = form.OverrideReason
	}
	v, _, err := p.vaults.Create(r.Context(), in)
	if err != nil {
		p.refuse(w, r, err, nil, bad)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/vaults/%d?done=created", v.ID), http.StatusSeeOther)
}

// vaultFlashes are the messages shown after a form, by the done= of the redirect.
var vaultFlashes = flashes{
	"created":    "portal.vaults.flash.created",
	"revoked":    "portal.vaults.flash.revoked",
	"deleted":    "portal.vaults.flash.deleted",
	"scheduled":  "portal.vaults.flash.scheduled",
	"restored":   "portal.vaults.flash.restored",
	"quota":      "portal.vaults.flash.quota",
	"reconciled": "portal.vaults.flash.reconciled",
	// Protected vaults (protection.go).
	"frozen":   "portal.vaults.flash.frozen",
	"unfreeze": "portal.vaults.flash.unfreeze",
}

type vaultData struct {
	Vault  vaults.Vault
	Bar    UsageBar
	Chart  UsageChart
	Keys   []vaults.Key
	Events []vaults.Event
	// EventCount is how many events the vault has (Events holds the newest 20);
	// SampleCount how many usage samples the chart's 30 days hold (it draws the newest 2,000).
	EventCount, SampleCount int64
	SamplesDrawn            int
	CanWrite                bool
	NewKey                  *vaults.NewKey
	QuotaForm               string
	// Protection is the vault's protection state (nil when it cannot be read).
	Protection *protection.State
}

// vaultFor loads the path's vault for act: another member's vault is not found (404),
// a vault the user may see but not change is refused (403). ok is false when an answer
// was written.
func (p *Portal) vaultFor(w http.ResponseWriter, r *http.Request, act authz.Action) (vaults.Vault, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		p.NotFound(w, r)
		return vaults.Vault{}, false
	}
	v, err := p.vaults.VaultGetByID(r.Context(), id)
	if !p.loaded(w, r, err, vaults.ErrNotFound) {
		return v, false
	}
	switch authz.Check(user(r), act, authz.Member(v.MemberID)) {
	case nil:
		return v, true
	case authz.ErrDenied:
		p.render(w, r, http.StatusForbidden, "error", Page{Title: p.l(r).T("portal.vaults.go.not_allowed"), Error: p.l(r).T("portal.vaults.go.role_refused")})
	default:
		p.NotFound(w, r)
	}
	return v, false
}

// Vault shows one vault: usage chart, keys, verifier key, drift and deletion.
func (p *Portal) Vault(w http.ResponseWriter, r *http.Request) {
	v, ok := p.vaultFor(w, r, authz.MemberRead)
	if !ok {
		return
	}
	var nk *vaults.NewKey
	if k, ok := takeOnce[vaults.NewKey](p, r, fmt.Sprintf("vault/%d/key", v.ID)); ok {
		nk = &k
		w.Header().Set("Cache-Control", "no-store")
	}
	p.renderVault(w, r, http.StatusOK, Page{Flash: vaultFlashes.in(r, p.l(r))}, v, nk)
}

func (p *Portal) renderVault(w http.ResponseWriter, r *http.Request, status int, page Page, v vaults.Vault, nk *vaults.NewKey) {
	ctx := r.Context()
	keys, err := p.vaults.KeyList(ctx, v.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := time.Now()
	hist, err := p.vaults.UsageHistory(ctx, v.ID, now.Add(-30*24*time.Hour), 2000)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	evs, err := p.vaults.Events(ctx, v.ID, 20)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	nSamples, nEvents, err := p.vaults.UsageCounts(ctx, v.ID, now.Add(-30*24*time.Hour))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	page.Title, page.Nav = p.l(r).T("portal.vaults.go.vault_title", "Name", v.Name), "vaults"
	page.Data = vaultData{Vault: v, Bar: usageBar(p.l(r), v), Chart: NewUsageChart(p.l(r), hist, v.QuotaBytes, now, p.viewerZone(r)), Keys: keys, Events: evs,
		EventCount: nEvents, SampleCount: nSamples, SamplesDrawn: len(hist),
		CanWrite: authz.Check(user(r), authz.MemberWrite, authz.Member(v.MemberID)) == nil, NewKey: nk,
		QuotaForm: strconv.FormatFloat(float64(v.QuotaBytes)/1e9, 'f', -1, 64), Protection: p.protectionState(r, v)}
	p.render(w, r, status, "vault", page)
}

// VaultKeyCreate handles the new key form: the secret and the restic snippet are kept for
// one display on the vault's page, where the answer redirects (once.go).
func (p *Portal) VaultKeyCreate(w http.ResponseWriter, r *http.Request) {
	v, ok := p.vaultFor(w, r, authz.MemberWrite)
	if !ok {
		return
	}
	in := vaults.KeyInput{Name: r.PostFormValue("name")}
	if d := strings.TrimSpace(r.PostFormValue("expires_days")); d != "" && d != "0" {
		days, err := strconv.Atoi(d)
		if err != nil || days < 1 || days > 3650 {
			p.renderVault(w, r, http.StatusBadRequest, Page{Error: p.l(r).T("portal.vaults.go.bad_expiry")}, v, nil)
			return
		}
		t := time.Now().Add(time.Duration(days) * 24 * time.Hour)
		in.ExpiresAt = &t
	}
	nk, err := p.vaults.KeyCreate(r.Context(), v.ID, in)
	p.keyAnswer(w, r, v, nk, err)
}

func (p *Portal) keyAnswer(w http.ResponseWriter, r *http.Request, v vaults.Vault, nk vaults.NewKey, err error) {
	if err != nil {
		p.vaultError(w, r, v, err)
		return
	}
	p.keepOnce(r, fmt.Sprintf("vault/%d/key", v.ID), nk)
	http.Redirect(w, r, fmt.Sprintf("/vaults/%d", v.ID), http.StatusSeeOther)
}

// keyToChange loads the path's vault for a change (vaultFor) and its {key_id}.
func (p *Portal) keyToChange(w http.ResponseWriter, r *http.Request) (vaults.Vault, vaults.Key, bool) {
	v, ok := p.vaultFor(w, r, authz.MemberWrite)
	if !ok {
		return v, vaults.Key{}, false
	}
	k, ok := loadByID(p, w, r, "key_id", func(ctx context.Context, id int64) (vaults.Key, error) {
		return p.vaults.KeyGetByID(ctx, v.ID, id)
	}, nil)
	return v, k, ok
}

// VaultKeyRotate handles the rotate button: a new key is shown once; the old one retires.
func (p *Portal) VaultKeyRotate(w http.ResponseWriter, r *http.Request) {
	v, k, ok := p.keyToChange(w, r)
	if !ok {
		return
	}
	nk, err := p.vaults.KeyRotate(r.Context(), v.ID, k.ID, vaults.KeyInput{})
	p.keyAnswer(w, r, v, nk, err)
}

// VaultKeyRevoke handles the revoke button.
func (p *Portal) VaultKeyRevoke(w http.ResponseWriter, r *http.Request) {
	v, k, ok := p.keyToChange(w, r)
	if !ok {
		return
	}
	if !p.confirmed(w, r, confirmAsk{Kind: "key-revoke", Name: k.Name, Back: fmt.Sprintf("/vaults/%d", v.ID)}) {
		return
	}
	_, err := p.vaults.KeyRevoke(r.Context(), v.ID, k.ID)
	p.vaultOutcome(w, r, v, err, "revoked")
}

// vaultError shows a refusal on the vault's page (see refuse).
func (p *Portal) vaultError(w http.ResponseWriter, r *http.Request, v vaults.Vault, err error) {
	p.refuse(w, r, err, nil, func(status int, msg string) { p.renderVault(w, r, status, Page{Error: msg}, v, nil) })
}

// vaultOutcome answers a form of the vault page: its refusal (vaultError), or the
// redirect to the page with done.
func (p *Portal) vaultOutcome(w http.ResponseWriter, r *http.Request, v vaults.Vault, err error, done string) {
	if err != nil {
		p.vaultError(w, r, v, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/vaults/%d?done=%s", v.ID, done), http.StatusSeeOther)
}

// VaultQuota handles the quota form.
func (p *Portal) VaultQuota(w http.ResponseWriter, r *http.Request) {
	v, ok := p.vaultFor(w, r, authz.MemberWrite)
	if !ok {
		return
	}
	gbs, err := strconv.ParseFloat(strings.TrimSpace(r.PostFormValue("quota_gb")), 64)
	if err != nil || gbs <= 0 || gbs > 1e9 {
		p.renderVault(w, r, http.StatusBadRequest, Page{Error: p.l(r).T("portal.vaults.go.bad_quota")}, v, nil)
		return
	}
	q := int64(gbs * 1e9)
	if p.gate(w, r, func(w http.ResponseWriter, r *http.Request, u *identity.Principal) (approvals.Ask, bool, bool) {
		ask, protected, err := p.approvals.PlanQuotaCut(r.Context(), u, v, approvals.QuotaChange{QuotaBytes: &q})
		return p.planned(w, r, ask, protected, err)
	}) { // protected when the federation says so: an approval request instead
		return
	}
	_, err = p.vaults.Update(r.Context(), v.ID, vaults.UpdateInput{QuotaBytes: &q})
	p.vaultOutcome(w, r, v, err, "quota")
}

// VaultDelete handles the delete button: immediate for an empty vault, scheduled otherwise.
func (p *Portal) VaultDelete(w http.ResponseWriter, r *http.Request) {
	load := func() (vaults.Vault, bool) { return p.vaultFor(w, r, authz.MemberWrite) }
	plan := func(ctx context.Context, u *identity.Principal, v vaults.Vault) (approvals.Ask, bool, error) {
		return p.approvals.PlanVaultDelete(ctx, u, v, r.PostFormValue("reason"))
	}
	gatedOn(p, w, r, load, plan, func(v vaults.Vault) {
		if !p.confirmed(w, r, confirmAsk{Kind: "vault-delete", Name: v.Name, Back: fmt.Sprintf("/vaults/%d", v.ID)}) {
			return
		}
		_, immediate, err := p.vaults.Delete(r.Context(), v.ID, r.PostFormValue("reason"))
		if err != nil {
			p.vaultError(w, r, v, err)
			return
		}
		if immediate {
			http.Redirect(w, r, "/vaults?done=deleted", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/vaults/%d?done=scheduled", v.ID), http.StatusSeeOther)
	})
}

// VaultRestore handles the undo button of a scheduled deletion.
func (p *Portal) VaultRestore(w http.ResponseWriter, r *http.Request) {
	v, ok := p.vaultFor(w, r, authz.MemberWrite)
	if !ok {
		return
	}
	_, err := p.vaults.Restore(r.Context(), v.ID)
	p.vaultOutcome(w, r, v, err, "restored")
}

// UsageChart is a server-rendered SVG chart of a vault's usage against its quota.
type UsageChart struct {
	Width, Height, Left, Right, Top, PlotH int
	Empty                                  bool
	Summary                                string
	Line, Area                             string // polyline points; polygon points
	QuotaY                                 float64
	YLabels, XLabels                       []usageLabel
}

type usageLabel struct {
	X, Y         float64
	Text, Anchor string
}

// NewUsageChart draws samples (oldest first) over the last 30 days up to now, its times in
// loc (the viewer's zone), its words in l's language.
func NewUsageChart(l *i18n.Printer, samples []vaults.UsageSample, quotaBytes int64, now time.Time, loc *time.Location) UsageChart {
	c := UsageChart{Width: 720, Height: 220, Left: 70, Right: 10, Top: 10, PlotH: 170}
	if len(samples) == 0 {
		c.Empty, c.Summary = true, l.T("portal.vaults.go.chart_empty")
		return c
	}
	from := now.Add(-30 * 24 * time.Hour)
	if samples[0].At.After(from) {
		from = samples[0].At
	}
	span := now.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	top := float64(quotaBytes)
	for _, s := range samples {
		top = math.Max(top, float64(s.Bytes))
	}
	top *= 1.1
	plotW := float64(c.Width - c.Left - c.Right)
	x := func(t time.Time) float64 { return float64(c.Left) + plotW*math.Max(0, t.Sub(from).Seconds())/span }
	y := func(b float64) float64 { return float64(c.Top) + float64(c.PlotH)*(1-b/top) }
	var line strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&line, "%.1f,%.1f ", x(s.At), y(float64(s.Bytes)))
	}
	last := samples[len(samples)-1]
	c.Line = strings.TrimSpace(line.String())
	c.Area = fmt.Sprintf("%.1f,%.1f %s %.1f,%.1f", x(samples[0].At), y(0), c.Line, x(last.At), y(0))
	c.QuotaY = y(float64(quotaBytes))
	for _, f := range []float64{0, 0.5, 1} {
		v := top / 1.1 * f
		if f == 1 {
			v = float64(quotaBytes)
		}
		c.YLabels = append(c.YLabels, usageLabel{X: float64(c.Left - 6), Y: y(v) + 4, Text: sizer(l)(int64(v)), Anchor: "end"})
	}
	for _, f := range []float64{0, 0.5, 1} {
		t := from.Add(time.Duration(f * span * float64(time.Second)))
		anchor := map[float64]string{0: "start", 0.5: "middle", 1: "end"}[f]
		c.XLabels = append(c.XLabels, usageLabel{X: x(t), Y: float64(c.Top + c.PlotH + 16), Text: shortDayIn(l, t, loc) + " " + t.In(loc).Format("15:04 MST"), Anchor: anchor})
	}
	c.Summary = l.T("portal.vaults.go.chart_summary", "Samples", l.Number(int64(len(samples))), "Since", dayIn(l, from, loc),
		"Latest", sizer(l)(last.Bytes), "Quota", sizer(l)(quotaBytes), "Percent", l.Percent(float64(last.Bytes)/math.Max(float64(quotaBytes), 1)))
	return c
}
