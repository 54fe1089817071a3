// Command agentbench is benchmark (b) of issue 15 (docs/agent.md, "Benchmark"): an
// `archipelago agent` run (API reads, restic snapshots, check of a data subset, ls, a sample
// restore with --verify, the canary, signing and pushing the attestation) against the same
// restic commands typed by hand on the same repository, in paired rounds. It prints the
// ratio; the goal is ≤ 1.05 × plain plus at most 2 s.
//
// Run it through bench/agent.sh (throwaway PostgreSQL and MinIO from `archipelago testenv`).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/verify"
)

func main() {
	sizeMiB := flag.Int("size-mib", 64, "size of the backed-up data (4 MiB files)")
	rounds := flag.Int("rounds", 3, "paired rounds")
	subsets := flag.Int("subsets", 4, "check --read-data-subset n/N, n rotating")
	flag.Parse()
	if err := bench(context.Background(), *sizeMiB, *rounds, *subsets); err != nil {
		fmt.Fprintln(os.Stderr, "agentbench:", err)
		os.Exit(1)
	}
}

func bench(ctx context.Context, sizeMiB, rounds, subsets int) error {
	admin := os.Getenv(testenv.EnvPGURL)
	s3 := struct{ Endpoint, AccessKey, SecretKey, Region string }{os.Getenv(testenv.EnvS3Endpoint), os.Getenv(testenv.EnvS3AccessKey),
		os.Getenv(testenv.EnvS3SecretKey), os.Getenv(testenv.EnvS3Region)}
	if admin == "" || s3.Endpoint == "" {
		return errors.New("no PostgreSQL/MinIO: run through bench/agent.sh")
	}
	dir, err := os.MkdirTemp("", "agentbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// A database of its own, migrated by the app.
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	db := "agentbench_" + strings.ToLower(rand.Text()[:10])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return err
	}
	defer func() {
		if c, err := pgx.Connect(context.Background(), admin); err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}()
	conn.Close(ctx)
	pc, err := pgx.ParseConfig(admin)
	if err != nil {
		return err
	}
	pc.Database = db
	vars := map[string]string{"ARCHIPELAGO_DATABASE_URL": pc.ConnString(), "ARCHIPELAGO_MASTER_KEY": seal.NewKey(),
		"ARCHIPELAGO_AUTO_MIGRATE": "true", "ARCHIPELAGO_LOG_LEVEL": "error"}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Server.Handler()}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	apiURL := "http://" + l.Addr().String()

	// A member, an island (this MinIO), a vault (a bucket), a blind repository, a person.
	root, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		return err
	}
	bucket := "agentbench-" + strings.ToLower(rand.Text()[:10])
	if err := root.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3.Region}); err != nil {
		return err
	}
	defer func() {
		_ = root.RemoveBucketWithOptions(context.Background(), bucket, minio.RemoveBucketOptions{ForceDelete: true})
	}()
	actx := audit.WithActor(ctx, audit.System("agentbench"))
	var member, vaultID int64
	email, password := "runner@agent.example", "correct-horse-"+rand.Text()
	err = pgx.BeginFunc(actx, a.Pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO members (slug, name) VALUES ('bench', 'Bench') RETURNING id`).Scan(&member); err != nil {
			return err
		}
		var island int64
		if err := tx.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
			replication_factor) VALUES ('bench', 'http://127.0.0.1:1', 'x', $1, $2, 1) RETURNING id`, "http://"+s3.Endpoint, s3.Region).Scan(&island); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes,
			status, placement) VALUES ($1, $2, $3, $3, $4, 1099511627776, 'active', 'automatic') RETURNING id`,
			member, island, bucket, strings.Repeat("ab", 32)).Scan(&vaultID); err != nil {
			return err
		}
		u, err := a.Identity.UserCreate(actx, tx, identity.NewUser{Email: email, Password: password})
		if err != nil {
			return err
		}
		return a.Identity.MembershipSet(actx, tx, u.ID, member, identity.RoleViewer)
	})
	if err != nil {
		return err
	}
	login, err := a.Identity.Login(actx, email, password, "127.0.0.1", "agentbench")
	if err != nil {
		return err
	}
	reg, err := a.Verify.RepositoryCreate(actx, verify.RepositoryInput{MemberID: member, VaultID: vaultID, Name: "bench", Path: "restic/bench",
		Policy: verify.Policy{SampleFiles: ptr(100000), SampleBytes: ptr(int64(1) << 40), CheckSubsets: ptr(subsets)}})
	if err != nil {
		return err
	}
	privPEM, pubPEM, err := attest.GenerateKey()
	if err != nil {
		return err
	}
	key, _ := attest.ParsePrivateKey(privPEM)
	if _, err := a.Attest.KeyAdd(actx, reg.ID, member, "bench", string(pubPEM)); err != nil {
		return err
	}

	rr, err := restic.New(ctx, restic.Config{})
	if err != nil {
		return err
	}
	repoPW := rand.Text() + rand.Text()
	repo := restic.Repo{URL: "s3:http://" + s3.Endpoint + "/" + bucket + "/restic/bench", Password: repoPW,
		S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey, S3Region: s3.Region}
	if _, err := rr.Init(ctx, repo); err != nil {
		return err
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	for i := range max(sizeMiB/4, 1) {
		b := make([]byte, 4<<20)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%03d.bin", i)), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(src, "archipelago-canary.txt"), []byte(reg.CanaryToken+"\n"), 0o644); err != nil {
		return err
	}
	sum, err := rr.Backup(ctx, repo, restic.BackupOptions{Paths: []string{src}})
	if err != nil {
		return err
	}
	_ = os.RemoveAll(src)
	fmt.Printf("== agent: an `archipelago agent` run vs the same restic commands by hand, %d MiB snapshot %s, check subsets n/%d\n",
		sizeMiB, sum.SnapshotID[:8], subsets)

	state := filepath.Join(dir, "agent-state")
	agentOnce := func() (time.Duration, string, error) {
		t0 := time.Now()
		rep, err := attest.RunAgent(ctx, attest.AgentConfig{APIURL: apiURL, APIToken: login.AccessToken, RepositoryID: reg.ID,
			Password: repoPW, S3AccessKeyID: s3.AccessKey, S3SecretAccessKey: s3.SecretKey, Key: key, StateDir: state, Restic: rr, Version: "bench"})
		d := time.Since(t0)
		if err != nil {
			return d, "", err
		}
		if rep.Statement.Predicate.Status != "passed" {
			return d, "", fmt.Errorf("the agent's run did not pass: %s", rep.Statement.Predicate.Reason)
		}
		return d, rep.Statement.Predicate.CheckSubset, nil
	}
	plainOnce := func(subset string) (time.Duration, error) {
		cache := filepath.Join(dir, "plain-cache") // kept warm, like the agent's
		target := filepath.Join(dir, "plain-target")
		defer os.RemoveAll(target)
		t0 := time.Now()
		for _, args := range [][]string{
			{"snapshots", "--json", "--no-lock"},
			{"check", "--no-lock", "--read-data-subset", subset},
			{"ls", "--json", "--no-lock", sum.SnapshotID},
			{"restore", "--no-lock", "--verify", "--target", target, sum.SnapshotID},
		} {
			cmd := exec.CommandContext(ctx, rr.Binary(), append([]string{"--cache-dir", cache, "--quiet"}, args...)...)
			cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo.URL, "RESTIC_PASSWORD="+repoPW,
				"AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey, "AWS_DEFAULT_REGION="+s3.Region)
			if out, err := cmd.CombinedOutput(); err != nil {
				return 0, fmt.Errorf("restic %s: %w: %s", strings.Join(args, " "), err, out)
			}
		}
		return time.Since(t0), nil
	}
	// Warm-up: caches and MinIO's files in the page cache, for both.
	if _, _, err := agentOnce(); err != nil {
		return err
	}
	if _, err := plainOnce(fmt.Sprintf("1/%d", subsets)); err != nil {
		return err
	}
	var agentT, plainT []time.Duration
	var goal []float64
	for i := range rounds {
		var ad, pd time.Duration
		var subset string
		if i%2 == 0 {
			if ad, subset, err = agentOnce(); err != nil {
				return err
			}
			if pd, err = plainOnce(subset); err != nil {
				return err
			}
		} else {
			// the agent's next subset, by hand first
			subset = fmt.Sprintf("%d/%d", (i+1)%subsets+1, subsets)
			if pd, err = plainOnce(subset); err != nil {
				return err
			}
			var got string
			if ad, got, err = agentOnce(); err != nil {
				return err
			}
			if got != subset {
				return fmt.Errorf("round %d: the agent read subset %s, the hand run %s", i+1, got, subset)
			}
		}
		agentT, plainT = append(agentT, ad), append(plainT, pd)
		goal = append(goal, ad.Seconds()/(1.05*pd.Seconds()+2))
		fmt.Printf("round %d: subset %s  by hand %.2fs  agent %.2fs\n", i+1, subset, pd.Seconds(), ad.Seconds())
	}
	p, ag := median(plainT), median(agentT)
	g := median(goal)
	fmt.Printf("RESULT agent: ratio %.3f (agent/by hand, medians %.2fs / %.2fs); median of agent ÷ (1.05 × by hand + 2 s) per round %.3f — goal ≤ 1.05 plus at most 2 s (≤ 1.000): %s\n",
		ag.Seconds()/p.Seconds(), ag.Seconds(), p.Seconds(), g, map[bool]string{true: "MET", false: "NOT MET"}[g <= 1])
	return nil
}

func median[T time.Duration | float64](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func ptr[T any](v T) *T { return &v }
