package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// stateAttested: registered without a password, with an agent key; one member-side agent
// run (what `archipelago agent` does, in process: the sandbox has no API token for it) is
// attested, so the portal shows "attested by the member" (docs/agent.md).
const stateAttested = "attested"

// attestDemo registers an agent key on reg and pushes one signed attestation of a run of
// the password levels with the member's own key and password, through the island's S3
// endpoint, as the agent does; the schedule expects the agent daily.
func (s repoSeeder) attestDemo(ctx context.Context, reg verify.Repository, repo restic.Repo, key vaults.NewKey) error {
	privPEM, pubPEM, err := attest.GenerateKey()
	if err != nil {
		return err
	}
	priv, err := attest.ParsePrivateKey(privPEM)
	if err != nil {
		return err
	}
	if _, err := s.a.Attest.KeyAdd(ctx, reg.ID, s.memberID, "demo agent", string(pubPEM)); err != nil {
		return fmt.Errorf("register the agent key: %w", err)
	}
	if err := s.a.Attest.ScheduleSet(ctx, reg.ID, s.memberID, 86400, 6*3600); err != nil {
		return err
	}
	scratch := filepath.Join(s.dir, "agent")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	e := reg.Effective
	started := time.Now().UTC()
	res := verify.MemberRun(ctx, s.r, verify.MemberCheck{
		Creds: verify.Credentials{Endpoint: s.vault.S3Endpoint, Region: s.vault.S3Region, Bucket: s.vault.BucketName,
			AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey},
		Prefix: reg.Path, Password: repo.Password, CanaryToken: reg.CanaryToken, CanaryPath: e.CanaryPath,
		SampleFiles: e.SampleFiles, SampleBytes: e.SampleBytes, RPOSeconds: e.RPOSeconds, RTOSeconds: e.RTOSeconds,
		Subset: 1, Subsets: max(e.CheckSubsets, 1), Scratch: scratch, Seed: binary.LittleEndian.Uint64(seed[:])}, nil)
	st := attest.BuildStatement(reg.ID, res, started, time.Now().UTC(), api.Version)
	env, _, err := attest.Sign(st, priv)
	if err != nil {
		return err
	}
	if _, err := s.a.Attest.Accept(ctx, reg.ID, s.memberID, env); err != nil {
		return fmt.Errorf("push the demo attestation: %w", err)
	}
	return nil
}
