package apptest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/testenv"
)

// Actor is a logged-in user of the fixture, with both kinds of credentials.
type Actor struct {
	Name     string
	Email    string
	Password string
	Access   string // bearer access token (JWT)
	Session  string // portal session cookie value / refresh token
	CSRF     string
}

// Fixture is the standard cast of the isolation tests: two members, A and B, a viewer
// and an admin of A, an admin of B and a federation admin.
type Fixture struct {
	MemberA, MemberB                   islands.Member
	Anonymous, ViewerA, AdminA, AdminB *Actor
	FedAdmin                           *Actor
}

// Actors lists the fixture's actors in the order the matrix uses.
func (f *Fixture) Actors() []*Actor {
	return []*Actor{f.Anonymous, f.ViewerA, f.AdminA, f.AdminB, f.FedAdmin}
}

// Fixture creates members A and B and the actors, and logs each in.
func (e *Env) Fixture() *Fixture {
	t := e.T
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("test-fixture"))
	f := &Fixture{Anonymous: &Actor{Name: "anonymous"}}
	f.MemberA = e.Member("member-a", "Member A")
	f.MemberB = e.Member("member-b", "Member B")
	mk := func(name, email string, fed bool, member int64, role identity.Role) *Actor {
		a := &Actor{Name: name, Email: email, Password: "horse-battery-staple-" + testenv.Unique("")}
		err := pgx.BeginFunc(ctx, e.App.Pool, func(tx pgx.Tx) error {
			u, err := e.App.Identity.UserCreate(ctx, tx, identity.NewUser{Email: email, Password: a.Password, FederationAdmin: fed})
			if err != nil || member == 0 {
				return err
			}
			return e.App.Identity.MembershipSet(ctx, tx, u.ID, member, role)
		})
		if err != nil {
			t.Fatalf("fixture user %s: %v", email, err)
		}
		res, err := e.App.Identity.Login(ctx, email, a.Password, "192.0.2.1", "apptest")
		if err != nil {
			t.Fatalf("fixture login %s: %v", email, err)
		}
		a.Access, a.Session, a.CSRF = res.AccessToken, res.SessionSecret, res.Principal.CSRF
		return a
	}
	f.ViewerA = mk("viewer-a", "viewer@a.example", false, f.MemberA.ID, identity.RoleViewer)
	f.AdminA = mk("admin-a", "admin@a.example", false, f.MemberA.ID, identity.RoleAdmin)
	f.AdminB = mk("admin-b", "admin@b.example", false, f.MemberB.ID, identity.RoleAdmin)
	f.FedAdmin = mk("fed-admin", "fed@federation.example", true, 0, "")
	return f
}

// Member creates a member organisation directly (with its audit entry).
func (e *Env) Member(slug, name string) islands.Member {
	e.T.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("test-fixture"))
	var m islands.Member
	err := pgx.BeginFunc(ctx, e.App.Pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO members (slug, name) VALUES ($1, $2) RETURNING id`, slug, name).Scan(&m.ID); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "member.create", TargetType: "member", TargetID: slug})
		return err
	})
	if err != nil {
		e.T.Fatalf("fixture member %s: %v", slug, err)
	}
	m.Slug, m.Name = slug, name
	return m
}

var _ testing.TB = (*testing.T)(nil)
