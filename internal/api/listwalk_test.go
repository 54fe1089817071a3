package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/apptest"
)

// notALists are GET operations on a collection-like path whose answer holds arrays but is
// one object, not a list.
var notALists = map[string]string{
	"/v1/me":                          "the caller and its memberships",
	"/v1/quota":                       "one member's quota arithmetic, per island",
	"/v1/approvals/settings":          "the approval rules and their catalogue",
	"/v1/audit/consistency":           "one consistency proof",
	"/v1/audit/entries/{seq}/proof":   "one inclusion proof",
	"/v1/repositories/{id}/agent":     "the repository's agent summary",
	"/v1/repositories/{id}/evidence":  "the repository's evidence summary",
	"/v1/vaults/{id}/protection":      "the vault's protection state",
	"/v1/restore-tests/{id}/progress": "one progress snapshot",
}

// listOperation is a GET whose answer is a list: an object with an array property.
type listOperation struct {
	path   string
	op     map[string]any
	params map[string]map[string]any // by name, resolved
	props  map[string]any
	req    []string
}

func listOperations(t *testing.T, d api.SchemaDoc) []listOperation {
	t.Helper()
	var out []listOperation
	for path, it := range d.Get(d.Root(), "paths") {
		item := it.(map[string]any)
		op := d.Get(item, "get")
		// A path ending in a parameter is one object (its arrays are its parts).
		if op == nil || strings.HasSuffix(path, "}") || notALists[path] != "" {
			continue
		}
		s := d.Get(op, "responses", "200", "content", "application/json", "schema")
		if s == nil {
			continue
		}
		s = d.Flat(s)
		props := d.Get(s, "properties")
		isList := false
		for _, p := range props {
			if slices.Contains(api.SchemaTypes(d.Flat(p.(map[string]any))), "array") {
				isList = true
			}
		}
		if !isList {
			continue
		}
		lo := listOperation{path: path, op: op, params: map[string]map[string]any{}, props: props}
		shared, _ := item["parameters"].([]any)
		own, _ := op["parameters"].([]any)
		for _, p := range append(slices.Clone(shared), own...) {
			pm := d.Flat(p.(map[string]any))
			lo.params[pm["name"].(string)] = pm
		}
		for _, r := range s["required"].([]any) {
			lo.req = append(lo.req, r.(string))
		}
		out = append(out, lo)
	}
	slices.SortFunc(out, func(a, b listOperation) int { return strings.Compare(a.path, b.path) })
	return out
}

// TestEveryListIsPagedOrABoundedWindow walks every GET of the OpenAPI document that
// answers a list: it must take cursor and limit (limit with a maximum) and answer
// next_cursor, unless the operation says, in x-window, that it is a bounded window and why
// (then its bound — limit or days — has a maximum). Every paged list without a path
// parameter is then asked for one item more than the maximum: 400 naming limit.
func TestEveryListIsPagedOrABoundedWindow(t *testing.T) {
	env, f := apptest.Parallel(t)
	d := loadSchemaDoc(t)
	ops := listOperations(t, d)
	if len(ops) < 20 {
		t.Fatalf("only %d list operations: is the document read?", len(ops))
	}
	maxOf := func(p map[string]any) (float64, bool) {
		m, ok := d.Flat(p["schema"].(map[string]any))["maximum"].(float64)
		return m, ok
	}
	for _, lo := range ops {
		if reason, _ := lo.op["x-window"].(string); reason != "" {
			bound := lo.params["limit"]
			if bound == nil {
				bound = lo.params["days"]
			}
			if bound == nil {
				t.Errorf("GET %s: a bounded window without a limit or days parameter", lo.path)
			} else if _, ok := maxOf(bound); !ok {
				t.Errorf("GET %s: a bounded window whose %s has no maximum", lo.path, bound["name"])
			}
			if _, paged := lo.props["next_cursor"]; paged {
				t.Errorf("GET %s: says it is a window (x-window) but answers next_cursor", lo.path)
			}
			continue
		}
		if lo.params["cursor"] == nil {
			t.Errorf("GET %s: a list without ?cursor= (say x-window and why if it is a bounded window)", lo.path)
		}
		lim := lo.params["limit"]
		if lim == nil {
			t.Errorf("GET %s: a list without ?limit=", lo.path)
		} else if _, ok := maxOf(lim); !ok {
			t.Errorf("GET %s: ?limit= without a maximum", lo.path)
		}
		if _, ok := lo.props["next_cursor"]; !ok || !slices.Contains(lo.req, "next_cursor") {
			t.Errorf("GET %s: a list that does not answer next_cursor (required)", lo.path)
		}
		if lim == nil || strings.Contains(lo.path, "{") {
			continue
		}
		max, _ := maxOf(lim)
		for _, n := range []string{"0", fmt.Sprint(int(max) + 1), "x"} {
			res := env.Do(apptest.Req{Method: "GET", Path: lo.path + "?limit=" + n, Token: f.FedAdmin.Access})
			if res.Status != 400 || res.ErrorField() != "limit" {
				t.Errorf("GET %s?limit=%s: %d naming %q, want 400 naming limit\n%.300s", lo.path, n, res.Status, res.ErrorField(), res.Body)
			}
		}
		if res := env.Do(apptest.Req{Method: "GET", Path: lo.path + "?limit=1", Token: f.FedAdmin.Access}); res.Status != 200 {
			t.Errorf("GET %s?limit=1: %d\n%.300s", lo.path, res.Status, res.Body)
		}
	}
}
