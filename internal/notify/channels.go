package notify

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/seal"
)

// Channel kinds.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// Channel is where notifications go. Target is shown redacted for webhooks.
type Channel struct {
	ID            int64      `json:"id"`
	MemberID      *int64     `json:"member_id"` // nil: federation-wide
	MemberSlug    string     `json:"member_slug,omitempty"`
	Kind          string     `json:"kind"`
	Name          string     `json:"name"`
	Target        string     `json:"target"`
	Events        []string   `json:"events"` // empty: every kind
	Enabled       bool       `json:"enabled"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	LastError     string     `json:"last_error"`
	Pending       int        `json:"pending_deliveries"`
	Failed        int        `json:"failed_deliveries"`

	target       string // full target
	secretSealed string
}

const channelColumns = `c.id, c.member_id, coalesce(m.slug, ''), c.kind, c.name, c.target, c.secret_sealed, c.events, c.enabled,
	c.created_at, c.updated_at, c.last_attempt_at, c.last_success_at, c.last_error,
	(SELECT count(*) FROM notify_deliveries d WHERE d.channel_id = c.id AND d.status = 'pending'),
	(SELECT count(*) FROM notify_deliveries d WHERE d.channel_id = c.id AND d.status = 'failed')`

const channelFrom = ` FROM notify_channels c LEFT JOIN members m ON m.id = c.member_id`

func scanChannel(r pgx.CollectableRow) (Channel, error) {
	var c Channel
	err := r.Scan(&c.ID, &c.MemberID, &c.MemberSlug, &c.Kind, &c.Name, &c.target, &c.secretSealed, &c.Events, &c.Enabled,
		&c.CreatedAt, &c.UpdatedAt, &c.LastAttemptAt, &c.LastSuccessAt, &c.LastError, &c.Pending, &c.Failed)
	if err != nil {
		return c, err
	}
	c.Target = c.target
	if c.Kind == ChannelWebhook {
		c.Target = RedactURL(c.target)
	}
	if c.Events == nil {
		c.Events = []string{}
	}
	return c, nil
}

// ChannelGetByID returns a channel.
func ChannelGetByID(ctx context.Context, q Querier, id int64) (Channel, error) {
	rows, err := q.Query(ctx, `SELECT `+channelColumns+channelFrom+` WHERE c.id = $1`, id)
	if err != nil {
		return Channel{}, fmt.Errorf("channel %d: %w", id, err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanChannel)
	if errors.Is(err, pgx.ErrNoRows) {
		return Channel{}, fmt.Errorf("channel %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Channel{}, fmt.Errorf("channel %d: %w", id, err)
	}
	return c, nil
}

// ChannelFilter selects channels.
type ChannelFilter struct {
	MemberIDs  []int64 // channels of these members
	Federation bool    // and the federation-wide channels
	All        bool    // every channel
}

// ChannelList returns channels, federation-wide first, then by member and name.
func ChannelList(ctx context.Context, q Querier, f ChannelFilter) ([]Channel, error) {
	rows, err := q.Query(ctx, `SELECT `+channelColumns+channelFrom+`
		WHERE $1 OR c.member_id = ANY ($2) OR ($3 AND c.member_id IS NULL)
		ORDER BY c.member_id NULLS FIRST, m.slug, c.name, c.id`, f.All, f.MemberIDs, f.Federation)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	return pgx.CollectRows(rows, scanChannel)
}

// ChannelInput creates a channel (every field) or changes one (the non-nil fields).
type ChannelInput struct {
	MemberID *int64 // on create: nil for a federation-wide channel
	Kind     *string
	Name     *string
	Target   *string
	Events   *[]string
	Enabled  *bool
	// RotateSecret (update, webhooks) replaces the signing secret; the new one is returned.
	RotateSecret bool
}

func (s *Service) normalise(in *ChannelInput, kind string, create bool) error {
	if create {
		for _, f := range []struct {
			name string
			v    *string
		}{{"kind", in.Kind}, {"name", in.Name}, {"target", in.Target}} {
			if f.v == nil || strings.TrimSpace(*f.v) == "" {
				return &FieldError{Field: f.name, Problem: "is required"}
			}
		}
		kind = *in.Kind
		if kind != ChannelWebhook && kind != ChannelEmail {
			return &FieldError{Field: "kind", Problem: "must be webhook or email"}
		}
	} else if in.Kind != nil && *in.Kind != kind {
		return &FieldError{Field: "kind", Problem: "cannot be changed; create another channel"}
	}
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if n == "" || len(n) > 100 {
			return &FieldError{Field: "name", Problem: "must be 1 to 100 characters"}
		}
		in.Name = &n
	}
	if in.Target != nil {
		t := strings.TrimSpace(*in.Target)
		switch kind {
		case ChannelWebhook:
			if len(t) > 2000 {
				return &FieldError{Field: "target", Problem: "is longer than 2000 characters"}
			}
			if _, err := s.policy.ValidateWebhookURL(t); err != nil {
				return err
			}
		case ChannelEmail:
			a, err := mail.ParseAddress(t)
			if err != nil || a.Name != "" || strings.ContainsAny(t, "\r\n,;") {
				return &FieldError{Field: "target", Problem: "must be one email address (name@example.org)"}
			}
			t = a.Address
		}
		in.Target = &t
	}
	if in.Events != nil {
		ev := append([]string{}, *in.Events...)
		for _, k := range ev {
			if !slices.Contains(Kinds, k) {
				return problem.Invalid("events", "%q is not an event kind (%s)", k, strings.Join(Kinds, ", "))
			}
		}
		slices.Sort(ev)
		ev = slices.Compact(ev)
		in.Events = &ev
	}
	if in.RotateSecret && kind != ChannelWebhook {
		return &FieldError{Field: "rotate_secret", Problem: "only webhooks have a secret"}
	}
	return nil
}

func secretPurpose(id int64) string { return fmt.Sprintf("notify/channel/%d/secret", id) }

// SealedColumns are the sealed values this package keeps (for re-sealing).
func SealedColumns() []seal.Column {
	return []seal.Column{{Table: "notify_channels", IDColumn: "id", Column: "secret_sealed", Purpose: secretPurpose}}
}

func (in ChannelInput) details(kind string, target *string) map[string]any {
	d := map[string]any{}
	if in.Name != nil {
		d["name"] = *in.Name
	}
	if target != nil {
		if kind == ChannelWebhook {
			d["target"] = RedactURL(*target)
		} else {
			d["target"] = *target
		}
	}
	if in.Events != nil {
		d["events"] = *in.Events
	}
	if in.Enabled != nil {
		d["enabled"] = *in.Enabled
	}
	if in.RotateSecret {
		d["secret_rotated"] = true
	}
	return d
}

// ChannelCreate creates a channel. For a webhook it returns the signing secret, shown
// this once.
func (s *Service) ChannelCreate(ctx context.Context, in ChannelInput) (Channel, string, error) {
	if err := s.normalise(&in, "", true); err != nil {
		return Channel{}, "", err
	}
	events := []string{}
	if in.Events != nil {
		events = *in.Events
	}
	enabled := in.Enabled == nil || *in.Enabled
	actor, _ := audit.ActorFrom(ctx)
	var id int64
	var secret string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO notify_channels (member_id, kind, name, target, events, enabled, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, in.MemberID, *in.Kind, *in.Name, *in.Target, events, enabled,
			actor.Name).Scan(&id); err != nil {
			return err
		}
		if *in.Kind == ChannelWebhook {
			secret = NewWebhookSecret()
			if _, err := tx.Exec(ctx, `UPDATE notify_channels SET secret_sealed = $2 WHERE id = $1`, id,
				s.keys.SealString(secretPurpose(id), secret)); err != nil {
				return err
			}
		}
		d := in.details(*in.Kind, in.Target)
		d["kind"] = *in.Kind
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "notify.channel.create", MemberID: in.MemberID,
			TargetType: "notify_channel", TargetID: strconv.FormatInt(id, 10), Details: d})
		return err
	})
	if err != nil {
		return Channel{}, "", fmt.Errorf("create channel: %w", err)
	}
	c, err := ChannelGetByID(ctx, s.pool, id)
	return c, secret, err
}

// ChannelUpdate changes a channel; with RotateSecret it returns the new secret.
func (s *Service) ChannelUpdate(ctx context.Context, id int64, in ChannelInput) (Channel, string, error) {
	cur, err := ChannelGetByID(ctx, s.pool, id)
	if err != nil {
		return Channel{}, "", err
	}
	if err := s.normalise(&in, cur.Kind, false); err != nil {
		return Channel{}, "", err
	}
	var secret string
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE notify_channels SET name = coalesce($2, name), target = coalesce($3, target),
			events = coalesce($4, events), enabled = coalesce($5, enabled), updated_at = now(),
			last_error = CASE WHEN $3::text IS NULL THEN last_error ELSE '' END WHERE id = $1`,
			id, in.Name, in.Target, in.Events, in.Enabled); err != nil {
			return err
		}
		if in.RotateSecret {
			secret = NewWebhookSecret()
			if _, err := tx.Exec(ctx, `UPDATE notify_channels SET secret_sealed = $2 WHERE id = $1`, id,
				s.keys.SealString(secretPurpose(id), secret)); err != nil {
				return err
			}
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "notify.channel.update", MemberID: cur.MemberID,
			TargetType: "notify_channel", TargetID: strconv.FormatInt(id, 10), Details: in.details(cur.Kind, in.Target)})
		return err
	})
	if err != nil {
		return Channel{}, "", fmt.Errorf("update channel %d: %w", id, err)
	}
	c, err := ChannelGetByID(ctx, s.pool, id)
	return c, secret, err
}

// ChannelDelete deletes a channel and its deliveries.
func (s *Service) ChannelDelete(ctx context.Context, id int64) error {
	cur, err := ChannelGetByID(ctx, s.pool, id)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM notify_channels WHERE id = $1`, id); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "notify.channel.delete", MemberID: cur.MemberID,
			TargetType: "notify_channel", TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"name": cur.Name, "kind": cur.Kind}})
		return err
	})
	if err != nil {
		return fmt.Errorf("delete channel %d: %w", id, err)
	}
	return nil
}

// SendTest queues a test message to the channel and returns the delivery.
func (s *Service) SendTest(ctx context.Context, id int64) (Delivery, error) {
	cur, err := ChannelGetByID(ctx, s.pool, id)
	if err != nil {
		return Delivery{}, err
	}
	actor, _ := audit.ActorFrom(ctx)
	var did int64
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var eid int64
		if err := tx.QueryRow(ctx, `INSERT INTO notify_events (member_id, kind, severity, subject, title, detail)
			VALUES ($1, $2, 'info', $3, $4, $5) RETURNING id`, cur.MemberID, KindTest, "channel/"+strconv.FormatInt(id, 10),
			"Test message for channel "+cur.Name, map[string]any{"requested_by": actor.Name}).Scan(&eid); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO notify_deliveries (channel_id, kind, event_ids) VALUES ($1, 'test', ARRAY[$2::bigint])
			RETURNING id`, id, eid).Scan(&did)
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("queue a test for channel %d: %w", id, err)
	}
	return DeliveryByID(ctx, s.pool, did)
}
