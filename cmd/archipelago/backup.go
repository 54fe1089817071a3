package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/quota"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/selfbackup"
	"github.com/chatons/archipelago/internal/verify"
)

// cmdBackup is `archipelago admin backup init|run|check|status|restore`: the coordinator's
// own backup into the federation (docs/deploy.md).
func cmdBackup(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) < 2 {
		return errors.New(env.t("cli.admin_backup.usage"))
	}
	switch args[1] {
	case "init":
		return cmdBackupInit(ctx, env, args[2:])
	case "run", "check":
		return cmdBackupRun(ctx, env, args[1], args[2:])
	case "status":
		return cmdBackupStatus(ctx, env, args[2:])
	case "restore":
		return cmdBackupRestore(ctx, env, args[2:])
	}
	return errors.New(env.t("cli.admin_backup.usage"))
}

// backupEnv is what the subcommands that work on the coordinator's database open.
type backupEnv struct {
	cfg  *config.Config
	pool *pgxpool.Pool
	kr   *seal.Keyring
	rr   *restic.Runner
	svc  *selfbackup.Service
}

func openBackupEnv(ctx context.Context, env *cliEnv) (*backupEnv, error) {
	db, err := openDB(ctx, env, dbNeeds{masterKey: true})
	if err != nil {
		return nil, err
	}
	cfg, log, kr, pool := db.cfg, db.log, db.kr, db.pool
	rr, err := restic.New(ctx, restic.Config{Logger: log, TempDir: cfg.ScratchDir})
	if err != nil {
		pool.Close()
		return nil, err
	}
	svc := selfbackup.New(pool, kr, selfbackup.Config{Logger: log, Restic: rr, DatabaseURL: cfg.DatabaseURL,
		PGDump: cfg.PGDump, Keep: cfg.SelfBackupKeep, ScratchDir: cfg.ScratchDir})
	return &backupEnv{cfg: cfg, pool: pool, kr: kr, rr: rr, svc: svc}, nil
}

// cliActor is who the audit log names for a command run on the coordinator.
func cliActor(ctx context.Context) context.Context {
	osUser := "unknown"
	if u, err := user.Current(); err == nil {
		osUser = u.Username
	}
	return audit.WithActor(ctx, audit.Actor{Kind: audit.ActorSystem, ID: "cli", Name: "archipelago admin (OS user " + osUser + ")"})
}

func cmdBackupInit(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("admin backup init", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	vault := fs.Int64("vault", 0, env.t("cli.admin_backup.flag_vault"))
	keyID := fs.String("access-key-id", "", env.t("cli.admin_backup.flag_access_key_id"))
	path := fs.String("path", "archipelago-coordinator", env.t("cli.admin_backup.flag_path"))
	kitFile := fs.String("kit", "", env.t("cli.admin_backup.flag_kit_out"))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *vault <= 0 || *keyID == "" {
		return errors.New(env.t("cli.admin_backup.init_needs"))
	}
	// The key's secret comes on standard input (a pipe or a file), never as an argument.
	if f, ok := env.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return errors.New(env.t("cli.admin_backup.secret_stdin"))
		}
	}
	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	secret := strings.TrimSpace(line)
	if secret == "" {
		return errors.New(env.t("cli.admin_backup.secret_stdin"))
	}
	var kitOut *os.File
	if *kitFile != "" {
		// Created before anything else: a kit that cannot be written stops init early.
		if kitOut, err = os.OpenFile(*kitFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		defer kitOut.Close()
	}
	be, err := openBackupEnv(ctx, env)
	if err != nil {
		return err
	}
	defer be.pool.Close()
	vs := verify.New(be.pool, be.kr, verify.Config{Restic: be.rr, ScratchDir: be.cfg.ScratchDir})
	kit, err := be.svc.Init(cliActor(ctx), vs, selfbackup.InitInput{VaultID: *vault, AccessKeyID: *keyID,
		SecretAccessKey: secret, Path: *path})
	if err != nil {
		if kitOut != nil {
			kitOut.Close()
			os.Remove(*kitFile)
		}
		return err
	}
	if kitOut != nil {
		if _, err := kitOut.WriteString(kit.Format()); err != nil {
			return fmt.Errorf("%s: %w\n%s", *kitFile, err, kit.Format())
		}
		if err := kitOut.Close(); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, env.t("cli.admin_backup.kit_written", "File", *kitFile))
	} else {
		fmt.Fprint(env.stdout, kit.Format())
	}
	fmt.Fprintln(env.stdout, env.t("cli.admin_backup.init_done", "URL", kit.RepositoryURL))
	return nil
}

func cmdBackupRun(ctx context.Context, env *cliEnv, which string, args []string) error {
	fs := flag.NewFlagSet("admin backup "+which, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(env.t("cli.admin_backup.usage"))
	}
	be, err := openBackupEnv(ctx, env)
	if err != nil {
		return err
	}
	defer be.pool.Close()
	ctx = cliActor(ctx)
	var res selfbackup.Result
	if which == "run" {
		res, err = be.svc.Backup(ctx, "cli")
	} else {
		res, err = be.svc.RestoreCheck(ctx, "cli")
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, env.t("cli.admin_backup."+which+"_done", "Snapshot", shortID(res.SnapshotID),
		"Size", quota.Bytes(res.Bytes), "Schema", res.Metadata.SchemaVersion, "Rows", rowsText(res.Metadata.Rows)))
	if len(res.Forgotten) > 0 {
		fmt.Fprintln(env.stdout, env.t("cli.admin_backup.forgotten", "Count", len(res.Forgotten)))
	}
	return nil
}

func cmdBackupStatus(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("admin backup status", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	asJSON := fs.Bool("json", false, env.t("cli.admin_backup.flag_json"))
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openDB(ctx, env, dbNeeds{anySchema: true})
	if err != nil {
		return err
	}
	pool := db.pool
	defer pool.Close()
	st, err := selfbackup.StatusGet(ctx, pool)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	if st.Setup == nil {
		fmt.Fprintln(env.stdout, env.t("cli.admin_backup.not_set_up"))
		return nil
	}
	fmt.Fprintln(env.stdout, env.t("cli.admin_backup.status_setup", "URL", st.Setup.RepositoryURL, "Vault", st.Setup.VaultID,
		"Repository", st.Setup.RepositoryID))
	for _, kind := range []string{selfbackup.KindBackup, selfbackup.KindRestoreCheck} {
		name := env.t("cli.admin_backup.kind_" + kind)
		last, ok := st.Last[kind]
		if !ok {
			fmt.Fprintln(env.stdout, env.t("cli.admin_backup.status_never", "Kind", name))
			continue
		}
		fmt.Fprintln(env.stdout, env.t("cli.admin_backup.status_last", "Kind", name, "Status", last.Status,
			"At", last.FinishedAt.UTC().Format("2006-01-02 15:04 MST"), "Snapshot", shortID(last.SnapshotID), "Error", last.Error))
		if okRun, has := st.LastOK[kind]; has && okRun.ID != last.ID {
			fmt.Fprintln(env.stdout, env.t("cli.admin_backup.status_last_ok", "At", okRun.FinishedAt.UTC().Format("2006-01-02 15:04 MST")))
		}
	}
	return nil
}

// cmdBackupRestore restores the newest dump from the recovery kit alone (no coordinator
// database, no master key) into an empty database, and checks it.
func cmdBackupRestore(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("admin backup restore", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	kitFile := fs.String("kit", "", env.t("cli.admin_backup.flag_kit_in"))
	target := fs.String("target-url", "", env.t("cli.admin_backup.flag_target_url"))
	snapshot := fs.String("snapshot", "", env.t("cli.admin_backup.flag_snapshot"))
	keepDump := fs.String("keep-dump", "", env.t("cli.admin_backup.flag_keep_dump"))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kitFile == "" || *target == "" {
		return errors.New(env.t("cli.admin_backup.restore_needs"))
	}
	f, err := os.Open(*kitFile)
	if err != nil {
		return err
	}
	kit, err := selfbackup.ParseKit(f)
	f.Close()
	if err != nil {
		return err
	}
	cfg, log, err := loadConfig(env)
	if err != nil {
		return err
	}
	rr, err := restic.New(ctx, restic.Config{Logger: log, TempDir: cfg.ScratchDir})
	if err != nil {
		return err
	}
	pgRestore := ""
	if cfg.PGDump != "" {
		pgRestore = filepath.Join(filepath.Dir(cfg.PGDump), "pg_restore")
	}
	if err := os.MkdirAll(cfg.ScratchDir, 0o700); err != nil {
		return err
	}
	res, err := selfbackup.Restore(ctx, selfbackup.RestoreOptions{Restic: rr, Repo: kit.Repo(""), SnapshotID: *snapshot,
		DatabaseURL: *target, PGRestore: pgRestore, ScratchDir: cfg.ScratchDir, KeepDump: *keepDump})
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, env.t("cli.admin_backup.restored", "Snapshot", shortID(res.Snapshot.ID),
		"Time", res.Snapshot.Time.UTC().Format("2006-01-02 15:04 MST"), "Size", quota.Bytes(res.DumpBytes),
		"Schema", res.Found.SchemaVersion, "Rows", rowsText(res.Found.Rows)))
	return nil
}

func shortID(id string) string { return id[:min(len(id), 8)] }

func rowsText(rows map[string]int64) string {
	var parts []string
	for _, t := range selfbackup.CountedTables {
		if n, ok := rows[t]; ok {
			parts = append(parts, t+" "+strconv.FormatInt(n, 10))
		}
	}
	return strings.Join(parts, ", ")
}
