package portal

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/verify"
)

// The report page's CSV links name their tables in the page's language (« CSV de la
// matrice »), and every table of every scope has its label.
func TestReportTablesAreNamedInTheReadersLanguage(t *testing.T) {
	t.Parallel()
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	fr := c.Printer(i18n.French)
	for _, schema := range []string{reports.SchemaV1, reports.SchemaV2} {
		for _, scope := range []string{reports.ScopeMember, reports.ScopeFederation} {
			names := reports.TablesFor(scope, schema)
			for _, tb := range reportTables(fr, scope, schema) {
				if _, ok := reportTableLabels[tb.Name]; !ok || tb.Label == tb.Name {
					t.Errorf("table %s of %s reports (%s) has no French label (%q)", tb.Name, scope, schema, tb.Label)
				}
			}
			if len(names) == 0 || len(reportTables(fr, scope, schema)) != len(names) {
				t.Errorf("%s %s: tables lost", scope, schema)
			}
		}
	}
	if got := fr.T("portal.report.csv", "Value", reportTables(fr, reports.ScopeFederation, reports.SchemaV2)[0].Label); got != "CSV des membres" {
		t.Errorf("the federation report's first CSV link reads %q", got)
	}
	if got := fr.T("portal.report.csv", "Value", reportTables(fr, reports.ScopeFederation, reports.SchemaV1)[0].Label); got != "CSV de la matrice" {
		t.Errorf("a stored v1 federation report's first CSV link reads %q", got)
	}
}

// The portal's messages group counts the reader's way: the snapshot timeline of a
// repository with 12 345 snapshots says « 12 345 » in French.
func TestPortalMessagesGroupCountsTheReadersWay(t *testing.T) {
	t.Parallel()
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	snaps := make([]verify.SnapshotSeen, 12345)
	for i := range snaps {
		snaps[i] = verify.SnapshotSeen{ID: fmt.Sprintf("%08x", i), Time: now.Add(-time.Duration(len(snaps)-i) * time.Minute)}
	}
	fr := snapshotTimeline(c.Printer(i18n.French), snaps, false, now.Add(-30*24*time.Hour), now, time.UTC)
	if !strings.Contains(fr.Summary, "12\u202f345") {
		t.Errorf("French timeline summary: %q", fr.Summary)
	}
	en := snapshotTimeline(c.Printer(i18n.English), snaps, false, now.Add(-30*24*time.Hour), now, time.UTC)
	if !strings.Contains(en.Summary, "12,345") {
		t.Errorf("English timeline summary: %q", en.Summary)
	}
}
