package portal

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/notify"
)

type channelRow struct {
	Channel    notify.Channel
	CanChange  bool
	Deliveries []notify.Delivery
}

type channelForm struct {
	Member, Kind, Name, Target string
	Events                     []string
}

type notifyData struct {
	Channels []channelRow
	Events   []notify.EventView
	Kinds    []kindChoice
	// AdminOf are the members the user may add channels for; Federation whether it may
	// add federation-wide ones.
	AdminOf    []identity.MemberRef
	Federation bool
	Form       channelForm
	// NewSecret is a created webhook's secret, shown once.
	NewSecret, NewSecretFor string
}

func canChangeChannel(u *identity.Principal, c notify.Channel) bool {
	return authz.ChannelCheck(u, c.MemberID, true) == nil
}

// Notifications shows the notification channels, their recent deliveries and recent events.
func (p *Portal) Notifications(w http.ResponseWriter, r *http.Request) {
	page := Page{Flash: notifyFlashes.in(r, p.l(r))}
	var secret, secretFor string
	if c, ok := takeOnce[[2]string](p, r, "channel"); ok {
		secret, secretFor = c[0], c[1]
		page.Flash = p.l(r).T("portal.notify.go.created", "Name", secretFor)
		w.Header().Set("Cache-Control", "no-store")
	}
	p.renderNotify(w, r, http.StatusOK, page, channelForm{Kind: "webhook"}, secret, secretFor)
}

// notifyFlashes are the messages shown after a form, by the done= of the redirect.
var notifyFlashes = flashes{
	"deleted": "portal.notify.flash.deleted",
	"created": "portal.notify.flash.created",
	"test":    "portal.notify.flash.test",
}

func (p *Portal) renderNotify(w http.ResponseWriter, r *http.Request, status int, page Page, form channelForm, secret, secretFor string) {
	u := user(r)
	scope := authz.ReadScope(u)
	f := notify.ChannelFilter{All: scope.All, MemberIDs: scope.MemberIDs}
	ef := notify.EventFilter{All: scope.All, MemberIDs: scope.MemberIDs, Limit: 30}
	data := notifyData{Kinds: kindChoices(p.l(r)), Form: form, NewSecret: secret, NewSecretFor: secretFor,
		Federation: authz.ManagesFederation(u)}
	for _, m := range u.Members {
		if authz.Check(u, authz.MemberWrite, authz.Member(m.ID)) == nil {
			data.AdminOf = append(data.AdminOf, m)
		}
	}
	cp, err := notify.ChannelPage(r.Context(), p.pool, f, pageRequest(r))
	cs, ok := pageItems(p, w, r, &page, cp, err)
	if !ok {
		return
	}
	ids := idsOf(cs, func(c notify.Channel) int64 { return c.ID })
	latest, err := notify.LatestDeliveries(r.Context(), p.pool, ids, 5)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	for _, c := range cs {
		ds := latest[c.ID]
		if ds == nil {
			ds = []notify.Delivery{}
		}
		data.Channels = append(data.Channels, channelRow{Channel: c, CanChange: canChangeChannel(u, c), Deliveries: ds})
	}
	if data.Events, err = notify.EventList(r.Context(), p.pool, ef); err != nil {
		p.fail(w, r, err)
		return
	}
	sayEvents(p.l(r), p.viewerZone(r), data.Events)
	page.Title, page.Nav, page.Data = p.l(r).T("portal.nav.notifications"), "notifications", data
	p.render(w, r, status, "notify", page)
}

// ChannelCreate handles the new-channel form; a webhook's secret is shown once.
func (p *Portal) ChannelCreate(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, err)
		return
	}
	form := channelForm{Member: r.PostFormValue("member"), Kind: r.PostFormValue("kind"), Name: r.PostFormValue("name"),
		Target: strings.TrimSpace(r.PostFormValue("target")), Events: r.PostForm["events"]}
	bad := func(msg string) { p.renderNotify(w, r, http.StatusBadRequest, Page{Error: msg}, form, "", "") }
	in := notify.ChannelInput{Kind: &form.Kind, Name: &form.Name, Target: &form.Target, Events: &form.Events}
	if form.Member == "" || form.Member == "federation" {
		if !authz.ManagesFederation(u) {
			bad(p.l(r).T("portal.common.choose_member"))
			return
		}
	} else {
		m, err := islands.MemberGetBySlug(r.Context(), p.pool, form.Member)
		if err != nil || authz.Check(u, authz.MemberWrite, authz.Member(m.ID)) != nil {
			bad(p.l(r).T("portal.common.choose_member"))
			return
		}
		in.MemberID = &m.ID
	}
	c, secret, err := p.notify.ChannelCreate(r.Context(), in)
	if err != nil {
		p.refuse(w, r, err, nil, func(_ int, msg string) { bad(msg) })
		return
	}
	if secret == "" {
		http.Redirect(w, r, "/notifications?done=created", http.StatusSeeOther)
		return
	}
	// A webhook's secret is shown once, on the page the redirect leads to (once.go).
	p.keepOnce(r, "channel", [2]string{secret, c.Name})
	http.Redirect(w, r, "/notifications", http.StatusSeeOther)
}

func (p *Portal) channelForChange(w http.ResponseWriter, r *http.Request) (notify.Channel, bool) {
	id, _ := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	c, err := notify.ChannelGetByID(r.Context(), p.pool, id)
	u := user(r)
	if err != nil || !canSeeChannel(u, c) {
		p.NotFound(w, r)
		return c, false
	}
	if !canChangeChannel(u, c) {
		p.render(w, r, http.StatusForbidden, "error", Page{Title: p.l(r).T("portal.common.not_allowed"), Error: p.l(r).T("portal.notify.go.role_refused")})
		return c, false
	}
	return c, true
}

func canSeeChannel(u *identity.Principal, c notify.Channel) bool {
	if c.MemberID == nil {
		return authz.ManagesFederation(u)
	}
	return authz.Check(u, authz.MemberRead, authz.Member(*c.MemberID)) == nil
}

// ChannelTest queues a test message.
func (p *Portal) ChannelTest(w http.ResponseWriter, r *http.Request) {
	c, ok := p.channelForChange(w, r)
	if !ok {
		return
	}
	if _, err := p.notify.SendTest(r.Context(), c.ID); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/notifications?done=test", http.StatusSeeOther)
}

// ChannelDelete deletes a channel.
func (p *Portal) ChannelDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := p.channelForChange(w, r)
	if !ok {
		return
	}
	if !p.confirmed(w, r, confirmAsk{Kind: "channel-delete", Name: c.Name, Back: "/notifications"}) {
		return
	}
	if err := p.notify.ChannelDelete(r.Context(), c.ID); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/notifications?done=deleted", http.StatusSeeOther)
}

// sayEvents writes each listed event's line in the page's language (the stored title is
// English, the notifications' own sentence is made from the event's kind and detail).
func sayEvents(pr *i18n.Printer, loc *time.Location, events []notify.EventView) {
	for i := range events {
		events[i].Title = events[i].Said(pr, loc)
	}
}

// kindChoice is an event kind a channel may subscribe to: its code and its words.
type kindChoice struct{ Value, Label string }

// kindChoices are notify.Kinds with their names in lp's language
// (portal.notify.kinds.<kind, dots as underscores>).
func kindChoices(lp *i18n.Printer) []kindChoice {
	out := make([]kindChoice, len(notify.Kinds))
	for i, k := range notify.Kinds {
		out[i] = kindChoice{Value: k, Label: lp.T("portal.notify.kinds." + strings.ReplaceAll(k, ".", "_"))}
	}
	return out
}
