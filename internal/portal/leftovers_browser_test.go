package portal_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/notify"
)

// englishGiveaway are words and forms no French sentence of the portal uses: English
// function words, English size units and the English 12-hour clock. A French page whose
// text (code and restic's own output aside) or hover titles, placeholders, labels or chart
// descriptions hold one has a text the catalogs missed.
var englishGiveaway = regexp.MustCompile(`\b(the|and|with|of|ago|is|are|was|not|from|since|days|bytes)\b|\d[  ]?(kB|MB|GB|TB)\b|\d ?(AM|PM)\b|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d`)

// shownAsStored are texts of this test's world that no catalog format knows, shown as
// stored by design (an older binary's or a test's own sentence): not leftovers.
var shownAsStored = []string{"the canary file was not found", "the island did not answer"}

// Every page a member admin and a federation admin reach by following the portal's links
// (each kind of page twice at most: lists, details, forms, the API reference), in
// French, has no English giveaway in what a person reads: its visible text (code, restic's
// output and the stored texts this test wrote on purpose aside), its hover titles,
// placeholders, labels and its charts' descriptions. What a page marks lang="en" (the API
// reference's descriptions, from the OpenAPI document written in English, which the page
// says) is English on purpose. The world has events (their lines
// are said again from their kind and detail), a pledge with a state detail and finished
// tests (the charts' points).
func TestFrenchPagesHaveNoEnglishLeftovers(t *testing.T) {
	env, f := apptest.Parallel(t)
	w := newDashboardWorld(t, env, f)
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, env.App.Pool, func(tx pgx.Tx) error {
		member := f.MemberA.ID
		_, err := notify.Emit(ctx, tx, notify.Event{Kind: notify.KindCopyFailed, MemberID: &member, Subject: fmt.Sprintf("vault/%d", w.repoA1.VaultID),
			Title: "The protected copy of vault x is incomplete: 2 errors", Detail: map[string]any{"vault": "x", "error_count": 2}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Stored English details the vault page shows: said again in French.
	if _, err := env.App.Pool.Exec(ctx, `UPDATE vaults SET placement_reason = 'no island other than "north" that member a does not operate has room for a copy of 1000000000 bytes' WHERE id = $1`,
		w.repoA1.VaultID); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*apptest.Actor{f.AdminA, f.FedAdmin} {
		bctx := browsertest.New(t)
		browsertest.Step(t, bctx, "accept fr", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "fr"}})
			return err
		}), chromedp.Navigate(env.URL+"/login"), chromedp.WaitVisible(css("#email")),
			chromedp.SendKeys(css("#email"), who.Email), chromedp.SendKeys(css("#password"), who.Password),
			chromedp.Click(css("button[type=submit]")), chromedp.WaitReady(css(`form[action="/logout"]`)))
		queue := []string{"/", fmt.Sprintf("/restore-tests/repositories/%d", w.repoA1.ID), "/quota?member=" + f.MemberA.Slug, "/no-such-page"}
		seen, kinds := map[string]bool{}, map[string]int{}
		digits := regexp.MustCompile(`\d+`)
		var found []string
		for len(queue) > 0 && len(seen) < 60 {
			page := queue[0]
			queue = queue[1:]
			kind := digits.ReplaceAllString(strings.SplitN(page, "?", 2)[0], "N")
			if seen[page] || kinds[kind] >= 2 {
				continue
			}
			seen[page], kinds[kind] = true, kinds[kind]+1
			browsertest.Step(t, bctx, "fr "+page, chromedp.Navigate(env.URL+page), chromedp.WaitVisible(css("main")))
			text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => {
				const skip = "code, pre, kbd, samp, script, style, template, .raw-log, [lang=en]";
				const out = [];
				const walk = (n) => {
					if (n.nodeType === 3) { out.push(n.textContent); return; }
					if (n.nodeType !== 1 || n.matches(skip)) return;
					for (const c of n.childNodes) walk(c);
				};
				walk(document.body);
				document.querySelectorAll("[title],[placeholder],[aria-label],[alt],[data-label]").forEach((e) => {
					if (e.closest("code, pre, [lang=en]")) return;
					for (const a of ["title", "placeholder", "aria-label", "alt", "data-label"]) if (e.getAttribute(a)) out.push(e.getAttribute(a));
				});
				document.querySelectorAll("svg title, svg desc").forEach((e) => out.push(e.textContent));
				out.push(document.title);
				return out.join("\n");
			})()`))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(text, "\n") {
				for _, s := range shownAsStored {
					line = strings.ReplaceAll(line, s, "")
				}
				if m := englishGiveaway.FindString(line); m != "" {
					found = append(found, fmt.Sprintf("%s %s: %q in %q", who.Email, page, m, strings.TrimSpace(line)))
				}
			}
			links, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("main a[href], nav a[href]")).map(a => a.getAttribute("href"))`))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				u, err := url.Parse(l)
				if err != nil || u.Host != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "/v1/") ||
					strings.HasPrefix(u.Path, "/static/") || u.Path == "/logout" ||
					strings.HasSuffix(u.Path, ".csv") || strings.HasSuffix(u.Path, ".json") {
					continue
				}
				next := u.Path
				if u.RawQuery != "" {
					next += "?" + u.RawQuery
				}
				queue = append(queue, next)
			}
		}
		if len(seen) < 15 {
			t.Errorf("%s: only %d pages reached: the crawl no longer follows the portal's links", who.Email, len(seen))
		}
		t.Logf("%s: %d French pages read", who.Email, len(seen))
		sort.Strings(found)
		for _, f := range found {
			t.Errorf("English on a French page: %s", f)
		}
	}
}
