package problem

import (
	"fmt"

	"github.com/chatons/archipelago/internal/i18n"
)

// CatalogSection is the catalog section that holds the messages of this vocabulary, keyed
// by their English source text: the format given to Invalid, Conflict (and the API's own
// constructors), or the literal sentence of an error built without one ("api.is out of range").
const CatalogSection = "api."

// Localize says a message in p's language, gettext-style: the English source text is the
// key of its translation. With a format (the one Invalid or Conflict were given) the
// translated format is applied to args; without one, text is a literal sentence looked up
// as it is. A message the catalog does not translate, and a nil printer, give the English.
// Arguments (names, field names, numbers) are never translated, except Words.
func Localize(p *i18n.Printer, text, format string, args []any) string {
	if p != nil && p.Lang() != i18n.English {
		for i, a := range args {
			if w, ok := a.(Word); ok {
				if tr, ok := lookup(p, string(w)); ok {
					args = append([]any(nil), args...)
					args[i] = Word(tr)
				}
			}
		}
	}
	if format == "" {
		if tr, ok := lookup(p, text); ok {
			return tr
		}
		return text
	}
	if tr, ok := lookup(p, format); ok {
		return fmt.Sprintf(tr, args...)
	}
	return fmt.Sprintf(format, args...)
}

// Word is an argument of a message that is itself English prose ("a whole number", "true
// or false"): Localize translates it through the catalog like a message, where other
// arguments (names, field names, numbers) are left as they are.
type Word string

func lookup(p *i18n.Printer, source string) (string, bool) {
	if p == nil || p.Lang() == i18n.English || source == "" {
		return "", false
	}
	id := CatalogSection + source
	tr := p.T(id)
	if tr == id || tr == "" {
		return "", false
	}
	return tr, true
}
