package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"
)

// The OpenAPI document is kept as one YAML fragment per domain in openapi/, so each
// domain describes its own routes; they are merged into one OpenAPI 3.1 document at start.
//
//go:embed openapi/*.yaml
var openapiFS embed.FS

// OpenAPI returns the merged OpenAPI document as JSON. A fragment that does not parse or
// that redefines a path or schema is an error (checked at start and by tests).
func OpenAPI() ([]byte, error) {
	names, err := fs.Glob(openapiFS, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	doc := map[string]any{}
	for _, name := range names {
		raw, err := openapiFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var frag map[string]any
		if err := yaml.Unmarshal(raw, &frag); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := mergeInto(doc, frag, name, ""); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// mergeInto merges src into dst; "paths" and "components" maps merge key by key, and a
// key defined twice is an error.
func mergeInto(dst, src map[string]any, file, path string) error {
	for _, k := range slices.Sorted(maps.Keys(src)) {
		v := src[k]
		cur, exists := dst[k]
		if !exists {
			dst[k] = v
			continue
		}
		cm, ok1 := cur.(map[string]any)
		vm, ok2 := v.(map[string]any)
		mergeable := path == "" && (k == "paths" || k == "components" || k == "tags") ||
			path == "components"
		if ok1 && ok2 && mergeable {
			if err := mergeInto(cm, vm, file, k); err != nil {
				return err
			}
			continue
		}
		if path == "" && k == "tags" {
			a, _ := cur.([]any)
			b, _ := v.([]any)
			dst[k] = append(a, b...)
			continue
		}
		return fmt.Errorf("%s: %s%s is defined twice", file, prefix(path), k)
	}
	return nil
}

func prefix(p string) string {
	if p == "" {
		return ""
	}
	return p + "."
}

// Document is the merged OpenAPI document (JSON) the API serves, assembled once by New.
func (a *API) Document() []byte { return a.openapi }

// ServeOpenAPI answers GET /v1/openapi.json.
func (a *API) ServeOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(a.openapi)
}
