package api_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/testenv"
)

// memberRefCase is one place of the API that names a member: the request it sends naming
// the member ref (an id, as a JSON number in a body, or a slug), the status it answers for
// an existing member, and the field a missing member's 404 names.
type memberRefCase struct {
	op     string // "METHOD /path" as the OpenAPI document writes it
	status int
	field  string
	req    func(ref any) apptest.Req
}

// memberRefExempt lists operations naming a member that the table does not send, with why.
var memberRefExempt = map[string]string{
	"PUT /v1/islands/{id}/operators/{member}":    "needs an island on a Garage simulator: TestIslandLifecycleOnTheSimulator adds one operator by id, one by slug and refuses unknown ones",
	"DELETE /v1/islands/{id}/operators/{member}": "same path parameter and loader as PUT (operatorTarget)",
	"POST /v1/pledges":                           "needs an island on a Garage simulator: TestIslandLifecycleOnTheSimulator pledges by id and by slug",
	"POST /v1/approvals/{id}/approve":            "needs an approval request voted on by an admin of several members: the vote's member goes through memberByRef like every body",
	"POST /v1/approvals/{id}/reject":             "as approve",
	"DELETE /v1/members/{id}":                    "the same loader as GET and PATCH (memberFor); deleting the fixture's member would end the test",
	"PATCH /v1/members/{id}/people/{user_id}":    "the same loader as GET …/people/{user_id} (peopleMember)",
	"DELETE /v1/members/{id}/people/{user_id}":   "the same loader as GET …/people/{user_id} (peopleMember)",
	"PATCH /v1/notify/channels/{id}":             "the member of a channel cannot be changed (400 naming member, whatever the form)",
}

func memberRefCases(f *apptest.Fixture) []memberRefCase {
	get := func(path string, status int, field string) memberRefCase {
		return memberRefCase{op: "GET " + path, status: status, field: field, req: func(ref any) apptest.Req {
			p := strings.Replace(path, "{id}", fmt.Sprint(ref), 1)
			if !strings.Contains(path, "{id}") {
				q := "member"
				if path == "/v1/islands" {
					q = "operator"
				}
				p += "?" + q + "=" + fmt.Sprint(ref)
			}
			if path == "/v1/members/{id}/people/{user_id}" {
				p = strings.Replace(p, "{user_id}", "999999", 1) // the member is resolved first
			}
			return apptest.Req{Method: "GET", Path: p, Token: f.FedAdmin.Access}
		}}
	}
	post := func(path string, status int, token string, body func(ref any) map[string]any) memberRefCase {
		return memberRefCase{op: "POST " + path, status: status, field: "member", req: func(ref any) apptest.Req {
			return apptest.Req{Method: "POST", Path: path, Token: token, Body: body(ref)}
		}}
	}
	return []memberRefCase{
		get("/v1/members/{id}", 200, "member"),
		get("/v1/members/{id}/people", 200, "member"),
		get("/v1/members/{id}/people/{user_id}", 404, "member"), // a person of the member: none with that id
		get("/v1/members/{id}/language", 200, "member"),
		{op: "PUT /v1/members/{id}/language", status: 200, field: "member", req: func(ref any) apptest.Req {
			return apptest.Req{Method: "PUT", Path: "/v1/members/" + fmt.Sprint(ref) + "/language", Token: f.FedAdmin.Access,
				Body: map[string]any{"language": "fr"}}
		}},
		{op: "PATCH /v1/members/{id}", status: 200, field: "member", req: func(ref any) apptest.Req {
			return apptest.Req{Method: "PATCH", Path: "/v1/members/" + fmt.Sprint(ref), Token: f.FedAdmin.Access,
				Body: map[string]any{"description": "named by " + fmt.Sprint(ref)}}
		}},
		{op: "POST /v1/members/{id}/people", status: 200, field: "member", req: func(ref any) apptest.Req {
			// The fixture's viewer of A is already a person of A: their role is replaced (200).
			return apptest.Req{Method: "POST", Path: "/v1/members/" + fmt.Sprint(ref) + "/people", Token: f.FedAdmin.Access,
				Body: map[string]any{"email": f.ViewerA.Email, "role": "viewer"}}
		}},
		get("/v1/vaults", 200, "member"),
		get("/v1/repositories", 200, "member"),
		get("/v1/restore-tests", 200, "member"),
		get("/v1/reports", 200, "member"),
		get("/v1/pledges", 200, "member"),
		get("/v1/islands", 200, "operator"),
		get("/v1/quota", 200, "member"),
		get("/v1/quota/grants", 200, "member"),
		get("/v1/audit/entries", 200, "member"),
		post("/v1/tokens", 201, f.AdminA.Access, func(ref any) map[string]any {
			return map[string]any{"name": testenv.Unique("ref-"), "member": ref, "role": "viewer"}
		}),
		post("/v1/quota/grants", 201, f.FedAdmin.Access, func(ref any) map[string]any {
			return map[string]any{"member": ref, "bytes": 1_000_000, "reason": "member ref test"}
		}),
		post("/v1/reports", 201, f.AdminA.Access, func(ref any) map[string]any {
			return map[string]any{"member": ref, "period": "custom"}
		}),
		post("/v1/notify/channels", 201, f.AdminA.Access, func(ref any) map[string]any {
			return map[string]any{"member": ref, "kind": "email", "name": testenv.Unique("ref-"), "target": "ops@a.example"}
		}),
		// No island in this environment can take the vault: the member is resolved first, the
		// placement then refused the same way for both forms.
		post("/v1/vaults", 0, f.AdminA.Access, func(ref any) map[string]any {
			return map[string]any{"member": ref, "name": testenv.Unique("ref-"), "quota_bytes": 1_000_000_000}
		}),
	}
}

// TestEveryPlaceThatNamesAMemberTakesItsIDOrItsSlug sends every request of the table that
// names a member twice, by its id and by its slug, and wants the same answer; a slug and an
// id that name no member answer 404 naming the field. The table must cover every
// operation of the OpenAPI document that names a member (or say why not).
func TestEveryPlaceThatNamesAMemberTakesItsIDOrItsSlug(t *testing.T) {
	env, f := apptest.Parallel(t)
	// All digits would read as an id: such a slug is refused, on creation and on rename.
	for _, req := range []apptest.Req{
		{Method: "POST", Path: "/v1/members", Token: f.FedAdmin.Access, Body: map[string]any{"slug": "2026", "name": "Digits"}},
		{Method: "PATCH", Path: "/v1/members/" + f.MemberB.Slug, Token: f.FedAdmin.Access, Body: map[string]any{"slug": "42"}},
		// "federation" names the federation's own entries in ?member= of the audit log.
		{Method: "POST", Path: "/v1/members", Token: f.FedAdmin.Access, Body: map[string]any{"slug": "federation", "name": "Fed"}},
		{Method: "PATCH", Path: "/v1/members/" + f.MemberB.Slug, Token: f.FedAdmin.Access, Body: map[string]any{"slug": "federation"}},
	} {
		if res := env.Do(req); res.Status != 400 || res.ErrorField() != "slug" {
			t.Errorf("%s %s with an all-digit or reserved slug: %d naming %q, want 400 naming slug\n%.300s", req.Method, req.Path, res.Status, res.ErrorField(), res.Body)
		}
	}
	// A slug another member has: 409 naming slug, on creation and on rename.
	for _, req := range []apptest.Req{
		{Method: "POST", Path: "/v1/members", Token: f.FedAdmin.Access, Body: map[string]any{"slug": f.MemberB.Slug, "name": "Twin"}},
		{Method: "PATCH", Path: "/v1/members/" + f.MemberA.Slug, Token: f.FedAdmin.Access, Body: map[string]any{"slug": f.MemberB.Slug}},
	} {
		if res := env.Do(req); res.Status != 409 || res.ErrorField() != "slug" {
			t.Errorf("%s %s with a slug in use: %d naming %q, want 409 naming slug\n%.300s", req.Method, req.Path, res.Status, res.ErrorField(), res.Body)
		}
	}
	cases := memberRefCases(f)
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.op] = true
	}
	for _, op := range memberNamingOperations(t, loadSchemaDoc(t)) {
		if !covered[op] && memberRefExempt[op] == "" {
			t.Errorf("%s names a member but is not in memberRefCases (nor memberRefExempt)", op)
		}
	}
	for _, c := range cases {
		var statuses []int
		for _, ref := range []any{f.MemberA.ID, f.MemberA.Slug, strconv.FormatInt(f.MemberA.ID, 10)} {
			res := env.Do(c.req(ref))
			statuses = append(statuses, res.Status)
			if res.Status == 404 && res.ErrorField() == c.field {
				t.Errorf("%s with member %#v: 404 naming %s\n%.300s", c.op, ref, c.field, res.Body)
			}
			if c.status != 0 && res.Status != c.status {
				t.Errorf("%s with member %#v: %d, want %d\n%.300s", c.op, ref, res.Status, c.status, res.Body)
			}
		}
		if statuses[0] != statuses[1] || statuses[1] != statuses[2] {
			t.Errorf("%s: by id, slug and digits as a string: %v, want one answer", c.op, statuses)
		}
		for _, ref := range []any{"no-such-member", int64(987654321), "99999999999999999999999"} {
			res := env.Do(c.req(ref))
			if res.Status != 404 || res.ErrorField() != c.field {
				t.Errorf("%s with member %#v: %d naming %q, want 404 naming %s\n%.300s", c.op, ref, res.Status, res.ErrorField(), c.field, res.Body)
			}
		}
	}
}

// memberNamingOperations lists "METHOD /path" of every operation of the document with a
// parameter or a body property that names a member, checking on the way that each is a
// MemberRef.
func memberNamingOperations(t *testing.T, d api.SchemaDoc) []string {
	t.Helper()
	isRef := func(s map[string]any) bool {
		ts := api.SchemaTypes(d.Flat(s))
		return slices.Contains(ts, "integer") && slices.Contains(ts, "string")
	}
	var ops []string
	for path, item := range d.Get(d.Root(), "paths") {
		item := item.(map[string]any)
		shared, _ := item["parameters"].([]any)
		for method, o := range item {
			op, ok := o.(map[string]any)
			if !ok || method == "parameters" {
				continue
			}
			name := strings.ToUpper(method) + " " + path
			names := false
			params, _ := op["parameters"].([]any)
			for _, p := range append(slices.Clone(shared), params...) {
				p := d.Flat(p.(map[string]any))
				n, _ := p["name"].(string)
				member := n == "member" || n == "operator" || (n == "id" && strings.HasPrefix(path, "/v1/members/{id}"))
				if !member {
					continue
				}
				names = true
				if s, _ := p["schema"].(map[string]any); !isRef(s) {
					t.Errorf("%s: parameter %s is not a MemberRef (an id or a slug)", name, n)
				}
			}
			rb := d.Get(op, "requestBody")
			if rb != nil {
				rb = d.Flat(rb) // a requestBody may be a $ref to components/requestBodies
			}
			if s := d.Get(rb, "content", "application/json", "schema"); s != nil {
				for _, pr := range properties(d, nil, s) {
					if pr.path[len(pr.path)-1] == "member" || pr.path[len(pr.path)-1] == "member_id" {
						names = true
						if !isRef(pr.schema) || pr.path[len(pr.path)-1] == "member_id" {
							t.Errorf("%s: body property %s: want member, a MemberRef (an id or a slug)", name, strings.Join(pr.path, "."))
						}
					}
				}
			}
			if names {
				ops = append(ops, name)
			}
		}
	}
	slices.Sort(ops)
	if len(ops) < 15 {
		t.Fatalf("only %d operations name a member: is the document read?", len(ops))
	}
	return ops
}

// TestResponsesNameAMemberByIDAndSlug: no response of the document calls a member
// "member" (nor a membership's slug "slug"): it is member_id and member_slug everywhere.
func TestResponsesNameAMemberByIDAndSlug(t *testing.T) {
	t.Parallel()
	d := loadSchemaDoc(t)
	seen := map[string]bool{}
	var walk func(where string, s map[string]any)
	walk = func(where string, s map[string]any) {
		if s == nil {
			return
		}
		if ref, ok := s["$ref"].(string); ok {
			if seen[ref] {
				return
			}
			seen[ref] = true
		}
		s = d.Flat(s)
		props := d.Get(s, "properties")
		for name, ps := range props {
			if name == "member" || name == "affected_member" {
				t.Errorf("%s: a response property %q: name a member with member_id and member_slug", where, name)
			}
			if name == "slug" && props["member_id"] != nil {
				t.Errorf("%s: a member's slug beside member_id is member_slug", where)
			}
			walk(where+"."+name, ps.(map[string]any))
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(where+"[]", items)
		}
		for _, k := range []string{"oneOf", "anyOf"} {
			if alts, ok := s[k].([]any); ok {
				for _, a := range alts {
					walk(where, a.(map[string]any))
				}
			}
		}
	}
	n := 0
	for path, item := range d.Get(d.Root(), "paths") {
		for method, o := range item.(map[string]any) {
			op, ok := o.(map[string]any)
			if !ok || method == "parameters" {
				continue
			}
			for code, resp := range d.Get(op, "responses") {
				r := d.Flat(resp.(map[string]any))
				for ct, c := range d.Get(r, "content") {
					if s := d.Get(c.(map[string]any), "schema"); s != nil && strings.Contains(ct, "json") {
						n++
						walk(fmt.Sprintf("%s %s %s", strings.ToUpper(method), path, code), s)
					}
				}
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d response schemas: is the document read?", n)
	}
}
