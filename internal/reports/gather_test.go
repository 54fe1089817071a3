package reports_test

import (
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestFederationReportListsEveryIncident: a federation report holds every warning and
// critical event of its period, however many (it used to stop at 1,000 without a word).
func TestFederationReportListsEveryIncident(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 3, VaultsPerMember: 1, Days: 1}); err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC().Truncate(time.Second)
	p := reports.Period{Kind: "custom", Start: end.Add(-7 * 24 * time.Hour), End: end}
	// 1,200 incidents in the period, plus an info event and one outside it (neither counts).
	if _, err := pool.Exec(ctx, `INSERT INTO notify_events (member_id, kind, severity, subject, title, at)
		SELECT (SELECT min(id) FROM members), 'restore.failed', CASE WHEN g % 2 = 0 THEN 'critical' ELSE 'warning' END,
			'repository/' || g, 'failed ' || g, $1::timestamptz - g * interval '1 second'
		FROM generate_series(1, 1200) g`, end); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO notify_events (kind, severity, subject, title, at) VALUES
		('pledge.down', 'info', 'pledge/1', 'info', $1::timestamptz - interval '1 hour'),
		('pledge.down', 'critical', 'pledge/1', 'before', $1::timestamptz - interval '8 days')`, end); err != nil {
		t.Fatal(err)
	}
	in, err := reports.Gather(ctx, pool, reports.ScopeFederation, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Incidents) != 1200 {
		t.Fatalf("%d incidents gathered, want all 1200", len(in.Incidents))
	}
	if first, last := in.Incidents[0].Title, in.Incidents[len(in.Incidents)-1].Title; first != "failed 1200" || last != "failed 1" {
		t.Fatalf("incidents not oldest first: %q … %q", first, last)
	}
}

// TestReportShowsTheMembersAttestation: a repository's evidence in a report carries, beside the
// federation's levels, the latest attestation the member's agent signed before the period's
// end (produced by "member"); a later one does not leak into an earlier period.
func TestReportShowsTheMembersAttestation(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 1, VaultsPerMember: 1, Days: 1}); err != nil {
		t.Fatal(err)
	}
	var repoID int64
	var member reports.MemberRef
	if err := pool.QueryRow(ctx, `SELECT r.id, m.id, m.slug, m.name FROM restic_repositories r JOIN members m ON m.id = r.member_id
		ORDER BY r.id LIMIT 1`).Scan(&repoID, &member.ID, &member.Slug, &member.Name); err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC().Truncate(time.Second)
	if _, err := pool.Exec(ctx, `WITH k AS (INSERT INTO agent_keys (repository_id, name, public_key, key_id)
			VALUES ($1, 'agent', decode(repeat('00', 32), 'hex'), repeat('ab', 32)) RETURNING id)
		INSERT INTO agent_attestations (repository_id, agent_key_id, statement_sha256, envelope, status, started_at, finished_at, audit_seq)
		SELECT $1, k.id, x.sha, '{}', x.status, x.at, x.at, 0 FROM k, (VALUES
			(repeat('01', 32), 'passed', $2::timestamptz - interval '1 hour'),
			(repeat('02', 32), 'failed', $2::timestamptz + interval '1 hour')) x(sha, status, at)`, repoID, end); err != nil {
		t.Fatal(err)
	}
	in, err := reports.Gather(ctx, pool, reports.ScopeMember, &member, reports.Period{Kind: "custom", Start: end.Add(-24 * time.Hour), End: end})
	if err != nil {
		t.Fatal(err)
	}
	var got []reports.Evidence
	for _, r := range in.Repositories {
		if r.ID == repoID {
			got = r.Evidence
		}
	}
	var member1 []reports.Evidence
	for _, e := range got {
		if e.Producer == "member" {
			member1 = append(member1, e)
		}
	}
	if len(member1) != 1 || member1[0].Kind != "attestation" || member1[0].Outcome != "passed" {
		t.Fatalf("member evidence %+v (all: %+v), want the one attestation before the period's end, passed", member1, got)
	}
}
