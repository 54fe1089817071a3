package i18n

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Some domain texts are stored in English when they happen and shown much later to people
// who read another language: a restore test's reason (verify), an approval request's
// effect (approvals), an audit verification's findings (audit). They are written with
// fmt formats; their translations live in the catalog sections named by RetellSections,
// keyed — gettext-style — by the English format itself:
//
//	verify:
//	  "restic check (data subset %s) found %d errors in the repository: %s": "restic check (sous-ensemble %s) a trouvé %d erreurs dans le dépôt : %s"
//
// Retell reads a stored text back against those formats (each one compiled to a pattern:
// %s any text, %d a whole number, %q a quoted string) and says it again with the
// translation, the same arguments in the same order. Arguments are said in the reader's
// language too: a number is grouped (« 12 345 »), a size (1.5 GB) and a duration as the
// verifier writes them (3d4h, 2m05s) rewritten, and an argument that is itself a known
// format (the "what" before a restic error) retold; anything else — names, ids, restic's
// own words — is kept as it is. A text joined from several known ones with "; " is
// retold part by part. A text no format matches is shown as stored, so rows written
// before a translation existed still display.

// RetellSections are the catalog sections holding the formats Retell knows.
var RetellSections = []string{"verify.", "approvals.", "audit.", "islands.", "protection.", "quota."}

type retellFormat struct {
	id    string // catalog id: section + English format
	lit   int    // the length of the format's literal text
	re    *regexp.Regexp
	verbs []byte // the verbs of the format, in order: 's', 'd', 'q'
}

// retellVerb matches the verbs a retold format may use.
var retellVerb = regexp.MustCompile(`%[sdq%]`)

func compileFormat(id, format string) (retellFormat, error) {
	f := retellFormat{id: id, lit: len(retellVerb.ReplaceAllString(format, ""))}
	var b strings.Builder
	b.WriteString(`^`)
	last := 0
	for _, m := range retellVerb.FindAllStringIndex(format, -1) {
		b.WriteString(regexp.QuoteMeta(format[last:m[0]]))
		switch v := format[m[0]+1]; v {
		case 's':
			b.WriteString(`(.*?)`)
			f.verbs = append(f.verbs, v)
		case 'd':
			b.WriteString(`(-?\d+)`)
			f.verbs = append(f.verbs, v)
		case 'q':
			b.WriteString(`("(?:[^"\\]|\\.)*")`)
			f.verbs = append(f.verbs, v)
		case '%':
			b.WriteString(`%`)
		}
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(format[last:]))
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return f, fmt.Errorf("i18n: format %q: %w", format, err)
	}
	f.re = re
	return f, nil
}

// retellFormats are the formats of the RetellSections, the most specific (longest
// literal text) first, so that a format does not swallow a more precise one.
func (c *Catalog) retellFormats() []retellFormat {
	c.retellOnce.Do(func() {
		for _, id := range c.IDs(English) {
			for _, sec := range RetellSections {
				if format, ok := strings.CutPrefix(id, sec); ok {
					f, err := compileFormat(id, format)
					if err == nil { // a bad format is reported by the package's tests
						c.retell = append(c.retell, f)
					}
				}
			}
		}
		sort.SliceStable(c.retell, func(i, j int) bool { return c.retell[i].lit > c.retell[j].lit })
	})
	return c.retell
}

// Retell says a stored English domain text (a restore test's reason, an approval's
// effect, an audit finding) in the printer's language; English, and a text no known
// format matches, come back as they are.
func (p *Printer) Retell(text string) string {
	if p == nil || p.cat == nil || p.lang == English || text == "" {
		return text
	}
	if out, ok := p.retell(text, 0); ok {
		return out
	}
	return text
}

// Retold reports whether Retell recognises text (for tests and callers that want to know
// whether a stored text is still said in English).
func (p *Printer) Retold(text string) bool {
	if p == nil || p.cat == nil {
		return false
	}
	_, ok := p.retell(text, 0)
	return ok
}

func (p *Printer) retell(text string, depth int) (string, bool) {
	if depth > 4 || text == "" {
		return text, false
	}
	for _, f := range p.cat.retellFormats() {
		m := f.re.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		args := make([]any, len(f.verbs))
		for i, v := range f.verbs {
			args[i] = p.retellArg(v, m[i+1], depth)
		}
		tr := p.T(f.id)
		if tr == f.id || tr == "" {
			return text, false
		}
		return fmt.Sprintf(retellVerbsToS(tr), args...), true
	}
	// Several texts joined with "; ": each part on its own.
	for i := strings.Index(text, "; "); i >= 0; {
		if left, ok := p.retell(text[:i], depth+1); ok {
			if right, ok := p.retell(text[i+2:], depth+1); ok {
				sep := "; "
				if p.lang == French {
					sep = "\u202f; "
				}
				return left + sep + right, true
			}
		}
		j := strings.Index(text[i+2:], "; ")
		if j < 0 {
			break
		}
		i += 2 + j
	}
	return text, false
}

// retellVerbsToS makes every argument verb of a translation %s: Retell passes its arguments
// already written (a number grouped, a quoted string quoted).
func retellVerbsToS(format string) string {
	return retellVerb.ReplaceAllStringFunc(format, func(v string) string {
		if v == "%%" {
			return v
		}
		return "%s"
	})
}

var (
	retellSize = regexp.MustCompile(`^(\d+(?:\.\d+)?)[ \x{a0}]([kMGTPE]?)B$`)
	// The verifier's durations: 3d4h, 5h07m, 5h, 2m05s, 4.2s.
	retellDuration = regexp.MustCompile(`^(?:(\d+)d(\d+)h|(\d+)h(\d{2})m|(\d+)h|(\d+)m(\d{2})s|(\d+(?:\.\d+)?)s)$`)
)

func (p *Printer) retellArg(verb byte, s string, depth int) string {
	switch verb {
	case 'd':
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return s
		}
		return p.Number(n)
	case 'q':
		return s // kept quoted, as stored
	}
	if m := retellSize.FindStringSubmatch(s); m != nil {
		f, _ := strconv.ParseFloat(m[1], 64)
		mult := map[string]float64{"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}[m[2]]
		return p.Bytes(int64(f * mult))
	}
	if m := retellDuration.FindStringSubmatch(s); m != nil {
		return p.shortDuration(m)
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil { // a stored time (UTC)
		return p.DateTime(t, time.UTC)
	}
	if n, ok := strings.CutSuffix(strings.TrimSuffix(s, "s"), " day"); ok && p.lang == French { // the approvals' durations
		if d, err := strconv.Atoi(n); err == nil {
			if d == 1 {
				return n + "\u00a0jour"
			}
			return n + "\u00a0jours"
		}
	}
	// A list of known sentences first ("a and b" would else match a format ending in %s
	// with "b" swallowed), then a sentence ("%s and %d more" is one).
	if out, ok := p.retellList(s, depth); ok {
		return out
	}
	if out, ok := p.retell(s, depth+1); ok {
		return out
	}
	if retellDecimal.MatchString(s) && p.lang == French { // a ratio ("1.0")
		return strings.Replace(s, ".", ",", 1)
	}
	if p.lang == French && (s == "true" || s == "false") { // a setting's new value
		return map[string]string{"true": "oui", "false": "non"}[s]
	}
	return s
}

// retellSetting is a machine setting in a list ("copy_by_default=false", `name="x"`): said
// as it is, its name being the API's.
var retellDecimal = regexp.MustCompile(`^\d+\.\d+$`)

var retellSetting = regexp.MustCompile(`^[a-z_]+=\S`)

// retellList says an English list argument ("a, b and c", "a, b") part by part, when every
// part is a known sentence or a machine setting, joined the reader's way (« a, b et c »).
func (p *Printer) retellList(s string, depth int) (string, bool) {
	if depth > 4 || (!strings.Contains(s, ", ") && !strings.Contains(s, " and ")) {
		return s, false
	}
	parts := splitTopLevel(s, ", ")
	last := parts[len(parts)-1]
	and := false
	if tail := splitTopLevel(last, " and "); len(tail) > 1 {
		parts = append(parts[:len(parts)-1], strings.Join(tail[:len(tail)-1], " and "), tail[len(tail)-1])
		and = true
	}
	if len(parts) < 2 {
		return s, false
	}
	known := false
	for i, part := range parts {
		if retellSetting.MatchString(part) {
			continue
		}
		out, ok := p.retell(part, depth+1)
		if !ok {
			return s, false
		}
		parts[i], known = out, true
	}
	if !known && p.lang != French {
		return s, false
	}
	if !and {
		return strings.Join(parts, ", "), true
	}
	word := " and "
	if p.lang == French {
		word = " et "
	}
	return strings.Join(parts[:len(parts)-1], ", ") + word + parts[len(parts)-1], true
}

// shortDuration writes a verifier duration (see retellDuration's groups) in the printer's
// language: « 3 j 4 h », « 5 h 07 min », « 2 min 05 s », « 4,2 s ».
func (p *Printer) shortDuration(m []string) string {
	day := "d"
	if p.Lang() == French {
		day = "j"
	}
	const nb = "\u00a0"
	switch {
	case m[1] != "":
		return m[1] + nb + day + " " + m[2] + nb + "h"
	case m[3] != "":
		return m[3] + nb + "h " + m[4] + nb + "min"
	case m[5] != "":
		return m[5] + nb + "h"
	case m[6] != "":
		return m[6] + nb + "min " + m[7] + nb + "s"
	}
	f, _ := strconv.ParseFloat(m[8], 64)
	return p.Decimal(f, 1) + nb + "s"
}

// retellState is the Catalog's compiled formats (built on first use).
type retellState struct {
	retellOnce sync.Once
	retell     []retellFormat
}

// splitTopLevel splits s at sep outside parentheses and brackets: "a (b, c), d" is two parts.
func splitTopLevel(s, sep string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		default:
			if depth == 0 && strings.HasPrefix(s[i:], sep) {
				parts = append(parts, s[start:i])
				start = i + len(sep)
				i += len(sep) - 1
			}
		}
	}
	return append(parts, s[start:])
}
