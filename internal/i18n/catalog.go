package i18n

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"go.yaml.in/yaml/v3"
)

//go:embed locales/*.yaml
var locales embed.FS

// Catalog holds the messages of every supported language. It is loaded once at start and
// shared; it is safe for concurrent use.
type Catalog struct {
	bundle   *goi18n.Bundle
	ids      map[Lang]map[string]bool
	printers map[Lang]*Printer
	retellState
}

// Load reads the embedded catalogs: locales/<lang>.yaml and locales/<area>.<lang>.yaml (one
// file per area of the product, so that each area's texts are edited on their own). An error
// means a catalog file is malformed or two files define the same message (defects caught by
// the package's tests).
func Load() (*Catalog, error) {
	b := goi18n.NewBundle(English.tag())
	b.RegisterUnmarshalFunc("yaml", yaml.Unmarshal)
	c := &Catalog{bundle: b, ids: map[Lang]map[string]bool{}, printers: map[Lang]*Printer{}}
	files, err := catalogFiles()
	if err != nil {
		return nil, err
	}
	for _, l := range Langs {
		c.ids[l] = map[string]bool{}
		for _, name := range files[l] {
			data, err := locales.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("i18n: catalog %s: %w", name, err)
			}
			f, err := b.ParseMessageFileBytes(data, path.Base(name))
			if err != nil {
				return nil, fmt.Errorf("i18n: catalog %s: %w", name, err)
			}
			for _, m := range f.Messages {
				if c.ids[l][m.ID] {
					return nil, fmt.Errorf("i18n: catalog %s: message %q is defined twice for %s", name, m.ID, l)
				}
				c.ids[l][m.ID] = true
			}
		}
	}
	for _, l := range Langs {
		c.printers[l] = &Printer{lang: l, cat: c, loc: goi18n.NewLocalizer(b, string(l))}
	}
	return c, nil
}

// catalogFiles are the embedded catalog files of each language, by name.
func catalogFiles() (map[Lang][]string, error) {
	names, err := fs.Glob(locales, "locales/*.yaml")
	if err != nil {
		return nil, err
	}
	out := map[Lang][]string{}
	for _, name := range names {
		parts := strings.Split(strings.TrimSuffix(path.Base(name), ".yaml"), ".")
		l := Lang(parts[len(parts)-1])
		if !slices.Contains(Langs, l) {
			return nil, fmt.Errorf("i18n: catalog file %s names no supported language (want <area>.<lang>.yaml)", name)
		}
		out[l] = append(out[l], name)
	}
	return out, nil
}

// Printer is the printer of a language; an unsupported one gets English's.
func (c *Catalog) Printer(l Lang) *Printer {
	if p, ok := c.printers[l]; ok {
		return p
	}
	return c.printers[English]
}

// Has reports whether the language's catalog holds the message id.
func (c *Catalog) Has(l Lang, id string) bool { return c.ids[l][id] }

// IDs are the message ids of a language's catalog, sorted.
func (c *Catalog) IDs(l Lang) []string {
	out := make([]string, 0, len(c.ids[l]))
	for id := range c.ids[l] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
