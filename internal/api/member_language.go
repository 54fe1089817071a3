package api

import (
	"net/http"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/islands"
)

// memberLanguageView is a member's language as the API shows it.
type memberLanguageView struct {
	MemberID  int64  `json:"member_id"`
	Language  string `json:"language"`
	Effective string `json:"effective_language"`
}

func memberLanguageOf(id int64, l islands.MemberLanguage) memberLanguageView {
	return memberLanguageView{MemberID: id, Language: l.Own, Effective: string(l.Effective)}
}

// MemberLanguageGet answers GET /v1/members/{id}/language: the language of what is sent to
// the member (reports, notification emails and webhook texts).
func (a *API) MemberLanguageGet(w http.ResponseWriter, r *http.Request) error {
	m, err := a.peopleMember(r, authz.MemberRead)
	if err != nil {
		return err
	}
	l, err := islands.MemberLanguageGet(r.Context(), a.pool, m.ID)
	return reply(w, http.StatusOK, memberLanguageOf(m.ID, l), err)
}

type memberLanguageRequest struct {
	Language *string `json:"language"`
}

// MemberLanguageSet answers PUT /v1/members/{id}/language (member admins and federation
// admins; audited).
func (a *API) MemberLanguageSet(w http.ResponseWriter, r *http.Request) error {
	m, err := a.peopleMember(r, authz.MemberWrite)
	req, err := withBody[memberLanguageRequest](r, err)
	if err != nil {
		return err
	}
	lang := ""
	if req.Language != nil {
		lang = *req.Language
	}
	l, err := a.islands.MemberLanguageSet(r.Context(), m.ID, lang)
	return reply(w, http.StatusOK, memberLanguageOf(m.ID, l), err)
}
