package api

import (
	"net/http"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
)

// federationSettingsBody is a PATCH of /v1/federation/settings; absent fields are unchanged.
type federationSettingsBody struct {
	TimeZone *string `json:"time_zone"`
	Language *string `json:"language"`
}

// FederationSettingsGet answers GET /v1/federation/settings: the federation-wide settings of
// people's experience, such as the time zone of those who chose none (every logged-in user).
func (a *API) FederationSettingsGet(w http.ResponseWriter, r *http.Request) error {
	if err := check(principal(r), authz.FederationRead, authz.Federation); err != nil {
		return err
	}
	st, err := a.identity.FederationSettingsGet(r.Context())
	return reply(w, http.StatusOK, st, err)
}

// FederationSettingsUpdate answers PATCH /v1/federation/settings (federation admins;
// audited): an unknown zone is a 400 naming time_zone, a language other than en or fr a 400
// naming language; a refused field changes nothing.
func (a *API) FederationSettingsUpdate(w http.ResponseWriter, r *http.Request) error {
	req, err := withBody[federationSettingsBody](r, check(principal(r), authz.FederationManage, authz.Federation))
	if err != nil {
		return err
	}
	st, err := a.identity.FederationSettingsUpdate(r.Context(), identity.FederationSettingsPatch{TimeZone: req.TimeZone, Language: req.Language})
	return reply(w, http.StatusOK, st, err)
}
