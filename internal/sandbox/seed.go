package sandbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/minioserver"
)

// SeedEnv is what seeding may use besides the app.
type SeedEnv struct {
	S3 *minioserver.Server
	// islandStarted, when set, is called with each island's simulator as soon as it
	// started, before seeding calls it (tests inject faults into the islands with it).
	islandStarted func(name string, sim *garagesim.Sim)
}

// Seeded is what seeding created that people need to know.
type Seeded struct {
	Users []User
	// Islands are the simulated islands (when SeedEnv.S3 is set); StopIslands stops their
	// simulators and must be called on exit.
	Islands     []IslandInfo
	StopIslands func()
	// Round are the restore tests enqueued for the demo repositories (none when they
	// existed already); the sandbox's workers run them once it serves.
	Round []int64
}

// demoMembers are the sandbox's member organisations.
var demoMembers = []struct{ Slug, Name, Email string }{
	{"libre-nuage", "Libre Nuage", "admin@libre-nuage.example"},
	{"chaton-rouge", "Chaton Rouge", "admin@chaton-rouge.example"},
	{"vercors-libre", "Vercors Libre", "admin@vercors-libre.example"},
	{"garrigue-net", "Garrigue.net", "admin@garrigue-net.example"},
	{"breizh-host", "Breizh Host", "admin@breizh-host.example"},
	{"alsace-numerique", "Alsace Numérique", "admin@alsace-numerique.example"},
}

// Seed creates the demo federation. It is idempotent: a kept sandbox started again keeps
// its data and its demo logins.
func Seed(ctx context.Context, a *app.App, env SeedEnv) (Seeded, error) {
	ctx = audit.WithActor(ctx, audit.System("sandbox-seed"))
	var out Seeded
	err := pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		for _, m := range demoMembers {
			var id int64
			err := tx.QueryRow(ctx, `INSERT INTO members (slug, name, contact_email) VALUES ($1, $2, $3)
				ON CONFLICT (slug) DO NOTHING RETURNING id`, m.Slug, m.Name, m.Email).Scan(&id)
			if err == pgx.ErrNoRows {
				continue
			}
			if err != nil {
				return fmt.Errorf("member %s: %w", m.Slug, err)
			}
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "member.create", TargetType: "member",
				TargetID: fmt.Sprint(id), Details: map[string]any{"slug": m.Slug, "name": m.Name}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	for _, u := range demoUsers {
		if err := seedUser(ctx, a, u); err != nil {
			return out, fmt.Errorf("user %s: %w", u.Email, err)
		}
		out.Users = append(out.Users, u)
	}
	out.StopIslands = func() {}
	if env.S3 != nil {
		if out.Islands, out.StopIslands, err = seedIslands(ctx, a, env.S3, nil, env.islandStarted); err != nil {
			return out, fmt.Errorf("islands: %w", err)
		}
		if err := seedVaults(ctx, a, env.S3); err != nil {
			out.StopIslands()
			return out, fmt.Errorf("vaults: %w", err)
		}
		// Protected vaults: an up-to-date copy, a lagging copy, a tripped lifecycle tripwire.
		if err := seedProtection(ctx, a); err != nil {
			a.Log.WarnContext(ctx, "sandbox: protection demo incomplete", "err", err)
		}
		// Restic repositories in every state of a restore test, in the vaults above.
		if out.Round, err = seedRestoreTests(ctx, a, env.S3, a.Log); err != nil {
			out.StopIslands()
			return out, fmt.Errorf("restore tests: %w", err)
		}
	}
	return out, nil
}

// demoUsers are the sandbox's logins. Their passwords are fixed and printed: this is a
// throwaway sandbox on 127.0.0.1.
var demoUsers = []User{
	{Email: "federation@archipelago.example", Password: "demo-fed-admin-2026", Role: "federation admin"},
	{Email: "alice@libre-nuage.example", Password: "demo-libre-nuage-admin", Role: "admin", Member: "libre-nuage"},
	{Email: "victor@libre-nuage.example", Password: "demo-libre-nuage-viewer", Role: "viewer", Member: "libre-nuage"},
	{Email: "bob@chaton-rouge.example", Password: "demo-chaton-rouge-admin", Role: "admin", Member: "chaton-rouge"},
	{Email: "carla@vercors-libre.example", Password: "demo-vercors-libre-admin", Role: "admin", Member: "vercors-libre"},
}

func seedUser(ctx context.Context, a *app.App, u User) error {
	return pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)`, u.Email).Scan(&exists); err != nil || exists {
			return err
		}
		created, err := a.Identity.UserCreate(ctx, tx, identity.NewUser{Email: u.Email, Password: u.Password,
			FederationAdmin: u.Member == ""})
		if err != nil || u.Member == "" {
			return err
		}
		m, err := islands.MemberGetBySlug(ctx, tx, u.Member)
		if err != nil {
			return err
		}
		return a.Identity.MembershipSet(ctx, tx, created.ID, m.ID, identity.Role(u.Role))
	})
}
