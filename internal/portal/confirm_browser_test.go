package portal_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/verify"
	"github.com/chatons/archipelago/web"
)

// TestDestructiveButtonsAskFirst: in a real browser (no JavaScript needed), erasing a
// repository's password, removing the repository and deleting a notification channel each
// lead to a confirmation page; cancelling there destroys nothing, confirming does.
func TestDestructiveButtonsAskFirst(t *testing.T) {
	env, f := apptest.Parallel(t)
	w := newRestoreWorld(t, env, f.MemberA.ID)
	repo := w.repo(t, f.MemberA.ID, "files", "a long enough password")
	repoPath := fmt.Sprintf("/restore-tests/repositories/%d", repo.ID)
	ctx := browserLogin(t, env, f.AdminA, repoPath, "#password-erase")
	bg := context.Background()

	ask := func(what, button, kind, question string) {
		t.Helper()
		browsertest.Step(t, ctx, what+": asked first", chromedp.Click(css(button)),
			chromedp.WaitVisible(css(`section[data-confirm="`+kind+`"] #confirm-yes`)))
		if q := browsertest.Text(t, ctx, "h1"); !strings.Contains(q, question) {
			t.Fatalf("%s: the confirmation asks %q, want %q", what, q, question)
		}
		browsertest.Screenshot(t, ctx, "confirm-"+kind)
	}
	hasPassword := func() bool {
		r, err := verify.RepositoryGetByID(bg, env.App.Pool, repo.ID)
		if err != nil {
			t.Fatal(err)
		}
		return r.HasPassword
	}

	ask("erase the password", "#password-erase", "password-erase", "Erase the restic password of “files”?")
	if !hasPassword() {
		t.Fatal("the password was erased before the confirmation")
	}
	browsertest.Step(t, ctx, "cancel", chromedp.Click(css("#confirm-no")), chromedp.WaitVisible(css("#password-erase")))
	if !hasPassword() {
		t.Fatal("cancelling erased the password")
	}
	ask("erase the password", "#password-erase", "password-erase", "Erase the restic password")
	browsertest.Step(t, ctx, "confirm", chromedp.Click(css("#confirm-yes")), chromedp.WaitVisible(css("p.flash")))
	if hasPassword() {
		t.Fatal("confirming did not erase the password")
	}

	ask("remove the repository", "#repository-delete", "repository-delete", "Remove “files” from restore testing?")
	browsertest.Step(t, ctx, "cancel", chromedp.Click(css("#confirm-no")), chromedp.WaitVisible(css("#repository-delete")))
	if _, err := verify.RepositoryGetByID(bg, env.App.Pool, repo.ID); err != nil {
		t.Fatalf("cancelling removed the repository: %v", err)
	}
	ask("remove the repository", "#repository-delete", "repository-delete", "Remove “files”")
	browsertest.Step(t, ctx, "confirm", chromedp.Click(css("#confirm-yes")), chromedp.WaitVisible(css("p.flash")))
	if _, err := verify.RepositoryGetByID(bg, env.App.Pool, repo.ID); !errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("confirming did not remove the repository: %v", err)
	}

	browsertest.Step(t, ctx, "add a channel", chromedp.Navigate(env.URL+"/notifications"), chromedp.WaitVisible(css("#ch-name")),
		chromedp.SetValue(css("#ch-kind"), "email"), chromedp.SendKeys(css("#ch-name"), "ops mail"),
		chromedp.SendKeys(css("#ch-target"), "ops@example.org"), chromedp.Click(css(`form[action="/notifications/channels"] button[type=submit]`)),
		chromedp.WaitVisible(css(`button[aria-label="Delete channel ops mail"]`)))
	channels := func() int {
		cs, err := notify.ChannelList(bg, env.App.Pool, notify.ChannelFilter{MemberIDs: []int64{f.MemberA.ID}})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	ask("delete the channel", `button[aria-label="Delete channel ops mail"]`, "channel-delete", "Delete the notification channel “ops mail”?")
	browsertest.Step(t, ctx, "cancel", chromedp.Click(css("#confirm-no")), chromedp.WaitVisible(css(`button[aria-label="Delete channel ops mail"]`)))
	if channels() != 1 {
		t.Fatal("cancelling deleted the channel")
	}
	ask("delete the channel", `button[aria-label="Delete channel ops mail"]`, "channel-delete", "ops mail")
	browsertest.Step(t, ctx, "confirm", chromedp.Click(css("#confirm-yes")), chromedp.WaitVisible(css("p.flash")))
	if channels() != 0 {
		t.Fatal("confirming did not delete the channel")
	}
}

// TestEveryDestructiveFormAsks: every form of the templates that deletes, revokes,
// withdraws, removes, erases, purges or freezes is one whose handler asks first (a
// confirmation page, internal/portal/confirm.go) or carries a confirm checkbox its handler
// requires. A new destructive form must be added here, and its handler made to ask.
func TestEveryDestructiveFormAsks(t *testing.T) {
	t.Parallel()
	asks := []string{ // handlers calling p.confirmed
		"/tokens/{}/revoke", "/vaults/{}/keys/{}/revoke", "/vaults/{}/delete", "/quota/grants/{}/revoke",
		"/islands/{}/delete", "/islands/{}/operators/{}/remove", "/members/{}/delete", "/people/{}/remove",
		"/pledges/{}/withdraw", "/restore-tests/repositories/{}/password/remove", "/restore-tests/repositories/{}/delete",
		"/restore-tests/repositories/{}/agent/keys/{}/revoke", "/notifications/channels/{}/delete",
	}
	checkbox := []string{"/vaults/{}/freeze", "/vaults/{}/unfreeze", "/approvals/{}/reject", "/approvals/{}/cancel"} // confirm checkbox, required by the handler
	form := regexp.MustCompile(`(?s)<form method="post" action="([^"]+)"(.*?)</form>`)
	destructive := regexp.MustCompile(`/(delete|revoke|withdraw|remove|erase|purge|freeze|unfreeze|reject|cancel)$`)
	param := regexp.MustCompile(`\{\{[^}]*\}\}`)
	names, err := fs.Glob(web.Templates, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(web.Templates, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range form.FindAllStringSubmatch(string(b), -1) {
			action := param.ReplaceAllString(m[1], "{}")
			if !destructive.MatchString(action) || name == "templates/confirm.html" {
				continue
			}
			switch {
			case slices.Contains(asks, action):
			case slices.Contains(checkbox, action):
				if !strings.Contains(m[2], `name="confirm" value="yes" required`) {
					t.Errorf("%s: %s has no confirm checkbox", name, action)
				}
			default:
				t.Errorf("%s: destructive form %s does not ask first", name, action)
			}
		}
	}
}
