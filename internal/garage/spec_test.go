package garage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// specPath is Garage v2.3's admin API document (OpenAPI 3.1), copied from
// shared/garage/garage-admin-v2.json.
const specPath = "testdata/garage-admin-v2.json"

// loadSpec loads the OpenAPI document. kin-openapi v0.152 reads OpenAPI 3.1
// natively (type arrays with "null", {"type":"null"} in oneOf,
// propertyNames, empty schemas) and validates 3.1 documents with its JSON
// Schema 2020-12 validator, so no 3.1 → 3.0 normalisation is needed; the
// test TestSpecHandles31Constructs guards that.
//
// With strict, it tightens two schemas to Archipelago's house rules, which
// are stricter than Garage's document (Garage reads an absent field as null,
// which silently clears a limit or makes a gateway):
//   - ApiBucketQuotas: maxSize and maxObjects are both required (null when
//     unlimited), since UpdateBucket replaces both quotas;
//   - NodeAssignedRole: capacity is required (null for a gateway), as zone
//     and tags already are.
//
// Both schemas are also used in answers, where Garage and the simulator
// always send these fields.
func loadSpec(t testing.TB, strict bool) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("%s: expected an OpenAPI 3.1 document, got %s", specPath, doc.OpenAPI)
	}
	if strict {
		for name, fields := range map[string][]string{
			"ApiBucketQuotas":  {"maxSize", "maxObjects"},
			"NodeAssignedRole": {"capacity"},
		} {
			ref, ok := doc.Components.Schemas[name]
			if !ok || ref.Value == nil {
				t.Fatalf("%s: schema %s missing", specPath, name)
			}
			for _, f := range fields {
				if !slices.Contains(ref.Value.Required, f) {
					ref.Value.Required = append(ref.Value.Required, f)
				}
			}
		}
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s does not validate: %v", specPath, err)
	}
	// Route on paths only, whatever host the client calls.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return doc, router
}

// requireBearer is the spec's bearerAuth check: a bearer token is present.
func requireBearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) == len("Bearer ") {
		return errors.New("missing bearer token")
	}
	return nil
}

// validateRequest validates a request (its body is restored) against the spec.
func validateRequest(ctx context.Context, router routers.Router, req *http.Request) (*openapi3filter.RequestValidationInput, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return nil, fmt.Errorf("no route in spec for %s %s: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req.Clone(ctx), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: requireBearer, MultiError: true},
	}
	in.Request.Body = io.NopCloser(bytes.NewReader(body))
	err = openapi3filter.ValidateRequest(ctx, in)
	req.Body = io.NopCloser(bytes.NewReader(body))
	return in, err
}

// validateResponse validates a 2xx answer against the spec, and any other
// answer against Garage's error body {code, message, region, path}.
func validateResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	if status < 200 || status > 299 {
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil {
			return fmt.Errorf("error answer %d is not JSON: %q", status, body)
		}
		for _, f := range []string{"code", "message", "region", "path"} {
			if _, ok := e[f].(string); !ok {
				return fmt.Errorf("error answer %d lacks string field %q: %s", status, f, body)
			}
		}
		return nil
	}
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	rin.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(ctx, rin)
}

// validatingTransport validates every request the client sends and every
// answer it receives, failing the test on any mismatch.
type validatingTransport struct {
	t      testing.TB
	router routers.Router
	next   http.RoundTripper

	mu sync.Mutex
	ok map[string]int // operation → validated 2xx exchanges
}

func newValidatingTransport(t testing.TB) *validatingTransport {
	_, router := loadSpec(t, true)
	return &validatingTransport{t: t, router: router, next: http.DefaultTransport, ok: map[string]int{}}
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	op := strings.TrimPrefix(req.URL.Path, "/v2/")
	in, err := validateRequest(ctx, v.router, req)
	if err != nil {
		v.t.Errorf("contract: request %s %s violates the spec: %v", req.Method, req.URL.RequestURI(), err)
		if in == nil {
			return v.next.RoundTrip(req)
		}
	}
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil
	}
	if err := validateResponse(ctx, in, resp.StatusCode, resp.Header, body); err != nil {
		v.t.Errorf("contract: answer %d to %s violates the spec: %v\nbody: %s", resp.StatusCode, op, err, body)
	} else if resp.StatusCode/100 == 2 {
		v.mu.Lock()
		v.ok[op]++
		v.mu.Unlock()
	}
	return resp, nil
}

func (v *validatingTransport) validated() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]int{}
	for k, n := range v.ok {
		out[k] = n
	}
	return out
}

// newRequest builds a raw admin API request for the shape tests.
func newRequest(t testing.TB, method, target, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://garage.invalid"+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// TestSpecRejectsWrongShapes proves the validation has teeth: malformed
// requests fail it.
func TestSpecRejectsWrongShapes(t *testing.T) {
	t.Parallel()
	_, strict := loadSpec(t, true)
	_, raw := loadSpec(t, false)
	ctx := context.Background()
	cases := []struct {
		name         string
		method, path string
		body         string
		router       routers.Router
	}{
		{"quota update with only maxSize (house rule)", "POST", "/v2/UpdateBucket?id=b", `{"quotas":{"maxSize":1000}}`, strict},
		{"layout role without zone", "POST", "/v2/UpdateClusterLayout", `{"roles":[{"id":"n","capacity":100000,"tags":[]}]}`, raw},
		{"layout role without capacity (house rule)", "POST", "/v2/UpdateClusterLayout", `{"roles":[{"id":"n","zone":"z","tags":[]}]}`, strict},
		{"layout role without tags", "POST", "/v2/UpdateClusterLayout", `{"roles":[{"id":"n","zone":"z","capacity":100000}]}`, raw},
		{"apply layout without version", "POST", "/v2/ApplyClusterLayout", `{}`, raw},
		{"negative quota", "POST", "/v2/UpdateBucket?id=b", `{"quotas":{"maxSize":-1,"maxObjects":null}}`, raw},
		{"permission flag as string", "POST", "/v2/AllowBucketKey", `{"bucketId":"b","accessKeyId":"k","permissions":{"read":"yes"}}`, raw},
		{"alias without alias", "POST", "/v2/AddBucketAlias", `{"bucketId":"b"}`, raw},
		{"node info without node", "GET", "/v2/GetNodeInfo", ``, raw},
		{"key name as number", "POST", "/v2/CreateKey", `{"name":5}`, raw},
		{"expiration not a date", "POST", "/v2/CreateKey", `{"expiration":"tomorrow"}`, raw},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := validateRequest(ctx, c.router, newRequest(t, c.method, c.path, c.body))
			switch {
			case in == nil:
				t.Fatalf("not routed: %v", err)
			case err == nil:
				t.Errorf("%s %s %s passed validation; want a failure", c.method, c.path, c.body)
			default:
				t.Logf("refused as expected: %v", err)
			}
		})
	}
	// The raw spec accepts a lone maxSize: that is why the house rule exists.
	if _, err := validateRequest(ctx, raw, newRequest(t, "POST", "/v2/UpdateBucket?id=b", `{"quotas":{"maxSize":1000}}`)); err != nil {
		t.Errorf("raw spec refused a lone maxSize (%v): the strict overlay may be unnecessary now", err)
	}
}

// TestSpecHandles31Constructs checks that OpenAPI 3.1 constructs are
// enforced, not skipped: ["string","null"] accepts null and refuses numbers,
// oneOf [{type:null}, $ref] accepts null and validates the object.
func TestSpecHandles31Constructs(t *testing.T) {
	t.Parallel()
	_, router := loadSpec(t, true)
	ctx := context.Background()
	good := []string{
		`{"name":null,"expiration":null,"allow":null}`,
		`{"name":"k","expiration":"2030-01-01T00:00:00Z","allow":{"createBucket":true}}`,
	}
	bad := []string{`{"name":5}`, `{"allow":{"createBucket":"x"}}`, `{"expiration":3}`}
	for _, b := range good {
		if _, err := validateRequest(ctx, router, newRequest(t, "POST", "/v2/CreateKey", b)); err != nil {
			t.Errorf("CreateKey %s refused: %v", b, err)
		}
	}
	for _, b := range bad {
		if _, err := validateRequest(ctx, router, newRequest(t, "POST", "/v2/CreateKey", b)); err == nil {
			t.Errorf("CreateKey %s accepted", b)
		}
	}
	// A response missing a required field is refused.
	in, err := validateRequest(ctx, router, newRequest(t, "GET", "/v2/GetClusterHealth", ""))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	old := `{"status":"healthy","knownNodes":1,"connectedNodes":1,"storageNodes":1,"storageNodesOk":1,"partitions":256,"partitionsQuorum":256,"partitionsAllOk":256}`
	if err := validateResponse(ctx, in, 200, h, []byte(old)); err == nil {
		t.Error("v2.0 health answer (storageNodesOk only) passed v2.3 validation")
	}
}
