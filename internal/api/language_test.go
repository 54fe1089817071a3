package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
)

type apiError struct {
	Error struct{ Code, Message, Field string } `json:"error"`
}

// An error's message is in the caller's language — their own setting, else
// Accept-Language, else the federation's default — and its code and field never change.
func TestErrorMessagesSpeakTheCallersLanguage(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture()
	path := fmt.Sprintf("/v1/members/%d/language", f.MemberA.ID)
	do := func(token string, header map[string]string, body any) apiError {
		t.Helper()
		r := env.Do(apptest.Req{Method: "PUT", Path: path, Token: token, Body: body, Header: header})
		if r.Status != 400 {
			t.Fatalf("PUT %s %v: %d %s, want 400", path, body, r.Status, r.Body)
		}
		var e apiError
		r.Decode(t, &e)
		return e
	}
	bad := map[string]any{"language": "de"}
	fr := map[string]string{"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
	en := do(f.AdminA.Access, nil, bad)
	if en.Error.Message != "must be en, fr, or empty for the federation's" || en.Error.Code != "invalid_field" || en.Error.Field != "language" {
		t.Errorf("without Accept-Language: %+v", en.Error)
	}
	got := do(f.AdminA.Access, fr, bad)
	if got.Error.Message != "doit être en, fr, ou vide pour la langue de la fédération" || got.Error.Code != en.Error.Code || got.Error.Field != en.Error.Field {
		t.Errorf("with Accept-Language: fr: %+v", got.Error)
	}
	// A format with arguments: the translated format, the same arguments (translated
	// words among them).
	got = do(f.AdminA.Access, fr, map[string]any{"language": 5})
	if got.Error.Message != "doit être une chaîne, pas un nombre" || got.Error.Field != "language" {
		t.Errorf("a type error with Accept-Language: fr: %+v", got.Error)
	}
	if e := do(f.AdminA.Access, nil, map[string]any{"language": 5}); e.Error.Message != "must be a string, not a number" {
		t.Errorf("a type error in English: %+v", e.Error)
	}

	// The person's own setting wins over the browser's.
	ctx := context.Background()
	if _, err := env.App.Pool.Exec(ctx, `UPDATE users SET language = 'fr' WHERE email = $1`, f.AdminB.Email); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.Pool.Exec(ctx, `UPDATE users SET language = 'en' WHERE email = $1`, f.ViewerA.Email); err != nil {
		t.Fatal(err)
	}
	// Fresh principals (the resolver caches them for a short while): log in again.
	adminB := relogin(t, env, f.AdminB)
	viewer := relogin(t, env, f.ViewerA)
	r := env.Do(apptest.Req{Method: "GET", Path: "/v1/members/999999/language", Token: adminB, Header: map[string]string{"Accept-Language": "en"}})
	var e apiError
	r.Decode(t, &e)
	if r.Status != 404 || e.Error.Message != "membre 999999 introuvable" {
		t.Errorf("a user whose setting is fr, browser en: %d %+v", r.Status, e.Error)
	}
	r = env.Do(apptest.Req{Method: "PUT", Path: path, Token: viewer, Body: map[string]any{"language": "fr"}, Header: fr})
	r.Decode(t, &e)
	if r.Status != 403 || e.Error.Code != "forbidden" || !json.Valid(r.Body) {
		t.Fatalf("a viewer sets the member's language: %d %s", r.Status, r.Body)
	}

	// Neither: the federation's default.
	if _, err := env.App.Pool.Exec(ctx, `UPDATE federation_settings SET language = 'fr'`); err != nil {
		t.Fatal(err)
	}
	// The API caches the federation's language for up to 30 s: poll (generously).
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r = env.Do(apptest.Req{Method: "GET", Path: "/v1/members/abc/language"})
		r.Decode(t, &e)
		if r.Status == 401 && e.Error.Message == "authentification requise\u202f: envoyez `Authorization: Bearer <token>`" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no setting, no Accept-Language, federation fr: %d %+v", r.Status, e.Error)
		}
		time.Sleep(time.Second)
	}
}

func relogin(t *testing.T, env *apptest.Env, a *apptest.Actor) string {
	t.Helper()
	res, err := env.App.Identity.Login(context.Background(), a.Email, a.Password, "192.0.2.1", "apptest")
	if err != nil {
		t.Fatal(err)
	}
	return res.AccessToken
}

// A member admin sets the language of what is sent to their member (audited); the
// setting and the language in effect are read back.
func TestMemberLanguage(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture()
	path := fmt.Sprintf("/v1/members/%d/language", f.MemberA.ID)
	type view struct {
		MemberID  int64  `json:"member_id"`
		Language  string `json:"language"`
		Effective string `json:"effective_language"`
	}
	var v view
	r := env.Do(apptest.Req{Method: "GET", Path: path, Token: f.ViewerA.Access})
	r.Decode(t, &v)
	if r.Status != 200 || v.Language != "" || v.Effective != "en" {
		t.Fatalf("before: %d %s", r.Status, r.Body)
	}
	r = env.Do(apptest.Req{Method: "PUT", Path: path, Token: f.AdminA.Access, Body: map[string]any{"language": "fr"}})
	r.Decode(t, &v)
	if r.Status != 200 || v.Language != "fr" || v.Effective != "fr" {
		t.Fatalf("set fr: %d %s", r.Status, r.Body)
	}
	var stored *string
	var audited int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT language, (SELECT count(*) FROM audit_entries WHERE action = 'member.language' AND target_id = $2)
		FROM members WHERE id = $1`, f.MemberA.ID, fmt.Sprint(f.MemberA.ID)).Scan(&stored, &audited); err != nil {
		t.Fatal(err)
	}
	if stored == nil || *stored != "fr" || audited != 1 {
		t.Fatalf("stored %v, audited %d times", stored, audited)
	}
	if _, err := env.App.Pool.Exec(context.Background(), `UPDATE federation_settings SET language = 'fr'`); err != nil {
		t.Fatal(err)
	}
	r = env.Do(apptest.Req{Method: "PUT", Path: path, Token: f.FedAdmin.Access, Body: map[string]any{"language": nil}})
	r.Decode(t, &v)
	if r.Status != 200 || v.Language != "" || v.Effective != "fr" {
		t.Fatalf("back to the federation's (fr): %d %s", r.Status, r.Body)
	}
	r = env.Do(apptest.Req{Method: "PUT", Path: fmt.Sprintf("/v1/members/%d/language", f.MemberB.ID), Token: f.AdminA.Access,
		Body: map[string]any{"language": "en"}})
	if r.Status != 404 {
		t.Fatalf("another member's language: %d %s", r.Status, r.Body)
	}
}

// A report download is rendered in the reader's language: their setting, else their
// Accept-Language, else the language of the report's member; the stored document (and
// its hash) is the same in every language.
func TestReportDownloadsSpeakTheReadersLanguage(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture()
	if _, err := env.App.Pool.Exec(context.Background(), `UPDATE members SET language = 'fr' WHERE id = $1`, f.MemberA.ID); err != nil {
		t.Fatal(err)
	}
	res := env.Do(apptest.Req{Method: "POST", Path: "/v1/reports", Token: f.AdminA.Access, Body: map[string]any{"member": "member-a"}})
	if res.Status != 201 {
		t.Fatalf("generate: %d %s", res.Status, res.Body)
	}
	var rep struct {
		Links struct{ HTML, CSV string }
	}
	res.Decode(t, &rep)
	get := func(path, accept string) string {
		t.Helper()
		h := map[string]string{}
		if accept != "" {
			h["Accept-Language"] = accept
		}
		r := env.Do(apptest.Req{Method: "GET", Path: path, Token: f.ViewerA.Access, Header: h})
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
		return string(r.Body)
	}
	if h := get(rep.Links.HTML, ""); !strings.Contains(h, `<html lang="fr">`) || !strings.Contains(h, "Rapport des tests de restauration — Member A") {
		t.Errorf("no Accept-Language, member fr: the report is not in French:\n%.600s", h)
	}
	if h := get(rep.Links.HTML, "en-GB,en;q=0.9"); !strings.Contains(h, "Restore-test report — Member A") {
		t.Errorf("Accept-Language en: the report is not in English:\n%.600s", h)
	}
	if c := get(rep.Links.CSV+"?table=vaults", "fr"); !strings.HasPrefix(c, "id_coffre,coffre,île,état,") {
		t.Errorf("French CSV header: %.200s", c)
	}
	if c := get(rep.Links.CSV+"?table=vaults", "en"); !strings.HasPrefix(c, "vault_id,vault,island,status,") {
		t.Errorf("English CSV header: %.200s", c)
	}
}
