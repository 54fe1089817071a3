package portal

import (
	"testing"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/reports"
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
	for scope, names := range reports.Tables {
		for _, tb := range reportTables(fr, scope) {
			if _, ok := reportTableLabels[tb.Name]; !ok || tb.Label == tb.Name {
				t.Errorf("table %s of %s reports has no French label (%q)", tb.Name, scope, tb.Label)
			}
		}
		if len(reportTables(fr, scope)) != len(names) {
			t.Errorf("%s: tables lost", scope)
		}
	}
	got := fr.T("portal.report.csv", "Value", reportTables(fr, reports.ScopeFederation)[0].Label)
	if got != "CSV de la matrice" {
		t.Errorf("the federation report's first CSV link reads %q", got)
	}
}
