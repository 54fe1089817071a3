package attest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/verify"
)

// AgentConfig is what `archipelago agent` runs with, on the member's machine.
type AgentConfig struct {
	APIURL       string // the federation's URL (https://archipelago.example.org)
	APIToken     string // an API token of the member (a viewer token is enough)
	RepositoryID int64
	Password     string // the restic password: used here, never sent
	// The member's own S3 key on the vault (read access is enough).
	S3AccessKeyID, S3SecretAccessKey string
	// S3Endpoint overrides the island's S3 endpoint the API gives (a proxy, a test).
	S3Endpoint string
	Key        ed25519.PrivateKey
	// StateDir keeps the check rotation and restic's cache (default
	// $STATE_DIRECTORY or ~/.cache/archipelago-agent).
	StateDir string
	// Subsets: `restic check --read-data-subset n/Subsets`, n rotating by run (default:
	// the repository's policy).
	Subsets int
	Restic  *restic.Runner
	HTTP    *http.Client // default: 60 s timeout
	Log     *slog.Logger
	Now     func() time.Time
	Version string
}

// AgentReport is what one agent run did.
type AgentReport struct {
	Statement   Statement
	Envelope    Envelope
	Attestation *Attestation // as the federation accepted it
}

// repoInfo is what the agent reads of the repository and its vault from the API.
type repoInfo struct {
	ID          int64  `json:"id"`
	VaultID     int64  `json:"vault_id"`
	Path        string `json:"path"`
	CanaryToken string `json:"canary_token"`
	Effective   struct {
		RPOSeconds   int64  `json:"rpo_seconds"`
		RTOSeconds   int64  `json:"rto_seconds"`
		SampleFiles  int    `json:"sample_files"`
		SampleBytes  int64  `json:"sample_bytes"`
		CheckSubsets int    `json:"check_subsets"`
		CanaryPath   string `json:"canary_path"`
	} `json:"effective_policy"`
}

type vaultInfo struct {
	S3Endpoint string `json:"s3_endpoint"`
	S3Region   string `json:"s3_region"`
	BucketName string `json:"bucket_name"`
}

// APIError is a refusal by the federation's API, with its JSON error.
type APIError struct {
	Status  int
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("the federation answered %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	return s + ": " + e.Message
}

func (c *AgentConfig) call(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.APIURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		var wrap struct {
			Error *APIError `json:"error"`
		}
		if json.Unmarshal(raw, &wrap) == nil && wrap.Error != nil {
			e.Code, e.Field, e.Message = wrap.Error.Code, wrap.Error.Field, wrap.Error.Message
		} else if json.Unmarshal(raw, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(raw[:min(len(raw), 300)]))
		}
		e.Status = resp.StatusCode
		return fmt.Errorf("%s %s: %w", method, path, e)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
		}
	}
	return nil
}

// state is the agent's memory between runs: how many runs it attested (the check rotation).
type state struct {
	Runs int64 `json:"runs"`
}

func (c *AgentConfig) statePath() string {
	return filepath.Join(c.StateDir, "repository-"+strconv.FormatInt(c.RepositoryID, 10)+".json")
}

func (c *AgentConfig) loadState() state {
	var st state
	if b, err := os.ReadFile(c.statePath()); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func (c *AgentConfig) saveState(st state) error {
	b, _ := json.Marshal(st)
	tmp := c.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.statePath())
}

// Validate says what is missing, naming the setting.
func (c *AgentConfig) Validate() error {
	var errs []error
	need := func(ok bool, name string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	need(c.APIURL != "", "ARCHIPELAGO_AGENT_API_URL (--api-url)")
	need(c.APIToken != "", "ARCHIPELAGO_AGENT_API_TOKEN_FILE (--api-token-file)")
	need(c.RepositoryID > 0, "ARCHIPELAGO_AGENT_REPOSITORY (--repository)")
	need(c.Password != "", "ARCHIPELAGO_AGENT_PASSWORD_FILE (--password-file)")
	need(c.S3AccessKeyID != "", "ARCHIPELAGO_AGENT_S3_ACCESS_KEY_ID (--s3-access-key-id)")
	need(c.S3SecretAccessKey != "", "ARCHIPELAGO_AGENT_S3_SECRET_ACCESS_KEY_FILE (--s3-secret-access-key-file)")
	need(c.Key != nil, "ARCHIPELAGO_AGENT_KEY_FILE (--key-file)")
	need(c.Restic != nil, "restic")
	return errors.Join(errs...)
}

// RunAgent runs the levels that need the password against the vault through the island's
// S3 endpoint, signs the statement and pushes it. The report holds the statement even
// when pushing it failed (the error says why).
func RunAgent(ctx context.Context, c AgentConfig) (AgentReport, error) {
	var rep AgentReport
	if err := c.Validate(); err != nil {
		return rep, err
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 60 * time.Second}
	}
	c.Log = cmp.Or(c.Log, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StateDir == "" {
		c.StateDir = os.Getenv("STATE_DIRECTORY")
	}
	if c.StateDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return rep, fmt.Errorf("no state directory: set ARCHIPELAGO_AGENT_STATE_DIR: %w", err)
		}
		c.StateDir = filepath.Join(dir, "archipelago-agent")
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return rep, fmt.Errorf("create the state directory: %w", err)
	}
	id := strconv.FormatInt(c.RepositoryID, 10)
	var repo repoInfo
	if err := c.call(ctx, "GET", "/v1/repositories/"+id, nil, &repo); err != nil {
		return rep, fmt.Errorf("read the repository: %w", err)
	}
	var vault vaultInfo
	if err := c.call(ctx, "GET", "/v1/vaults/"+strconv.FormatInt(repo.VaultID, 10), nil, &vault); err != nil {
		return rep, fmt.Errorf("read the vault: %w", err)
	}
	st := c.loadState()
	subsets := cmp.Or(c.Subsets, repo.Effective.CheckSubsets, 12)
	scratch, err := os.MkdirTemp(c.StateDir, "run-")
	if err != nil {
		return rep, fmt.Errorf("create a scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	started := c.Now().UTC()
	c.Log.InfoContext(ctx, "agent run", "repository_id", c.RepositoryID, "bucket", vault.BucketName, "path", repo.Path,
		"check_subset", fmt.Sprintf("%d/%d", st.Runs%int64(subsets)+1, subsets))
	res := verify.MemberRun(ctx, c.Restic, verify.MemberCheck{
		Creds: verify.Credentials{Endpoint: cmp.Or(c.S3Endpoint, vault.S3Endpoint), Region: vault.S3Region, Bucket: vault.BucketName,
			AccessKeyID: c.S3AccessKeyID, SecretAccessKey: c.S3SecretAccessKey},
		Prefix: repo.Path, Password: c.Password, CanaryToken: repo.CanaryToken, CanaryPath: repo.Effective.CanaryPath,
		SampleFiles: repo.Effective.SampleFiles, SampleBytes: repo.Effective.SampleBytes, RPOSeconds: repo.Effective.RPOSeconds,
		RTOSeconds: repo.Effective.RTOSeconds, Subset: int(st.Runs%int64(subsets)) + 1, Subsets: subsets,
		Scratch: scratch, CacheDir: filepath.Join(c.StateDir, "cache"), Seed: binary.LittleEndian.Uint64(seed[:])}, c.Now)
	if res.Postponed != "" {
		return rep, fmt.Errorf("not run: %s; run the agent again later", res.Postponed)
	}
	rep.Statement = BuildStatement(c.RepositoryID, res, started, c.Now().UTC(), c.Version)
	env, _, err := Sign(rep.Statement, c.Key)
	if err != nil {
		return rep, err
	}
	rep.Envelope = env
	body, _ := json.Marshal(env)
	var att Attestation
	if err := c.call(ctx, "POST", "/v1/repositories/"+id+"/attestations", body, &att); err != nil {
		return rep, fmt.Errorf("push the attestation: %w", err)
	}
	rep.Attestation = &att
	st.Runs++
	if err := c.saveState(st); err != nil {
		c.Log.WarnContext(ctx, "save the agent's state (the check rotation restarts)", "err", err)
	}
	return rep, nil
}

// BuildStatement makes the in-toto statement of a member-side run.
func BuildStatement(repoID int64, res verify.MemberResult, started, finished time.Time, version string) Statement {
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	p := Predicate{RepositoryID: repoID, SnapshotID: res.SnapshotID, StartedAt: started.UTC(), FinishedAt: finished.UTC(),
		Status: res.Status, Reason: res.Reason, CheckSubset: res.CheckSubset, AgentVersion: version, Nonce: hex.EncodeToString(nonce[:])}
	if !res.SnapshotTime.IsZero() {
		p.SnapshotTime = res.SnapshotTime.UTC()
	}
	for _, l := range res.Levels {
		lv := Level{Level: l.Level, Outcome: l.Outcome, Summary: l.Summary, DurationMS: l.DurationMS, Figures: map[string]any{}}
		for k, v := range l.Details {
			switch v.(type) {
			case int, int64, float64, string, bool, time.Time:
				lv.Figures[k] = v
			}
		}
		p.Levels = append(p.Levels, lv)
	}
	subj := Subject{Name: SubjectPrefix + strconv.FormatInt(repoID, 10), Digest: map[string]string{}}
	if res.SnapshotID != "" {
		subj.Digest["sha256"] = res.SnapshotID
	} else {
		subj.Digest["sha256"] = strings.Repeat("0", 64) // no snapshot: nothing to name
	}
	return Statement{Type: StatementType, Subject: []Subject{subj}, PredicateType: PredicateType, Predicate: p}
}
