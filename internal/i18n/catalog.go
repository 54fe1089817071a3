package i18n

import (
	"embed"
	"fmt"
	"path"
	"sort"

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
}

// Load reads the embedded catalogs. An error means a catalog file is malformed (a defect
// caught by the package's tests).
func Load() (*Catalog, error) {
	b := goi18n.NewBundle(English.tag())
	b.RegisterUnmarshalFunc("yaml", yaml.Unmarshal)
	c := &Catalog{bundle: b, ids: map[Lang]map[string]bool{}, printers: map[Lang]*Printer{}}
	for _, l := range Langs {
		name := "locales/" + string(l) + ".yaml"
		data, err := locales.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("i18n: catalog %s: %w", l, err)
		}
		f, err := b.ParseMessageFileBytes(data, path.Base(name))
		if err != nil {
			return nil, fmt.Errorf("i18n: catalog %s: %w", l, err)
		}
		ids := map[string]bool{}
		for _, m := range f.Messages {
			ids[m.ID] = true
		}
		c.ids[l] = ids
	}
	for _, l := range Langs {
		c.printers[l] = &Printer{lang: l, cat: c, loc: goi18n.NewLocalizer(b, string(l))}
	}
	return c, nil
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
