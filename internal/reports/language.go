package reports

import (
	"fmt"
	"html/template"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/notify"
)

// Reports are stored once, as a JSON document (hashed, audited), and rendered to HTML and
// CSV from it at every request: so each reader gets the report in their own language and
// time zone (issue 18) — the portal the reader's, an API download the caller's, else the
// language of the report's member (members.language, else the federation's). Dates are
// written in View.Location (the federation's time zone unless the reader has another),
// the period in UTC days (as periods are cut); sizes and durations as the language writes
// them. The stored document, and so its hash, never depend on a language: its sentences
// ("needs attention") are stored in English and said again in the reader's language when
// rendered (attentionIn).

var english = sync.OnceValue(func() *i18n.Printer {
	c, err := i18n.Load()
	if err != nil {
		panic(err) // the embedded catalogs are checked by internal/i18n's tests
	}
	return c.Printer(i18n.English)
})

// speaker writes a report's texts, dates, sizes and durations in one language and zone.
type speaker struct {
	p   *i18n.Printer
	loc *time.Location
}

func speakerOf(v View) speaker {
	s := speaker{p: v.Printer, loc: v.Location}
	if s.p == nil {
		s.p = english()
	}
	if s.loc == nil {
		s.loc = time.UTC
	}
	return s
}

func (s speaker) t(id string, args ...any) string { return s.p.T("report."+id, args...) }

// word is a status, outcome or mode in the language ("red" → « rouge »); a word the
// catalog does not know is shown as it is.
func (s speaker) word(w string) string {
	id := "report.word." + w
	if out := s.p.T(id); out != id {
		return out
	}
	return w
}

func (s speaker) when(t time.Time) string { return s.p.DateTime(t, s.loc) }

// incident is an incident's line in the reader's language, from the facts the report kept
// (notify's sentence of its kind); an incident kept without them (a report made before they
// were) is its recorded title, said again where the domain catalogs know it.
func (s speaker) incident(x Incident) string {
	if len(x.Detail) == 0 {
		return s.p.Retell(x.Title)
	}
	return notify.EventView{Kind: x.Kind, Severity: x.Severity, MemberSlug: x.Member, Subject: x.Subject,
		Title: x.Title, Detail: x.Detail, At: x.At}.Said(s.p, s.loc)
}
func (s speaker) day(t time.Time) string { return s.p.Date(t, time.UTC) }

// lastday is the last day of a half-open period ending at t.
func (s speaker) lastday(t time.Time) string { return s.p.Date(t.Add(-time.Nanosecond), time.UTC) }

func (s speaker) pct(f *float64) string {
	if f == nil {
		return "—"
	}
	if s.p.Lang() == i18n.English {
		return strconv.FormatFloat(*f*100, 'f', 1, 64) + "%"
	}
	return s.p.Decimal(*f*100, 1) + "\u202f%"
}

func (s speaker) bytes(n int64) string { return s.p.Bytes(n) }

// num is a count with the language's digit grouping (« 12 345 »).
func (s speaker) num(v any) string {
	switch n := v.(type) {
	case int:
		return s.p.Number(int64(n))
	case int64:
		return s.p.Number(n)
	case *int64:
		if n == nil {
			return "—"
		}
		return s.p.Number(*n)
	}
	return fmt.Sprint(v)
}

// secs is a duration as "3d 4h", "5h 10m", "12m", "40s" (« 3 j 4 h », « 5 h 10 min »).
func (s speaker) secs(secs int64) string {
	if s.p.Lang() == i18n.English {
		return human(secs)
	}
	d := time.Duration(secs) * time.Second
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d\u00a0j %d\u00a0h", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%d\u00a0h %d\u00a0min", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%d\u00a0min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d\u00a0s", secs)
}

// funcs are the template functions of one rendering.
func (s speaker) funcs() template.FuncMap {
	return template.FuncMap{
		"t":           s.t,
		"word":        s.word,
		"retell":      s.p.Retell, // a test's reason, stored in English
		"incident":    s.incident,
		"num":         s.num,
		"when":        s.when,
		"day":         s.day,
		"lastday":     s.lastday,
		"pct":         s.pct,
		"bytes":       s.bytes,
		"secs":        s.secs,
		"lang":        func() string { return string(s.p.Lang()) },
		"attention":   func(r Report) []string { return s.attention(r.Summary.Attention) },
		"charts":      func(r Repository, p Period) []template.HTML { return repoCharts(s, r, p) },
		"usage":       func(v Vault, p Period) template.HTML { return usageChart(s, v, p) },
		"capacity":    func(is []Island) template.HTML { return capacityChart(s, is) },
		"memberchart": func(r Report) template.HTML { return memberChart(s, r) },
	}
}

var humanRE = regexp.MustCompile(`^(?:(\d+)d (\d+)h|(\d+)h (\d+)m|(\d+)m|(\d+)s)$`)

// unhuman reads back a duration written by human ("3d 4h") in seconds.
func unhuman(h string) (int64, bool) {
	m := humanRE.FindStringSubmatch(h)
	if m == nil {
		return 0, false
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(m[i], 10, 64); return v }
	switch {
	case m[1] != "":
		return n(1)*86400 + n(2)*3600, true
	case m[3] != "":
		return n(3)*3600 + n(4)*60, true
	case m[5] != "":
		return n(5) * 60, true
	}
	return n(6), true
}

// The sentences attention() writes, read back so they can be said in another language.
var attentionPatterns = []struct {
	re  *regexp.Regexp
	say func(s speaker, m []string) (string, bool)
}{
	{regexp.MustCompile(`^Repository (.+) is red — its latest test (\w+): (.*)\.$`), func(s speaker, m []string) (string, bool) {
		return s.t("attn.red_reason", "Repository", m[1], "Outcome", s.word(m[2]), "Reason", s.p.Retell(m[3])), true
	}},
	{regexp.MustCompile(`^Repository (.+) is red — its latest test (\w+)\.$`), func(s speaker, m []string) (string, bool) {
		return s.t("attn.red", "Repository", m[1], "Outcome", s.word(m[2])), true
	}},
	{regexp.MustCompile(`^Repository (.+) has never been tested\.$`), func(s speaker, m []string) (string, bool) {
		return s.t("attn.never_tested", "Repository", m[1]), true
	}},
	{regexp.MustCompile(`^Repository (.+) had a snapshot older than its RPO \((.+) > (.+)\)\.$`), func(s speaker, m []string) (string, bool) {
		age, ok1 := unhuman(m[2])
		rpo, ok2 := unhuman(m[3])
		return s.t("attn.rpo", "Repository", m[1], "Age", s.secs(age), "RPO", s.secs(rpo)), ok1 && ok2
	}},
	{regexp.MustCompile(`^Repository (.+) would take (.+) to restore in full, over its RTO of (.+)\.$`), func(s speaker, m []string) (string, bool) {
		took, ok1 := unhuman(m[2])
		rto, ok2 := unhuman(m[3])
		return s.t("attn.rto", "Repository", m[1], "Took", s.secs(took), "RTO", s.secs(rto)), ok1 && ok2
	}},
	{regexp.MustCompile(`^Repository (.+): (\d+) snapshots disappeared in the period\.$`), func(s speaker, m []string) (string, bool) {
		n, _ := strconv.Atoi(m[2])
		return s.p.N("report.attn.deletions", n, "Repository", m[1], "N", s.p.Number(int64(n))), true
	}},
	// A v2 federation report's sentences count (buildFederation).
	{regexp.MustCompile(`^(\d+) repositor(?:y is|ies are) red, at (\d+) members?\.$`), func(s speaker, m []string) (string, bool) {
		return s.counted("report.attn.fed_red", m[1], m[2]), true
	}},
	{regexp.MustCompile(`^(\d+) repositor(?:y|ies) had a snapshot older than (?:its|their) RPO, at (\d+) members?\.$`), func(s speaker, m []string) (string, bool) {
		return s.counted("report.attn.fed_rpo", m[1], m[2]), true
	}},
	{regexp.MustCompile(`^(\d+) repositor(?:y has|ies have) never been tested, at (\d+) members?\.$`), func(s speaker, m []string) (string, bool) {
		return s.counted("report.attn.fed_never_tested", m[1], m[2]), true
	}},
	{regexp.MustCompile(`^(\d+) repositor(?:y|ies) would take longer than (?:its|their) RTO to restore in full, at (\d+) members?\.$`), func(s speaker, m []string) (string, bool) {
		return s.counted("report.attn.fed_rto", m[1], m[2]), true
	}},
	{regexp.MustCompile(`^(\d+) snapshots? disappeared in the period, in (\d+) repositor(?:y|ies) of (\d+) members?\.$`), func(s speaker, m []string) (string, bool) {
		n, _ := strconv.Atoi(m[1])
		repos, _ := strconv.Atoi(m[2])
		return s.p.N("report.attn.fed_deletions", n, "N", s.p.Number(int64(n)),
			"Repositories", s.p.N("report.n_repositories", repos, "N", s.p.Number(int64(repos))), "Members", s.members(m[3])), true
	}},
	{regexp.MustCompile(`^Vault (.+) is full\.$`), func(s speaker, m []string) (string, bool) {
		return s.t("attn.vault_full", "Vault", m[1]), true
	}},
	{regexp.MustCompile(`^Vault (.+) is over (\d+)% of its quota\.$`), func(s speaker, m []string) (string, bool) {
		n, _ := strconv.Atoi(m[2])
		return s.t("attn.vault_over", "Vault", m[1], "Percent", s.p.Percent(float64(n)/100)), true
	}},
	{regexp.MustCompile(`^Pledged node (\S+) on island (.+) is (\w+)\.$`), func(s speaker, m []string) (string, bool) {
		return s.t("attn.pledge", "Node", m[1], "Island", m[2], "Status", s.word(m[3])), true
	}},
	{regexp.MustCompile(`^Island (.+) has (\d+) pledged node\(s\) down\.$`), func(s speaker, m []string) (string, bool) {
		n, _ := strconv.Atoi(m[2])
		return s.p.N("report.attn.island_down", n, "Island", m[1], "N", s.p.Number(int64(n))), true
	}},
	{regexp.MustCompile(`^Island (.+) is (\w+)\.$`), func(s speaker, m []string) (string, bool) {
		return s.t("attn.island", "Island", m[1], "Status", s.word(m[2])), true
	}},
}

// members is "3 members" in the speaker's language.
func (s speaker) members(count string) string {
	n, _ := strconv.Atoi(count)
	return s.p.N("report.n_members", n, "N", s.p.Number(int64(n)))
}

// counted says a sentence counting repositories at some members (key's plural on the first).
func (s speaker) counted(key, repos, members string) string {
	n, _ := strconv.Atoi(repos)
	return s.p.N(key, n, "N", s.p.Number(int64(n)), "Members", s.members(members))
}

// attention says the stored "needs attention" sentences in the speaker's language: in
// English as stored, otherwise each one read back and said again (a sentence of a format
// this binary does not know is shown as stored).
func (s speaker) attention(lines []string) []string {
	if s.p.Lang() == i18n.English {
		return lines
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		said := l
		for _, p := range attentionPatterns {
			if m := p.re.FindStringSubmatch(l); m != nil {
				if x, ok := p.say(s, m); ok {
					said = x
				}
				break
			}
		}
		out = append(out, said)
	}
	return out
}
