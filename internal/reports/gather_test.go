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
