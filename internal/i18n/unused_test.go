package i18n

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// builtKeys are the catalog keys the code builds at run time rather than naming them: each
// pattern with where it is built. A key matching none must appear quoted in the code.
var builtKeys = []struct{ pattern, where string }{
	{`^portal\.enum\.`, "internal/portal/locale.go enumIn: a machine value's name"},
	{`^portal\.confirm\.[a-z-]+\.(title|lead|button)$`, "internal/portal/confirm.go: a confirmation page per kind"},
	{`^portal\.js\.phase\.`, "internal/portal/jswords.go phaseKey: a running level's phase"},
	{`^portal\.field\.`, "internal/portal/pages.go: a refused field's name"},
	{`^portal\.role\.`, "web/templates/account.html: print \"portal.role.\" of a membership's role"},
	{`^portal\.islands\.status\.`, "internal/portal/islands.go: an island's status"},
	{`^portal\.notify\.kinds\.`, "internal/portal/notify.go kindChoices: an event kind's name"},
	{`^cli\.[a-z_]+\.(summary|usage)$`, "cmd/archipelago/main.go: a command's help"},
	{`^cli\.admin_backup\.([a-z]+_done|kind_[a-z_]+)$`, "cmd/archipelago/backup.go: what a backup command did"},
	{`^client\.[a-z]+\.(summary|secret_note|filter\.[a-z-]+|create\.[a-z-]+)$`, "cmd/archipelago/client.go localized: a resource's help"},
	{`^client\.column\.`, "cmd/archipelago/client.go localizedColumns: a table's column"},
	{`^client\.value\.(status|trigger|mode)\.`, "internal/client/render.go cell: a machine value in words"},
}

// Every key of the portal's and the command line's catalogs is used: named in the code (Go
// outside tests, templates, scripts) or built by one of builtKeys. A key nobody shows is a
// translation kept up for nothing, and often a text a page lost by mistake.
func TestEveryCatalogKeyIsUsed(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	for _, dir := range []string{"../../internal", "../../cmd", "../../web"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.HasSuffix(path, "_test.go") || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".html") || strings.HasSuffix(path, ".js")) {
				return nil
			}
			b, err := os.ReadFile(path)
			code.Write(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	src := code.String()
	var built []*regexp.Regexp
	for _, b := range builtKeys {
		built = append(built, regexp.MustCompile(b.pattern))
	}
	unused := 0
	for _, id := range c.IDs(English) {
		if !strings.HasPrefix(id, "portal.") && !strings.HasPrefix(id, "cli.") && !strings.HasPrefix(id, "client.") {
			continue
		}
		if strings.Contains(src, `"`+id+`"`) {
			continue
		}
		if func() bool {
			for _, re := range built {
				if re.MatchString(id) {
					return true
				}
			}
			return false
		}() {
			continue
		}
		unused++
		t.Errorf("%s is in the catalogs but nothing shows it: remove it, or add the pattern that builds it to builtKeys", id)
	}
	if unused > 0 {
		t.Logf("%d unused keys", unused)
	}
}
