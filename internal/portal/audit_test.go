package portal_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
)

func TestPortalAuditPagesShowVisibleEntriesAndCheckProofs(t *testing.T) {
	s := newPortalTest(t)
	var seqA, seqB int64
	for _, m := range []struct {
		id  int64
		seq *int64
	}{{s.f.MemberA.ID, &seqA}, {s.f.MemberB.ID, &seqB}} {
		err := pgx.BeginFunc(s.ctx, s.env.App.Pool, func(tx pgx.Tx) error {
			var err error
			*m.seq, err = audit.Record(s.ctx, tx, audit.Entry{Action: "vault.create", MemberID: &m.id, TargetType: "vault", TargetID: fmt.Sprint(m.id)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	list := s.get(s.f.ViewerA, "/audit?action=vault.*")
	if list.Status != 200 || !strings.Contains(string(list.Body), fmt.Sprintf(`href="/audit/entries/%d"`, seqA)) ||
		strings.Contains(string(list.Body), fmt.Sprintf(`href="/audit/entries/%d"`, seqB)) {
		t.Fatalf("list: %d\n%s", list.Status, list.Body)
	}
	entry := s.get(s.f.ViewerA, fmt.Sprintf("/audit/entries/%d", seqA))
	if entry.Status != 200 || !strings.Contains(string(entry.Body), "Verified: this entry is in the signed tree") {
		t.Fatalf("entry: %d\n%s", entry.Status, entry.Body)
	}
	if r := s.get(s.f.ViewerA, fmt.Sprintf("/audit/entries/%d", seqB)); r.Status != 404 {
		t.Fatalf("B's entry shown to A: %d", r.Status)
	}
	cp := s.get(s.f.ViewerA, "/audit/checkpoint")
	if cp.Status != 200 || !strings.Contains(string(cp.Body), "archipelago audit verify --remote") || !strings.Contains(string(cp.Body), s.env.App.Audit.Keys().Name()) {
		t.Fatalf("checkpoint: %d\n%s", cp.Status, cp.Body)
	}
	// An entry altered in the database is shown as not verified.
	if _, err := s.env.App.Pool.Exec(context.Background(), `ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only;
		UPDATE audit_entries SET target_id = 'other' WHERE seq = `+fmt.Sprint(seqA)); err != nil {
		t.Fatal(err)
	}
	if r := s.get(s.f.ViewerA, fmt.Sprintf("/audit/entries/%d", seqA)); !strings.Contains(string(r.Body), "Not verified") {
		t.Fatalf("altered entry: %s", r.Body)
	}
}
