// Package pgcluster owns throwaway PostgreSQL clusters for the sandbox and the tests: it
// finds the machine's PostgreSQL binaries, runs initdb and postgres in a temporary
// directory on a free loopback port (as the postgres user when we are root, since
// PostgreSQL refuses to run as root), and stops the server it started.
//
// It is a development tool: production points ARCHIPELAGO_DATABASE_URL at a real cluster.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/proc"
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	Dir  string // data and socket live below it
	Port int
	proc *proc.Process
	log  *slog.Logger
	own  bool // we created Dir and remove it on Stop
	keep bool

	// What Resume needs to start the server again.
	bin, logFile string
	args         []string
	as           *proc.Credential
}

// Options configure Start.
type Options struct {
	Dir    string // parent directory; a temporary one when empty (and removed on Stop)
	Keep   bool   // keep the directory on Stop
	Logger *slog.Logger
	// Settings are extra server settings, "name=value" each (passed as -c), for example
	// "shared_preload_libraries=pg_stat_statements" for the scale benchmark.
	Settings []string
}

// FindBin locates the directory holding initdb and postgres: $ARCHIPELAGO_PG_BIN, then
// the newest /usr/lib/postgresql/*/bin, then PATH.
func FindBin() (string, error) {
	if d := os.Getenv("ARCHIPELAGO_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			return "", fmt.Errorf("ARCHIPELAGO_PG_BIN=%s has no postgres binary", d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found: install them with `apt-get install -y postgresql` " +
		"(make test and make demo do this when run as root), or set ARCHIPELAGO_PG_BIN")
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// Start initialises and starts a cluster; it is ready to accept connections on return.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{log: log, keep: o.Keep}
	if o.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "archipelago-pg-"); err != nil {
			return nil, err
		}
		c.own = true
	} else {
		c.Dir = o.Dir
		if err := os.MkdirAll(c.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	var as *proc.Credential
	if os.Geteuid() == 0 {
		if as, err = proc.LookupUser("postgres"); err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user, which is missing: %w", err)
		}
		// The postgres user must be able to reach the directory.
		for d := c.Dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(d, fi.Mode().Perm()|0o011)
			}
		}
		if err := os.Chown(c.Dir, int(as.UID), int(as.GID)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(c.Dir, "data")
	logFile := filepath.Join(c.Dir, "postgres.log")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		initdb, err := proc.Start(proc.Options{Name: "initdb", Path: filepath.Join(bin, "initdb"),
			Args:    []string{"-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"},
			LogFile: logFile, As: as, Dir: c.Dir})
		if err != nil {
			return nil, err
		}
		<-initdb.Exited()
		if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
			return nil, fmt.Errorf("initdb failed; see %s", logFile)
		}
	}
	if c.Port, err = proc.FreePort(); err != nil {
		return nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(c.Port), "-k", c.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=128MB"}
	for _, s := range o.Settings {
		args = append(args, "-c", s)
	}
	c.bin, c.logFile, c.args, c.as = bin, logFile, args, as
	if err := c.launch(ctx); err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "postgres started", "port", c.Port, "pid", c.proc.PID(), "dir", c.Dir)
	return c, nil
}

// launch starts postgres and waits until it accepts connections.
func (c *Cluster) launch(ctx context.Context) error {
	var err error
	c.proc, err = proc.Start(proc.Options{Name: "postgres", Path: filepath.Join(c.bin, "postgres"),
		Args: c.args, LogFile: c.logFile, As: c.as, Dir: c.Dir})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.proc.WaitFor(wctx, "connections", func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}); err != nil {
		return fmt.Errorf("%w; see %s", err, c.logFile)
	}
	return nil
}

// Halt stops the server as a PostgreSQL restart does, keeping its data and its port for
// Resume: immediate (SIGQUIT, as a crash: every session ends at once, nothing is
// checkpointed) or fast (SIGINT: sessions are terminated, then a clean shutdown).
// Clients see their connections end and new ones refused until Resume.
func (c *Cluster) Halt(immediate bool) error {
	if c.proc == nil {
		return errors.New("pgcluster: not running")
	}
	sig := syscall.SIGINT
	if immediate {
		sig = syscall.SIGQUIT
	}
	err := c.proc.Stop(sig, 60*time.Second)
	c.proc = nil
	c.log.Info("postgres halted", "port", c.Port, "immediate", immediate)
	return err
}

// Resume starts a halted server again on the same port and data; it is ready to accept
// connections on return.
func (c *Cluster) Resume(ctx context.Context) error {
	if c.proc != nil {
		return errors.New("pgcluster: already running")
	}
	if err := c.launch(ctx); err != nil {
		return err
	}
	c.log.InfoContext(ctx, "postgres resumed", "port", c.Port, "pid", c.proc.PID())
	return nil
}

// URL is a connection URL for database name as the postgres superuser.
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, database)
}

// CreateDatabase creates a database (if it does not exist) and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", err
		}
	}
	return c.URL(name), nil
}

// PID is the postmaster's process id.
func (c *Cluster) PID() int {
	if c.proc == nil {
		return 0
	}
	return c.proc.PID()
}

// Stop shuts the server down (fast shutdown) and removes its directory unless kept.
func (c *Cluster) Stop() {
	if c.proc != nil {
		if err := c.proc.Stop(syscall.SIGINT, 15*time.Second); err != nil {
			c.log.Warn("postgres stop", "err", err)
		}
	}
	if c.own && !c.keep {
		_ = os.RemoveAll(c.Dir)
	}
}
