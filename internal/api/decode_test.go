package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeNamesTheProblem(t *testing.T) {
	t.Parallel()
	type body struct {
		Name  string `json:"name"`
		Quota int64  `json:"quota"`
	}
	cases := []struct {
		in, ct      string
		status      int
		code, field string
	}{
		{`{"name":"a","quota":1}`, "application/json", 0, "", ""},
		{``, "application/json", 400, CodeMalformedJSON, ""},
		{`{"name":`, "application/json", 400, CodeMalformedJSON, ""},
		{`{"name":"a",}`, "application/json", 400, CodeMalformedJSON, ""},
		{`{"name":"a","colour":"red"}`, "application/json", 400, CodeUnknownField, "colour"},
		{`{"quota":"lots"}`, "application/json", 400, CodeInvalidField, "quota"},
		{`{"name":1}`, "application/json", 400, CodeInvalidField, "name"},
		{`{} {}`, "application/json", 400, CodeMalformedJSON, ""},
		{`{}`, "text/plain", 415, CodeUnsupportedMedia, ""},
		{`{"name":"` + strings.Repeat("a", 2000) + `"}`, "application/json", 413, CodeBodyTooLarge, ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.in))
		r.Header.Set("Content-Type", c.ct)
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1024)
		var b body
		err := Decode(r, &b)
		if c.status == 0 {
			if err != nil {
				t.Errorf("%q: %v", c.in, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != c.status || e.Code != c.code || e.Field != c.field {
			t.Errorf("%.40q: got %#v, want %d %s %q", c.in, e, c.status, c.code, c.field)
		}
	}
}

func TestOpenAPIFragmentsMerge(t *testing.T) {
	t.Parallel()
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), `"/healthz"`) {
		t.Fatal("merged document lacks /healthz")
	}
	dst := map[string]any{"paths": map[string]any{"/a": 1}}
	if err := mergeInto(dst, map[string]any{"paths": map[string]any{"/a": 2}}, "x.yaml", ""); err == nil {
		t.Fatal("a path defined twice was accepted")
	}
}
