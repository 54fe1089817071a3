package portal

import (
	"net/http"
	"slices"
)

// Every destructive button of the portal asks first, without JavaScript (the CSP allows
// none inline, and every page works without it): its form posts without a confirm field,
// and the handler — once it has loaded and authorized the object, so nobody is asked about
// what they may not touch — answers a confirmation page instead of acting. That page
// posts the same form again with confirm=yes; only then does the handler act. An API or
// script posting to the portal must send confirm=yes too.

// confirmAsk is what a confirmation page asks: Kind picks the question, the lead and the
// button's words in the catalog (portal.confirm.<kind>.title, .lead, .button; Kind is one
// of confirmKinds), Name says what it is about, Back is where Cancel leads.
type confirmAsk struct {
	Kind, Name, Back string
}

// confirmKinds are the kinds of confirmation pages, each with its three texts in the catalog.
var confirmKinds = []string{"token-revoke", "key-revoke", "vault-delete", "grant-revoke", "island-delete",
	"operator-remove", "member-delete", "person-remove", "pledge-withdraw", "password-erase", "repository-delete",
	"agent-key-revoke", "channel-delete"}

// confirmField is a posted field carried over to the confirmed form.
type confirmField struct {
	Name, Value string
}

type confirmData struct {
	confirmAsk
	Action string
	Fields []confirmField
	// The question, what happens, and the button, in the viewer's language.
	Question, Lead, Button string
}

// confirmed reports whether the destructive form of r was confirmed. When it was not, it
// answers the confirmation page and the caller must stop.
func (p *Portal) confirmed(w http.ResponseWriter, r *http.Request, ask confirmAsk) bool {
	if r.PostFormValue("confirm") == "yes" {
		return true
	}
	d := confirmData{confirmAsk: ask, Action: r.URL.Path}
	l := p.l(r)
	if slices.Contains(confirmKinds, ask.Kind) {
		key := "portal.confirm." + ask.Kind
		d.Question, d.Lead, d.Button = l.T(key+".title", "Name", ask.Name), l.T(key+".lead"), l.T(key+".button")
	} else {
		d.Question, d.Button = l.T("portal.confirm.title"), l.T("portal.confirm.button")
	}
	names := make([]string, 0, len(r.PostForm))
	for k := range r.PostForm {
		if k != "csrf" && k != "confirm" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range r.PostForm[k] {
			d.Fields = append(d.Fields, confirmField{Name: k, Value: v})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, http.StatusOK, "confirm", Page{Title: l.T("portal.confirm.title"), Data: d})
	return false
}
