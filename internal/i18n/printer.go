package i18n

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
)

// Printer writes texts, dates, numbers and sizes in one language. A nil *Printer speaks
// English without a catalog: message ids come back as they are (tests and code paths that
// have no catalog still print something readable).
type Printer struct {
	lang Lang
	cat  *Catalog
	loc  *goi18n.Localizer
}

// Lang is the printer's language ("en" for a nil printer).
func (p *Printer) Lang() Lang {
	if p == nil {
		return English
	}
	return p.lang
}

// T is the message id in the printer's language, its {{.Name}} fields filled from args given
// as name/value pairs: T("vault.created", "Name", v.Name). A message missing from the language
// falls back to English, then to the id itself (the catalog tests make both a defect).
func (p *Printer) T(id string, args ...any) string {
	return p.localize(id, nil, args)
}

// N is T for a message with plural forms (one/other), chosen by count under the language's
// plural rules; the count is also the template field {{.Count}}.
func (p *Printer) N(id string, count int, args ...any) string {
	return p.localize(id, count, args)
}

func (p *Printer) localize(id string, count any, args []any) string {
	if p == nil || p.loc == nil {
		return id
	}
	data := map[string]any{}
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok {
			data[k] = args[i+1]
		}
	}
	if count != nil {
		data["Count"] = count
	}
	s, err := p.loc.Localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: data, PluralCount: count})
	if err != nil && s == "" {
		return id
	}
	return s
}

var monthsFR = [...]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."}

// Date is the day of t in loc as the language writes it: "Dec 5, 2026", « 5 déc. 2026 ».
func (p *Printer) Date(t time.Time, loc *time.Location) string {
	t = inZone(t, loc)
	if p.Lang() == French {
		return fmt.Sprintf("%d %s %d", t.Day(), monthsFR[t.Month()-1], t.Year())
	}
	return t.Format("Jan 2, 2006")
}

// DateTime is the moment t in loc to the minute, with the zone's abbreviation:
// "Dec 5, 2026, 14:03 CET", « 5 déc. 2026 à 14:03 CET » (24-hour clock in both).
func (p *Printer) DateTime(t time.Time, loc *time.Location) string {
	t = inZone(t, loc)
	if p.Lang() == French {
		return p.Date(t, nil) + " à " + t.Format("15:04 MST")
	}
	return p.Date(t, nil) + ", " + t.Format("15:04 MST")
}

func inZone(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		return t
	}
	return t.In(loc)
}

// Number is an integer with the language's digit grouping: "12,345", « 12 345 » (with a
// narrow no-break space, as French typography writes it).
func (p *Printer) Number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sep := ","
	if p.Lang() == French {
		sep = "\u202f"
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Decimal is f with at most digits decimals, no trailing zeros, and the language's decimal
// mark: "1.5", « 1,5 ».
func (p *Printer) Decimal(f float64, digits int) string {
	scale := math.Pow10(digits)
	s := strconv.FormatFloat(math.Round(f*scale)/scale, 'f', -1, 64)
	if p.Lang() == French {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// Percent is a ratio as a whole percentage: "42%", « 42 % ».
func (p *Printer) Percent(ratio float64) string {
	n := strconv.FormatFloat(math.Round(ratio*100), 'f', 0, 64)
	if p.Lang() == French {
		return n + "\u202f%"
	}
	return n + "%"
}

var (
	unitsEN = [...]string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	unitsFR = [...]string{"o", "ko", "Mo", "Go", "To", "Po", "Eo"}
)

// Bytes is a size in SI units, as Garage counts capacity, with up to two decimals:
// "1.5 GB", « 1,5 Go » (French writes octets).
func (p *Printer) Bytes(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	f, u := float64(n), 0
	for f >= 1000 && u < len(unitsEN)-1 {
		f /= 1000
		u++
	}
	unit := unitsEN[u]
	if p.Lang() == French {
		unit = unitsFR[u]
	}
	s := p.Decimal(f, 2)
	if neg {
		s = "-" + s
	}
	return s + "\u00a0" + unit
}

// Span is a duration in its largest sensible unit: "42 s", "5 min", "3 h", "2 d" (« 2 j »).
func (p *Printer) Span(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d\u00a0s", int64(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d\u00a0min", int64(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d\u00a0h", int64(d/time.Hour))
	}
	day := "d"
	if p.Lang() == French {
		day = "j"
	}
	return fmt.Sprintf("%d\u00a0%s", int64(d/(24*time.Hour)), day)
}

// Relative says when t is from now: "just now", "5 min ago", "in 2 h"; « à l’instant »,
// « il y a 5 min », « dans 2 h ».
func (p *Printer) Relative(now, t time.Time) string {
	d := now.Sub(t)
	fr := p.Lang() == French
	switch {
	case d > -5*time.Second && d < 5*time.Second:
		if fr {
			return "à l’instant"
		}
		return "just now"
	case d < 0:
		if fr {
			return "dans " + p.Span(-d)
		}
		return "in " + p.Span(-d)
	}
	if fr {
		return "il y a " + p.Span(d)
	}
	return p.Span(d) + " ago"
}

type ctxKey struct{}

// WithPrinter is ctx carrying the printer of the person being answered.
func WithPrinter(ctx context.Context, p *Printer) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext is the printer ctx carries; nil (English, ids as they are) when it has none.
func FromContext(ctx context.Context) *Printer {
	p, _ := ctx.Value(ctxKey{}).(*Printer)
	return p
}
