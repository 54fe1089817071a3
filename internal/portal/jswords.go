package portal

import (
	"strings"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/verify"
)

// liveValues are the machine values web/static/restore.js shows while a test runs (a
// status, a level, a level's outcome): said as the page's enum says them.
var liveValues = []string{"queued", "running", "retrying", "pending", "passed", "warning", "failed", "error",
	"cancelled", "skipped", verify.LevelFreshness, verify.LevelDeletions, verify.LevelContentHash,
	verify.LevelIntegrity, verify.LevelSample, verify.LevelCanary, verify.LevelFull}

// phaseKey is the catalog key of a running level's phase ("restoring a sample").
func phaseKey(phase string) string {
	return "portal.js.phase." + strings.ReplaceAll(phase, " ", "_")
}

// UI are the words the portal's scripts write themselves (#page-words): a copy button's
// answer, a running test's progress line, sizes, and the machine values of the progress
// stream, in the page's language — never in the script's own (TestScriptsTakeTheirWordsFromThePage).
func (c clock) UI() map[string]any {
	pr := c.P
	enum := enumIn(pr)
	values := map[string]string{}
	for _, v := range liveValues {
		values[v] = enum(v)
	}
	phases := map[string]string{}
	for _, ph := range verify.Phases() {
		phases[ph] = ph
		if t := pr.T(phaseKey(ph)); t != phaseKey(ph) {
			phases[ph] = t
		}
	}
	units, decimal, space := []string{"B", "kB", "MB", "GB", "TB"}, ".", " "
	if pr.Lang() == i18n.French {
		units, decimal, space = []string{"o", "ko", "Mo", "Go", "To"}, ",", "\u00a0"
	}
	return map[string]any{
		"copied": pr.T("portal.js.copied"), "selected": pr.T("portal.js.selected"),
		"of": pr.T("portal.js.of"), "eta_s": pr.T("portal.js.eta_s"), "eta_min": pr.T("portal.js.eta_min"),
		"seconds": pr.T("portal.js.seconds"), "values": values, "phases": phases,
		"units": units, "decimal": decimal, "space": space,
	}
}
