package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/restic"
)

func cmdAgent(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 && args[0] == "keygen" {
		return cmdAgentKeygen(env, args[1:])
	}
	get := func(name string) string {
		v, _ := env.getenv(name)
		return v
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprint(env.stdout, env.t("cli.agent.usage")+"\n"+env.t("cli.agent.flags")+"\n")
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
	}
	apiURL := fs.String("api-url", get("ARCHIPELAGO_AGENT_API_URL"), env.t("cli.agent.flag_api_url")+" [ARCHIPELAGO_AGENT_API_URL]")
	tokenFile := fs.String("api-token-file", get("ARCHIPELAGO_AGENT_API_TOKEN_FILE"), env.t("cli.agent.flag_api_token_file")+" [ARCHIPELAGO_AGENT_API_TOKEN_FILE]")
	repo := fs.String("repository", get("ARCHIPELAGO_AGENT_REPOSITORY"), env.t("cli.agent.flag_repository")+" [ARCHIPELAGO_AGENT_REPOSITORY]")
	passwordFile := fs.String("password-file", get("ARCHIPELAGO_AGENT_PASSWORD_FILE"), env.t("cli.agent.flag_password_file")+" [ARCHIPELAGO_AGENT_PASSWORD_FILE]")
	s3Key := fs.String("s3-access-key-id", get("ARCHIPELAGO_AGENT_S3_ACCESS_KEY_ID"), env.t("cli.agent.flag_s3_access_key_id")+" [ARCHIPELAGO_AGENT_S3_ACCESS_KEY_ID]")
	s3SecretFile := fs.String("s3-secret-access-key-file", get("ARCHIPELAGO_AGENT_S3_SECRET_ACCESS_KEY_FILE"), env.t("cli.agent.flag_s3_secret_access_key_file")+" [ARCHIPELAGO_AGENT_S3_SECRET_ACCESS_KEY_FILE]")
	s3Endpoint := fs.String("s3-endpoint", get("ARCHIPELAGO_AGENT_S3_ENDPOINT"), env.t("cli.agent.flag_s3_endpoint")+" [ARCHIPELAGO_AGENT_S3_ENDPOINT]")
	keyFile := fs.String("key-file", get("ARCHIPELAGO_AGENT_KEY_FILE"), env.t("cli.agent.flag_key_file")+" [ARCHIPELAGO_AGENT_KEY_FILE]")
	stateDir := fs.String("state-dir", get("ARCHIPELAGO_AGENT_STATE_DIR"), env.t("cli.agent.flag_state_dir")+" [ARCHIPELAGO_AGENT_STATE_DIR]")
	subsets := fs.Int("check-subsets", 0, env.t("cli.agent.flag_check_subsets")+" [ARCHIPELAGO_AGENT_CHECK_SUBSETS]")
	if v := get("ARCHIPELAGO_AGENT_CHECK_SUBSETS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errors.New(env.t("cli.agent.bad_subsets"))
		}
		*subsets = n
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(env.t("cli.agent.unexpected_argument", "Arg", strconv.Quote(fs.Arg(0))))
	}
	var errs []error
	readSecret := func(path, name string) string {
		if path == "" {
			errs = append(errs, errors.New(env.t("cli.agent.required", "Name", name)))
			return ""
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return ""
		}
		return strings.TrimRight(string(b), "\r\n")
	}
	cfg := attest.AgentConfig{APIURL: *apiURL, S3AccessKeyID: *s3Key, S3Endpoint: *s3Endpoint, StateDir: *stateDir,
		Subsets: *subsets, Version: api.Version, Log: slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: agentLogLevel(env.getenv)}))}
	cfg.APIToken = readSecret(*tokenFile, "--api-token-file")
	cfg.Password = readSecret(*passwordFile, "--password-file")
	cfg.S3SecretAccessKey = readSecret(*s3SecretFile, "--s3-secret-access-key-file")
	if pem := readSecret(*keyFile, "--key-file"); pem != "" {
		k, err := attest.ParsePrivateKey([]byte(pem))
		if err != nil {
			errs = append(errs, fmt.Errorf("--key-file: %w", err))
		}
		cfg.Key = k
	}
	if *repo != "" {
		id, err := strconv.ParseInt(*repo, 10, 64)
		if err != nil || id <= 0 {
			errs = append(errs, errors.New(env.t("cli.agent.repository_not_numeric")))
		}
		cfg.RepositoryID = id
	}
	if *apiURL == "" {
		errs = append(errs, errors.New(env.t("cli.agent.api_url_required")))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// restic's routine records at DEBUG (ARCHIPELAGO_AGENT_LOG_LEVEL=debug shows them); failures stay.
	rr, err := restic.New(ctx, restic.Config{Logger: slog.New(quietHandler{cfg.Log.Handler()})})
	if err != nil {
		return err
	}
	cfg.Restic = rr
	rep, err := attest.RunAgent(ctx, cfg)
	if err != nil {
		return err
	}
	p := rep.Statement.Predicate
	fmt.Fprintln(env.stdout, env.t("cli.agent.accepted", "ID", rep.Attestation.ID, "Outcome", p.Status, "Snapshot", short(p.SnapshotID),
		"Subset", p.CheckSubset, "Digest", rep.Attestation.StatementSHA256, "Entry", rep.Attestation.AuditSeq))
	for _, l := range p.Levels {
		fmt.Fprintf(env.stdout, "  %-9s %-7s %s\n", l.Level, l.Outcome, l.Summary)
	}
	if p.Status == "failed" || p.Status == "error" {
		return exitError{3} // attested, but the repository did not pass: make the timer's unit fail
	}
	return nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func cmdAgentKeygen(env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("agent keygen", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	out := fs.String("out", "", env.t("cli.agent.flag_out"))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New(env.t("cli.agent.out_required"))
	}
	priv, pub, err := attest.GenerateKey()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write the private key: %w", err)
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprint(env.stdout, string(pub))
	fmt.Fprintln(env.stderr, env.t("cli.agent.key_written", "File", *out))
	return nil
}

// agentLogLevel is the agent's log level: INFO, or DEBUG with ARCHIPELAGO_AGENT_LOG_LEVEL=debug.
func agentLogLevel(getenv config.Getenv) slog.Level {
	if v, _ := getenv("ARCHIPELAGO_AGENT_LOG_LEVEL"); strings.EqualFold(v, "debug") {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
