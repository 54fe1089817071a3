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

// confirmAsk is what a confirmation page asks: Kind picks the question and the button's
// words in confirm.html (so the sentences stay in templates), Name says what it is
// about, Back is where Cancel leads.
type confirmAsk struct {
	Kind, Name, Back string
}

// confirmField is a posted field carried over to the confirmed form.
type confirmField struct {
	Name, Value string
}

type confirmData struct {
	confirmAsk
	Action string
	Fields []confirmField
}

// confirmed reports whether the destructive form of r was confirmed. When it was not, it
// answers the confirmation page and the caller must stop.
func (p *Portal) confirmed(w http.ResponseWriter, r *http.Request, ask confirmAsk) bool {
	if r.PostFormValue("confirm") == "yes" {
		return true
	}
	d := confirmData{confirmAsk: ask, Action: r.URL.Path}
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
	p.render(w, r, http.StatusOK, "confirm", Page{Title: "Are you sure?", Data: d})
	return false
}
