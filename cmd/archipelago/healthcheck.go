package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/heartbeat"
)

// cmdHealthcheck is `archipelago healthcheck serve|worker`: a container health check that
// needs no shell or HTTP client in the image. It reads the same ARCHIPELAGO_* settings as
// the process it checks, prints one line saying why, and exits 0 (healthy) or 1.
func cmdHealthcheck(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || (args[0] != "serve" && args[0] != "worker") {
		return errors.New(env.t("cli.healthcheck.usage"))
	}
	fs := flag.NewFlagSet("healthcheck "+args[0], flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	timeout := fs.Duration("timeout", 5*time.Second, env.t("cli.healthcheck.flag_timeout"))
	maxAge := fs.Duration("max-age", heartbeat.DefaultMaxAge, env.t("cli.healthcheck.flag_max_age"))
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(env.t("cli.healthcheck.usage"))
	}
	unhealthy := func(msg string) error {
		fmt.Fprintln(env.stderr, msg)
		return exitError{1}
	}
	cfg, err := config.Load(env.getenv)
	if err != nil {
		return unhealthy(env.t("cli.healthcheck.bad_config", "Error", oneLine(err.Error())))
	}
	if args[0] == "worker" {
		path := heartbeat.Path(cfg.ScratchDir)
		at, err := heartbeat.Read(path)
		switch {
		case errors.Is(err, heartbeat.ErrNone):
			return unhealthy(env.t("cli.healthcheck.worker_none", "Path", path))
		case err != nil:
			return unhealthy(env.t("cli.healthcheck.worker_unreadable", "Error", err.Error()))
		}
		age := time.Since(at).Round(time.Second)
		if age > *maxAge {
			return unhealthy(env.t("cli.healthcheck.worker_stale", "Age", age, "MaxAge", *maxAge))
		}
		fmt.Fprintln(env.stdout, env.t("cli.healthcheck.worker_alive", "Age", max(age, 0)))
		return nil
	}
	url := "http://" + localAddr(cfg.Listen) + "/readyz"
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		return unhealthy(env.t("cli.healthcheck.unreachable", "URL", url, "Error", err.Error()))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return unhealthy(env.t("cli.healthcheck.unreachable", "URL", url, "Error", err.Error()))
	}
	defer resp.Body.Close()
	var r struct{ Database, Schema string }
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&r)
	if resp.StatusCode != http.StatusOK {
		return unhealthy(env.t("cli.healthcheck.not_ready", "URL", url, "Status", resp.StatusCode,
			"Database", r.Database, "Schema", oneLine(r.Schema)))
	}
	fmt.Fprintln(env.stdout, env.t("cli.healthcheck.ready", "URL", url))
	return nil
}

// localAddr is where a process on this machine reaches a server listening on listen: an
// unspecified host (0.0.0.0, ::, empty) becomes the loopback address of its family.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.Equal(net.IPv4zero)):
		host = "127.0.0.1"
	case ip != nil && ip.Equal(net.IPv6unspecified):
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// oneLine joins a multi-line message (a configuration error lists one problem a line).
func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }
