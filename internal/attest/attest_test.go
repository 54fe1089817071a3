package attest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/verify"
)

// setup is one app with member A's repository (rows inserted as internal/verify's tests
// do) and an agent key registered on it through the API.
type setup struct {
	env    *apptest.Env
	f      *apptest.Fixture
	repoID int64
	other  int64 // a second repository of A
	key    ed25519.PrivateKey
	keyID  int64
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	env := apptest.New(t)
	f := env.Fixture()
	ctx := audit.WithActor(context.Background(), audit.System("attest-test"))
	var islandID, vaultID int64
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
		replication_factor) VALUES ($1, 'http://127.0.0.1:1', 'x', 'https://s3.attest.example', 'garage', 1) RETURNING id`,
		testenv.Unique("attest-")).Scan(&islandID); err != nil {
		t.Fatal(err)
	}
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes,
		status, placement) VALUES ($1, $2, $3, $3, $4, 1, 'active', 'automatic') RETURNING id`,
		f.MemberA.ID, islandID, testenv.Unique("attest-"), strings.Repeat("ab", 32)).Scan(&vaultID); err != nil {
		t.Fatal(err)
	}
	s := &setup{env: env, f: f}
	for i, name := range []string{"web01", "db01"} {
		repo, err := env.App.Verify.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: f.MemberA.ID, VaultID: vaultID,
			Name: name, Path: "restic/" + name})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			s.repoID = repo.ID
		} else {
			s.other = repo.ID
		}
	}
	privPEM, pubPEM, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if s.key, err = attest.ParsePrivateKey(privPEM); err != nil {
		t.Fatal(err)
	}
	res := env.Do(apptest.Req{Method: "POST", Path: fmt.Sprintf("/v1/repositories/%d/agent/keys", s.repoID), Token: f.AdminA.Access,
		Body: map[string]any{"name": "backup-host", "public_key": string(pubPEM)}})
	var k attest.Key
	res.Decode(t, &k)
	if res.Status != 201 || k.KeyID != attest.KeyID(s.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("register the agent key: %d %s", res.Status, res.Body)
	}
	s.keyID = k.ID
	return s
}

// statement is a passing run of repository repoID that finished at finished.
func statement(repoID int64, finished time.Time) attest.Statement {
	snap := strings.Repeat("5a", 32)
	return attest.BuildStatement(repoID, verify.MemberResult{Status: "passed", Reason: "every level passed", SnapshotID: snap,
		CheckSubset: "1/12", Levels: []verify.LevelResult{{Level: "integrity", Outcome: "passed", Summary: "ok", Details: map[string]any{"subset": "1/12"}}}},
		finished.Add(-time.Minute), finished, "test")
}

func sign(t *testing.T, st attest.Statement, key ed25519.PrivateKey) attest.Envelope {
	t.Helper()
	env, _, err := attest.Sign(st, key)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func (s *setup) push(env attest.Envelope, repoID int64) *apptest.Response {
	return s.env.Do(apptest.Req{Method: "POST", Path: fmt.Sprintf("/v1/repositories/%d/attestations", repoID), Token: s.f.ViewerA.Access, Body: env})
}

func (s *setup) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := s.env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM agent_attestations WHERE repository_id IN ($1, $2)`,
		s.repoID, s.other).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAttestationRefusals: a statement signed by the registered key is accepted once (201,
// its hash in the audit log); a tampered statement, a key not registered, a registered
// keyid with another key's signature, a replay, an older statement, a stale one, one from
// the future, one about another repository, one about a snapshot seen deleted, one signed
// by a revoked key and a malformed envelope are each refused with the 4xx naming why and
// which field, and none is stored.
func TestAttestationRefusals(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	now := time.Now()

	good := sign(t, statement(s.repoID, now.Add(-10*time.Minute)), s.key)
	res := s.push(good, s.repoID)
	var att attest.Attestation
	res.Decode(t, &att)
	if res.Status != 201 || att.Status != "passed" || att.AuditSeq == 0 || att.KeyName != "backup-host" {
		t.Fatalf("a good statement: %d %s", res.Status, res.Body)
	}
	entry := s.env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/audit/entries/%d", att.AuditSeq), Token: s.f.AdminA.Access})
	if entry.Status != 200 || !strings.Contains(string(entry.Body), att.StatementSHA256) || !strings.Contains(string(entry.Body), "attestation.accept") {
		t.Fatalf("the audit entry of the attestation: %d %s", entry.Status, entry.Body)
	}

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	tamper := func(e attest.Envelope) attest.Envelope {
		raw, _ := base64.StdEncoding.DecodeString(e.Payload)
		var st map[string]any
		_ = json.Unmarshal(raw, &st)
		st["predicate"].(map[string]any)["status"] = "failed"
		raw, _ = json.Marshal(st)
		e.Payload = base64.StdEncoding.EncodeToString(raw)
		return e
	}
	forged := sign(t, statement(s.repoID, now), other)
	forged.Signatures[0].KeyID = good.Signatures[0].KeyID
	malformed := sign(t, statement(s.repoID, now), s.key)
	malformed.Payload = "%%%"
	gone := statement(s.repoID, now)
	gone.Predicate.SnapshotID = strings.Repeat("0d", 32)
	gone.Subject[0].Digest["sha256"] = gone.Predicate.SnapshotID
	if _, err := s.env.App.Pool.Exec(context.Background(), `INSERT INTO restore_test_snapshots (repository_id, snapshot_id, snapshot_time, gone_at)
		VALUES ($1, $2, now() - interval '2 days', now() - interval '1 day')`, s.repoID, gone.Predicate.SnapshotID); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name         string
		env          attest.Envelope
		repo         int64
		status       int
		code, field  string
		beforeRevoke bool
	}{
		{"tampered statement", tamper(sign(t, statement(s.repoID, now), s.key)), s.repoID, 422, "bad_signature", "signatures[0].sig", false},
		{"unregistered key", sign(t, statement(s.repoID, now), other), s.repoID, 422, "unknown_key", "signatures[0].keyid", false},
		{"registered keyid, other key", forged, s.repoID, 422, "bad_signature", "signatures[0].sig", false},
		{"replay", good, s.repoID, 409, "conflict", "payload", false},
		{"older than the last accepted", sign(t, statement(s.repoID, now.Add(-20*time.Minute)), s.key), s.repoID, 409, "conflict", "predicate.finished_at", false},
		{"stale", sign(t, statement(s.repoID, now.Add(-attest.DefaultMaxAge-time.Hour)), s.key), s.repoID, 422, "stale", "predicate.finished_at", false},
		{"from the future", sign(t, statement(s.repoID, now.Add(time.Hour)), s.key), s.repoID, 422, "future", "predicate.finished_at", false},
		{"about another repository", sign(t, statement(s.other, now), s.key), s.repoID, 422, "wrong_repository", "predicate.repository_id", false},
		{"pushed to a repository without key", sign(t, statement(s.other, now), s.key), s.other, 422, "no_agent_key", "signatures", false},
		{"snapshot seen deleted", sign(t, gone, s.key), s.repoID, 422, "snapshot_gone", "predicate.snapshot_id", false},
		{"malformed payload", malformed, s.repoID, 400, "invalid_field", "payload", false},
	}
	for _, c := range cases {
		res := s.push(c.env, c.repo)
		if res.Status != c.status || res.ErrorCode() != c.code || res.ErrorField() != c.field {
			t.Errorf("%s: got %d %s, want %d %s on %s", c.name, res.Status, res.Body, c.status, c.code, c.field)
		}
	}
	if n := s.count(t); n != 1 {
		t.Errorf("%d attestations stored, want only the good one", n)
	}

	// Revoked: the key's next statement is refused, naming the revocation (audited).
	res = s.env.Do(apptest.Req{Method: "DELETE", Path: fmt.Sprintf("/v1/repositories/%d/agent/keys/%d", s.repoID, s.keyID), Token: s.f.AdminA.Access})
	if res.Status != 200 {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	res = s.push(sign(t, statement(s.repoID, now), s.key), s.repoID)
	if res.Status != 422 || res.ErrorCode() != "key_revoked" || res.ErrorField() != "signatures[0].keyid" {
		t.Errorf("signed by a revoked key: %d %s", res.Status, res.Body)
	}
	var actions []string
	rows, err := s.env.App.Pool.Query(context.Background(), `SELECT action FROM audit_entries WHERE action LIKE 'agent_key.%' OR action = 'attestation.accept' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	if strings.Join(actions, ",") != "agent_key.add,attestation.accept,agent_key.revoke" {
		t.Errorf("audited actions: %v", actions)
	}
}

// TestStaleAgentAlert (fixed clock): an agent expected every hour with 10 minutes' grace
// raises one agent.stale event once 70 minutes have passed without a report, not before
// and not twice; a report clears it, and the next silence raises it again.
func TestStaleAgentAlert(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	clock := t0
	svc := attest.New(s.env.App.Pool, nil, attest.Config{Now: func() time.Time { return clock }})
	ctx := audit.WithActor(context.Background(), audit.System("attest-test"))
	if err := svc.ScheduleSet(ctx, s.repoID, s.f.MemberA.ID, 3600, 600); err != nil {
		t.Fatal(err)
	}
	events := func() int {
		var n int
		if err := s.env.App.Pool.QueryRow(ctx, `SELECT count(*) FROM notify_events WHERE kind = 'agent.stale' AND member_id = $1 AND subject = $2`,
			s.f.MemberA.ID, fmt.Sprintf("repository/%d/agent", s.repoID)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	check := func(at time.Duration, raised, total int) {
		t.Helper()
		clock = t0.Add(at)
		n, err := svc.CheckStale(ctx)
		if err != nil || n != raised || events() != total {
			t.Fatalf("at +%s: raised %d (%v), %d events; want %d, %d", at, n, err, events(), raised, total)
		}
	}
	check(69*time.Minute, 0, 0)
	check(71*time.Minute, 1, 1)
	if sum, _ := svc.SummaryGet(ctx, s.repoID); sum.State != "stale" {
		t.Errorf("summary while stale: %+v", sum)
	}
	check(80*time.Minute, 0, 1) // raised once

	clock = t0.Add(90 * time.Minute)
	if _, err := svc.Accept(ctx, s.repoID, s.f.MemberA.ID, sign(t, statement(s.repoID, clock.Add(-time.Minute)), s.key)); err != nil {
		t.Fatalf("the agent reports again: %v", err)
	}
	if sum, _ := svc.SummaryGet(ctx, s.repoID); sum.State != "current" || sum.Schedule.AlertedAt != nil {
		t.Errorf("summary after the report: %+v", sum)
	}
	check(150*time.Minute, 0, 1)               // 60 min after the report: within interval + grace
	check(90*time.Minute+71*time.Minute, 1, 2) // silent again
}
