package verify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
)

// FullModeStatementVersion names the current text of FullModeStatement. A consent to full
// mode must quote it: a new text gets a new version, and consents keep the one they quoted.
const FullModeStatementVersion = "restic-key-2026-12"

// FullModeStatement is what a member accepts before the federation may hold the password
// of a key of its repository (full mode).
const FullModeStatement = "Full mode gives the federation the password of a restic key of this repository. " +
	"restic cannot revoke a key without re-encrypting the repository: removing the key later does not take back " +
	"what it gave, because any holder of a key's password can print the repository's master key " +
	"(`restic cat masterkey`) and keep it. Handing over the password is therefore permanent read access to every " +
	"backup in this repository, past and future, for whoever holds it — including anyone who compromises the " +
	"federation's coordinator. Blind and attested modes prove freshness, deletions and content-hash integrity " +
	"(and, with the member's agent, restores) without it."

// ModeMeaning says in one sentence what the federation can and cannot see in a mode.
func ModeMeaning(mode string) string {
	switch mode {
	case ModeBlind:
		return "blind: the federation holds no password; it verifies freshness, deletions and that every object's content matches its name (content-hash integrity). It cannot read the data, check restic's structure or restore."
	case ModeAttested:
		return "attested: blind, plus signed attestations from the member's own agent, which runs restic check, a sample restore and the canary with a password that never leaves the member's machine."
	case ModeFull:
		return "full: the federation holds the password of a restic key (permanent read access, consented to): it runs every level itself, content-hash integrity included."
	}
	return ""
}

// ConsentRecord is a consent given to full mode: who gave it, when, to which statement.
type ConsentRecord struct {
	By               string    `json:"by"`
	At               time.Time `json:"at"`
	StatementVersion string    `json:"statement_version"`
}

// checkConsent refuses full mode without a consent quoting the current statement.
func checkConsent(consent string) error {
	if consent != FullModeStatementVersion {
		return &FieldError{Field: "full_mode_consent", Problem: fmt.Sprintf(
			"full mode needs the member's consent: set it to %q after reading the statement: %s", FullModeStatementVersion, FullModeStatement)}
	}
	return nil
}

// recordConsent stores a consent in tx (the caller audits).
func recordConsent(ctx context.Context, tx pgx.Tx, id int64, by string) error {
	_, err := tx.Exec(ctx, `UPDATE restic_repositories SET full_consent_by = $2, full_consent_at = now(),
		full_consent_version = $3 WHERE id = $1`, id, by, FullModeStatementVersion)
	if err != nil {
		return fmt.Errorf("record full-mode consent of repository %d: %w", id, err)
	}
	return nil
}

// ModeSet switches a repository between blind and attested (audited). Leaving full mode
// erases the sealed password (audited as such). To enter full mode use PasswordSet, which
// needs the password and the consent.
func (s *Service) ModeSet(ctx context.Context, id int64, mode string) (Repository, error) {
	switch mode {
	case ModeBlind, ModeAttested:
	case ModeFull:
		return Repository{}, &FieldError{Field: "mode", Problem: "full mode is entered by giving a password and the consent (PUT …/password with full_mode_consent)"}
	default:
		return Repository{}, &FieldError{Field: "mode", Problem: "must be blind, attested or full"}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := RepositoryGetByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Mode == mode {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE restic_repositories SET mode = $2, password_sealed = NULL, password_set_at = NULL,
			updated_at = now() WHERE id = $1`, id, mode); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "repository.mode_change", MemberID: &r.MemberID,
			TargetType: "restic_repository", TargetID: strconv.FormatInt(id, 10),
			Details: map[string]any{"from": r.Mode, "to": mode, "password_erased": r.HasPassword}})
		return err
	})
	if err != nil {
		return Repository{}, err
	}
	return RepositoryGetByID(ctx, s.pool, id)
}

// Who produced a piece of evidence.
const (
	ProducerFederation = "federation" // the verifier, with the vault's read-only key (and the password in full mode)
	ProducerMember     = "member"     // the member's own agent, in a signed attestation
)

// Evidence is one thing known about a repository's backups, and who established it. The
// federation's evidence comes from the levels of the last finished test; other packages
// (the member agent's attestations) add theirs through Service.AddEvidenceSource.
type Evidence struct {
	// Kind is what was proved: a level name (freshness, deletions, contenthash, integrity,
	// sample, canary, full) or the producer's own name for it (e.g. "attestation").
	Kind     string    `json:"kind"`
	Producer string    `json:"producer"`
	Outcome  string    `json:"outcome"`
	Summary  string    `json:"summary"`
	At       time.Time `json:"at"`
	// RunID is the federation's test run; Ref the producer's reference (an attestation's hash).
	RunID *int64 `json:"run_id,omitempty"`
	Ref   string `json:"ref,omitempty"`
}

// EvidenceSource lists the evidence another package holds for a repository.
type EvidenceSource func(ctx context.Context, repositoryID int64) ([]Evidence, error)

// evidenceSources are the registered sources (AddEvidenceSource).
type evidenceSources struct {
	mu   sync.Mutex
	list []EvidenceSource
}

// AddEvidenceSource registers a source of evidence (at wiring, before serving).
func (s *Service) AddEvidenceSource(src EvidenceSource) {
	s.evidence.mu.Lock()
	defer s.evidence.mu.Unlock()
	s.evidence.list = append(s.evidence.list, src)
}

// EvidenceList lists what is known of the repository's backups: the federation's own
// levels of the last finished test (skipped ones left out), then each registered source's.
func (s *Service) EvidenceList(ctx context.Context, r Repository) ([]Evidence, error) {
	out, err := federationEvidence(ctx, s.pool, r)
	if err != nil {
		return nil, err
	}
	s.evidence.mu.Lock()
	srcs := append([]EvidenceSource(nil), s.evidence.list...)
	s.evidence.mu.Unlock()
	for _, src := range srcs {
		more, err := src(ctx, r.ID)
		if err != nil {
			return nil, fmt.Errorf("evidence of repository %d: %w", r.ID, err)
		}
		out = append(out, more...)
	}
	return out, nil
}

// federationEvidence is the evidence of the repository's last finished test.
func federationEvidence(ctx context.Context, q querier, r Repository) ([]Evidence, error) {
	out := []Evidence{}
	if r.LastRunID == nil {
		return out, nil
	}
	run, err := RunGetByID(ctx, q, *r.LastRunID)
	if errors.Is(err, ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, l := range run.Levels {
		if l.Outcome == OutcomeSkipped {
			continue
		}
		id := run.ID
		out = append(out, Evidence{Kind: l.Level, Producer: ProducerFederation, Outcome: l.Outcome, Summary: l.Summary,
			At: l.StartedAt, RunID: &id})
	}
	return out, nil
}
