package verify

import (
	"testing"
)

// TestFullRestoreDaysZeroMeansNever: a repository's full_restore_days 0 means never, even
// when the federation default has a cadence; nil takes the default; the schema stores 0.
func TestFullRestoreDaysZeroMeansNever(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name          string
		repo, federal *int
		want          *int
	}{
		{"default never, repository default", nil, nil, nil},
		{"default 7, repository default", nil, ptr(7), ptr(7)},
		{"default 7, repository 30", ptr(30), ptr(7), ptr(30)},
		{"default 7, repository never", ptr(0), ptr(7), nil},
		{"default never, repository never", ptr(0), nil, nil},
	} {
		got := Policy{FullRestoreDays: c.repo}.Effective(Settings{FullRestoreDays: c.federal}).FullRestoreDays
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%s: effective full_restore_days = %v, want %v", c.name, deref(got), deref(c.want))
		}
	}

	b := setup(t, Config{})
	if _, err := b.pool.Exec(b.ctx, `UPDATE restore_settings SET full_restore_days = 7`); err != nil {
		t.Fatal(err)
	}
	b.initRepo("restic/never")
	r, err := b.svc.RepositoryCreate(b.ctx, RepositoryInput{MemberID: b.memberID, VaultID: b.vaultID, Name: "never",
		Path: "restic/never", Policy: Policy{FullRestoreDays: ptr(0)}})
	if err != nil {
		t.Fatalf("create with full_restore_days 0: %v", err)
	}
	if r.Policy.FullRestoreDays == nil || *r.Policy.FullRestoreDays != 0 || r.Effective.FullRestoreDays != nil {
		t.Fatalf("stored policy %v, effective %v; want 0 and never", deref(r.Policy.FullRestoreDays), deref(r.Effective.FullRestoreDays))
	}
	r, err = b.svc.PolicyUpdate(b.ctx, r.ID, nil, Policy{}, nil)
	if err != nil || r.Effective.FullRestoreDays == nil || *r.Effective.FullRestoreDays != 7 {
		t.Fatalf("back to the default: %v, %v", deref(r.Effective.FullRestoreDays), err)
	}
	for _, bad := range []int{-1, 3651} {
		_, err := b.svc.PolicyUpdate(b.ctx, r.ID, nil, Policy{FullRestoreDays: ptr(bad)}, nil)
		if fe, ok := err.(*FieldError); !ok || fe.Field != "policy.full_restore_days" {
			t.Errorf("full_restore_days %d: %v", bad, err)
		}
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
