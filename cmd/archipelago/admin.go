package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/reseal"
	"github.com/chatons/archipelago/internal/seal"
)

const adminUsage = `usage:
  archipelago admin create-user --email EMAIL [--name NAME] [--federation-admin | --member SLUG --role admin|viewer]
      the password is read from standard input when it is piped, otherwise generated and printed once
  archipelago admin reseal [--dry-run]
      after a master key rotation, seal every stored secret again with the first key of the key file`

func cmdAdmin(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return errors.New(adminUsage)
	}
	switch args[0] {
	case "create-user":
		return cmdCreateUser(ctx, env, args)
	case "reseal":
		return cmdReseal(ctx, env, args)
	}
	return errors.New(adminUsage)
}

// cmdReseal seals again, with the current master key, every secret sealed with an older
// one, so that the older key can leave the key file.
func cmdReseal(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("admin reseal", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dryRun := fs.Bool("dry-run", false, "count what would be sealed again, change nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, _, err := loadConfig(env)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.RequireDatabase(), cfg.RequireMasterKey()); err != nil {
		return err
	}
	kr, err := seal.ParseKeyring(cfg.MasterKey)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	pool, err := database.Open(ctx, cfg.DatabaseURL, cfg.DBConnTimeout)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := database.CheckCurrent(ctx, pool); err != nil {
		return err
	}
	counts, err := reseal.Run(ctx, pool, kr, reseal.Columns(), *dryRun)
	if err != nil {
		return err
	}
	verb, total := "sealed again", 0
	if *dryRun {
		verb = "to seal again (dry run: nothing changed)"
	}
	for _, c := range counts {
		fmt.Fprintf(env.stdout, "%-40s %4d values, %4d already under key %s, %4d %s\n", c.Column, c.Values, c.Current, kr.CurrentKeyID(), c.Resealed, verb)
		total += c.Resealed
	}
	if !*dryRun {
		fmt.Fprintf(env.stdout, "done: %d values %s; once every process runs with the new key first, older keys may leave the key file\n", total, verb)
	}
	return nil
}

func cmdCreateUser(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("admin create-user", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	email := fs.String("email", "", "the user's email (their login)")
	name := fs.String("name", "", "display name")
	fedAdmin := fs.Bool("federation-admin", false, "make the user a federation admin")
	memberSlug := fs.String("member", "", "slug of the member organisation to add the user to")
	role := fs.String("role", "admin", "role in that member: admin or viewer")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" {
		return errors.New("--email is required")
	}
	if *fedAdmin && *memberSlug != "" {
		return errors.New("give either --federation-admin or --member, not both")
	}
	if !*fedAdmin && *memberSlug == "" {
		return errors.New("give --federation-admin or --member SLUG --role admin|viewer")
	}
	if *memberSlug != "" && !identity.Role(*role).Valid() {
		return errors.New("--role must be admin or viewer")
	}
	password, generated, err := readPassword(env.stdin)
	if err != nil {
		return err
	}
	cfg, log, err := loadConfig(env)
	if err != nil {
		return err
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	pool, err := database.Open(ctx, cfg.DatabaseURL, cfg.DBConnTimeout)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := database.CheckCurrent(ctx, pool); err != nil {
		return err
	}
	ids := identity.New(pool, log, identity.Config{JWTKey: []byte(seal.NewKey()), Issuer: cfg.PublicURL})
	osUser := "unknown"
	if u, err := user.Current(); err == nil {
		osUser = u.Username
	}
	ctx = audit.WithActor(ctx, audit.Actor{Kind: audit.ActorSystem, ID: "cli", Name: "archipelago admin (OS user " + osUser + ")"})
	var created identity.User
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var mid int64
		if *memberSlug != "" {
			m, err := islands.MemberGetBySlug(ctx, tx, *memberSlug)
			if errors.Is(err, islands.ErrNotFound) {
				return fmt.Errorf("no member with slug %q", *memberSlug)
			} else if err != nil {
				return err
			}
			mid = m.ID
		}
		u, err := ids.UserCreate(ctx, tx, identity.NewUser{Email: *email, DisplayName: *name, Password: password, FederationAdmin: *fedAdmin})
		if err != nil {
			return err
		}
		created = u
		if mid != 0 {
			return ids.MembershipSet(ctx, tx, u.ID, mid, identity.Role(*role))
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "created user %s (id %d)", created.Email, created.ID)
	if *fedAdmin {
		fmt.Fprint(env.stdout, " as federation admin")
	} else {
		fmt.Fprintf(env.stdout, " as %s of %s", *role, *memberSlug)
	}
	fmt.Fprintln(env.stdout)
	if generated {
		fmt.Fprintf(env.stdout, "password (shown once, store it now): %s\n", password)
	}
	return nil
}

// readPassword reads the password from piped standard input, or generates one when stdin
// is a terminal or empty.
func readPassword(in io.Reader) (string, bool, error) {
	if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return identity.GeneratePassword(), true, nil
		}
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, err
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return identity.GeneratePassword(), true, nil
	}
	return line, false, nil
}
