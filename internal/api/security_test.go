package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
)

// TestParallelLoginsVerifyNoMoreThanTheThrottleAllows: 300 logins at once from one
// address, each for another email, all wrong. The throttle is decided before any password
// is checked, so no more than the address's allowance (30) is verified; the rest are
// refused with 429 (or 503 when the hashing slots are all busy), each with Retry-After;
// /healthz keeps answering throughout.
func TestParallelLoginsVerifyNoMoreThanTheThrottleAllows(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	before := env.App.Identity.PasswordVerifications()
	const n = 300
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		status = map[int]int{}
		bad    []string
	)
	stop := make(chan struct{})
	var healthFailures, healthChecks atomic.Int64
	go func() { // /healthz answers during the flood
		c := &http.Client{Timeout: 10 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			resp, err := c.Get(env.URL + "/healthz")
			healthChecks.Add(1)
			if err != nil || resp.StatusCode != 200 {
				healthFailures.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	}()
	client := &http.Client{Timeout: 2 * time.Minute}
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"email":"flood-%d@x.example","password":"not-the-password-%d"}`, i, i)
			resp, err := client.Post(env.URL+"/v1/auth/login", "application/json", strings.NewReader(body))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				bad = append(bad, err.Error())
				return
			}
			resp.Body.Close()
			status[resp.StatusCode]++
			if resp.StatusCode != 401 && resp.Header.Get("Retry-After") == "" {
				bad = append(bad, fmt.Sprintf("%d without Retry-After", resp.StatusCode))
			}
		})
	}
	wg.Wait()
	close(stop)
	verified := env.App.Identity.PasswordVerifications() - before
	t.Logf("statuses %v, %d passwords verified, /healthz %d checks, %d failed", status, verified, healthChecks.Load(), healthFailures.Load())
	if len(bad) > 0 {
		t.Fatalf("%d bad answers, first: %s", len(bad), bad[0])
	}
	if verified > 30 || status[401] > 30 {
		t.Fatalf("%d passwords verified (%d answered 401): more than the address's allowance of 30", verified, status[401])
	}
	if status[401]+status[429]+status[503] != n {
		t.Fatalf("statuses %v: want only 401, 429 and 503", status)
	}
	if healthFailures.Load() > 0 {
		t.Fatalf("/healthz failed %d times of %d during the flood", healthFailures.Load(), healthChecks.Load())
	}
	var failures int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE action = 'auth.login_failed'`).Scan(&failures); err != nil {
		t.Fatal(err)
	}
	if failures != status[401] {
		t.Fatalf("%d auth.login_failed entries for %d verified failures", failures, status[401])
	}
}

// An email longer than 254 characters is refused naming the field, before anything is
// checked or written; a failed login's audit entry stays small whatever is sent.
func TestLoginBoundsItsInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	long := strings.Repeat("a", 250) + "@x.example"
	r := env.Do(apptest.Req{Method: "POST", Path: "/v1/auth/login", Body: map[string]string{"email": long, "password": "whatever-it-is"}, NoValidate: true})
	if r.Status != 400 || r.ErrorField() != "email" {
		t.Fatalf("overlong email: %d %s", r.Status, r.Body)
	}
	var n int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM login_failures`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("login_failures after a refused request: %d %v", n, err)
	}
	// Through the domain, with no HTTP layer in between: the same refusal.
	var fe *identity.FieldError
	if _, err := env.App.Identity.Login(context.Background(), long, "x", "192.0.2.7", "t"); !errors.As(err, &fe) || fe.Field != "email" {
		t.Fatalf("identity.Login with an overlong email: %v, want a refusal naming email", err)
	}
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM login_failures`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("login_failures after a refused identity.Login: %d %v", n, err)
	}
}

// Audit details are bounded: a caller passing a megabyte of text gets it cut, and the log
// still verifies.
func TestAuditDetailsAreBounded(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Kind: audit.ActorAnonymous, Name: strings.Repeat("n", 5000)})
	tx, err := env.App.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := audit.Record(ctx, tx, audit.Entry{Action: "test.big", Details: map[string]any{"text": strings.Repeat("é", 1<<19)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var size, name int
	if err := env.App.Pool.QueryRow(ctx, `SELECT length(details::text), length(actor_name) FROM audit_entries WHERE seq = $1`, seq).Scan(&size, &name); err != nil {
		t.Fatal(err)
	}
	if size > audit.MaxDetails || name > 600 {
		t.Fatalf("details of %d bytes, actor name of %d characters", size, name)
	}
	rep, err := audit.Verify(ctx, env.App.Pool, env.App.Audit.Keys())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
}

// An API token cannot create API tokens: a leaked token must not mint itself successors.
// A person logged in with a password still can.
func TestAnAPITokenCannotCreateTokens(t *testing.T) {
	env, f := apptest.Parallel(t)
	r := env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: f.AdminA.Access, Body: map[string]any{"name": "ci", "member": "member-a", "role": "admin"}})
	if r.Status != 201 {
		t.Fatalf("create with an access token: %d %s", r.Status, r.Body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	r.Decode(t, &tok)
	r = env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: tok.Token, Body: map[string]any{"name": "child", "member": "member-a", "role": "viewer"}})
	if r.Status != 403 || !strings.Contains(string(r.Body), "cannot create API tokens") {
		t.Fatalf("create with an API token: %d %s", r.Status, r.Body)
	}
	// The domain refuses too, whatever layer calls it.
	p, err := env.App.Identity.TokenPrincipal(context.Background(), tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.App.Identity.TokenCreate(identity.WithPrincipal(context.Background(), p), p,
		identity.NewToken{Name: "child", MemberID: p.Members[0].ID, Role: "viewer"}); !errors.Is(err, identity.ErrTokenCannotMint) {
		t.Fatalf("identity.TokenCreate with an API token's principal: %v, want ErrTokenCannotMint", err)
	}
	var count int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM api_tokens`).Scan(&count); err != nil || count != 1 {
		t.Fatalf("%d tokens exist (%v), want 1", count, err)
	}
}

// A password change ends the user's other sessions and revokes their API tokens, says
// how many, and audits each revocation.
func TestPasswordChangeEndsOtherSessionsAndRevokesTokens(t *testing.T) {
	env, f := apptest.Parallel(t)
	other := login(env, f.AdminA.Email, f.AdminA.Password) // a second session (another device)
	var o struct {
		AccessToken string `json:"access_token"`
	}
	other.Decode(t, &o)
	r := env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: f.AdminA.Access, Body: map[string]any{"name": "backup-bot", "member": "member-a"}})
	var tok struct {
		Token string `json:"token"`
	}
	r.Decode(t, &tok)
	// Both credentials are used once before the change, so that the server has them in its
	// principal cache: the change must end them at once, not when the cache entry expires.
	for name, cred := range map[string]string{"the other session": o.AccessToken, "the API token": tok.Token} {
		if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: cred}); r.Status != 200 {
			t.Fatalf("%s before the password change: %d", name, r.Status)
		}
	}
	p, err := env.App.Identity.SessionPrincipal(context.Background(), f.AdminA.Session)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := env.App.Identity.ChangePassword(identity.WithPrincipal(context.Background(), p), p, f.AdminA.Password, "a-brand-new-long-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if changed.SessionsEnded != 1 || changed.TokensRevoked != 1 {
		t.Fatalf("changed = %+v, want 1 session ended and 1 token revoked", changed)
	}
	for name, cred := range map[string]string{"the other session": o.AccessToken, "the API token": tok.Token} {
		if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: cred}); r.Status != 401 {
			t.Errorf("%s after the password change: %d", name, r.Status)
		}
	}
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: f.AdminA.Access}); r.Status != 200 {
		t.Errorf("the session that changed the password: %d", r.Status)
	}
	var revokes int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE action = 'token.revoke'
		AND details->>'reason' = 'its creator changed their password'`).Scan(&revokes); err != nil || revokes != 1 {
		t.Fatalf("%d token.revoke entries (%v)", revokes, err)
	}
}

// Authentication and account entries are personal: visible to the person, the admins of
// that person's members and federation admins — member B sees none of member A's logins.
func TestPersonalAuditEntriesAreVisibleOnlyToThePersonTheirAdminsAndFederationAdmins(t *testing.T) {
	env, f := apptest.Parallel(t)
	login(env, f.ViewerA.Email, "not-the-password")         // a failed login of viewer A
	login(env, "nobody-at-all@x.example", "not-a-password") // a failed login for no account
	type seen struct{ Action, Email string }
	personal := func(a *apptest.Actor) map[seen]bool {
		t.Helper()
		out := map[seen]bool{}
		for _, action := range []string{"auth.*", "user.*"} {
			r := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries?limit=500&action=" + action, Token: a.Access})
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", a.Name, r.Status, r.Body)
			}
			var page struct {
				Entries []struct {
					Seq     int64           `json:"seq"`
					Action  string          `json:"action"`
					Details json.RawMessage `json:"details"`
				} `json:"entries"`
			}
			r.Decode(t, &page)
			for _, e := range page.Entries {
				var d struct{ Email string }
				_ = json.Unmarshal(e.Details, &d)
				out[seen{e.Action, d.Email}] = true
				// Each entry listed can be read alone too.
				if g := env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/audit/entries/%d", e.Seq), Token: a.Access}); g.Status != 200 {
					t.Errorf("%s lists entry %d but reading it answers %d", a.Name, e.Seq, g.Status)
				}
			}
		}
		return out
	}
	viewerA, adminA, adminB, fed := f.ViewerA.Email, f.AdminA.Email, f.AdminB.Email, f.FedAdmin.Email
	cases := []struct {
		actor      *apptest.Actor
		sees, not_ []seen
	}{
		{f.ViewerA, []seen{{"auth.login", viewerA}, {"auth.login_failed", viewerA}, {"user.create", viewerA}},
			[]seen{{"auth.login", adminA}, {"auth.login", adminB}, {"auth.login", fed}, {"auth.login_failed", "nobody-at-all@x.example"}, {"user.create", adminA}}},
		{f.AdminA, []seen{{"auth.login", viewerA}, {"auth.login_failed", viewerA}, {"auth.login", adminA}, {"user.create", viewerA}},
			[]seen{{"auth.login", adminB}, {"auth.login", fed}, {"auth.login_failed", "nobody-at-all@x.example"}, {"user.create", adminB}}},
		{f.AdminB, []seen{{"auth.login", adminB}, {"user.create", adminB}},
			[]seen{{"auth.login", viewerA}, {"auth.login_failed", viewerA}, {"auth.login", adminA}, {"user.create", viewerA}, {"user.create", adminA},
				{"auth.login", fed}, {"auth.login_failed", "nobody-at-all@x.example"}}},
		{f.FedAdmin, []seen{{"auth.login", viewerA}, {"auth.login_failed", viewerA}, {"auth.login", adminB},
			{"auth.login_failed", "nobody-at-all@x.example"}, {"user.create", adminA}}, nil},
	}
	for _, c := range cases {
		got := personal(c.actor)
		for _, s := range c.sees {
			if !got[s] {
				t.Errorf("%s does not see %s of %s", c.actor.Name, s.Action, s.Email)
			}
		}
		for _, s := range c.not_ {
			if got[s] {
				t.Errorf("%s sees %s of %s", c.actor.Name, s.Action, s.Email)
			}
		}
	}
}
