// Package portal owns the member portal: server-rendered pages built from the embedded
// templates in web/, with typed page structs, and the static assets. Templates are parsed
// and checked at start. Pages call the same domain packages as the REST API; they never
// reach the database on their own.
package portal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/apiref"
	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/i18n"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/oidclogin"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
	"github.com/chatons/archipelago/web"
)

// Portal renders the portal's pages.
type Portal struct {
	log      *slog.Logger
	pool     *pgxpool.Pool
	identity *identity.Service
	islands  *islands.Service
	notify   *notify.Service
	reports  *reports.Service
	audit    *audit.Service
	vaults   *vaults.Service
	verify   *verify.Service
	// protection: protected vaults (internal/portal/protection.go)
	protection *protection.Service
	attest     *attest.Service // member-side agents (internal/portal/agent.go)
	secure     bool
	// pages are the parsed templates by language, then by name: each language's set has its
	// own t, n, bytes and pct functions (locale.go).
	pages     map[i18n.Lang]map[string]*template.Template
	catalog   *i18n.Catalog
	static    fs.FS
	staticSum map[string]string // file → short content hash, for cache-busting URLs
	apiRef    apiref.Doc
	version   string
	// approvals: multi-party approval (internal/portal/approvals.go)
	approvals *approvals.Service
	// once holds the once-shown secrets between a POST and the page that shows them (once.go).
	once onceStore
	// oidc: login through the identity provider (oidc.go); nil when not configured.
	oidc *oidclogin.Client
}

// Deps are the portal's collaborators.
type Deps struct {
	Logger        *slog.Logger
	Version       string
	Pool          *pgxpool.Pool
	Identity      *identity.Service
	Islands       *islands.Service
	Notify        *notify.Service
	Reports       *reports.Service
	Audit         *audit.Service
	Vaults        *vaults.Service
	Verify        *verify.Service
	Protection    *protection.Service
	Attest        *attest.Service
	Approvals     *approvals.Service
	SecureCookies bool
	// APIReference is the API's OpenAPI document read for the reference page.
	APIReference apiref.Doc
	// Catalog holds the portal's texts in every language; nil loads the embedded one.
	Catalog *i18n.Catalog
	// OIDC is the login through the identity provider; nil when not configured.
	OIDC *oidclogin.Client
}

// New parses every template and indexes static files; any error stops the program.
func New(d Deps) (*Portal, error) {
	p := &Portal{log: d.Logger, pool: d.Pool, identity: d.Identity, islands: d.Islands, secure: d.SecureCookies, notify: d.Notify, reports: d.Reports, audit: d.Audit, vaults: d.Vaults, verify: d.Verify, protection: d.Protection, attest: d.Attest, approvals: d.Approvals, pages: map[i18n.Lang]map[string]*template.Template{}, catalog: d.Catalog, staticSum: map[string]string{}, version: d.Version, apiRef: d.APIReference, oidc: d.OIDC}
	if p.catalog == nil {
		cat, err := i18n.Load()
		if err != nil {
			return nil, err
		}
		p.catalog = cat
	}
	static, err := fs.Sub(web.Static, "static")
	if err != nil {
		return nil, err
	}
	p.static = static
	if err := fs.WalkDir(static, ".", func(name string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.staticSum[name] = hex.EncodeToString(sum[:])[:10]
		return nil
	}); err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"static": p.staticURL,
		// Texts, sizes and numbers in the page's language: bound per language below.
		"t":     (*i18n.Printer)(nil).T,
		"n":     (*i18n.Printer)(nil).N,
		"bytes": (*i18n.Printer)(nil).Bytes,
		"pct":   (*i18n.Printer)(nil).Percent,
		"num":   (*i18n.Printer)(nil).Number,
		"lower": strings.ToLower,
		// Seconds as hours or minutes, for form fields in those units.
		"hours":   func(sec int64) string { return strconv.FormatFloat(float64(sec)/3600, 'f', -1, 64) },
		"minutes": func(sec int64) string { return strconv.FormatFloat(float64(sec)/60, 'f', -1, 64) },
		// Islands and pledges.
		"stateClass": stateClass,
		// A form's member choice (pickers.go).
		"memberField": pickMember,
		// Protected vaults (protection.go).
		"protectionView": protectionView,
		"duration":       humanSeconds,
		// The dashboard (home.go).
		"rankClass":    rankClass,
		"outcomeClass": outcomeClass,
		"reason":       reasonOf,
		"retell":       (*i18n.Printer)(nil).Retell,
		// A calendar day (a report's period: the same days in every zone, read in UTC) in the
		// page's language: "2026-12-05" / « 5 déc. 2026 »; short: "Dec 5" / « 5 déc. ».
		"calendarDay":      func(time.Time) string { return "" },
		"shortCalendarDay": func(time.Time) string { return "" },
		"morningTable": func(page Page, rows any, showMember bool) morningTable {
			return morningTable{Page: page, Rows: rows, ShowMember: showMember}
		},
		"sub": func(a int, b ...int) int {
			for _, x := range b {
				a -= x
			}
			return a
		},
	}
	names, err := fs.Glob(web.Templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, lang := range i18n.Langs {
		pr := p.catalog.Printer(lang)
		funcs["t"], funcs["n"], funcs["bytes"], funcs["pct"], funcs["num"] = pr.T, pr.N, sizer(pr), pr.Percent, pr.Number
		funcs["duration"] = func(v any) string { return durationIn(pr, humanSeconds(v)) }
		funcs["enum"] = enumIn(pr)
		funcs["calendarDay"] = func(t time.Time) string { return dayIn(pr, t, time.UTC) }
		funcs["shortCalendarDay"] = func(t time.Time) string { return shortDayIn(pr, t, time.UTC) }
		// Domain texts stored in English (a test's reason, an approval's effect) said in the
		// page's language (i18n.Printer.Retell); restic's own words stay as they are.
		funcs["retell"] = pr.Retell
		funcs["reason"] = func(status, reason string) reasonView { return reasonOf(status, pr.Retell(reason)) }
		p.pages[lang] = map[string]*template.Template{}
		for _, name := range names {
			base := path.Base(name)
			if base == "layout.html" {
				continue
			}
			t, err := template.New("layout.html").Funcs(funcs).ParseFS(web.Templates, "templates/layout.html", name)
			if err != nil {
				return nil, fmt.Errorf("portal template %s: %w", base, err)
			}
			p.pages[lang][strings.TrimSuffix(base, ".html")] = t
		}
	}
	return p, nil
}

func (p *Portal) staticURL(name string) (string, error) {
	sum, ok := p.staticSum[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/static/" + name + "?v=" + sum, nil
}

// Static serves /static/ with long caching (URLs carry the content hash).
func (p *Portal) Static() http.Handler {
	fsrv := http.StripPrefix("/static/", http.FileServerFS(p.static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		fsrv.ServeHTTP(w, r)
	})
}

// Page is what every page template receives: the shell's data and the page's own.
type Page struct {
	Title    string
	Nav      string // the active navigation entry
	Version  string
	Flash    string
	Error    string
	User     *identity.Principal // nil on public pages
	CSRF     string
	NavItems []NavItem
	Data     any
	// Next links to the next page of a paged list (internal/paging), "" on the last page;
	// the layout shows the link.
	Next string
	// Clock shows moments relative to the render time, exact on hover (when.go).
	Clock clock
	// L writes in the viewer's language (locale.go); templates mostly use the t, n, bytes
	// and pct functions, which speak the same language.
	L *i18n.Printer
}

// NavItem is an entry of the navigation; Label is a catalog key.
type NavItem struct {
	Key, Label, Href string
}

// navigation is the portal's menu, in order.
var navigation = []NavItem{
	{"dashboard", "portal.nav.dashboard", "/"},
	{"vaults", "portal.nav.vaults", "/vaults"},
	{"islands", "portal.nav.islands", "/islands"},
	{"members", "portal.nav.members", "/members"},
	{"pledges", "portal.nav.pledges", "/pledges"},
	{"restore-tests", "portal.nav.restore_tests", "/restore-tests"},
	{"reports", "portal.nav.reports", "/reports"},
	{"notifications", "portal.nav.notifications", "/notifications"},
	{"audit", "portal.nav.audit", "/audit"},
	{"approvals", "portal.nav.approvals", "/approvals"},
	{"people", "portal.nav.people", "/people"},
	{"tokens", "portal.nav.tokens", "/tokens"},
	{"account", "portal.nav.account", "/account"},
}

// render executes a page into a buffer first, so a template error never sends half a page.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, page Page) {
	if name == "login" {
		p.allowProviderForm(w) // the "Log in with" button's form is redirected to the provider (oidc.go)
	}
	v := p.viewerOf(r)
	t, ok := p.pages[v.printer.Lang()][name]
	if !ok {
		p.log.ErrorContext(r.Context(), "no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	page.Version = p.version
	page.L = v.printer
	page.Clock = newClockIn(time.Now(), v.loc, v.printer)
	if u, ok := identity.PrincipalFrom(r.Context()); ok {
		page.User, page.CSRF, page.NavItems = u, u.CSRF, navigation
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, page); err != nil {
		p.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// NotFound is the portal's 404 page.
func (p *Portal) NotFound(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusNotFound, "notfound", Page{Title: p.l(r).T("portal.notfound.title")})
}
