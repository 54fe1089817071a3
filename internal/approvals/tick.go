package approvals

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/problem"
)

// TickEvery is how often the periodic job expires and executes requests.
const TickEvery = time.Minute

// Tick is the periodic work (idempotent, safe from two processes): requests past their
// approval window expire; approved requests past their execution window expire (their
// hold released); approved requests whose cooling-off is over are executed with the
// requester's authority.
func (s *Service) Tick(ctx context.Context) error {
	ctx = withSystemActor(ctx, "approvals.tick")
	now := s.now()
	rows, err := s.pool.Query(ctx, `SELECT id FROM approval_requests
		WHERE (status = 'pending' AND approval_expires_at <= $1) OR (status = 'approved' AND execute_after <= $1)
		ORDER BY id`, now)
	if err != nil {
		return fmt.Errorf("due approval requests: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("due approval requests: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := s.due(ctx, id, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// due handles one request that Tick found due, holding its row lock throughout so a
// cancel never interleaves with an execution.
func (s *Service) due(ctx context.Context, id int64, now time.Time) error {
	var released *Request
	err := s.tx(ctx, func(tx pgx.Tx) error {
		r, err := requestGet(ctx, tx, id, true)
		if err != nil {
			return err
		}
		switch {
		case r.Status == StatusPending && !now.Before(r.ApprovalExpiresAt):
			detail := fmt.Sprintf("approval window ended with %d of %d approvals", r.Approvals, r.RequiredApprovals)
			if err := finish(ctx, tx, r, StatusExpired, detail, now, "approvals.tick"); err != nil {
				return err
			}
			return s.tellDecided(ctx, tx, r, StatusExpired, detail)
		case r.Status == StatusApproved && !now.Before(*r.ExecuteBefore):
			released = &r
			detail := "execution window ended before the action could be performed: " + r.Detail
			if err := finish(ctx, tx, r, StatusExpired, detail, now, "approvals.tick"); err != nil {
				return err
			}
			return s.tellDecided(ctx, tx, r, StatusExpired, detail)
		case r.Status == StatusApproved && !now.Before(*r.ExecuteAfter):
			return s.execute(ctx, tx, r, now)
		}
		return nil // changed meanwhile
	})
	if released != nil {
		s.release(ctx, *released)
	}
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return s.domainErr("approval request", id, err)
}

// transient: the island did not answer; the request stays approved and the next tick
// tries again within the execution window.
var errTransient = errors.New("transient")

// execute performs r with the requester's authority and records the outcome in tx.
func (s *Service) execute(ctx context.Context, tx pgx.Tx, r Request, now time.Time) error {
	e, ok := s.execs[r.Action]
	if !ok || e.Execute == nil {
		return finish(ctx, tx, r, StatusFailed, "no executor for "+string(r.Action), now, "approvals.tick")
	}
	if why, err := stillAuthorized(ctx, tx, r); err != nil {
		return err
	} else if why != "" {
		if err := finish(ctx, tx, r, StatusFailed, why, now, "approvals.tick"); err != nil {
			return err
		}
		return s.tellDecided(ctx, tx, r, StatusFailed, why)
	}
	actx := audit.WithActor(ctx, audit.Actor{Kind: audit.ActorUser, ID: strconv.FormatInt(r.RequestedBy, 10),
		Name: fmt.Sprintf("%s (approval request #%d)", r.RequestedByName, r.ID)})
	err := e.Execute(actx, r)
	var ue *problem.UnreachableError
	switch {
	case errors.As(err, &ue):
		s.log.WarnContext(ctx, "approved action: island unreachable, retried", "request", r.ID, "err", err)
		_, uerr := tx.Exec(ctx, `UPDATE approval_requests SET detail = $2 WHERE id = $1`, r.ID,
			problem.Truncate("retrying: "+err.Error(), 1990))
		return uerr
	case err != nil:
		detail := "the action failed: " + err.Error()
		if ferr := finish(ctx, tx, r, StatusFailed, detail, now, "approvals.tick"); ferr != nil {
			return ferr
		}
		return s.tellDecided(ctx, tx, r, StatusFailed, detail)
	}
	if err := finish(ctx, tx, r, StatusExecuted, "performed with the authority of "+r.RequestedByName, now, "approvals.tick"); err != nil {
		return err
	}
	return s.tellDecided(ctx, tx, r, StatusExecuted, "")
}

// stillAuthorized checks that the requester still holds the authority the request
// executes with; it returns why not, or "".
func stillAuthorized(ctx context.Context, q querier, r Request) (string, error) {
	var status string
	var fed bool
	err := q.QueryRow(ctx, `SELECT status, federation_admin FROM users WHERE id = $1`, r.RequestedBy).Scan(&status, &fed)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && status != "active") {
		return "the requester's account is gone or disabled", nil
	}
	if err != nil {
		return "", err
	}
	if r.Authority == AuthorityFederationAdmin {
		if !fed {
			return "the requester is no longer a federation admin", nil
		}
		return "", nil
	}
	if r.AffectedMemberID == nil {
		return "", nil
	}
	var role string
	err = q.QueryRow(ctx, `SELECT role FROM memberships WHERE user_id = $1 AND member_id = $2`, r.RequestedBy, *r.AffectedMemberID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && role != string(identity.RoleAdmin)) {
		return "the requester is no longer an admin of the affected member", nil
	}
	return "", err
}

// Liveness is the outcome of a liveness check.
type Liveness struct {
	CheckedAt *time.Time `json:"checked_at"`
	// Reachable counts approver organisations with at least one admin who logged in or
	// acknowledged a ping within the liveness window.
	Reachable int  `json:"reachable"`
	Required  int  `json:"required"`
	Alerting  bool `json:"alerting"`
}

// LivenessGet returns the last liveness check.
func (s *Service) LivenessGet(ctx context.Context) (Liveness, error) {
	var l Liveness
	err := s.pool.QueryRow(ctx, `SELECT checked_at, reachable, required, alerting FROM approval_liveness`).
		Scan(&l.CheckedAt, &l.Reachable, &l.Required, &l.Alerting)
	return l, wrap("approval liveness", err)
}

// LivenessEvery is how often the liveness check runs.
const LivenessEvery = time.Hour

// CheckLiveness counts the approver organisations that can be reached (an admin who
// logged in, or acknowledged a ping, within the liveness window), pings the admins not
// seen for half the window, and when fewer than M can be reached alerts the federation
// admins and every member's admins (internal/notify, critical). A change of the alert
// state is audited.
func (s *Service) CheckLiveness(ctx context.Context) error {
	ctx = withSystemActor(ctx, "approvals.liveness")
	now := s.now()
	return wrap("approval liveness", s.tx(ctx, func(tx pgx.Tx) error {
		st, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		since := now.Add(-st.LivenessWindow)
		var reachable int
		if err := tx.QueryRow(ctx, `SELECT count(DISTINCT ms.member_id) FROM memberships ms JOIN users u ON u.id = ms.user_id
			WHERE ms.role = 'admin' AND u.status = 'active'
			  AND (cardinality($2::bigint[]) = 0 OR ms.member_id = ANY ($2))
			  AND (EXISTS (SELECT 1 FROM sessions se WHERE se.user_id = u.id AND greatest(se.created_at, se.last_seen_at) >= $1)
			    OR EXISTS (SELECT 1 FROM approver_pings pi WHERE pi.user_id = u.id AND pi.acked_at >= $1))`,
			since, st.ApproverMemberIDs).Scan(&reachable); err != nil {
			return err
		}
		// Ping the admins not seen for half the window (once per half window).
		half := now.Add(-st.LivenessWindow / 2)
		rows, err := tx.Query(ctx, `INSERT INTO approver_pings AS p (user_id, sent_at)
			SELECT DISTINCT u.id, $2::timestamptz FROM memberships ms JOIN users u ON u.id = ms.user_id
			WHERE ms.role = 'admin' AND u.status = 'active' AND (cardinality($3::bigint[]) = 0 OR ms.member_id = ANY ($3))
			  AND NOT EXISTS (SELECT 1 FROM sessions se WHERE se.user_id = u.id AND greatest(se.created_at, se.last_seen_at) >= $1)
			ON CONFLICT (user_id) DO UPDATE SET sent_at = EXCLUDED.sent_at
			  WHERE p.sent_at < $1 AND (p.acked_at IS NULL OR p.acked_at < $1)
			RETURNING user_id`, half, now, st.ApproverMemberIDs)
		if err != nil {
			return err
		}
		pinged, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, uid := range pinged {
			if err := s.ping(ctx, tx, uid, st); err != nil {
				return err
			}
		}
		var was bool
		if err := tx.QueryRow(ctx, `SELECT alerting FROM approval_liveness FOR UPDATE`).Scan(&was); err != nil {
			return err
		}
		alerting := reachable < st.RequiredApprovals
		if _, err := tx.Exec(ctx, `UPDATE approval_liveness SET checked_at = $1, reachable = $2, required = $3, alerting = $4`,
			now, reachable, st.RequiredApprovals, alerting); err != nil {
			return err
		}
		if alerting != was {
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "approval.liveness", TargetType: "approval_settings", TargetID: "federation",
				Details: map[string]any{"reachable": reachable, "required": st.RequiredApprovals, "alerting": alerting}}); err != nil {
				return err
			}
		}
		if !alerting {
			return notify.Resolve(ctx, tx, "approvals/liveness")
		}
		title := fmt.Sprintf("Only %d approver organisations can be reached; protected actions need %d", reachable, st.RequiredApprovals)
		ev := notify.Event{Kind: KindLiveness, Severity: notify.SeverityCritical, Subject: "approvals/liveness", Title: title, At: now,
			Detail: map[string]any{"reachable": reachable, "required": st.RequiredApprovals}}
		if _, err := notify.Emit(ctx, tx, ev); err != nil { // federation-wide channels
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id FROM members ORDER BY id`)
		if err != nil {
			return err
		}
		members, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, m := range members {
			ev.MemberID = &m
			if _, err := notify.Emit(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	}))
}

// ping asks an approver to acknowledge that they can be reached (on their members' channels).
func (s *Service) ping(ctx context.Context, tx pgx.Tx, userID int64, st Settings) error {
	rows, err := tx.Query(ctx, `SELECT ms.member_id, u.email FROM memberships ms JOIN users u ON u.id = ms.user_id
		WHERE ms.user_id = $1 AND ms.role = 'admin' AND (cardinality($2::bigint[]) = 0 OR ms.member_id = ANY ($2))`, userID, st.ApproverMemberIDs)
	if err != nil {
		return err
	}
	type ref struct {
		member int64
		email  string
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ref, error) {
		var x ref
		return x, r.Scan(&x.member, &x.email)
	})
	if err != nil {
		return err
	}
	for _, x := range refs {
		if _, err := notify.Emit(ctx, tx, notify.Event{Kind: KindPing, Severity: notify.SeverityInfo, MemberID: &x.member,
			Subject: fmt.Sprintf("approvals/ping/%d", userID), At: s.now(),
			Title:  fmt.Sprintf("Approver %s: please acknowledge on the Approvals page (or POST /v1/approvals/ping) that you can still be reached", x.email),
			Detail: map[string]any{"user": x.email}}); err != nil {
			return err
		}
	}
	return nil
}

// PingAck records that p can be reached as an approver (audited).
func (s *Service) PingAck(ctx context.Context, p *identity.Principal) error {
	if p == nil || p.UserID == 0 {
		return &problem.ForbiddenError{Problem: "only a person may acknowledge"}
	}
	now := s.now()
	return wrap("acknowledge approver ping", s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO approver_pings (user_id, sent_at, acked_at) VALUES ($1, $2, $2)
			ON CONFLICT (user_id) DO UPDATE SET acked_at = EXCLUDED.acked_at`, p.UserID, now); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "approval.ping_ack", TargetType: "user", TargetID: strconv.FormatInt(p.UserID, 10)})
		return err
	}))
}
