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
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/reseal"
	"github.com/chatons/archipelago/internal/seal"
)

func cmdAdmin(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return errors.New(env.t("cli.admin.usage"))
	}
	switch args[0] {
	case "create-user":
		return cmdCreateUser(ctx, env, args)
	case "reseal":
		return cmdReseal(ctx, env, args)
	case "backup":
		return cmdBackup(ctx, env, args)
	}
	return errors.New(env.t("cli.admin.usage"))
}

// cmdReseal seals again, with the current master key, every secret sealed with an older
// one, so that the older key can leave the key file.
func cmdReseal(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("admin reseal", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dryRun := fs.Bool("dry-run", false, env.t("cli.admin.flag_dry_run"))
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, err := openDB(ctx, env, dbNeeds{masterKey: true})
	if err != nil {
		return err
	}
	pool, kr := db.pool, db.kr
	defer pool.Close()
	counts, err := reseal.Run(ctx, pool, kr, reseal.Columns(), *dryRun, reseal.Fields()...)
	if err != nil {
		return err
	}
	verb, total := env.t("cli.admin.resealed"), 0
	if *dryRun {
		verb = env.t("cli.admin.would_reseal")
	}
	for _, c := range counts {
		fmt.Fprintln(env.stdout, env.t("cli.admin.reseal_column", "Column", fmt.Sprintf("%-40s", c.Column), "Values", fmt.Sprintf("%4d", c.Values),
			"Current", fmt.Sprintf("%4d", c.Current), "Key", kr.CurrentKeyID(), "Resealed", fmt.Sprintf("%4d", c.Resealed), "Verb", verb))
		total += c.Resealed
	}
	if !*dryRun {
		fmt.Fprintln(env.stdout, env.t("cli.admin.reseal_done", "Total", total, "Verb", verb))
	}
	return nil
}

func cmdCreateUser(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("admin create-user", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	email := fs.String("email", "", env.t("cli.admin.flag_email"))
	name := fs.String("name", "", env.t("cli.admin.flag_name"))
	fedAdmin := fs.Bool("federation-admin", false, env.t("cli.admin.flag_federation_admin"))
	memberSlug := fs.String("member", "", env.t("cli.admin.flag_member"))
	role := fs.String("role", "admin", env.t("cli.admin.flag_role"))
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" {
		return errors.New(env.t("cli.admin.email_required"))
	}
	if *fedAdmin && *memberSlug != "" {
		return errors.New(env.t("cli.admin.admin_or_member"))
	}
	if !*fedAdmin && *memberSlug == "" {
		return errors.New(env.t("cli.admin.admin_or_member_needed"))
	}
	if *memberSlug != "" && !identity.Role(*role).Valid() {
		return errors.New(env.t("cli.admin.bad_role"))
	}
	password, generated, err := readPassword(env.stdin)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, env, dbNeeds{})
	if err != nil {
		return err
	}
	cfg, log, pool := db.cfg, db.log, db.pool
	defer pool.Close()
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
				return errors.New(env.t("cli.admin.no_member", "Slug", strconv.Quote(*memberSlug)))
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
	switch {
	case *fedAdmin:
		fmt.Fprintln(env.stdout, env.t("cli.admin.created_federation_admin", "Email", created.Email, "ID", created.ID))
	default:
		fmt.Fprintln(env.stdout, env.t("cli.admin.created_member", "Email", created.Email, "ID", created.ID, "Role", *role, "Member", *memberSlug))
	}
	if generated {
		fmt.Fprintln(env.stdout, env.t("cli.admin.password_once", "Password", password))
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
