package portal_test

import (
	"context"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/portal"
	"github.com/chatons/archipelago/internal/reports"
)

// getIn GETs path as a's browser set to accept language (a nil a: nobody logged in).
func getIn(env *apptest.Env, a *apptest.Actor, path, language string) string {
	h := map[string]string{}
	if a != nil {
		h["Cookie"] = portal.SessionCookie + "=" + a.Session
	}
	if language != "" {
		h["Accept-Language"] = language
	}
	return html.UnescapeString(string(env.Do(apptest.Req{Method: "GET", Path: path, Header: h}).Body))
}

// The portal speaks the reader's language (issue 18): the person's own setting, else the
// browser's Accept-Language, else the federation's default; the login page, with nobody
// logged in, the browser's language, else the federation's. The Account page's setting is
// audited like the time zone.
func TestPortalSpeaksTheReadersLanguage(t *testing.T) {
	s := newPortalTest(t)
	want := func(what, page string, lang string, words ...string) {
		t.Helper()
		if !strings.Contains(page, `<html lang="`+lang+`">`) {
			t.Errorf("%s: not marked lang=%q", what, lang)
		}
		for _, w := range words {
			if !strings.Contains(page, w) {
				t.Errorf("%s: %q missing", what, w)
			}
		}
	}
	want("login, French browser", getIn(s.env, nil, "/login", "fr-FR,fr;q=0.9,en;q=0.5"), "fr", "Se connecter", "Mot de passe")
	want("login, English browser", getIn(s.env, nil, "/login", "en-GB"), "en", "Log in", "Password")
	want("login, German browser", getIn(s.env, nil, "/login", "de-DE"), "en", "Log in")
	want("login, nothing said", getIn(s.env, nil, "/login", ""), "en", "Log in")
	want("dashboard, French browser", getIn(s.env, s.f.AdminA, "/", "fr"), "fr", "Tableau de bord", "Coffres", "Se déconnecter")
	want("dashboard, English browser", getIn(s.env, s.f.AdminA, "/", "en-US"), "en", "Dashboard", "Vaults", "Log out")

	// The federation's default speaks when the browser says nothing it knows.
	if r := s.post(s.f.AdminA, "/account/federation-language", url.Values{"language": {"fr"}}); r.Status != 403 {
		t.Fatalf("a member's admin sets the federation's language: %d", r.Status)
	}
	if !strings.Contains(getIn(s.env, s.f.FedAdmin, "/account", "en"), `id="federation-language"`) || strings.Contains(getIn(s.env, s.f.AdminA, "/account", "en"), `id="federation-language"`) {
		t.Fatal("the federation language form is not (only) on a federation admin's account page")
	}
	if r := s.post(s.f.FedAdmin, "/account/federation-language", url.Values{"language": {"fr"}}); r.Status != 303 || r.Header.Get("Location") != "/account?done=federation-language" {
		t.Fatalf("a federation admin sets the federation's language: %d %s", r.Status, r.Body)
	}
	var prev string
	if err := s.env.App.Pool.QueryRow(s.ctx, `SELECT details->>'previous' FROM audit_entries WHERE action = 'federation.language' AND details->>'language' = 'fr'`).Scan(&prev); err != nil || prev != "en" {
		t.Fatalf("the federation's language change is not audited with the previous one: %q %v", prev, err)
	}
	if r := s.env.Do(apptest.Req{Method: "PATCH", Path: "/v1/federation/settings", Token: s.f.FedAdmin.Access, Body: map[string]any{"language": "tlh"}, NoValidate: true}); r.Status != 400 || !strings.Contains(string(r.Body), "language") {
		t.Fatalf("PATCH an unknown language: %d %s", r.Status, r.Body)
	}
	if r := s.env.Do(apptest.Req{Method: "GET", Path: "/v1/federation/settings", Token: s.f.ViewerA.Access}); r.Status != 200 || !strings.Contains(string(r.Body), `"language":"fr"`) {
		t.Fatalf("GET the federation's settings: %d %s", r.Status, r.Body)
	}
	want("login, federation in French", getIn(s.env, nil, "/login", ""), "fr", "Se connecter")
	want("login, federation in French, German browser", getIn(s.env, nil, "/login", "de"), "fr", "Se connecter")
	want("dashboard, federation in French", getIn(s.env, s.f.AdminA, "/", ""), "fr", "Tableau de bord")
	want("dashboard, federation in French, English browser", getIn(s.env, s.f.AdminA, "/", "en"), "en", "Dashboard")

	// The person's own setting wins over the browser and the federation.
	if r := s.post(s.f.AdminA, "/account/language", url.Values{"language": {"en"}}); r.Status != 303 || r.Header.Get("Location") != "/account?done=language" {
		t.Fatalf("set English: %d %s", r.Status, r.Body)
	}
	want("dashboard, own setting English, French browser", getIn(s.env, s.f.AdminA, "/", "fr"), "en", "Dashboard")
	want("account after saving", getIn(s.env, s.f.AdminA, "/account?done=language", "fr"), "en", "Your language was saved", `<option value="en" lang="en" selected>`)
	want("someone else keeps theirs", getIn(s.env, s.f.ViewerA, "/", "fr"), "fr", "Tableau de bord")
	var n int
	if err := s.env.App.Pool.QueryRow(s.ctx, `SELECT count(*) FROM audit_entries WHERE action = 'user.language' AND details->>'language' = 'en'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the language change is not audited: %d %v", n, err)
	}
	if r := s.post(s.f.AdminA, "/account/language", url.Values{"language": {"tlh"}}); r.Status != 400 || !strings.Contains(string(r.Body), "Language") {
		t.Fatalf("an unknown language: %d %s", r.Status, r.Body)
	}
	// Back to automatic: the browser's again.
	if r := s.post(s.f.AdminA, "/account/language", url.Values{"language": {""}}); r.Status != 303 {
		t.Fatalf("set automatic: %d %s", r.Status, r.Body)
	}
	want("dashboard, automatic again, French browser", getIn(s.env, s.f.AdminA, "/", "fr"), "fr", "Tableau de bord")
	want("account in French", getIn(s.env, s.f.AdminA, "/account", "fr"), "fr", "Langue", "Automatique", `<option value="" selected>`)
	if r := s.env.Do(apptest.Req{Method: "PATCH", Path: "/v1/federation/settings", Token: s.f.FedAdmin.Access, Body: map[string]any{"language": "en"}}); r.Status != 200 || !strings.Contains(string(r.Body), `"language":"en"`) {
		t.Fatalf("PATCH the federation's language: %d %s", r.Status, r.Body)
	}
	want("login, federation back in English", getIn(s.env, nil, "/login", ""), "en", "Log in")
}

// frenchDate is a date as French writes it (« 5 déc. 2026 »), frenchSize a size
// (« 870 Mo », « 1,5 Go »).
var (
	frenchDate = regexp.MustCompile(`\b\d{1,2} (janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.) \d{4}`)
	frenchSize = regexp.MustCompile(`\d+(,\d+)?[\x{00a0} ](o|ko|Mo|Go|To)\b`)
	englishNav = regexp.MustCompile(`\b(Dashboard|Vaults|Islands|Log out)\b`)
	// englishDate is "Dec 5", as English pages write a day.
	englishDate = regexp.MustCompile(`\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}\b`)
)

// The main pages in a real browser sending Accept-Language fr, then en: French words,
// dates and sizes on the dashboard and the vault page in French; English in English.
// Screenshots of both: artifacts/screenshots/i18n-<lang>-<page>.png.
func TestMainPagesInFrenchAndEnglish(t *testing.T) {
	env, f := apptest.Parallel(t)
	w := newDashboardWorld(t, env, f)
	vault := fmt.Sprintf("/vaults/%d", w.repoA1.VaultID)
	// Two days of usage: the vault page's chart has dates and sizes to write.
	if _, err := env.App.Pool.Exec(context.Background(), `INSERT INTO vault_usage (vault_id, observed_at, bytes, objects, quota_bytes)
		VALUES ($1, now() - interval '2 days', 500000000, 5, 1000000000), ($1, now() - interval '1 hour', 870000000, 10, 1000000000)`, w.repoA1.VaultID); err != nil {
		t.Fatal(err)
	}
	// A report: its period (calendar days) is listed on the dashboard and the reports page.
	if _, err := env.App.Reports.Generate(audit.WithActor(context.Background(), audit.System("browser-test")), reports.Request{Scope: reports.ScopeMember,
		Member: &reports.MemberRef{ID: f.MemberA.ID, Slug: f.MemberA.Slug, Name: f.MemberA.Name},
		Period: reports.Period{Kind: reports.PeriodCustom, Start: time.Now().AddDate(0, 0, -7), End: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	pages := []string{"/", "/vaults", vault, "/islands", "/restore-tests", fmt.Sprintf("/restore-tests/repositories/%d", w.repoA1.ID),
		"/pledges", "/reports", "/notifications", "/audit", "/people", "/tokens", "/account", "/quota"}
	for _, lang := range []string{"fr", "en"} {
		ctx := browsertest.New(t)
		browsertest.Step(t, ctx, "accept "+lang, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": lang}})
			return err
		}), chromedp.EmulateViewport(1400, 900), chromedp.Navigate(env.URL+"/login"), chromedp.WaitVisible(css("#email")))
		browsertest.Screenshot(t, ctx, "i18n-"+lang+"-login")
		browsertest.Step(t, ctx, "log in", chromedp.SendKeys(css("#email"), f.AdminA.Email), chromedp.SendKeys(css("#password"), f.AdminA.Password),
			chromedp.Click(css("button[type=submit]")), chromedp.WaitVisible(css("section.cards")))
		for _, page := range pages {
			name := strings.Trim(strings.NewReplacer("/", "-").Replace(page), "-")
			if name == "" {
				name = "dashboard"
			}
			browsertest.Step(t, ctx, lang+" "+page, chromedp.Navigate(env.URL+page), chromedp.WaitVisible(css("main h1")))
			browsertest.Screenshot(t, ctx, "i18n-"+lang+"-"+name)
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang + "\n" + document.body.innerText + "\n" +
				Array.from(document.querySelectorAll("[title]")).map(e => e.title).join("\n") + "\n" +
				Array.from(document.querySelectorAll("svg desc, svg title")).map(e => e.textContent).join("\n")`))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, lang+"\n") {
				t.Errorf("%s %s: the page's lang is not %s", lang, page, lang)
			}
			nav := englishNav.FindString(got)
			if lang == "fr" && nav != "" {
				t.Errorf("%s: English %q on a French page", page, nav)
			}
			if d := englishDate.FindString(got); lang == "fr" && d != "" {
				t.Errorf("%s: English date %q on a French page", page, d)
			}
			if lang == "en" && !strings.Contains(got, "Dashboard") {
				t.Errorf("%s: no English menu on an English page", page)
			}
			if page != "/" && page != vault {
				continue
			}
			if lang == "fr" {
				for _, want := range []string{"Tableau de bord", "Coffre"} {
					if !strings.Contains(got, want) {
						t.Errorf("%s in French: %q missing", page, want)
					}
				}
				if !frenchDate.MatchString(got) {
					t.Errorf("%s in French: no French date (« 5 déc. 2026 ») in the page, its hover titles or its charts' descriptions", page)
				}
				if !frenchSize.MatchString(got) {
					t.Errorf("%s in French: no French size (« 870 Mo »)", page)
				}
			} else if frenchDate.MatchString(got) || frenchSize.MatchString(got) {
				t.Errorf("%s in English: French dates or sizes: %q %q", page, frenchDate.FindString(got), frenchSize.FindString(got))
			}
		}
	}
}
