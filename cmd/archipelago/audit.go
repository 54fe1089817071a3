package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/seal"
)

func cmdAudit(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return errors.New(env.t("cli.audit.usage"))
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(ctx, env, args[1:])
	case "key":
		if len(args) > 1 && args[1] == "--private" {
			return cmdAuditPrivateKey(ctx, env)
		}
		fallthrough
	case "checkpoint":
		keys, pool, err := auditDB(ctx, env)
		if err != nil {
			return err
		}
		defer pool.Close()
		if args[0] == "key" {
			fmt.Fprintln(env.stdout, keys.VerifierKey)
			return nil
		}
		c, err := audit.NewService(pool, keys, slog.New(slog.NewTextHandler(env.stderr, nil))).Checkpoint(ctx)
		if err != nil {
			return err
		}
		_, err = env.stdout.Write(c.Note)
		return err
	}
	return errors.New(env.t("cli.audit.usage"))
}

// cmdAuditPrivateKey prints the checkpoint signing key, so that an operator whose key is
// derived from the master key can pin it before rotating the master key.
func cmdAuditPrivateKey(ctx context.Context, env *cliEnv) error {
	cfg, kr, pool, err := auditConfig(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	skey, err := audit.SignerKey(ctx, pool, cfg.AuditKey, kr.Derive)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stderr, env.t("cli.audit.private_key_note"))
	fmt.Fprintln(env.stdout, skey)
	return nil
}

// auditConfig reads the configuration and the master key and opens the database.
func auditConfig(ctx context.Context, env *cliEnv) (*config.Config, *seal.Keyring, *pgxpool.Pool, error) {
	db, err := openDB(ctx, env, dbNeeds{masterKey: true})
	if err != nil {
		return nil, nil, nil, err
	}
	return db.cfg, db.kr, db.pool, nil
}

// auditDB opens the database and the checkpoint keys: the master key and the log's name
// stored in the database are all it takes (no public URL).
func auditDB(ctx context.Context, env *cliEnv) (audit.Keys, *pgxpool.Pool, error) {
	cfg, kr, pool, err := auditConfig(ctx, env)
	if err != nil {
		return audit.Keys{}, nil, err
	}
	keys, err := audit.LoadKeys(ctx, pool, cfg.AuditKey, kr.Derive)
	if err != nil {
		pool.Close()
		if errors.Is(err, audit.ErrBadSigningKey) {
			return audit.Keys{}, nil, &config.Error{Var: "ARCHIPELAGO_AUDIT_SIGNING_KEY", Problem: err.Error()}
		}
		return audit.Keys{}, nil, err
	}
	return keys, pool, nil
}

func cmdAuditVerify(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	remote := fs.String("remote", "", env.t("cli.audit.flag_remote"))
	checkpoint := fs.String("checkpoint", "", env.t("cli.audit.flag_checkpoint"))
	key := fs.String("key", "", env.t("cli.audit.flag_key"))
	token := fs.String("token", "", env.t("cli.audit.flag_token"))
	save := fs.String("save", "", env.t("cli.audit.flag_save"))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *remote == "" {
		if *checkpoint != "" || *save != "" {
			return errors.New(env.t("cli.audit.checkpoint_without_remote"))
		}
		return auditVerifyLocal(ctx, env)
	}
	if *checkpoint == "" {
		return errors.New(env.t("cli.audit.remote_needs_checkpoint"))
	}
	saved, err := os.ReadFile(*checkpoint)
	if err != nil {
		return err
	}
	vkey := *key
	if f, ok := strings.CutPrefix(vkey, "@"); ok {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		vkey = string(b)
	}
	if *token == "" {
		*token, _ = env.getenv("ARCHIPELAGO_TOKEN")
	}
	rep, err := audit.VerifyRemote(ctx, audit.RemoteOptions{BaseURL: *remote, Saved: saved, VerifierKey: vkey, Token: *token})
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, env.t("cli.audit.key", "Key", rep.VerifierKey))
	if rep.Saved.Note != nil {
		fmt.Fprintln(env.stdout, env.t("cli.audit.saved_checkpoint", "Size", rep.Saved.Size, "Root", rep.Saved.Root))
	}
	if rep.Current.Note != nil {
		fmt.Fprintln(env.stdout, env.t("cli.audit.todays_checkpoint", "Size", rep.Current.Size, "Root", rep.Current.Root))
	}
	if rep.WrongKey != "" {
		failAudit(env, rep.Problems)
		return exitError{3}
	}
	if !rep.OK() {
		return failAudit(env, rep.Problems)
	}
	fmt.Fprintln(env.stdout, env.t("cli.audit.remote_ok", "Saved", rep.Saved.Size, "Current", rep.Current.Size))
	if *token != "" {
		fmt.Fprintln(env.stdout, env.t("cli.audit.entries_ok", "Count", rep.EntriesChecked))
	} else {
		fmt.Fprintln(env.stdout, env.t("cli.audit.entries_not_checked"))
	}
	if *save != "" {
		if err := os.WriteFile(*save, rep.Current.Note, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, env.t("cli.audit.saved_to", "File", *save))
	}
	return nil
}

func auditVerifyLocal(ctx context.Context, env *cliEnv) error {
	keys, pool, err := auditDB(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := audit.Verify(ctx, pool, keys, reports.RecordedCheckpoints)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, env.t("cli.audit.local_key", "Key", keys.VerifierKey))
	fmt.Fprintln(env.stdout, env.t("cli.audit.local_entries", "Count", rep.Entries, "Duration", rep.Duration.Round(1e6).String()))
	fmt.Fprintln(env.stdout, env.t("cli.audit.local_checkpoints", "Count", rep.Checkpoints, "Recorded", rep.Recorded))
	if rep.Latest != nil {
		fmt.Fprintln(env.stdout, env.t("cli.audit.local_latest", "Size", rep.Latest.Size, "Root", rep.Latest.Root,
			"At", rep.Latest.CreatedAt.UTC().Format("2006-01-02 15:04:05Z")))
	}
	if rep.WrongKey != "" {
		failAudit(env, rep.Problems)
		return exitError{3}
	}
	if !rep.OK() {
		return failAudit(env, rep.Problems)
	}
	if rep.Uncovered > 0 {
		fmt.Fprintln(env.stdout, env.t("cli.audit.uncovered", "Count", rep.Uncovered))
	}
	fmt.Fprintln(env.stdout, env.t("cli.audit.local_ok"))
	return nil
}

// failAudit prints the problems, the first one first, and returns exit status 1.
func failAudit(env *cliEnv, problems []audit.Problem) error {
	// The findings are worded in English by internal/audit and said in the session's
	// language here (i18n.Printer.Retell); a finding with no translation stays English.
	fmt.Fprintln(env.stdout, env.t("cli.audit.fail", "Problem", env.p.Retell(problems[0].String())))
	for _, p := range problems[1:] {
		fmt.Fprintln(env.stdout, env.t("cli.audit.also", "Problem", env.p.Retell(p.String())))
	}
	return exitError{1}
}
