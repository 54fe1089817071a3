package sandbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/minioserver"
)

// SeedEnv is what seeding may use besides the app.
type SeedEnv struct {
	S3 *minioserver.Server
}

// Seeded is what seeding created that people need to know.
type Seeded struct {
	Users []User
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
	return out, err
}
