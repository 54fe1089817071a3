package apiref_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/apiref"
)

// TestReferenceShowsEveryOperation: the reference lists every operation of the document
// exactly once, with its parameters, body fields (limits and required marks) and answers,
// and every component schema — nothing of the API is missing from the page.
func TestReferenceShowsEveryOperation(t *testing.T) {
	raw, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := apiref.Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage
		Components struct{ Schemas map[string]json.RawMessage }
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for path, item := range doc.Paths {
		for m := range item {
			if m != "parameters" {
				want[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	got := map[string]apiref.Op{}
	for _, tag := range ref.Tags {
		for _, op := range tag.Ops {
			key := op.Method + " " + op.Path
			if _, dup := got[key]; dup {
				t.Errorf("%s listed twice", key)
			}
			got[key] = op
			if len(op.Responses) == 0 {
				t.Errorf("%s: no responses shown", key)
			}
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("%s is missing from the reference", k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d operations shown, the document has %d", len(got), len(want))
	}
	if len(ref.Schemas) != len(doc.Components.Schemas) {
		t.Errorf("%d schemas shown, the document has %d", len(ref.Schemas), len(doc.Components.Schemas))
	}

	create := got["POST /v1/repositories"]
	var vaultID *apiref.Field
	for i := range create.Body {
		if create.Body[i].Name == "vault_id" {
			vaultID = &create.Body[i]
		}
	}
	if vaultID == nil || !vaultID.Required || vaultID.Type != "integer" || !strings.Contains(vaultID.Constraints, "minimum 1") {
		t.Errorf("POST /v1/repositories body field vault_id = %+v, want a required integer, minimum 1", vaultID)
	}
	list := got["GET /v1/repositories"]
	var limit *apiref.Field
	for i := range list.Params {
		if list.Params[i].Name == "limit" {
			limit = &list.Params[i]
		}
	}
	if limit == nil || limit.In != "query" || !strings.Contains(limit.Constraints, "maximum 500") {
		t.Errorf("GET /v1/repositories parameter limit = %+v, want a query parameter with maximum 500 (resolved from its $ref)", limit)
	}
	if !got["GET /healthz"].Public || got["GET /v1/vaults"].Public {
		t.Error("public operations must be marked, and only they")
	}
}
