package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
)

// Delivery is one message to one channel and what became of it.
type Delivery struct {
	ID            int64      `json:"id"`
	ChannelID     int64      `json:"channel_id"`
	Kind          string     `json:"kind"` // event, digest, test
	EventIDs      []int64    `json:"event_ids"`
	Status        string     `json:"status"` // pending, sent, failed
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastError     string     `json:"last_error"`
	ResponseCode  *int       `json:"response_code"`
	CreatedAt     time.Time  `json:"created_at"`
	SentAt        *time.Time `json:"sent_at"`
}

const deliveryColumns = `id, channel_id, kind, event_ids, status, attempts, CASE WHEN status = 'pending' THEN next_attempt_at END,
	last_error, response_code, created_at, sent_at`

func scanDelivery(r pgx.CollectableRow) (Delivery, error) {
	var d Delivery
	err := r.Scan(&d.ID, &d.ChannelID, &d.Kind, &d.EventIDs, &d.Status, &d.Attempts, &d.NextAttemptAt, &d.LastError,
		&d.ResponseCode, &d.CreatedAt, &d.SentAt)
	return d, err
}

// DeliveryByID returns a delivery.
func DeliveryByID(ctx context.Context, q Querier, id int64) (Delivery, error) {
	rows, err := q.Query(ctx, `SELECT `+deliveryColumns+` FROM notify_deliveries WHERE id = $1`, id)
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return d, err
}

// DeliveryList returns the latest deliveries of the channels, newest first.
func DeliveryList(ctx context.Context, q Querier, channelIDs []int64, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := q.Query(ctx, `SELECT `+deliveryColumns+` FROM notify_deliveries WHERE channel_id = ANY ($1)
		ORDER BY id DESC LIMIT $2`, channelIDs, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return pgx.CollectRows(rows, scanDelivery)
}

// DeliveryPage reads a page of a channel's deliveries, newest first (internal/paging's
// style; the cursor is the last delivery's id): every delivery can be read, not only the
// newest 500.
func DeliveryPage(ctx context.Context, q Querier, channelID int64, r paging.Request) (paging.Page[Delivery], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Delivery]{}, err
	}
	var before int64
	after, err := r.Keys(&before)
	if err != nil {
		return paging.Page[Delivery]{}, err
	}
	var w database.Where
	w.And("channel_id = ?", channelID)
	if after {
		w.And("id < ?", before)
	}
	rows, err := q.Query(ctx, `SELECT `+deliveryColumns+` FROM notify_deliveries`+w.String()+
		` ORDER BY id DESC LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Delivery]{}, fmt.Errorf("list deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return paging.Page[Delivery]{}, fmt.Errorf("list deliveries: %w", err)
	}
	return paging.Cut(out, size, func(d Delivery) []any { return []any{d.ID} }), nil
}

// claimLease is how long a claimed delivery is hidden from other workers.
const claimLease = 2 * time.Minute

type claimed struct {
	Delivery
	channel Channel
}

// DeliverDue sends every due delivery (at most a batch per call), recording each
// outcome: sent, retried later with backoff, or failed after the last attempt. It is the
// "notify.deliver" task; safe to run from several processes (deliveries are claimed).
func (s *Service) DeliverDue(ctx context.Context) error {
	for range 10 { // at most 10 batches of 20 per run
		n, err := s.deliverBatch(ctx, 20)
		if err != nil || n < 20 {
			return err
		}
	}
	return nil
}

func (s *Service) deliverBatch(ctx context.Context, limit int) (int, error) {
	now := s.now()
	rows, err := s.pool.Query(ctx, `UPDATE notify_deliveries SET attempts = attempts + 1, next_attempt_at = $2
		WHERE id IN (SELECT id FROM notify_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
			ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryColumns, now, now.Add(claimLease), limit)
	if err != nil {
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	batch, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	var errs []error
	for _, d := range batch {
		if err := s.deliverOne(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return len(batch), errors.Join(errs...)
}

// deliverOne sends d and records the outcome. Only a failure to record is returned: a
// failed send is the delivery's state, not the task's error.
func (s *Service) deliverOne(ctx context.Context, d Delivery) error {
	ch, err := ChannelGetByID(ctx, s.pool, d.ChannelID)
	if err != nil {
		return err // channel deleted meanwhile: its deliveries went with it
	}
	events, err := EventsByID(ctx, s.pool, d.EventIDs)
	if err != nil {
		return err
	}
	code, sendErr := s.send(ctx, ch, d, events)
	now := s.now()
	if sendErr == nil {
		_, err = s.pool.Exec(ctx, `WITH d AS (UPDATE notify_deliveries SET status = 'sent', sent_at = $2, last_error = '', response_code = $3
				WHERE id = $1 RETURNING channel_id)
			UPDATE notify_channels SET last_attempt_at = $2, last_success_at = $2, last_error = '' WHERE id = (SELECT channel_id FROM d)`,
			d.ID, now, nullCode(code))
		s.log.InfoContext(ctx, "notification delivered", "delivery", d.ID, "channel", ch.ID, "kind", d.Kind, "events", len(events))
		return err
	}
	msg := sendErr.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	status, next := "pending", now.Add(s.cfg.Backoff(d.Attempts))
	if d.Attempts >= s.cfg.MaxAttempts {
		status = "failed"
	}
	s.log.WarnContext(ctx, "notification delivery failed", "delivery", d.ID, "channel", ch.ID, "attempt", d.Attempts,
		"final", status == "failed", "err", msg)
	_, err = s.pool.Exec(ctx, `WITH d AS (UPDATE notify_deliveries SET status = $2, next_attempt_at = $3, last_error = $4, response_code = $5
			WHERE id = $1 RETURNING channel_id)
		UPDATE notify_channels SET last_attempt_at = $6, last_error = $4 WHERE id = (SELECT channel_id FROM d)`,
		d.ID, status, next, msg, nullCode(code), now)
	return err
}

func nullCode(c int) *int {
	if c == 0 {
		return nil
	}
	return &c
}

// Payload is the JSON body of a webhook (documented in docs/alerts.md).
type Payload struct {
	Schema     string      `json:"schema"` // "archipelago.notification/v1"
	DeliveryID int64       `json:"delivery_id"`
	Type       string      `json:"type"` // event, digest, test
	Channel    PayloadRef  `json:"channel"`
	Summary    string      `json:"summary"`
	Events     []EventView `json:"events"`
	SentAt     time.Time   `json:"sent_at"`
	PortalURL  string      `json:"portal_url,omitempty"`
}

// PayloadRef names the channel.
type PayloadRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func (s *Service) send(ctx context.Context, ch Channel, d Delivery, events []EventView) (int, error) {
	if !ch.Enabled && d.Kind != "test" {
		return 0, errors.New("the channel is disabled")
	}
	p, loc, err := s.audience(ctx, ch)
	if err != nil {
		return 0, err
	}
	summary := summary(p, loc, d.Kind, events)
	switch ch.Kind {
	case ChannelWebhook:
		p := Payload{Schema: "archipelago.notification/v1", DeliveryID: d.ID, Type: d.Kind, Channel: PayloadRef{ch.ID, ch.Name},
			Summary: summary, Events: events, SentAt: s.now().UTC().Truncate(time.Second)}
		if s.cfg.PublicURL != "" {
			p.PortalURL = s.cfg.PublicURL + "/notifications"
		}
		body, err := json.Marshal(p)
		if err != nil {
			return 0, err
		}
		secret, err := s.keys.OpenString(secretPurpose(ch.ID), ch.secretSealed)
		if err != nil {
			return 0, fmt.Errorf("open the channel's secret: %w", err)
		}
		event := d.Kind
		if d.Kind == "event" && len(events) == 1 {
			event = events[0].Kind
		}
		return s.sendWebhook(ctx, ch.target, secret, d.ID, event, body)
	case ChannelEmail:
		return 0, s.sendEmail(ctx, ch.target, "[Archipelago] "+summary, s.emailBody(p, loc, ch, d, events))
	}
	return 0, fmt.Errorf("unknown channel kind %q", ch.Kind)
}

// SendDigests turns each channel's held-back events into one digest delivery. It is the
// "notify.digest" task, run every DigestEvery.
func (s *Service) SendDigests(ctx context.Context) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM notify_digest_items RETURNING channel_id, event_id`)
		if err != nil {
			return fmt.Errorf("collect digest items: %w", err)
		}
		byChannel := map[int64][]int64{}
		var chans []int64
		for rows.Next() {
			var ch, ev int64
			if err := rows.Scan(&ch, &ev); err != nil {
				rows.Close()
				return err
			}
			if _, ok := byChannel[ch]; !ok {
				chans = append(chans, ch)
			}
			byChannel[ch] = append(byChannel[ch], ev)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, ch := range chans {
			ids := byChannel[ch]
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			if _, err := tx.Exec(ctx, `INSERT INTO notify_deliveries (channel_id, kind, event_ids) VALUES ($1, 'digest', $2)`, ch, ids); err != nil {
				return fmt.Errorf("queue the digest of channel %d: %w", ch, err)
			}
		}
		return nil
	})
}
