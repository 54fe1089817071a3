package api

import (
	"context"
	"net/http"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/notify"
)

// ChannelList answers GET /v1/notify/channels.
func (a *API) ChannelList(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	scope := authz.ReadScope(p)
	f := notify.ChannelFilter{All: scope.All, MemberIDs: scope.MemberIDs}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := notify.ChannelPage(r.Context(), a.pool, f, req)
	if err != nil {
		return pagingError(err)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"channels": pg.Items, "event_kinds": notify.Kinds, "next_cursor": nextCursor(pg.Next)})
	return nil
}

type channelRequest struct {
	Member       *memberRef `json:"member"` // id or slug; absent or null: a federation-wide channel
	Kind         *string    `json:"kind"`
	Name         *string    `json:"name"`
	Target       *string    `json:"target"`
	Events       *[]string  `json:"events"`
	Enabled      *bool      `json:"enabled"`
	RotateSecret bool       `json:"rotate_secret"`
}

type channelCreated struct {
	notify.Channel
	Secret string `json:"secret,omitempty"` // webhooks: shown once
}

// ChannelCreate answers POST /v1/notify/channels.
func (a *API) ChannelCreate(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	var in channelRequest
	if err := Decode(r, &in); err != nil {
		return err
	}
	ci := notify.ChannelInput{Kind: in.Kind, Name: in.Name, Target: in.Target, Events: in.Events, Enabled: in.Enabled}
	if in.Member != nil && *in.Member != "" {
		m, err := a.memberRefFor(r, *in.Member, authz.MemberWrite)
		if err != nil {
			return err
		}
		ci.MemberID = &m.ID
	} else if err := check(p, authz.FederationManage, authz.Federation); err != nil {
		return err
	}
	c, secret, err := a.notify.ChannelCreate(r.Context(), ci)
	return reply(w, http.StatusCreated, channelCreated{Channel: c, Secret: secret}, err)
}

func (a *API) channelFromPath(r *http.Request, write bool) (notify.Channel, error) {
	return loadByID(r, "id", "channel", func(ctx context.Context, id int64) (notify.Channel, error) {
		return notify.ChannelGetByID(ctx, a.pool, id)
	}, func(c notify.Channel) error {
		if err := authz.ChannelCheck(principal(r), c.MemberID, false); err != nil {
			return authz.ErrHidden
		}
		if write {
			return authz.ChannelCheck(principal(r), c.MemberID, true)
		}
		return nil
	})
}

// ChannelGet answers GET /v1/notify/channels/{id}.
func (a *API) ChannelGet(w http.ResponseWriter, r *http.Request) error {
	c, err := a.channelFromPath(r, false)
	return reply(w, http.StatusOK, c, err)
}

// ChannelUpdate answers PATCH /v1/notify/channels/{id}.
func (a *API) ChannelUpdate(w http.ResponseWriter, r *http.Request) error {
	c, err := a.channelFromPath(r, true)
	if err != nil {
		return err
	}
	var in channelRequest
	if err := Decode(r, &in); err != nil {
		return err
	}
	if in.Member != nil {
		return Invalid("member", "cannot be changed; create another channel")
	}
	out, secret, err := a.notify.ChannelUpdate(r.Context(), c.ID, notify.ChannelInput{Kind: in.Kind, Name: in.Name, Target: in.Target,
		Events: in.Events, Enabled: in.Enabled, RotateSecret: in.RotateSecret})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, channelCreated{Channel: out, Secret: secret})
	return nil
}

// ChannelDelete answers DELETE /v1/notify/channels/{id}.
func (a *API) ChannelDelete(w http.ResponseWriter, r *http.Request) error {
	c, err := a.channelFromPath(r, true)
	if err != nil {
		return err
	}
	return noContent(w, a.notify.ChannelDelete(r.Context(), c.ID))
}

// ChannelTest answers POST /v1/notify/channels/{id}/test: queue a test message.
func (a *API) ChannelTest(w http.ResponseWriter, r *http.Request) error {
	c, err := a.channelFromPath(r, true)
	if err != nil {
		return err
	}
	d, err := a.notify.SendTest(r.Context(), c.ID)
	return reply(w, http.StatusAccepted, d, err)
}

// ChannelDeliveries answers GET /v1/notify/channels/{id}/deliveries (?cursor=, ?limit=): the
// channel's deliveries and their status, newest first, paged.
func (a *API) ChannelDeliveries(w http.ResponseWriter, r *http.Request) error {
	c, err := a.channelFromPath(r, false)
	if err != nil {
		return err
	}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := notify.DeliveryPage(r.Context(), a.pool, c.ID, req)
	return replyPage(w, "deliveries", pg, err)
}

// NotifyEvents answers GET /v1/notify/events (?cursor=, ?limit=): events of the caller's
// members (every event for federation admins), newest first, paged.
func (a *API) NotifyEvents(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	scope := authz.ReadScope(p)
	pg, err := notify.EventPage(r.Context(), a.pool, notify.EventFilter{All: scope.All, MemberIDs: scope.MemberIDs}, req)
	return replyPage(w, "events", pg, err)
}
