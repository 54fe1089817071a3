// Package verify owns restore verification: the restic repositories members register in
// their vaults, their test policy, the scheduler that turns policies into River jobs, the
// worker that runs one test (freshness, deletion watch, integrity, sample restore, canary,
// full restore) and the outcome that says who is at fault.
//
// It runs restic only through internal/restic, opens a vault only with its read-only
// verifier key, and uses --no-lock for every restic command: it never writes to a member's
// repository. A result says "failed" only when restic (or the repository's own timestamps)
// proved the backup bad; anything that went wrong on our side is an "error".
//
// Modes (modes.go): blind (no password: freshness, deletions and content-hash integrity),
// attested (blind, plus the member's agent's signed attestations, owned by another package),
// full (a sealed password, only after the member's recorded consent to FullModeStatement).
// The content-hash level (contenthash.go) runs in every mode: each object's SHA-256 against
// its name, streamed, rotating so every object is read once per cycle.
//
// Evidence (modes.go) says what is known of a repository's backups and who produced it.
// Service.EvidenceList returns the federation's levels of the last finished test, then what
// each source registered with Service.AddEvidenceSource returns. A package with evidence of
// its own (the member agent's attestations) registers a source at wiring:
//
//	svc.AddEvidenceSource(func(ctx context.Context, repoID int64) ([]verify.Evidence, error) {
//		// e.g. the latest verified attestation of repoID
//		return []verify.Evidence{{Kind: "attestation", Producer: verify.ProducerMember,
//			Outcome: verify.OutcomePassed, Summary: "…", At: t, Ref: "sha256:…"}}, nil
//	})
//
// What it must not do: exec restic itself, log or return a repository password, or call a
// member's backup bad because the verifier could not do its job.
//
// Naming: reads are named noun first, NounGetByID / NounGetBySlug / NounList (RepositoryGetByID, RunGetByID, RunProgressGet);
// audited writes are Service methods (NounCreate, NounUpdate, NounDelete and verbs). Errors
// are those of internal/problem (this package's FieldError and ErrNotFound are problem's),
// which both front ends map without knowing this package.
package verify
