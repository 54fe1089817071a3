// Package sandbox owns `archipelago dev`, the embedded sandbox federation: with no
// configuration it starts a throwaway PostgreSQL cluster and a MinIO S3 server, generates a
// master key, applies migrations, seeds demo data and serves Archipelago on 127.0.0.1. On
// cancellation it stops everything it started and removes its state directory (unless
// kept). It also provides `archipelago testenv`, which starts the same services for
// `make test` and runs a command with them.
//
// It is a development tool only: nothing in production depends on it.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/minioserver"
	"github.com/chatons/archipelago/internal/pgcluster"
	"github.com/chatons/archipelago/internal/seal"
)

// Options configure the sandbox.
type Options struct {
	Listen   string // default 127.0.0.1:8080
	StateDir string // default a new temporary directory
	Keep     bool   // keep the state directory (and so the data) on exit
	Out      io.Writer
	Logger   *slog.Logger
}

// Info is written to sandbox.json in the state directory, for people and scripts.
type Info struct {
	BaseURL     string    `json:"base_url"`
	DatabaseURL string    `json:"database_url"`
	S3          S3Info    `json:"s3"`
	Users       []User    `json:"users"`
	StateDir    string    `json:"state_dir"`
	StartedAt   time.Time `json:"started_at"`
	PIDs        PIDs      `json:"pids"`
	// Notifications says where the demo channels deliver (webhook receiver and mail sink).
	Notifications NotifyInfo `json:"notifications"`
	// Islands are the simulated Garage clusters (admin and control URLs, control tokens).
	Islands []IslandInfo `json:"islands"`
	// MetricsToken is the bearer token /metrics requires (ARCHIPELAGO_METRICS_TOKEN).
	MetricsToken string `json:"metrics_token"`
}

// S3Info locates the sandbox's S3 server (MinIO, the data plane behind the simulated islands).
type S3Info struct {
	Endpoint  string `json:"endpoint"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	Region    string `json:"region"`
}

// User is a demo login.
type User struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
	Member   string `json:"member,omitempty"`
}

// PIDs are the processes the sandbox started, so a watcher can check none survives it.
type PIDs struct {
	Archipelago int `json:"archipelago"`
	Postgres    int `json:"postgres"`
	MinIO       int `json:"minio"`
}

// Run runs the sandbox until ctx ends.
func Run(ctx context.Context, o Options) (err error) {
	log := o.Logger
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	listen := o.Listen
	if listen == "" {
		listen = config.DefaultListen
	}
	stateDir, ownDir := o.StateDir, false
	if stateDir == "" {
		if stateDir, err = os.MkdirTemp("", "archipelago-sandbox-"); err != nil {
			return err
		}
		ownDir = true
	} else {
		if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
			ownDir = true
		}
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return err
		}
	}
	stateDir, _ = filepath.Abs(stateDir)
	defer func() {
		if o.Keep {
			return
		}
		if ownDir {
			_ = os.RemoveAll(stateDir)
			return
		}
		// A directory the operator named is kept; what the sandbox put in it is not.
		for _, name := range []string{"postgres", "minio", "master.key", "sandbox.json", "scratch"} {
			_ = os.RemoveAll(filepath.Join(stateDir, name))
		}
	}()
	// Bind first: a taken port is the most common failure and should cost nothing.
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another with --listen)", listen, err)
	}
	defer l.Close()

	fmt.Fprintf(out, "Starting the Archipelago sandbox in %s …\n", stateDir)
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(stateDir, "postgres"), Keep: true, Logger: log})
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer pg.Stop()
	dbURL, err := pg.CreateDatabase(ctx, "archipelago")
	if err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	s3, err := minioserver.Start(ctx, minioserver.Options{Dir: filepath.Join(stateDir, "minio"), Keep: true, Logger: log})
	if err != nil {
		return fmt.Errorf("start MinIO: %w", err)
	}
	defer s3.Stop()

	sk, notifyInfo, err := startSink(stateDir)
	if err != nil {
		return err
	}
	defer sk.Close()

	keyFile := filepath.Join(stateDir, "master.key")
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(keyFile, []byte(seal.NewKey()+"\n"), 0o600); err != nil {
			return err
		}
	}
	metricsToken := "sandbox-metrics-" + seal.NewKey()[:24]
	env := map[string]string{
		"ARCHIPELAGO_DATABASE_URL":         dbURL,
		"ARCHIPELAGO_LISTEN":               l.Addr().String(),
		"ARCHIPELAGO_MASTER_KEY_FILE":      keyFile,
		"ARCHIPELAGO_AUTO_MIGRATE":         "true",
		"ARCHIPELAGO_SHUTDOWN_TIMEOUT":     "5s",
		"ARCHIPELAGO_ISLAND_POLL_INTERVAL": "5s",
		// Notifications go to the sandbox's own receiver and mail sink, on loopback.
		"ARCHIPELAGO_SMTP_ADDR":              sk.SMTPAddr,
		"ARCHIPELAGO_SMTP_TLS":               "none",
		"ARCHIPELAGO_WEBHOOK_ALLOW_PRIVATE":  "true",
		"ARCHIPELAGO_NOTIFY_DIGEST_INTERVAL": "5m",
		// Prometheus scrapes /metrics with this token (sandbox.json: metrics_token).
		"ARCHIPELAGO_METRICS_TOKEN": metricsToken,
		// Protected vaults: the lifecycle tripwire runs every SandboxTripwireEvery instead of
		// 5 minutes (and the copy interval is SandboxCopyEvery, see seedProtection), so that
		// scripts/blackbox-protection.sh sees an attack answered within minutes. Said in the banner.
		"ARCHIPELAGO_TRIPWIRE_INTERVAL": SandboxTripwireEvery.String(),
		// Multi-party approval: the cooling-off may be shortened (seedApprovals); said everywhere.
		"ARCHIPELAGO_DEV_SHORT_COOLING_OFF": "true",
	}
	cfg, err := config.Load(func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k) // the operator may still set log level/format
	})
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	seeded, err := Seed(ctx, a, SeedEnv{S3: s3})
	if err != nil {
		return fmt.Errorf("seed demo data: %w", err)
	}
	defer seeded.StopIslands()
	if err := seedNotifications(ctx, a, sk); err != nil {
		return fmt.Errorf("seed notification channels: %w", err)
	}
	if err := seedApprovals(ctx, a); err != nil {
		return fmt.Errorf("seed approval rules: %w", err)
	}
	// The demo reports wait for the round of restore tests, so that they show its outcomes.
	stopReports, err := reportsAfterRound(ctx, a, seeded.Round, log)
	if err != nil {
		return fmt.Errorf("publish demo reports: %w", err)
	}
	defer stopReports()
	info := Info{
		BaseURL:       "http://" + l.Addr().String(),
		DatabaseURL:   dbURL,
		S3:            S3Info{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Region: s3.Region},
		Users:         seeded.Users,
		Islands:       seeded.Islands,
		StateDir:      stateDir,
		StartedAt:     time.Now().UTC(),
		MetricsToken:  metricsToken,
		PIDs:          PIDs{Archipelago: os.Getpid(), Postgres: pg.PID(), MinIO: s3.PID()},
		Notifications: notifyInfo,
	}
	raw, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(stateDir, "sandbox.json"), append(raw, '\n'), 0o600); err != nil {
		return err
	}
	printBanner(out, info)
	if len(seeded.Round) > 0 {
		fmt.Fprintf(out, "A first round of %d restore tests is running now: watch it on %s/restore-tests "+
			"(log in as alice@libre-nuage.example); the demo reports are published when it ends.\n\n", len(seeded.Round), info.BaseURL)
	}
	err = a.Run(ctx, l, true)
	fmt.Fprintln(out, "Sandbox stopping: PostgreSQL and MinIO are being shut down.")
	if o.Keep {
		fmt.Fprintf(out, "State kept in %s (run again with --state-dir %s to reuse it).\n", stateDir, stateDir)
	}
	return err
}

func printBanner(out io.Writer, info Info) {
	fmt.Fprintf(out, "\nArchipelago sandbox is up.\n\n  Portal and API: %s\n  API reference:  %s/api-reference (OpenAPI document: /v1/openapi.json)\n", info.BaseURL, info.BaseURL)
	if len(info.Users) > 0 {
		fmt.Fprintf(out, "\n  Demo logins:\n")
		for _, u := range info.Users {
			who := u.Role
			if u.Member != "" {
				who += " of " + u.Member
			}
			fmt.Fprintf(out, "    %-34s %-22s (%s)\n", u.Email, u.Password, who)
		}
	}
	fmt.Fprintf(out, "\n  Demo data: restic repositories of three members in every state, each with %d days of\n  SYNTHETIC test history (labelled \"demo history\") so that charts and reports show a month.\n", historyDays)
	fmt.Fprintf(out, "\n  Protected vaults: lifecycle tripwire every %s and copies every %s in this sandbox\n  (shortened for the demo; the defaults are 5m and 1h).\n",
		SandboxTripwireEvery, SandboxCopyEvery)
	if info.Notifications.Page != "" {
		fmt.Fprintf(out, "\n  Notifications received (webhooks and mail): %s\n", info.Notifications.Page)
	}
	fmt.Fprintf(out, "\n  Multi-party approval: cooling-off SHORTENED to %s (sandbox only; production never goes under 72 h): %s/approvals\n",
		fmt.Sprintf("%d min", SandboxCoolingOff/time.Minute), info.BaseURL)
	fmt.Fprintf(out, "\n  Everything else (database, S3 credentials): %s\n\nPress Ctrl-C to stop; everything started here is stopped and removed.\n\n",
		filepath.Join(info.StateDir, "sandbox.json"))
}
