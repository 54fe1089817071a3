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
	"github.com/chatons/archipelago/internal/restic"
)

// agentUsage is `archipelago agent --help`: it needs no setting.
const agentUsage = `Usage:
  archipelago agent [flags]          run the member-side checks and push a signed attestation
  archipelago agent keygen --out FILE  write a new Ed25519 key (mode 0600) and print its public key

The agent runs on the member's own machine with the restic password, which never leaves it:
restic check with a rotating --read-data-subset, a sample restore with --verify and the canary
check, against the vault through the island's S3 endpoint, then pushes an in-toto statement in
a DSSE envelope signed with the key registered on the repository (docs/agent.md).

Every flag has an environment variable (in brackets); secrets are read from files.
`

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
		fmt.Fprint(env.stdout, agentUsage+"\nFlags:\n")
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
	}
	apiURL := fs.String("api-url", get("ARCHIPELAGO_AGENT_API_URL"), "the federation's URL [ARCHIPELAGO_AGENT_API_URL]")
	tokenFile := fs.String("api-token-file", get("ARCHIPELAGO_AGENT_API_TOKEN_FILE"), "file holding an API token of the member (a viewer token is enough) [ARCHIPELAGO_AGENT_API_TOKEN_FILE]")
	repo := fs.String("repository", get("ARCHIPELAGO_AGENT_REPOSITORY"), "the repository's id in Archipelago [ARCHIPELAGO_AGENT_REPOSITORY]")
	passwordFile := fs.String("password-file", get("ARCHIPELAGO_AGENT_PASSWORD_FILE"), "file holding the restic password [ARCHIPELAGO_AGENT_PASSWORD_FILE]")
	s3Key := fs.String("s3-access-key-id", get("ARCHIPELAGO_AGENT_S3_ACCESS_KEY_ID"), "the member's own S3 key on the vault [ARCHIPELAGO_AGENT_S3_ACCESS_KEY_ID]")
	s3SecretFile := fs.String("s3-secret-access-key-file", get("ARCHIPELAGO_AGENT_S3_SECRET_ACCESS_KEY_FILE"), "file holding its secret [ARCHIPELAGO_AGENT_S3_SECRET_ACCESS_KEY_FILE]")
	s3Endpoint := fs.String("s3-endpoint", get("ARCHIPELAGO_AGENT_S3_ENDPOINT"), "override the island's S3 endpoint the API gives [ARCHIPELAGO_AGENT_S3_ENDPOINT]")
	keyFile := fs.String("key-file", get("ARCHIPELAGO_AGENT_KEY_FILE"), "the agent's private key (archipelago agent keygen) [ARCHIPELAGO_AGENT_KEY_FILE]")
	stateDir := fs.String("state-dir", get("ARCHIPELAGO_AGENT_STATE_DIR"), "check rotation and restic cache (default $STATE_DIRECTORY or ~/.cache/archipelago-agent) [ARCHIPELAGO_AGENT_STATE_DIR]")
	subsets := fs.Int("check-subsets", 0, "read 1/N of the data per run, N rotating (default: the repository's policy) [ARCHIPELAGO_AGENT_CHECK_SUBSETS]")
	if v := get("ARCHIPELAGO_AGENT_CHECK_SUBSETS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("ARCHIPELAGO_AGENT_CHECK_SUBSETS must be a positive number")
		}
		*subsets = n
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	var errs []error
	readSecret := func(path, name string) string {
		if path == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
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
		Subsets: *subsets, Version: api.Version, Log: slog.New(slog.NewTextHandler(env.stderr, nil))}
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
			errs = append(errs, errors.New("--repository must be the repository's numeric id"))
		}
		cfg.RepositoryID = id
	}
	if *apiURL == "" {
		errs = append(errs, errors.New("--api-url is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	rr, err := restic.New(ctx, restic.Config{Logger: cfg.Log})
	if err != nil {
		return err
	}
	cfg.Restic = rr
	rep, err := attest.RunAgent(ctx, cfg)
	if err != nil {
		return err
	}
	p := rep.Statement.Predicate
	fmt.Fprintf(env.stdout, "attestation %d accepted: %s (snapshot %s, check subset %s); statement sha256 %s, audit entry %d\n",
		rep.Attestation.ID, p.Status, short(p.SnapshotID), p.CheckSubset, rep.Attestation.StatementSHA256, rep.Attestation.AuditSeq)
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
	out := fs.String("out", "", "where to write the private key (mode 0600; an existing file is not overwritten)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out FILE is required (e.g. /etc/archipelago-agent/agent.key)")
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
	fmt.Fprintf(env.stderr, "private key written to %s (keep it on this machine); register the public key above on the repository (portal or POST /v1/repositories/{id}/agent/keys)\n", *out)
	return nil
}
