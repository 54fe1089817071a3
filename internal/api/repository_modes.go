package api

import (
	"net/http"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/verify"
)

// Modes and evidence of a repository (issue 15): blind, attested or full, and what is known
// of its backups and who established it.

// RepositoryModeSet answers PUT /v1/repositories/{id}/mode: switch to blind or attested.
// Leaving full mode erases the password. Full mode is entered with PUT …/password.
func (a *API) RepositoryModeSet(w http.ResponseWriter, r *http.Request) error {
	if done, err := a.gate(w, r, a.planRepositoryModeChange); done { // leaving full mode erases the password: protected
		return err
	}
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	if err != nil {
		return err
	}
	var req struct {
		Mode string `json:"mode"`
	}
	if err := Decode(r, &req); err != nil {
		return err
	}
	out, err := a.verify.ModeSet(r.Context(), repo.ID, req.Mode)
	return reply(w, http.StatusOK, out, err)
}

// repositoryEvidence is the answer of GET /v1/repositories/{id}/evidence.
type repositoryEvidence struct {
	RepositoryID int64             `json:"repository_id"`
	Mode         string            `json:"mode"`
	ModeMeaning  string            `json:"mode_meaning"`
	ContentHash  *verify.Coverage  `json:"content_hash"`
	Evidence     []verify.Evidence `json:"evidence"`
}

// RepositoryEvidence answers GET /v1/repositories/{id}/evidence: the repository's mode,
// what it means, its content-hash coverage, and each piece of evidence with its producer.
func (a *API) RepositoryEvidence(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberRead)
	if err != nil {
		return err
	}
	ev, err := a.verify.EvidenceList(r.Context(), repo)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, repositoryEvidence{RepositoryID: repo.ID, Mode: repo.Mode, ModeMeaning: verify.ModeMeaning(repo.Mode),
		ContentHash: repo.ContentHash, Evidence: ev})
	return nil
}

// FullModeStatement answers GET /v1/full-mode-statement: the text a member accepts before
// giving the federation a password, and the version to quote as full_mode_consent.
func (a *API) FullModeStatement(w http.ResponseWriter, r *http.Request) error {
	WriteJSON(w, http.StatusOK, map[string]string{"version": verify.FullModeStatementVersion, "statement": verify.FullModeStatement})
	return nil
}
