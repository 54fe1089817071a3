package portal

import "net/http"

// APIReference is the browsable reference of the REST API (public, like the OpenAPI
// document it is read from).
func (p *Portal) APIReference(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "api_reference", Page{Title: p.l(r).T("portal.layout.api_reference"), Data: p.apiRef})
}
