package verify

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

// initRepo creates an empty restic repository at path of the bundle's vault, as a member
// does before registering it.
func (b *bundle) initRepo(path string) {
	b.t.Helper()
	if _, err := b.restic.Init(b.ctx, b.memberRepo(b.bucket, path, "member-password-"+rand.Text())); err != nil {
		b.t.Fatalf("init %s: %v", path, err)
	}
}

// Registration looks at the path with the verifier key: nothing there is refused naming
// path; an island that does not answer does not refuse (the repository is registered with a
// notice); and the first test comes within minutes, whatever the schedule.
func TestRegistrationChecksThePathAndTestsSoon(t *testing.T) {
	t.Parallel()
	now := time.Now()
	b := setup(t, Config{Now: func() time.Time { return now }, FirstTestDelay: 3 * time.Minute})

	for _, mode := range []string{ModeBlind, ModeFull} {
		in := RepositoryInput{MemberID: b.memberID, VaultID: b.vaultID, Name: "nothing-" + mode, Path: "restic/nothing", Mode: mode}
		if mode == ModeFull {
			in.Password, in.FullModeConsent = "a password of the key", FullModeStatementVersion
		}
		_, err := b.svc.RepositoryCreate(b.ctx, in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "path" || !strings.Contains(fe.Problem, "no restic repository at \"restic/nothing\"") ||
			!strings.Contains(fe.Problem, "restic init") {
			t.Fatalf("%s registration of an empty path: %v, want a path error saying to run restic init", mode, err)
		}
	}
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM restic_repositories WHERE member_id = $1`, b.memberID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused registrations left %d rows (%v)", n, err)
	}

	// A repository that exists is registered, tested within FirstTestDelay, then on its schedule.
	b.initRepo("restic/there")
	r, err := b.svc.RepositoryCreate(b.ctx, RepositoryInput{MemberID: b.memberID, VaultID: b.vaultID, Name: "there",
		Path: "restic/there", Policy: Policy{Schedule: ptr("@every 24h"), JitterSeconds: ptr(0)}})
	if err != nil {
		t.Fatalf("register an initialised repository: %v", err)
	}
	if r.Notice != "" {
		t.Fatalf("notice on a checked path: %q", r.Notice)
	}
	if r.NextRunAt == nil || r.NextRunAt.After(now.Add(3*time.Minute)) || r.NextRunAt.Before(now.Add(3*time.Minute-time.Second)) {
		t.Fatalf("first test at %v, want now + 3m (%v)", r.NextRunAt, now.Add(3*time.Minute))
	}

	// An island that cannot be reached: registered, with a notice.
	island := b.island("http://127.0.0.1:1")
	vaultID, _ := b.vault(b.memberID, island)
	r, err = b.svc.RepositoryCreate(b.ctx, RepositoryInput{MemberID: b.memberID, VaultID: vaultID, Name: "unreachable", Path: "restic/x"})
	if err != nil {
		t.Fatalf("registration refused when the island does not answer: %v", err)
	}
	if !strings.Contains(r.Notice, "could not be checked") {
		t.Fatalf("notice = %q, want one saying the path could not be checked", r.Notice)
	}
}
