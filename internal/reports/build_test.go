package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC) // a Monday

func i64(v int64) *int64        { return &v }
func f64(v float64) *float64    { return &v }
func at(h int) time.Time        { return t0.Add(time.Duration(h) * time.Hour) }
func tp(t time.Time) *time.Time { return &t }

// run builds a finished run h hours into the week.
func run(id int64, h int, status, reason string, ageH int64, deleted int, throughput float64) RunInput {
	r := RunInput{ID: id, Status: status, Reason: reason, FinishedAt: at(h), DurationMS: i64(60_000 + id*1000),
		SnapshotAgeSeconds: i64(ageH * 3600), DeletedSnapshots: deleted}
	if throughput > 0 {
		r.RestoreSeconds, r.ThroughputBps, r.RepoSizeBytes = f64(20), f64(throughput), i64(400_000_000_000)
	}
	return r
}

var checkpointFixture = Checkpoint{Origin: "archipelago.example/archipelago-audit", TreeSize: 42,
	RootHash:    "q1mUNnX8sLkt0bFqWJtBk8YtYbN0m0tPp0tq3h6C0Xc=",
	Note:        "archipelago.example/archipelago-audit\n42\nq1mUNnX8sLkt0bFqWJtBk8YtYbN0m0tPp0tq3h6C0Xc=\n\n— archipelago.example/archipelago-audit AAAA\n",
	VerifierKey: "archipelago.example/archipelago-audit+01234567+AAAA"}

var libre = MemberRef{ID: 1, Slug: "libre-nuage", Name: "Libre Nuage"}
var rouge = MemberRef{ID: 2, Slug: "chaton-rouge", Name: "Chaton Rouge"}

func repoFixtures() []RepoInput {
	week := Period{Kind: PeriodWeekly, Start: t0, End: t0.AddDate(0, 0, 7)}
	_ = week
	healthy := RepoInput{ID: 10, Name: "nextcloud", Vault: "nc-backups", Island: "armorique", Member: libre, Mode: "full",
		RPOSeconds: 93600, RTOSeconds: 86400, Evidence: []Evidence{{Kind: "freshness", Producer: "federation", Outcome: "passed"},
			{Kind: "contenthash", Producer: "federation", Outcome: "passed"}}}
	for d := range 7 {
		healthy.Runs = append(healthy.Runs, run(int64(100+d), 24*d+3, "passed", "", 3, 0, float64(40_000_000+d*1_000_000)))
	}
	healthy.Latest, healthy.LastSuccessAt = &healthy.Runs[6], tp(healthy.Runs[6].FinishedAt)
	corrupted := RepoInput{ID: 11, Name: "mail", Vault: "nc-backups", Island: "armorique", Member: libre, Mode: "full",
		RPOSeconds: 93600, RTOSeconds: 3600,
		Runs: []RunInput{run(200, 3, "passed", "", 2, 0, 5_000_000), run(201, 27, "failed", "integrity: restic check found 2 broken packs", 2, 0, 0),
			run(202, 51, "failed", "integrity: restic check found 2 broken packs", 2, 3, 0), run(203, 75, "error", "island armorique unreachable", 0, 0, 0)}}
	corrupted.Runs[3].SnapshotAgeSeconds = nil
	corrupted.Latest, corrupted.LastSuccessAt = &corrupted.Runs[3], tp(corrupted.Runs[0].FinishedAt)
	stale := RepoInput{ID: 12, Name: "photos", Vault: "photos", Island: "massif", Member: libre, Mode: "blind", RPOSeconds: 93600, RTOSeconds: 86400,
		Runs: []RunInput{run(300, 10, "warning", "freshness: newest snapshot is 30h old", 30, 0, 0), run(301, 58, "warning", "freshness: newest snapshot is 78h old", 78, 0, 0)}}
	stale.Latest, stale.LastSuccessAt = &stale.Runs[1], tp(stale.Runs[1].FinishedAt)
	untested := RepoInput{ID: 13, Name: "wiki", Vault: "photos", Island: "massif", Member: libre, Mode: "full", RPOSeconds: 93600, RTOSeconds: 86400}
	other := RepoInput{ID: 20, Name: "gitea", Vault: "forge", Island: "armorique", Member: rouge, Mode: "full", RPOSeconds: 93600, RTOSeconds: 86400,
		Runs: []RunInput{run(400, 5, "passed", "", 1, 0, 80_000_000)}}
	other.Latest, other.LastSuccessAt = &other.Runs[0], tp(other.Runs[0].FinishedAt)
	return []RepoInput{stale, healthy, corrupted, untested, other}
}

func memberFixture() Input {
	var repos []RepoInput
	for _, r := range repoFixtures() {
		if r.Member.ID == libre.ID {
			repos = append(repos, r)
		}
	}
	var hist []UsagePoint
	for h := 0; h < 7*24; h += 6 {
		hist = append(hist, UsagePoint{At: at(h), Bytes: 800_000_000_000 + int64(h)*400_000_000})
	}
	return Input{Scope: ScopeMember, Member: &libre, Period: Period{Kind: PeriodWeekly, Start: t0, End: t0.AddDate(0, 0, 7)},
		GeneratedAt: t0.AddDate(0, 0, 7).Add(5 * time.Minute), Checkpoint: checkpointFixture, Repositories: repos,
		Vaults: []VaultInput{
			{ID: 5, Name: "photos", Island: "massif", Status: "active", QuotaBytes: 100_000_000_000, UsageBytes: i64(100_000_000_000)},
			{ID: 4, Name: "nc-backups", Island: "armorique", Status: "active", QuotaBytes: 1_000_000_000_000, UsageBytes: i64(866_800_000_000), History: hist},
		},
		Pledges: []Pledge{
			{ID: 2, Island: "massif", NodeID: strings.Repeat("b", 64), Zone: "libre-nuage", CapacityBytes: 2_000_000_000_000, Status: "down",
				StatusDetail: "unreachable for 2h", Since: t0.AddDate(0, -2, 0)},
			{ID: 1, Island: "massif", NodeID: strings.Repeat("a", 64), Zone: "libre-nuage", CapacityBytes: 2_000_000_000_000,
				LayoutCapacityBytes: i64(2_000_000_000_000), Status: "active", Since: t0.AddDate(0, -3, 0)},
		},
		KeyEvents: []KeyEvent{
			{At: at(30), Vault: "nc-backups", Key: "laptop", AccessKeyID: "GK2222", Event: "rotated"},
			{At: at(2), Vault: "nc-backups", Key: "server", AccessKeyID: "GK1111", Event: "created"},
			{At: at(100), Vault: "photos", Key: "old", AccessKeyID: "GK0000", Event: "revoked"},
		}}
}

// memberInputOf is the member report input of m from the repository fixtures.
func memberInputOf(m MemberRef, p Period) Input {
	var repos []RepoInput
	for _, r := range repoFixtures() {
		if r.Member.ID == m.ID {
			repos = append(repos, r)
		}
	}
	return Input{Scope: ScopeMember, Member: &m, Period: p, Repositories: repos}
}

// lineOf counts a member report the way a v2 federation report's line counts that member,
// from the report's repositories: the definition the federation's SQL must agree with.
func lineOf(r Report) MemberLine {
	l := MemberLine{Member: *r.Member}
	for _, x := range r.Repositories {
		l.Repositories++
		switch x.Status {
		case StatusGreen:
			l.Green++
		case StatusAmber:
			l.Amber++
		case StatusRed:
			l.Red++
		default:
			l.Grey++
		}
		l.Tests.Total += x.Tests.Total
		l.Tests.Passed += x.Tests.Passed
		l.Tests.Warning += x.Tests.Warning
		l.Tests.Failed += x.Tests.Failed
		l.Tests.Error += x.Tests.Error
		if x.RPOMet != nil && !*x.RPOMet {
			l.RPOMissed++
		}
		if x.RTOMet != nil && !*x.RTOMet {
			l.RTOMissed++
		}
		l.DeletionsSeen += x.DeletionsSeen
		if x.DeletionsSeen > 0 {
			l.RepositoriesWithDeletions++
		}
	}
	l.Tests.PassRate = r.Summary.PassRate
	l.Attention = l.Red+l.Amber+l.Grey+l.RPOMissed+l.RTOMissed+l.RepositoriesWithDeletions > 0
	return l
}

func federationFixture() Input {
	p := Period{Kind: PeriodMonthly, Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	members := []MemberRef{rouge, libre, {ID: 3, Slug: "vercors-libre", Name: "Vercors Libre"}}
	islandIDs := map[string]int64{"armorique": 1, "massif": 2}
	in := Input{Scope: ScopeFederation, Period: p, GeneratedAt: time.Date(2026, 11, 1, 0, 10, 0, 0, time.UTC),
		Checkpoint: checkpointFixture, Members: members, IslandRepositories: map[int64]StatusCounts{},
		Islands: []Island{
			{ID: 2, Name: "massif", Status: "degraded", ReplicationFactor: 3, PledgedBytes: 6_000_000_000_000, LayoutBytes: i64(4_000_000_000_000),
				AllocatedBytes: 1_100_000_000_000, UsedBytes: 900_000_000_000, PledgesDown: 1},
			{ID: 1, Name: "armorique", Status: "healthy", ReplicationFactor: 3, PledgedBytes: 9_000_000_000_000, LayoutBytes: i64(9_000_000_000_000),
				AllocatedBytes: 2_000_000_000_000, UsedBytes: 1_200_000_000_000},
		},
		Incidents: []Incident{
			{At: at(27), Member: "libre-nuage", Kind: "restore.failed", Severity: "critical", Subject: "repository/11", Title: "Restore test of mail failed: integrity"},
			{At: at(20), Member: "libre-nuage", Kind: "pledge.down", Severity: "critical", Subject: "pledge/2", Title: "Pledged node bbbb of libre-nuage on island massif is down"},
		}}
	// Each member's line is what its own report says; the islands count the same repositories.
	for _, m := range members {
		rep := Build(memberInputOf(m, p))
		if len(rep.Repositories) == 0 {
			continue // as in SQL: a member without repositories has no counted line
		}
		l := lineOf(rep)
		l.Tests.PassRate, l.Attention = nil, false // computed by Build from the counts
		in.Lines = append(in.Lines, MemberLine{Member: MemberRef{ID: m.ID}, StatusCounts: l.StatusCounts, Tests: l.Tests,
			RPOMissed: l.RPOMissed, RTOMissed: l.RTOMissed, DeletionsSeen: l.DeletionsSeen, RepositoriesWithDeletions: l.RepositoriesWithDeletions})
		for _, x := range rep.Repositories {
			c := in.IslandRepositories[islandIDs[x.Island]]
			c.Repositories++
			switch x.Status {
			case StatusGreen:
				c.Green++
			case StatusAmber:
				c.Amber++
			case StatusRed:
				c.Red++
			default:
				c.Grey++
			}
			in.IslandRepositories[islandIDs[x.Island]] = c
		}
	}
	return in
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/reports -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update if the change is intended):\n%s", name, firstDiff(string(want), string(got)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + itoa(i+1) + ":\n  want " + x + "\n  got  " + y
		}
	}
	return "(same lines)"
}

func TestGoldenMemberReport(t *testing.T) {
	t.Parallel()
	rep := Build(memberFixture())
	doc, err := Encode(rep)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "member-report.golden.json", doc)
	// Spot checks that say what the golden file means.
	byName := map[string]Repository{}
	for _, r := range rep.Repositories {
		byName[r.Name] = r
	}
	if s := rep.Summary; s.Green != 1 || s.Amber != 1 || s.Red != 1 || s.Grey != 1 || s.Tests != 13 {
		t.Errorf("summary = %+v", s)
	}
	if r := byName["mail"]; r.Status != StatusRed || len(r.Failures) != 3 || r.DeletionsSeen != 3 || *r.Tests.PassRate != 0.25 {
		t.Errorf("mail = %+v", r)
	}
	if r := byName["photos"]; *r.WorstSnapshotAgeSeconds != 78*3600 || *r.RPOMet {
		t.Errorf("photos = %+v", r)
	}
	if r := byName["nextcloud"]; *r.ProjectedRestoreSeconds != 9303 || !*r.RTOMet { // 400 GB at the median 43 MB/s
		t.Errorf("nextcloud projection = %v", *r.ProjectedRestoreSeconds)
	}
	if rep.Vaults[0].Name != "nc-backups" || rep.Vaults[0].Level != "80" || rep.Vaults[1].Level != "full" {
		t.Errorf("vaults = %+v", rep.Vaults)
	}
	if len(rep.Islands) != 0 || len(rep.Matrix) != 0 || rep.KeyEvents[0].Event != "created" {
		t.Errorf("sections of another scope or order: %+v %+v", rep.Islands, rep.KeyEvents)
	}
}

func TestGoldenFederationReport(t *testing.T) {
	t.Parallel()
	in := federationFixture()
	rep := Build(in)
	doc, err := Encode(rep)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "federation-report.golden.json", doc)
	if rep.Schema != SchemaV2 || len(rep.Members) != 3 || len(rep.Matrix) != 0 || len(rep.Repositories) != 0 {
		t.Fatalf("a new federation report is v2 with a line per member: %s, %d lines, %d cells", rep.Schema, len(rep.Members), len(rep.Matrix))
	}
	// Worst first: libre-nuage (1 red, an RPO missed) before chaton-rouge (all green) before
	// vercors-libre (no repository), each line what its member report says.
	if got := []string{rep.Members[0].Member.Slug, rep.Members[1].Member.Slug, rep.Members[2].Member.Slug}; got[0] != "libre-nuage" ||
		got[1] != "chaton-rouge" || got[2] != "vercors-libre" {
		t.Errorf("member order %v", got)
	}
	for _, l := range rep.Members {
		m := l.Member
		want := lineOf(Build(memberInputOf(m, in.Period)))
		if !reflect.DeepEqual(l, want) {
			t.Errorf("%s: line %+v, its member report says %+v", m.Slug, l, want)
		}
	}
	if s, tot := rep.Summary, rep.Totals; s.Repositories != 5 || s.Red != 1 || s.Grey != 1 || s.Amber != 1 || s.Green != 2 || s.Tests != 14 ||
		tot.Members != 3 || tot.MembersWithRepositories != 2 || tot.MembersNeedingAttention != 1 || tot.RPOMissed != 1 || tot.DeletionsSeen != 3 {
		t.Errorf("summary %+v totals %+v", s, *tot)
	}
	if rep.Islands[0].Name != "armorique" || rep.Islands[0].Repositories.Repositories != 3 || rep.Islands[1].Repositories.Grey != 1 ||
		rep.Incidents[0].Kind != "pledge.down" {
		t.Errorf("federation sections: %+v %+v", rep.Islands, rep.Incidents)
	}
	for _, bad := range []string{`"matrix"`, `"repositories": [`, `"vaults"`} {
		if bytes.Contains(doc, []byte(bad)) {
			t.Errorf("a v2 federation document carries %s", bad)
		}
	}
	back, err := Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Encode(back); !bytes.Equal(again, doc) {
		t.Errorf("a v2 document read back does not encode to the same bytes:\n%s", firstDiff(string(doc), string(again)))
	}
}

// TestStoredV1FederationReportStillReads: a federation report stored as v1 (a cell per
// repository) is read with every field it has — encoding what was read gives its stored bytes,
// so its hash still verifies — renders its matrix as before, byte for byte, and keeps its CSV
// tables. The v1 golden files were written by the v1 code and are never rewritten.
func TestStoredV1FederationReportStillReads(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	doc := read("federation-report-v1.golden.json")
	rep, err := Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Schema != SchemaV1 || len(rep.Matrix) != 3 || rep.Totals != nil || rep.Members != nil {
		t.Fatalf("v1 read as %s, %d matrix rows", rep.Schema, len(rep.Matrix))
	}
	if again, err := Encode(rep); err != nil || !bytes.Equal(again, doc) {
		t.Fatalf("the stored v1 document read back encodes differently (%v):\n%s", err, firstDiff(string(doc), string(again)))
	}
	var html bytes.Buffer
	if err := StandaloneHTML(&html, View{R: rep, ID: 7, SHA256: strings.Repeat("ab", 32), AuditSeq: 43}); err != nil {
		t.Fatal(err)
	}
	// The same page but for the stylesheet, which is inlined as it is now.
	unstyled := func(h string) string {
		a, b := strings.Index(h, "<style>"), strings.Index(h, "</style>")
		if a < 0 || b < a {
			t.Fatal("no stylesheet")
		}
		return h[:a] + h[b:]
	}
	if want := unstyled(string(read("federation-report-v1.golden.html"))); unstyled(html.String()) != want {
		t.Errorf("a stored v1 federation report renders differently:\n%s", firstDiff(want, unstyled(html.String())))
	}
	if !strings.Contains(html.String(), `class="rpt-table rpt-matrix"`) || !strings.Contains(html.String(), `rpt-cell rpt-red`) {
		t.Error("the v1 report lost its matrix")
	}
	if tables := TablesFor(rep.Scope, rep.Schema); tables[0] != "matrix" {
		t.Errorf("v1 federation tables %v", tables)
	}
	var csv bytes.Buffer
	if err := CSV(&csv, rep, ""); err != nil {
		t.Fatal(err)
	}
	if want := read("federation-report-v1.golden.csv"); !bytes.Equal(csv.Bytes(), want) {
		t.Errorf("a stored v1 federation report's matrix CSV differs:\n%s", firstDiff(string(want), csv.String()))
	}
	if err := CSV(&bytes.Buffer{}, rep, "members"); err == nil {
		t.Error("a v1 federation report answered the v2 members table")
	}
}

func TestRenderers(t *testing.T) {
	t.Parallel()
	for _, in := range []Input{memberFixture(), federationFixture()} {
		rep := Build(in)
		var html bytes.Buffer
		if err := StandaloneHTML(&html, View{R: rep, ID: 7, SHA256: strings.Repeat("ab", 32), AuditSeq: 43}); err != nil {
			t.Fatal(err)
		}
		h := html.String()
		for _, want := range []string{"<svg", "<style>", "archipelago audit verify", checkpointFixture.RootHash, strings.Repeat("ab", 32)} {
			if !strings.Contains(h, want) {
				t.Errorf("%s HTML lacks %q", in.Scope, want)
			}
		}
		for _, bad := range []string{"<script", " style=\"", "http://", "https://"} {
			if strings.Contains(strings.ReplaceAll(h, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
				t.Errorf("%s HTML contains %q (no script, no inline style attribute, no external resource)", in.Scope, bad)
			}
		}
		golden(t, in.Scope+"-report.golden.html", html.Bytes())
		for _, table := range TablesFor(rep.Scope, rep.Schema) {
			var csv bytes.Buffer
			if err := CSV(&csv, rep, table); err != nil {
				t.Fatalf("%s %s: %v", in.Scope, table, err)
			}
			if lines := strings.Count(csv.String(), "\n"); lines < 2 {
				t.Errorf("%s CSV %s has %d lines:\n%s", in.Scope, table, lines, csv.String())
			}
			if table == TablesFor(rep.Scope, rep.Schema)[0] {
				golden(t, in.Scope+"-report.golden.csv", csv.Bytes())
			}
		}
		if err := CSV(&bytes.Buffer{}, rep, "nope"); err == nil {
			t.Error("an unknown table was accepted")
		}
	}
}

func TestLastComplete(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kind       string
		now        time.Time
		start, end string
	}{
		{PeriodWeekly, time.Date(2026, 11, 11, 15, 0, 0, 0, time.UTC), "2026-11-02", "2026-11-09"}, // a Wednesday
		{PeriodWeekly, time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC), "2026-11-02", "2026-11-09"},   // Monday midnight
		{PeriodWeekly, time.Date(2026, 11, 8, 23, 59, 0, 0, time.UTC), "2026-10-26", "2026-11-02"}, // Sunday night
		{PeriodMonthly, time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), "2025-12-01", "2026-01-01"},
		{PeriodMonthly, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "2026-02-01", "2026-03-01"},
	} {
		p, err := LastComplete(c.kind, c.now)
		if err != nil || p.Start.Format("2006-01-02") != c.start || p.End.Format("2006-01-02") != c.end {
			t.Errorf("%s at %s: %v – %v (%v), want %s – %s", c.kind, c.now, p.Start, p.End, err, c.start, c.end)
		}
	}
}
