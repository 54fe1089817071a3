package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
)

// TestReportCarriesAVerifiableCheckpoint: a member admin generates a report; its JSON is
// the document whose hash the audit log records, and the checkpoint it carries verifies
// against the live log with the same check as `archipelago audit verify --remote`.
func TestReportCarriesAVerifiableCheckpoint(t *testing.T) {
	env, f := apptest.Parallel(t)
	res := env.Do(apptest.Req{Method: "POST", Path: "/v1/reports", Token: f.AdminA.Access, Body: map[string]any{"member": "member-a"}})
	if res.Status != 201 {
		t.Fatalf("generate: %d %s", res.Status, res.Body)
	}
	var rep struct {
		ID       int64  `json:"id"`
		SHA256   string `json:"sha256"`
		AuditSeq int64  `json:"audit_seq"`
		Links    struct{ JSON, HTML, CSV, Checkpoint string }
	}
	res.Decode(t, &rep)
	doc := env.Do(apptest.Req{Method: "GET", Path: rep.Links.JSON, Token: f.ViewerA.Access})
	sum := sha256.Sum256(doc.Body)
	if hex.EncodeToString(sum[:]) != rep.SHA256 || doc.Header.Get("X-Report-SHA256") != rep.SHA256 {
		t.Fatalf("the JSON document does not hash to %s", rep.SHA256)
	}
	// The audit entry records the hash.
	entry := env.Do(apptest.Req{Method: "GET", Path: "/v1/audit/entries/" + itoa(rep.AuditSeq), Token: f.ViewerA.Access})
	if entry.Status != 200 || !strings.Contains(string(entry.Body), rep.SHA256) || !strings.Contains(string(entry.Body), "report.publish") {
		t.Fatalf("audit entry %d: %d %s", rep.AuditSeq, entry.Status, entry.Body)
	}
	cp := env.Do(apptest.Req{Method: "GET", Path: rep.Links.Checkpoint, Token: f.ViewerA.Access})
	if cp.Status != 200 || !strings.Contains(string(doc.Body), strings.SplitN(string(cp.Body), "\n", 2)[0]) {
		t.Fatalf("checkpoint: %d %s", cp.Status, cp.Body)
	}
	// The same check as `archipelago audit verify --remote URL --checkpoint FILE`.
	out, err := audit.VerifyRemote(context.Background(), audit.RemoteOptions{BaseURL: env.URL, Saved: cp.Body, Token: f.ViewerA.Access})
	if err != nil {
		t.Fatal(err)
	}
	if !out.OK() {
		t.Fatalf("the report's checkpoint does not verify: %v", out.Problems)
	}
	if out.Current.Size <= out.Saved.Size {
		t.Errorf("today's log (%d) should extend the report's checkpoint (%d) with the report's own entry", out.Current.Size, out.Saved.Size)
	}
	for _, p := range []string{rep.Links.HTML, rep.Links.CSV, rep.Links.CSV + "?table=vaults"} {
		if r := env.Do(apptest.Req{Method: "GET", Path: p, Token: f.AdminA.Access}); r.Status != 200 || len(r.Body) == 0 {
			t.Errorf("%s: %d", p, r.Status)
		}
	}
	if r := env.Do(apptest.Req{Method: "GET", Path: rep.Links.JSON, Token: f.AdminB.Access}); r.Status != 404 {
		t.Errorf("another member's admin reads the report: %d", r.Status)
	}
}

func itoa(n int64) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{digits[n%10]}, b...)
	}
	return string(b)
}
