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
	"strconv"
	"sync"
	"syscall"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/client"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/heartbeat"
	"github.com/chatons/archipelago/internal/i18n"
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
	// p speaks the session's language (LC_ALL, LC_MESSAGES, LANG); run sets it when nil.
	p *i18n.Printer
}

// t is the message id in the session's language (i18n.Printer.T).
func (env *cliEnv) t(id string, args ...any) string { return env.p.T(id, args...) }

// printer is the printer of the session's language, from its locale variables.
func printer(getenv config.Getenv) *i18n.Printer {
	cat, err := i18n.Load()
	if err != nil { // a malformed embedded catalog: a defect the i18n tests catch
		return nil
	}
	lookup := func(k string) string { v, _ := getenv(k); return v }
	return cat.Printer(i18n.FromEnv(lookup, i18n.English))
}

func commands(p *i18n.Printer) map[string]command {
	text := func(name string) (string, string) {
		return p.T("cli." + name + ".summary"), p.T("cli." + name + ".usage")
	}
	cmd := func(name string, run func(context.Context, *cliEnv, []string) error) command {
		summary, usage := text(name)
		return command{summary, usage, run}
	}
	cmds := map[string]command{
		"serve":       cmd("serve", cmdServe),
		"worker":      cmd("worker", cmdWorker),
		"migrate":     cmd("migrate", cmdMigrate),
		"dev":         cmd("dev", cmdDev),
		"config":      cmd("config", cmdConfig),
		"version":     cmd("version", cmdVersion),
		"keygen":      cmd("keygen", cmdKeygen),
		"testenv":     cmd("testenv", cmdTestenv),
		"audit":       cmd("audit", cmdAudit),
		"admin":       cmd("admin", cmdAdmin),
		"healthcheck": cmd("healthcheck", cmdHealthcheck),
		// The agent prints its own help (with its flags and their environment variables).
		"agent": {p.T("cli.agent.summary"), "", cmdAgent},
	}
	for _, r := range client.Resources() {
		cmds[r.Name] = resourceCommand(r, p)
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
	if env.p == nil {
		env.p = printer(env.getenv)
	}
	cmds := commands(env.p)
	if len(args) == 2 && args[0] == "help" {
		if _, ok := cmds[args[1]]; ok {
			args = []string{args[1], "--help"} // archipelago help X = archipelago X --help
		}
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout, env.p, cmds)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = []string{"version"}
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "%s\n\n", env.t("cli.unknown_command", "Name", strconv.Quote(args[0])))
		usage(env.stderr, env.p, cmds)
		return 2
	}
	if wantsHelp(args[0], args[1:]) && c.usage != "" {
		if len(args) > 1 && args[0] == "admin" && args[1] == "backup" {
			fmt.Fprintln(env.stdout, env.t("cli.admin_backup.usage")) // its own help
			return 0
		}
		fmt.Fprintln(env.stdout, c.usage)
		return 0
	}
	defer func() {
		for _, f := range env.atExit {
			f()
		}
	}()
	// One Appender per process: the audit log's tree is computed here, from the head this
	// process last wrote (audit.Appender), not by the database under the append lock.
	if err := c.run(audit.WithAppender(ctx, audit.NewAppender()), env, args[1:]); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(env.stderr, env.t("cli.failed", "Command", args[0], "Error", err.Error()))
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

func usage(w io.Writer, p *i18n.Printer, cmds map[string]command) {
	fmt.Fprintln(w, p.T("cli.usage.head"))
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, p.T("cli.usage.tail"))
}

func loadConfig(env *cliEnv) (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load(env.getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("%s\n%w", env.t("cli.invalid_config"), err)
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
	// The liveness signal `archipelago healthcheck worker` reads: a beat while the database
	// answers; the file goes when the worker stops.
	ctx, stop := context.WithCancel(ctx)
	var beat sync.WaitGroup
	beat.Go(func() { heartbeat.Run(ctx, heartbeat.Path(cfg.ScratchDir), heartbeat.DefaultEvery, a.Pool.Ping, log) })
	defer beat.Wait()
	defer stop()
	return a.Run(ctx, nil, true)
}

func cmdMigrate(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "status") {
		return errors.New(env.t("cli.migrate.bad_args"))
	}
	db, err := openDB(ctx, env, dbNeeds{anySchema: true})
	if err != nil {
		return err
	}
	pool, log := db.pool, db.log
	defer pool.Close()
	if args[0] == "up" {
		n := 0
		if err := database.MigrateUp(ctx, pool, func(v int32, name string) {
			n++
			log.Info("applying migration", "version", v, "name", name)
			fmt.Fprintln(env.stdout, env.t("cli.migrate.applying", "Version", fmt.Sprintf("%03d", v), "Name", name))
		}); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, env.p.N("cli.migrate.current", n))
		return nil
	}
	st, err := database.MigrateStatus(ctx, pool)
	if err != nil {
		return err
	}
	for _, m := range st.Migrations {
		mark := env.t("cli.migrate.pending")
		if m.Applied {
			mark = env.t("cli.migrate.applied")
		}
		fmt.Fprintf(env.stdout, "%03d  %-10s %s\n", m.Version, mark, m.Name)
	}
	fmt.Fprintln(env.stdout, env.t("cli.migrate.at_version", "Current", st.Current, "Latest", st.Latest))
	if st.Pending() {
		fmt.Fprintln(env.stdout, env.t("cli.migrate.run_up"))
	}
	return nil
}

func cmdDev(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", env.t("cli.dev.flag_listen"))
	stateDir := fs.String("state-dir", "", env.t("cli.dev.flag_state_dir"))
	keep := fs.Bool("keep", false, env.t("cli.dev.flag_keep"))
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
		return fmt.Errorf("%s\n%w", env.t("cli.invalid_config"), err)
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
