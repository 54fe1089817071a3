package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/testenv"
)

// A report is rendered in the language of its member (members.language, else the
// federation's) with dates in the federation's time zone and sizes as the language writes
// them; its stored sentences are said again in that language; its CSV header row is
// translated while its values stay machine-friendly.
func TestReportSpeaksTheMembersLanguage(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	var fr, en int64
	if err := pool.QueryRow(ctx, `INSERT INTO members (slug, name, language) VALUES ('libre-nuage', 'Libre Nuage', 'fr') RETURNING id`).Scan(&fr); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO members (slug, name) VALUES ('en-cloud', 'English Cloud') RETURNING id`).Scan(&en); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE federation_settings SET time_zone = 'Europe/Paris'`); err != nil {
		t.Fatal(err)
	}
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(memberFixture())
	render := func(member int64) (string, string) {
		t.Helper()
		lang, loc, err := notify.Audience(ctx, pool, &member)
		if err != nil {
			t.Fatal(err)
		}
		var html, csv bytes.Buffer
		if err := StandaloneHTML(&html, View{R: rep, ID: 7, SHA256: strings.Repeat("ab", 32), AuditSeq: 43, Printer: cat.Printer(lang), Location: loc}); err != nil {
			t.Fatal(err)
		}
		if err := CSVIn(&csv, rep, "vaults", cat.Printer(lang)); err != nil {
			t.Fatal(err)
		}
		return html.String(), csv.String()
	}

	h, csv := render(fr)
	for _, want := range []string{`<html lang="fr">`, "Rapport des tests de restauration — Libre Nuage",
		"Rapport hebdomadaire du 9 nov. 2026 au 15 nov. 2026 · généré le 16 nov. 2026 à 01:05 CET", // 00:05 UTC, in Paris
		"866,8\u00a0Go", "sur 1\u00a0To", "86,7\u202f%", "À surveiller", "Le coffre photos est plein.",
		"Le dépôt photos a eu un instantané plus ancien que son RPO (3\u00a0j 6\u00a0h &gt; 26\u00a0h 0\u00a0min).",
		"Dépôt mail\u202f: 3 instantanés ont disparu sur la période.", "10 nov. 2026 à 04:00 CET", "Preuve"} {
		if !strings.Contains(h, want) {
			t.Errorf("the French report lacks %q", want)
		}
	}
	for _, bad := range []string{"Needs attention", "Vault photos is full", "weekly report", " GB", "2026-11-"} {
		if strings.Contains(h, bad) {
			t.Errorf("the French report still says %q", bad)
		}
	}
	if first, _, _ := strings.Cut(csv, "\n"); first != "id_coffre,coffre,île,état,quota_octets,utilisation_octets,taux_utilisation,niveau" {
		t.Errorf("French CSV header: %q", first)
	}
	if !strings.Contains(csv, ",100000000000,") {
		t.Errorf("French CSV values are not machine-friendly:\n%s", csv)
	}

	h, csv = render(en)
	for _, want := range []string{`<html lang="en">`, "Restore-test report — Libre Nuage",
		"weekly report for Nov 9, 2026 – Nov 15, 2026 · generated Nov 16, 2026, 01:05 CET", "866.8\u00a0GB", "of 1\u00a0TB", "86.7%",
		"Needs attention", "Vault photos is full.", "Repository photos had a snapshot older than its RPO (3d 6h &gt; 26h 0m).",
		"Nov 10, 2026, 04:00 CET"} {
		if !strings.Contains(h, want) {
			t.Errorf("the English report lacks %q", want)
		}
	}
	if first, _, _ := strings.Cut(csv, "\n"); first != "vault_id,vault,island,status,quota_bytes,usage_bytes,usage_ratio,level" {
		t.Errorf("English CSV header: %q", first)
	}
}

// Counts in a report are grouped the reader's way (« 12 345 tests »), and a failed test's
// reason, stored in English, is said in French.
func TestReportCountsAndReasonsInTheReadersLanguage(t *testing.T) {
	t.Parallel()
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(memberFixture())
	rep.Summary.Tests = 12345
	rep.Checkpoint.TreeSize = 23456
	if len(rep.Repositories) > 0 {
		rep.Repositories[0].Tests.Total = 34567
		rep.Repositories[0].Failures = append(rep.Repositories[0].Failures, Failure{Outcome: "failed",
			Reason: "the repository holds no snapshot: no backup has been made into it yet"})
	}
	var html bytes.Buffer
	if err := StandaloneHTML(&html, View{R: rep, ID: 7, Printer: cat.Printer(i18n.French), Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	body := html.String()
	for _, want := range []string{"12\u202f345", "23\u202f456", "34\u202f567", "le dépôt ne contient aucun instantané"} {
		if !strings.Contains(body, want) {
			t.Errorf("the French report lacks %q", want)
		}
	}
	for _, english := range []string{"holds no snapshot"} {
		if strings.Contains(body, english) {
			t.Errorf("the French report still writes %q", english)
		}
	}
}

// A v2 federation report reads in French: its counted sentences (stored in English) are said
// again with French plurals, its members table, chart and island counts are in French, and its
// members CSV has a French header row.
func TestFederationReportInFrench(t *testing.T) {
	t.Parallel()
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	in := federationFixture()
	l := &in.Lines[1] // libre-nuage: a second red repository, for a plural
	if l.Member.ID != libre.ID {
		t.Fatalf("line 1 is member %d", l.Member.ID)
	}
	l.Red, l.Repositories = l.Red+1, l.Repositories+1
	rep := Build(in)
	var html, csv bytes.Buffer
	if err := StandaloneHTML(&html, View{R: rep, ID: 7, Printer: cat.Printer(i18n.French), Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	if err := CSVIn(&csv, rep, "members", cat.Printer(i18n.French)); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	for _, want := range []string{"2 dépôts sont au rouge, chez 1 membre.", "1 dépôt a eu un instantané plus ancien que son RPO, chez 1 membre.",
		"1 dépôt n’a jamais été testé, chez 1 membre.", "1 dépôt prendrait plus que son RTO à restaurer en entier, chez 1 membre.",
		"3 instantanés ont disparu sur la période, dans 1 dépôt, chez 1 membre.", "Membres\u202f: 3", "Au-delà du RPO", "Instantanés disparus",
		"la fédération et le membre qui demande le plus d’attention", "au rouge sur", "au vert"} {
		if !strings.Contains(h, want) {
			t.Errorf("the French federation report lacks %q", want)
		}
	}
	for _, english := range []string{"repository is red", "repositories are red", "never been tested", "disappeared in the period", "Past RPO"} {
		if strings.Contains(h, english) {
			t.Errorf("the French federation report still writes %q", english)
		}
	}
	if first, _, _ := strings.Cut(csv.String(), "\n"); !strings.HasPrefix(first, "membre,nom_membre,dépôts,vert,orange,rouge,non_testé,tests,") ||
		!strings.Contains(first, "rpo_dépassé,rto_dépassé,instantanés_disparus") && !strings.Contains(first, "rpo_dépassé,rto_dépassé,") {
		t.Errorf("French members CSV header: %q", first)
	}
}

// A federation report's incidents are said in the reader's language: the report keeps the
// facts each event's line is made of (only those notify's sentences read), and the line is
// said again from them; an incident kept without them (a report made before) shows its
// recorded title, said again where the domain catalogs know it.
func TestIncidentsAreSaidInTheReadersLanguage(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	var member int64
	if err := pool.QueryRow(ctx, `INSERT INTO members (slug, name) VALUES ('libre-nuage', 'Libre Nuage') RETURNING id`).Scan(&member); err != nil {
		t.Fatal(err)
	}
	p := Period{Kind: PeriodCustom, Start: time.Now().Add(-24 * time.Hour), End: time.Now().Add(time.Hour)}
	if _, err := pool.Exec(ctx, `INSERT INTO notify_events (member_id, kind, severity, subject, title, detail) VALUES
		($1, $2, 'critical', 'pledge/5', 'Pledged node 0123456789abcdef of libre-nuage on island Armorique is down',
		 '{"node_id": "0123456789abcdef0123", "island": "Armorique", "zone": "z1", "contact_email": "admin@libre-nuage.example"}')`,
		member, notify.KindPledgeDown); err != nil {
		t.Fatal(err)
	}
	in, err := Gather(ctx, pool, ScopeFederation, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Incidents) != 1 {
		t.Fatalf("%d incidents, want 1", len(in.Incidents))
	}
	if d := in.Incidents[0].Detail; len(d) != 2 || d["node_id"] == nil || d["island"] == nil {
		t.Fatalf("the incident keeps %v: want node_id and island only (what its sentence reads)", d)
	}
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(in)
	render := func(lang i18n.Lang, r Report) string {
		t.Helper()
		var b bytes.Buffer
		if err := StandaloneHTML(&b, View{R: r, ID: 1, Printer: cat.Printer(lang), Location: time.UTC}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if h := render(i18n.French, rep); !strings.Contains(h, "Le nœud engagé 0123456789abcdef de libre-nuage sur l’île Armorique est hors service") ||
		strings.Contains(h, "is down") {
		t.Error("the French report does not say the incident in French")
	}
	if h := render(i18n.English, rep); !strings.Contains(h, "Pledged node 0123456789abcdef of libre-nuage on island Armorique is down") {
		t.Error("the English report does not say the incident")
	}
	// A report kept before the details were: its recorded title.
	rep.Incidents[0].Detail = nil
	if h := render(i18n.French, rep); !strings.Contains(h, "Pledged node 0123456789abcdef of libre-nuage on island Armorique is down") {
		t.Error("an incident without details lost its recorded title")
	}
}

// A pledge's state detail, recorded in English by the island poller, is said again in the
// report's language.
func TestPledgeDetailsAreSaidInTheReadersLanguage(t *testing.T) {
	t.Parallel()
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(memberFixture())
	if len(rep.Pledges) == 0 {
		t.Fatal("the fixture has no pledge")
	}
	rep.Pledges[0].Status, rep.Pledges[0].StatusDetail = "down", "unreachable since 2026-10-20T08:00:00Z"
	var b bytes.Buffer
	if err := StandaloneHTML(&b, View{R: rep, ID: 1, Printer: cat.Printer(i18n.French), Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	if h := b.String(); !strings.Contains(h, "injoignable depuis le") || strings.Contains(h, "unreachable since") {
		t.Error("the French report does not say the pledge's state detail in French")
	}
}
