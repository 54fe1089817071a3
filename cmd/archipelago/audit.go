package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/seal"
)

const auditUsage = `usage:
  archipelago audit verify                       recompute the tree from the database and check it against every signed checkpoint
                                                 (exit 1: the log does not verify; 3: the checkpoints are signed with another key)
  archipelago audit verify --remote URL --checkpoint FILE [--key KEY] [--token TOKEN] [--save FILE]
                                                 check through the API that the log saved in FILE is a prefix of today's log
  archipelago audit checkpoint                   sign a checkpoint now and print it
  archipelago audit key                          print the public key that verifies checkpoints
  archipelago audit key --private                print the signing key (a secret), to pin it as ARCHIPELAGO_AUDIT_SIGNING_KEY`

func cmdAudit(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return errors.New(auditUsage)
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
	return errors.New(auditUsage)
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
	fmt.Fprintln(env.stderr, "This is the audit log's signing key: a secret. Store it in a file readable by Archipelago only and set "+
		"ARCHIPELAGO_AUDIT_SIGNING_KEY_FILE to it, so that the log keeps its key when the master key changes.")
	fmt.Fprintln(env.stdout, skey)
	return nil
}

// auditConfig reads the configuration and the master key and opens the database.
func auditConfig(ctx context.Context, env *cliEnv) (*config.Config, *seal.Keyring, *pgxpool.Pool, error) {
	cfg, _, err := loadConfig(env)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := errors.Join(cfg.RequireDatabase(), cfg.RequireMasterKey()); err != nil {
		return nil, nil, nil, err
	}
	kr, err := seal.ParseKeyring(cfg.MasterKey)
	if err != nil {
		return nil, nil, nil, &config.Error{Var: "ARCHIPELAGO_MASTER_KEY_FILE", Problem: err.Error()}
	}
	pool, err := database.Open(ctx, cfg.DatabaseURL, cfg.DBConnTimeout)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := database.CheckCurrent(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	return cfg, kr, pool, nil
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
	remote := fs.String("remote", "", "check a remote Archipelago through its API (its public URL)")
	checkpoint := fs.String("checkpoint", "", "with --remote: a checkpoint saved earlier (a file holding the signed note)")
	key := fs.String("key", "", "with --remote: the log's public key (name+hash+base64), or @FILE; default: fetched and checked against the saved checkpoint")
	token := fs.String("token", "", "with --remote: an API token, to also check every entry you can see (default: $ARCHIPELAGO_TOKEN)")
	save := fs.String("save", "", "with --remote: when the check passes, write today's checkpoint to this file (it may be --checkpoint)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *remote == "" {
		if *checkpoint != "" || *save != "" {
			return errors.New("--checkpoint and --save go with --remote")
		}
		return auditVerifyLocal(ctx, env)
	}
	if *checkpoint == "" {
		return errors.New("--remote needs --checkpoint FILE: a checkpoint you saved earlier (fetch one with: curl URL/v1/audit/checkpoint > FILE)")
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
	fmt.Fprintf(env.stdout, "key:                 %s\n", rep.VerifierKey)
	if rep.Saved.Note != nil {
		fmt.Fprintf(env.stdout, "saved checkpoint:    %d entries, root %s\n", rep.Saved.Size, rep.Saved.Root)
	}
	if rep.Current.Note != nil {
		fmt.Fprintf(env.stdout, "today's checkpoint:  %d entries, root %s\n", rep.Current.Size, rep.Current.Root)
	}
	if rep.WrongKey != "" {
		failAudit(env.stdout, rep.Problems)
		return exitError{3}
	}
	if !rep.OK() {
		return failAudit(env.stdout, rep.Problems)
	}
	fmt.Fprintf(env.stdout, "OK: today's checkpoint is validly signed and the log you saw at %d entries is a prefix of today's (%d entries)\n",
		rep.Saved.Size, rep.Current.Size)
	if *token != "" {
		fmt.Fprintf(env.stdout, "OK: %d entries you can see are in today's signed tree as shown\n", rep.EntriesChecked)
	} else {
		fmt.Fprintln(env.stdout, "(entries not checked: pass --token to check every entry you can see)")
	}
	if *save != "" {
		if err := os.WriteFile(*save, rep.Current.Note, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "saved today's checkpoint to %s\n", *save)
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
	fmt.Fprintf(env.stdout, "key:          %s\n", keys.VerifierKey)
	fmt.Fprintf(env.stdout, "entries:      %d (recomputed in %s)\n", rep.Entries, rep.Duration.Round(1e6))
	fmt.Fprintf(env.stdout, "checkpoints:  %d validly signed (%d of them recorded in reports)\n", rep.Checkpoints, rep.Recorded)
	if rep.Latest != nil {
		fmt.Fprintf(env.stdout, "latest:       %d entries, root %s, signed %s\n", rep.Latest.Size, rep.Latest.Root,
			rep.Latest.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"))
	}
	if rep.WrongKey != "" {
		failAudit(env.stdout, rep.Problems)
		return exitError{3}
	}
	if !rep.OK() {
		return failAudit(env.stdout, rep.Problems)
	}
	if rep.Uncovered > 0 {
		fmt.Fprintf(env.stdout, "note: the last %d entries are not yet covered by a checkpoint (run `archipelago audit checkpoint`)\n", rep.Uncovered)
	}
	fmt.Fprintln(env.stdout, "OK: every entry matches the tree and every checkpoint")
	return nil
}

// failAudit prints the problems, the first one first, and returns exit status 1.
func failAudit(w io.Writer, problems []audit.Problem) error {
	fmt.Fprintf(w, "FAIL: %s\n", problems[0])
	for _, p := range problems[1:] {
		fmt.Fprintf(w, "  also: %s\n", p)
	}
	return exitError{1}
}
