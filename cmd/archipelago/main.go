// Command archipelago is the coordinator of a federation of Garage storage islands: one
// binary with subcommands for serving, migrating, running workers, the sandbox and admin
// tasks. It only wires: the work is done in internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/client"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/logbuf"
	"github.com/chatons/archipelago/internal/sandbox"
	"github.com/chatons/archipelago/internal/seal"
)

// command is one subcommand: a one-line summary for the command list, the text that
// `archipelago <command> --help` prints (and nothing else happens), and what it runs.
type command struct {
	summary string
	usage   string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what every subcommand gets: streams and the environment lookup.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         config.Getenv
	// atExit runs when the command returns (the process log's buffer is flushed there).
	atExit []func()
}

func commands() map[string]command {
	cmds := map[string]command{
		"serve": {"serve the portal and the REST API (and, by default, the background workers)", `Usage: archipelago serve

Serves the portal and the REST API on ARCHIPELAGO_LISTEN and, unless ARCHIPELAGO_RUN_WORKERS=false, runs the
background workers in the same process. Configuration comes from ARCHIPELAGO_* variables (archipelago config).`, cmdServe},
		"worker": {"run only the background workers", `Usage: archipelago worker

Runs the background workers (restore tests, island polling, reconciliation, reports, notifications) without
serving HTTP. Several workers may share one database.`, cmdWorker},
		"migrate": {"apply (up) or list (status) database migrations", `Usage: archipelago migrate up|status

  up      apply the pending migrations of ARCHIPELAGO_DATABASE_URL
  status  list the migrations and whether each is applied`, cmdMigrate},
		"dev": {"run the sandbox federation: throwaway PostgreSQL, MinIO, demo data", `Usage: archipelago dev [--listen ADDR] [--state-dir DIR] [--keep]

Runs the sandbox: a throwaway PostgreSQL and MinIO, simulated Garage islands, demo members, vaults and restic
repositories, and serves the portal and API. Ctrl-C stops everything and removes the state directory.

  --listen ADDR     address to serve the portal and API on (default 127.0.0.1:8080)
  --state-dir DIR   directory for the sandbox's data and sandbox.json (default: a new temporary directory)
  --keep            keep the state directory on exit`, cmdDev},
		"config": {"print the effective configuration, secrets redacted", `Usage: archipelago config

Prints every ARCHIPELAGO_* setting in effect (secrets redacted) and names the invalid ones.`, cmdConfig},
		"version": {"print the version", "Usage: archipelago version   (or archipelago --version)", cmdVersion},
		"keygen": {"print a new random master key (for ARCHIPELAGO_MASTER_KEY_FILE)", `Usage: archipelago keygen

Prints a new random 32-byte master key in hex, for ARCHIPELAGO_MASTER_KEY_FILE. Keep it secret.`, cmdKeygen},
		"testenv": {"run a command with throwaway PostgreSQL and MinIO (used by make test)", `Usage: archipelago testenv [--] COMMAND [ARGS…]

Starts a throwaway PostgreSQL cluster and MinIO server, runs COMMAND with ARCHIPELAGO_TEST_* variables pointing at
them, stops both and exits with COMMAND's status. make test runs the Go tests this way.`, cmdTestenv},
		"audit": {"verify the audit log (locally or against a saved checkpoint), sign a checkpoint, print its key", auditUsage, cmdAudit},
		"admin": {"administration: create-user, reseal", adminUsage, cmdAdmin},
		// The agent prints its own help (with its flags and their environment variables).
		"agent": {"member-side agent: run the password levels and push a signed attestation; keygen", "", cmdAgent},
	}
	for _, r := range client.Resources() {
		cmds[r.Name] = resourceCommand(r)
	}
	return cmds
}

// defaultMemoryLimit is the Go runtime's soft memory limit when GOMEMLIMIT is not set: the
// garbage collector works harder as the heap nears it, which keeps the resident memory of a
// server on a small machine near 150 MiB after peaks (an argon2id login holds 64 MiB for its
// duration). It is soft: a heap that needs more still gets it. Set GOMEMLIMIT (for example
// GOMEMLIMIT=512MiB for a large federation, or GOMEMLIMIT=off) to choose another.
const defaultMemoryLimit = 128 << 20

// applyMemoryLimit sets defaultMemoryLimit unless GOMEMLIMIT is set, and returns the limit in
// effect.
func applyMemoryLimit(getenv config.Getenv) int64 {
	if _, set := getenv("GOMEMLIMIT"); set {
		return debug.SetMemoryLimit(-1)
	}
	debug.SetMemoryLimit(defaultMemoryLimit)
	return defaultMemoryLimit
}

func main() {
	applyMemoryLimit(os.LookupEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv}
	os.Exit(run(ctx, env, os.Args[1:]))
}

// exitError carries a specific exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(ctx context.Context, env *cliEnv, args []string) int {
	cmds := commands()
	if len(args) == 2 && args[0] == "help" {
		if _, ok := cmds[args[1]]; ok {
			args = []string{args[1], "--help"} // archipelago help X = archipelago X --help
		}
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout, cmds)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = []string{"version"}
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "archipelago: unknown command %q\n\n", args[0])
		usage(env.stderr, cmds)
		return 2
	}
	if wantsHelp(args[0], args[1:]) && c.usage != "" {
		fmt.Fprintln(env.stdout, c.usage)
		return 0
	}
	defer func() {
		for _, f := range env.atExit {
			f()
		}
	}()
	if err := c.run(ctx, env, args[1:]); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(env.stderr, "archipelago %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// wantsHelp reports whether a command's arguments ask for its help: -h, -help or --help
// before any "--" (testenv: only as its first argument, since what follows is another
// program's command line), or "help" as the first argument.
func wantsHelp(name string, args []string) bool {
	if len(args) == 0 {
		return false
	}
	isHelp := func(a string) bool { return a == "-h" || a == "-help" || a == "--help" }
	if args[0] == "help" || isHelp(args[0]) {
		return true
	}
	if name == "testenv" {
		return false
	}
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "Usage: archipelago <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\n`archipelago <command> --help` explains a command; `archipelago --version` prints the version.")
	fmt.Fprintln(w, "Server configuration comes from ARCHIPELAGO_* environment variables: see `archipelago config`.")
	fmt.Fprintln(w, "Client commands (vaults, keys, repositories, tests, reports, members, islands) talk to a server's API:")
	fmt.Fprintln(w, "ARCHIPELAGO_API_URL (default http://127.0.0.1:8080) and an API token in ARCHIPELAGO_API_TOKEN(_FILE).")
}

func loadConfig(env *cliEnv) (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load(env.getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	// Log lines reach stderr together, at most logbuf.Interval late (WARN and above at
	// once): one write per line made the request log cost more than a handler.
	out := logbuf.New(os.Stderr)
	env.atExit = append(env.atExit, out.Flush)
	return cfg, slog.New(logbuf.Handler(cfg.NewLogger(out).Handler(), out)), nil
}

func cmdServe(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, log, err := loadConfig(env)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &config.Error{Var: "ARCHIPELAGO_LISTEN", Problem: err.Error()}
	}
	log.Info("archipelago serving", "listen", l.Addr().String(), "public_url", cfg.PublicURL, "version", api.Version,
		"workers", cfg.RunWorkers)
	return a.Run(ctx, l, cfg.RunWorkers)
}

func cmdWorker(ctx context.Context, env *cliEnv, args []string) error {
	cfg, log, err := loadConfig(env)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	log.Info("archipelago worker running", "version", api.Version)
	return a.Run(ctx, nil, true)
}

func cmdMigrate(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "status") {
		return errors.New("usage: archipelago migrate up|status")
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
	if args[0] == "up" {
		n := 0
		if err := database.MigrateUp(ctx, pool, func(v int32, name string) {
			n++
			log.Info("applying migration", "version", v, "name", name)
			fmt.Fprintf(env.stdout, "applying %03d %s\n", v, name)
		}); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "schema is current (%d migration(s) applied now)\n", n)
		return nil
	}
	st, err := database.MigrateStatus(ctx, pool)
	if err != nil {
		return err
	}
	for _, m := range st.Migrations {
		mark := "pending"
		if m.Applied {
			mark = "applied"
		}
		fmt.Fprintf(env.stdout, "%03d  %-8s %s\n", m.Version, mark, m.Name)
	}
	fmt.Fprintf(env.stdout, "database at version %d of %d\n", st.Current, st.Latest)
	if st.Pending() {
		fmt.Fprintln(env.stdout, "run `archipelago migrate up` to apply the pending migrations")
	}
	return nil
}

func cmdDev(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve the portal and API on")
	stateDir := fs.String("state-dir", "", "directory for the sandbox's data and sandbox.json (default: a new temporary directory)")
	keep := fs.Bool("keep", false, "keep the state directory on exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lvl := slog.LevelWarn
	if v, ok := env.getenv("ARCHIPELAGO_LOG_LEVEL"); ok && v == "debug" {
		lvl = slog.LevelDebug
	} else if ok && v == "info" {
		lvl = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: lvl}))
	return sandbox.Run(ctx, sandbox.Options{Listen: *listen, StateDir: *stateDir, Keep: *keep, Out: env.stdout, Logger: log})
}

func cmdConfig(ctx context.Context, env *cliEnv, args []string) error {
	cfg, err := config.Load(env.getenv)
	if cfg != nil {
		for _, kv := range cfg.Redacted() {
			fmt.Fprintf(env.stdout, "%-34s %s\n", kv[0], kv[1])
		}
	}
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return nil
}

func cmdVersion(ctx context.Context, env *cliEnv, args []string) error {
	fmt.Fprintf(env.stdout, "archipelago %s\n", api.Version)
	return nil
}

func cmdKeygen(ctx context.Context, env *cliEnv, args []string) error {
	fmt.Fprintln(env.stdout, seal.NewKey())
	return nil
}

func cmdTestenv(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	code, err := sandbox.RunWithServices(ctx, args, env.stdout, log)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}
