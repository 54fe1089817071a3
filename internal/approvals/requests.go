package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/problem"
)

// Request statuses.
const (
	StatusPending   = "pending"
	StatusApproved  = "approved" // cooling off / waiting for execution
	StatusExecuted  = "executed"
	StatusFailed    = "failed"
	StatusRejected  = "rejected"
	StatusCancelled = "cancelled"
	StatusExpired   = "expired"
)

// Authorities a request executes with.
const (
	AuthorityFederationAdmin = "federation_admin"
	AuthorityMemberAdmin     = "member_admin"
)

// Notification event kinds (internal/notify).
const (
	KindRequested = notify.KindApprovalRequested // an approval request waits for votes
	KindDecided   = notify.KindApprovalDecided   // a request was approved, rejected, cancelled, expired or executed
	KindLiveness  = notify.KindApprovalLiveness  // fewer approvers can be reached than M
	KindPing      = notify.KindApprovalPing      // an approver is asked to acknowledge that they can be reached
)

// Vote is one organisation's vote on a request.
type Vote struct {
	MemberID   int64     `json:"member_id"`
	MemberSlug string    `json:"member_slug"`
	UserID     int64     `json:"user_id"`
	UserName   string    `json:"user"`
	Decision   string    `json:"decision"`
	Comment    string    `json:"comment"`
	At         time.Time `json:"at"`
}

// Request is an approval request for one protected action.
type Request struct {
	ID                 int64          `json:"id"`
	Action             Action         `json:"action"`
	Title              string         `json:"title"`
	TargetType         string         `json:"target_type"`
	TargetID           string         `json:"target_id"`
	AffectedMemberID   *int64         `json:"affected_member_id"`
	AffectedMember     string         `json:"affected_member_slug"`
	Params             map[string]any `json:"params"`
	Effect             string         `json:"effect"`
	Reason             string         `json:"reason"`
	RequestedBy        int64          `json:"requested_by"`
	RequestedByName    string         `json:"requested_by_name"`
	RequesterMemberIDs []int64        `json:"requester_member_ids"`
	Authority          string         `json:"authority"`
	RequiredApprovals  int            `json:"required_approvals"`
	Approvals          int            `json:"approvals"`
	DestroysData       bool           `json:"destroys_data"`
	Status             string         `json:"status"`
	Detail             string         `json:"detail"`
	CreatedAt          time.Time      `json:"created_at"`
	ApprovalExpiresAt  time.Time      `json:"approval_expires_at"`
	ApprovedAt         *time.Time     `json:"approved_at"`
	ExecuteAfter       *time.Time     `json:"execute_after"`
	ExecuteBefore      *time.Time     `json:"execute_before"`
	FinishedAt         *time.Time     `json:"finished_at"`
	FinishedBy         string         `json:"finished_by"`
	// CoolingOffShortened: the cooling-off of this request is under 72 h (sandbox only).
	CoolingOffShortened bool   `json:"cooling_off_shortened"`
	Votes               []Vote `json:"votes"`
}

// Open reports whether the request still waits (for votes or for its execution).
func (r Request) Open() bool { return r.Status == StatusPending || r.Status == StatusApproved }

// excluded lists the organisations whose admins may not vote on r.
func (r Request) excluded() []int64 {
	ex := slices.Clone(r.RequesterMemberIDs)
	if r.AffectedMemberID != nil {
		ex = append(ex, *r.AffectedMemberID)
	}
	return ex
}

// Ask is what a gated handler asks for.
type Ask struct {
	Action           Action
	TargetType       string
	TargetID         string
	AffectedMemberID *int64
	// Params are what the executor needs (JSON, never a secret).
	Params map[string]any
	// Effect spells out exactly what will happen, for the approvers.
	Effect string
	Reason string
}

const requestColumns = `r.id, r.action, r.target_type, r.target_id, r.affected_member_id, coalesce(m.slug, ''), r.params, r.effect,
	r.reason, r.requested_by, r.requested_by_name, r.requester_member_ids, r.authority, r.required_approvals,
	(SELECT count(*) FROM approval_votes v WHERE v.request_id = r.id AND v.decision = 'approve'),
	r.destroys_data, r.status, r.detail, r.created_at, r.approval_expires_at, r.approved_at, r.execute_after, r.execute_before,
	r.finished_at, r.finished_by`

const requestFrom = ` FROM approval_requests r LEFT JOIN members m ON m.id = r.affected_member_id `

func scanRequest(row pgx.Row) (Request, error) {
	var r Request
	var params []byte
	var action string
	err := row.Scan(&r.ID, &action, &r.TargetType, &r.TargetID, &r.AffectedMemberID, &r.AffectedMember, &params, &r.Effect,
		&r.Reason, &r.RequestedBy, &r.RequestedByName, &r.RequesterMemberIDs, &r.Authority, &r.RequiredApprovals, &r.Approvals,
		&r.DestroysData, &r.Status, &r.Detail, &r.CreatedAt, &r.ApprovalExpiresAt, &r.ApprovedAt, &r.ExecuteAfter, &r.ExecuteBefore,
		&r.FinishedAt, &r.FinishedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	r.Action = Action(action)
	if k, ok := KindOf(r.Action); ok {
		r.Title = k.Title
	}
	if err := json.Unmarshal(params, &r.Params); err != nil {
		return r, fmt.Errorf("request %d params: %w", r.ID, err)
	}
	if r.Params == nil {
		r.Params = map[string]any{}
	}
	if r.RequesterMemberIDs == nil {
		r.RequesterMemberIDs = []int64{}
	}
	if r.DestroysData && r.ApprovedAt != nil && r.ExecuteAfter != nil {
		r.CoolingOffShortened = r.ExecuteAfter.Sub(*r.ApprovedAt) < MinCoolingOff
	}
	r.Votes = []Vote{}
	return r, nil
}

func requestGet(ctx context.Context, q querier, id int64, lock bool) (Request, error) {
	sql := `SELECT ` + requestColumns + requestFrom + `WHERE r.id = $1`
	if lock {
		sql += ` FOR UPDATE OF r`
	}
	r, err := scanRequest(q.QueryRow(ctx, sql, id))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return r, err
		}
		return r, fmt.Errorf("approval request %d: %w", id, err)
	}
	rows, err := q.Query(ctx, `SELECT v.member_id, m.slug, v.user_id, v.user_name, v.decision, v.comment, v.at
		FROM approval_votes v JOIN members m ON m.id = v.member_id WHERE v.request_id = $1 ORDER BY v.at, v.member_id`, id)
	if err != nil {
		return r, fmt.Errorf("votes of request %d: %w", id, err)
	}
	r.Votes, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Vote, error) {
		var v Vote
		return v, row.Scan(&v.MemberID, &v.MemberSlug, &v.UserID, &v.UserName, &v.Decision, &v.Comment, &v.At)
	})
	if err != nil {
		return r, fmt.Errorf("votes of request %d: %w", id, err)
	}
	return r, nil
}

// RequestGetByID returns a request with its votes.
func (s *Service) RequestGetByID(ctx context.Context, id int64) (Request, error) {
	return requestGet(ctx, s.pool, id, false)
}

// RequestFilter selects requests for RequestPage.
type RequestFilter struct {
	// Open: pending and approved only; Closed: the others only.
	Open, Closed bool
	// Mine: MineToApprove keeps the requests the person may still vote on (MayVote),
	// MineOthers those they may see but not vote on; the zero value, every one they may see.
	Mine Mine
}

// Mine selects requests by whether the person reading may still vote on them.
type Mine int

// The choices of RequestFilter.Mine.
const (
	MineAll Mine = iota
	MineToApprove
	MineOthers
)

// RequestPage lists one page of the requests p may see (CanSee), newest first, paged in SQL
// (the cursor is the last id); f.Mine keeps those p may still vote on (MayVote), or those
// they may not. Visibility and MayVote are conditions of the statement, so a page reads its
// own rows, not the newest few hundred to filter them one by one.
func (s *Service) RequestPage(ctx context.Context, p *identity.Principal, f RequestFilter, r paging.Request) (paging.Page[Request], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Request]{}, err
	}
	var before int64
	if _, err := r.Keys(&before); err != nil {
		return paging.Page[Request]{}, err
	}
	if p == nil {
		return paging.Page[Request]{Items: []Request{}}, nil
	}
	var w database.Where
	switch {
	case f.Open:
		w.And("r.status IN ('pending', 'approved')")
	case f.Closed:
		w.And("r.status NOT IN ('pending', 'approved')")
	}
	var memberIDs, adminOf []int64
	for _, m := range p.Members {
		memberIDs = append(memberIDs, m.ID)
		if m.Role == identity.RoleAdmin {
			adminOf = append(adminOf, m.ID)
		}
	}
	if !p.FederationAdmin && len(adminOf) == 0 { // CanSee: an admin anywhere is a potential approver of every request
		w.And("(r.requested_by = ? OR r.affected_member_id = ANY(?))", p.UserID, memberIDs)
	}
	if f.Mine != MineAll {
		st, err := s.SettingsGet(ctx)
		if err != nil {
			return paging.Page[Request]{}, err
		}
		// MayVote, as a condition: pending and not expired, not p's own, p has not voted, and
		// one of p's organisations may approve it (eligible as approverMembers says) and has
		// not voted yet.
		mayVote := `r.status = 'pending' AND r.requested_by <> ? AND r.approval_expires_at > ?
			AND NOT EXISTS (SELECT 1 FROM approval_votes v WHERE v.request_id = r.id AND v.user_id = ?)
			AND EXISTS (SELECT 1 FROM unnest(?::bigint[]) a(m)
				WHERE NOT (a.m = ANY (r.requester_member_ids)) AND a.m IS DISTINCT FROM r.affected_member_id
				  AND (cardinality(?::bigint[]) = 0 OR a.m = ANY (?::bigint[]))
				  AND NOT EXISTS (SELECT 1 FROM approval_votes v WHERE v.request_id = r.id AND v.member_id = a.m)
				  AND EXISTS (SELECT 1 FROM memberships ms JOIN users u ON u.id = ms.user_id
					WHERE ms.member_id = a.m AND ms.role = 'admin' AND u.status = 'active' AND u.id <> r.requested_by))`
		if f.Mine == MineOthers {
			mayVote = `(` + mayVote + `) IS NOT TRUE`
		}
		w.And(mayVote, p.UserID, s.now(), p.UserID, adminOf, nonNil(st.ApproverMemberIDs), nonNil(st.ApproverMemberIDs))
	}
	if before != 0 {
		w.And("r.id < ?", before)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+requestColumns+requestFrom+w.String()+` ORDER BY r.id DESC LIMIT `+
		strconv.Itoa(size+1), w.Args...)
	if err != nil {
		return paging.Page[Request]{}, fmt.Errorf("list approval requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Request, error) { return scanRequest(row) })
	if err != nil {
		return paging.Page[Request]{}, fmt.Errorf("list approval requests: %w", err)
	}
	return paging.Cut(out, size, func(r Request) []any { return []any{r.ID} }), nil
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// CanSee reports whether p may read r: federation admins, the requester, the people of
// the affected member, and the admins who may vote on it.
func CanSee(p *identity.Principal, r Request) bool {
	if p == nil {
		return false
	}
	if p.FederationAdmin || p.UserID == r.RequestedBy {
		return true
	}
	if r.AffectedMemberID != nil {
		if _, ok := p.RoleIn(*r.AffectedMemberID); ok {
			return true
		}
	}
	for _, m := range p.Members {
		if m.Role == identity.RoleAdmin {
			return true // an admin of another organisation is a potential approver
		}
	}
	return false
}

// RequestCreate records an approval request for a protected action instead of
// performing it (audited), and tells the approvers on their channels. The requester is
// p, who must already be authorized to perform the action alone.
func (s *Service) RequestCreate(ctx context.Context, p *identity.Principal, in Ask) (Request, error) {
	k, ok := KindOf(in.Action)
	if !ok {
		return Request{}, fmt.Errorf("approvals: %q is not a protected action", in.Action)
	}
	if p == nil || p.UserID == 0 {
		return Request{}, &problem.ForbiddenError{Problem: "a protected action must be asked for by a person"}
	}
	in.Reason = strings.TrimSpace(in.Reason)
	if len(in.Reason) > 1000 {
		return Request{}, problem.Invalid("reason", "must be at most 1000 characters")
	}
	if in.Effect == "" || len(in.Effect) > 2000 {
		return Request{}, fmt.Errorf("approvals: %s needs an effect of 1 to 2000 bytes", in.Action)
	}
	if in.Params == nil {
		in.Params = map[string]any{}
	}
	params, err := json.Marshal(in.Params)
	if err != nil {
		return Request{}, fmt.Errorf("approvals: params of %s: %w", in.Action, err)
	}
	authority := AuthorityMemberAdmin
	if p.FederationAdmin {
		authority = AuthorityFederationAdmin
	}
	now := s.now()
	var id int64
	err = s.tx(ctx, func(tx pgx.Tx) error {
		st, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		var open int64
		err = tx.QueryRow(ctx, `SELECT id FROM approval_requests WHERE action = $1 AND target_type = $2 AND target_id = $3
			AND status IN ('pending', 'approved')`, string(in.Action), in.TargetType, in.TargetID).Scan(&open)
		if err == nil {
			return problem.Conflict("", "an approval request for this is already open (#%d): approve, reject or cancel it first", open)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO approval_requests (action, target_type, target_id, affected_member_id, params, effect, reason,
			requested_by, requested_by_name, requester_member_ids, authority, required_approvals, destroys_data, created_at, approval_expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id`,
			string(in.Action), in.TargetType, in.TargetID, in.AffectedMemberID, params, in.Effect, in.Reason, p.UserID, p.Email,
			p.MemberIDs(), authority, st.RequiredApprovals, k.DestroysData, now, now.Add(st.ApprovalWindow)).Scan(&id)
		if err != nil {
			if problem.IsUniqueViolation(err) {
				return problem.Conflict("", "an approval request for this is already open")
			}
			return err
		}
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "approval.request", MemberID: in.AffectedMemberID,
			TargetType: "approval_request", TargetID: strconv.FormatInt(id, 10),
			Details: map[string]any{"action": string(in.Action), "target_type": in.TargetType, "target_id": in.TargetID,
				"effect": in.Effect, "reason": in.Reason, "required_approvals": st.RequiredApprovals,
				"approval_expires_at": now.Add(st.ApprovalWindow), "authority": authority}}); err != nil {
			return err
		}
		r, err := requestGet(ctx, tx, id, false)
		if err != nil {
			return err
		}
		return s.tellApprovers(ctx, tx, st, r)
	})
	if err != nil {
		var ce *problem.ConflictError
		if errors.As(err, &ce) {
			return Request{}, err
		}
		return Request{}, fmt.Errorf("create approval request for %s: %w", in.Action, err)
	}
	return s.RequestGetByID(ctx, id)
}

// approverMembers lists the organisations whose admins may vote on r.
func approverMembers(ctx context.Context, q querier, st Settings, r Request) ([]int64, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ms.member_id FROM memberships ms JOIN users u ON u.id = ms.user_id
		WHERE ms.role = 'admin' AND u.status = 'active' AND u.id <> $1
		  AND NOT (ms.member_id = ANY ($2)) AND (cardinality($3::bigint[]) = 0 OR ms.member_id = ANY ($3))
		ORDER BY ms.member_id`, r.RequestedBy, r.excluded(), st.ApproverMemberIDs)
	if err != nil {
		return nil, fmt.Errorf("approvers of request %d: %w", r.ID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// tellApprovers emits one event per approver organisation (its channels, and the
// federation's, receive it).
func (s *Service) tellApprovers(ctx context.Context, tx pgx.Tx, st Settings, r Request) error {
	members, err := approverMembers(ctx, tx, st, r)
	if err != nil {
		return err
	}
	for _, m := range members {
		if _, err := notify.Emit(ctx, tx, notify.Event{Kind: KindRequested, Severity: notify.SeverityWarning, MemberID: &m,
			Subject: fmt.Sprintf("approval/%d", r.ID), At: s.now(),
			Title: problem.Truncate(fmt.Sprintf("Approval needed (#%d, %d of %d): %s", r.ID, r.Approvals, r.RequiredApprovals, r.Effect), 490),
			Detail: map[string]any{"request_id": r.ID, "action": string(r.Action), "effect": r.Effect, "requested_by": r.RequestedByName,
				"reason": r.Reason, "approval_expires_at": r.ApprovalExpiresAt, "approvals": r.Approvals,
				"required_approvals": r.RequiredApprovals}}); err != nil {
			return err
		}
	}
	return nil
}

// tellDecided tells the affected member and the federation what became of r.
func (s *Service) tellDecided(ctx context.Context, tx pgx.Tx, r Request, status, detail string) error {
	sev := notify.SeverityInfo
	if status == StatusApproved || status == StatusExecuted {
		sev = notify.SeverityWarning
	}
	_, err := notify.Emit(ctx, tx, notify.Event{Kind: KindDecided, Severity: sev, MemberID: r.AffectedMemberID,
		Subject: fmt.Sprintf("approval/%d/%s", r.ID, status), At: s.now(),
		Title:  problem.Truncate(fmt.Sprintf("Approval request #%d %s: %s", r.ID, status, r.Effect), 490),
		Detail: map[string]any{"request_id": r.ID, "action": string(r.Action), "status": status, "detail": detail, "effect": r.Effect}})
	return err
}

// VoteInput is one vote.
type VoteInput struct {
	Approve bool
	Comment string
	// MemberID chooses the organisation the vote is for when the voter is an admin of
	// several eligible ones (0: the first that has not voted).
	MemberID int64
}

// RequestVote records p's vote (audited). The requester's own vote and a second vote
// for an organisation do not count: they are refused. A reject from an eligible
// organisation rejects the request; the M-th approval approves it, starting its
// cooling-off (data-destroying actions: the executor's Hold makes the vault read-only).
func (s *Service) RequestVote(ctx context.Context, p *identity.Principal, id int64, in VoteInput) (Request, error) {
	in.Comment = strings.TrimSpace(in.Comment)
	if len(in.Comment) > 1000 {
		return Request{}, problem.Invalid("comment", "must be at most 1000 characters")
	}
	if p == nil || p.UserID == 0 {
		return Request{}, &problem.ForbiddenError{Problem: "only a person may vote"}
	}
	now := s.now()
	var approved bool
	var req Request
	err := s.tx(ctx, func(tx pgx.Tx) error {
		r, err := requestGet(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if r.RequestedBy == p.UserID {
			return &problem.ForbiddenError{Problem: "the requester's own vote does not count: admins of other organisations must approve"}
		}
		st, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		eligible, err := approverMembers(ctx, tx, st, r)
		if err != nil {
			return err
		}
		var mine []int64
		for _, m := range p.Members {
			if m.Role == identity.RoleAdmin && slices.Contains(eligible, m.ID) && (in.MemberID == 0 || in.MemberID == m.ID) {
				mine = append(mine, m.ID)
			}
		}
		if len(mine) == 0 {
			if in.MemberID != 0 {
				return problem.Invalid("member_id", "you are not an admin of an organisation that may vote on this request")
			}
			return &problem.ForbiddenError{Problem: "only admins of member organisations other than the requester's and the affected member's may vote"}
		}
		if r.Status != StatusPending {
			return problem.Conflict("", "the request is %s: it takes no more votes", r.Status)
		}
		if !now.Before(r.ApprovalExpiresAt) {
			return problem.Conflict("", "the request's approval window ended at %s", r.ApprovalExpiresAt.Format(time.RFC3339))
		}
		voted := map[int64]Vote{}
		for _, v := range r.Votes {
			voted[v.MemberID] = v
			if v.UserID == p.UserID {
				return problem.Conflict("", "you already voted on this request (for %s)", v.MemberSlug)
			}
		}
		member := int64(0)
		for _, m := range mine {
			if _, ok := voted[m]; !ok {
				member = m
				break
			}
		}
		if member == 0 {
			v := voted[mine[0]]
			return problem.Conflict("", "organisation %s already voted (%s by %s): one vote per organisation", v.MemberSlug, v.Decision, v.UserName)
		}
		decision := "reject"
		if in.Approve {
			decision = "approve"
		}
		if _, err := tx.Exec(ctx, `INSERT INTO approval_votes (request_id, member_id, user_id, user_name, decision, comment, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.ID, member, p.UserID, p.Email, decision, in.Comment, now); err != nil {
			if problem.IsUniqueViolation(err) {
				return problem.Conflict("", "this organisation or person already voted: one vote per organisation")
			}
			return err
		}
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "approval." + decision, MemberID: r.AffectedMemberID,
			TargetType: "approval_request", TargetID: strconv.FormatInt(r.ID, 10),
			Details: map[string]any{"for_member_id": member, "comment": in.Comment, "action": string(r.Action), "effect": r.Effect}}); err != nil {
			return err
		}
		switch {
		case !in.Approve:
			if err := finish(ctx, tx, r, StatusRejected, "rejected by "+p.Email, now, p.Email); err != nil {
				return err
			}
			return s.tellDecided(ctx, tx, r, StatusRejected, in.Comment)
		case r.Approvals+1 >= r.RequiredApprovals:
			wait := time.Duration(0)
			if r.DestroysData {
				wait = st.CoolingOff
			}
			after, before := now.Add(wait), now.Add(wait+st.ExecutionWindow)
			if _, err := tx.Exec(ctx, `UPDATE approval_requests SET status = 'approved', approved_at = $2, execute_after = $3,
				execute_before = $4 WHERE id = $1`, r.ID, now, after, before); err != nil {
				return err
			}
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "approval.approved", MemberID: r.AffectedMemberID,
				TargetType: "approval_request", TargetID: strconv.FormatInt(r.ID, 10),
				Details: map[string]any{"action": string(r.Action), "effect": r.Effect, "approvals": r.Approvals + 1,
					"cooling_off_seconds": int64(wait / time.Second), "execute_after": after, "execute_before": before,
					"cooling_off_shortened": r.DestroysData && wait < MinCoolingOff}}); err != nil {
				return err
			}
			approved = true
			return s.tellDecided(ctx, tx, r, StatusApproved, fmt.Sprintf("executes after %s", after.Format(time.RFC3339)))
		}
		return nil
	})
	if err != nil {
		return Request{}, s.domainErr("vote on approval request", id, err)
	}
	req, err = s.RequestGetByID(ctx, id)
	if err != nil {
		return req, err
	}
	if approved && req.DestroysData {
		if e, ok := s.execs[req.Action]; ok && e.Hold != nil {
			hctx := audit.WithActor(ctx, audit.System(fmt.Sprintf("approvals (request #%d cooling-off)", req.ID)))
			if err := e.Hold(hctx, req); err != nil {
				// The hold (freeze) is recorded by its domain, which retries; say so in the request.
				s.log.WarnContext(ctx, "approval cooling-off: hold failed", "request", req.ID, "err", err)
				s.setDetail(ctx, req.ID, "cooling-off hold: "+err.Error())
			}
		}
	}
	return s.RequestGetByID(ctx, id)
}

func (s *Service) setDetail(ctx context.Context, id int64, detail string) {
	if _, err := s.pool.Exec(ctx, `UPDATE approval_requests SET detail = $2 WHERE id = $1`, id, problem.Truncate(detail, 1990)); err != nil {
		s.log.WarnContext(ctx, "record approval request detail", "request", id, "err", err)
	}
}

// finish closes r with status (audited as approval.<status>).
func finish(ctx context.Context, tx pgx.Tx, r Request, status, detail string, now time.Time, by string) error {
	if _, err := tx.Exec(ctx, `UPDATE approval_requests SET status = $2, detail = $3, finished_at = $4, finished_by = $5 WHERE id = $1`,
		r.ID, status, problem.Truncate(detail, 1990), now, by); err != nil {
		return err
	}
	_, err := audit.Record(ctx, tx, audit.Entry{Action: "approval." + status, MemberID: r.AffectedMemberID,
		TargetType: "approval_request", TargetID: strconv.FormatInt(r.ID, 10),
		Details: map[string]any{"action": string(r.Action), "effect": r.Effect, "detail": detail}})
	return err
}

// RequestCancel cancels an open request (audited): the requester, a federation admin or
// an admin of the affected member may. During the cooling-off nothing has been destroyed:
// the executor's Release lifts the hold (the vault's freeze ends after the federation's
// unfreeze delay).
func (s *Service) RequestCancel(ctx context.Context, p *identity.Principal, id int64) (Request, error) {
	if p == nil {
		return Request{}, &problem.ForbiddenError{Problem: "authentication required"}
	}
	now := s.now()
	var wasApproved bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		r, err := requestGet(ctx, tx, id, true)
		if err != nil {
			return err
		}
		allowed := p.FederationAdmin || p.UserID == r.RequestedBy
		if r.AffectedMemberID != nil {
			if role, ok := p.RoleIn(*r.AffectedMemberID); ok && role == identity.RoleAdmin {
				allowed = true
			}
		}
		if !allowed {
			return &problem.ForbiddenError{Problem: "only the requester, a federation admin or an admin of the affected member may cancel"}
		}
		if !r.Open() {
			return problem.Conflict("", "the request is already %s", r.Status)
		}
		wasApproved = r.Status == StatusApproved
		if err := finish(ctx, tx, r, StatusCancelled, "cancelled by "+p.Email, now, p.Email); err != nil {
			return err
		}
		return s.tellDecided(ctx, tx, r, StatusCancelled, "cancelled by "+p.Email)
	})
	if err != nil {
		return Request{}, s.domainErr("cancel approval request", id, err)
	}
	r, err := s.RequestGetByID(ctx, id)
	if err != nil {
		return r, err
	}
	if wasApproved {
		s.release(ctx, r)
	}
	return s.RequestGetByID(ctx, id)
}

func (s *Service) release(ctx context.Context, r Request) {
	if !r.DestroysData {
		return
	}
	if e, ok := s.execs[r.Action]; ok && e.Release != nil {
		rctx := audit.WithActor(ctx, audit.System(fmt.Sprintf("approvals (request #%d closed)", r.ID)))
		if err := e.Release(rctx, r); err != nil {
			s.log.WarnContext(ctx, "approval: release the cooling-off hold", "request", r.ID, "err", err)
			s.setDetail(ctx, r.ID, r.Detail+"; releasing the hold failed: "+err.Error())
		}
	}
}

// domainErr keeps the shared vocabulary's errors as they are and wraps the others.
func (s *Service) domainErr(what string, id int64, err error) error {
	if err == nil {
		return nil
	}
	var fe *problem.FieldError
	var ce *problem.ConflictError
	var fb *problem.ForbiddenError
	if errors.As(err, &fe) || errors.As(err, &ce) || errors.As(err, &fb) || errors.Is(err, problem.ErrNotFound) {
		return err
	}
	return fmt.Errorf("%s %d: %w", what, id, err)
}

// ParamInt returns the integer parameter name of r.
func (r Request) ParamInt(name string) (int64, error) {
	switch v := r.Params[name].(type) {
	case float64:
		return int64(v), nil
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	case json.Number:
		return v.Int64()
	}
	return 0, fmt.Errorf("approval request %d: parameter %s missing", r.ID, name)
}

// ParamString returns the string parameter name of r ("" when absent).
func (r Request) ParamString(name string) string {
	s, _ := r.Params[name].(string)
	return s
}

// ParamDecode decodes the parameter name of r into v.
func (r Request) ParamDecode(name string, v any) error {
	raw, err := json.Marshal(r.Params[name])
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("approval request %d: parameter %s: %w", r.ID, name, err)
	}
	return nil
}

// MayVote reports whether p may still vote on r: r is pending, p is not the requester,
// has not voted, and is an admin of an approver organisation that has not voted.
func (s *Service) MayVote(ctx context.Context, p *identity.Principal, r Request) (bool, error) {
	if p == nil || r.Status != StatusPending || p.UserID == r.RequestedBy || !s.now().Before(r.ApprovalExpiresAt) {
		return false, nil
	}
	full, err := s.RequestGetByID(ctx, r.ID)
	if err != nil {
		return false, err
	}
	st, err := s.SettingsGet(ctx)
	if err != nil {
		return false, err
	}
	eligible, err := approverMembers(ctx, s.pool, st, full)
	if err != nil {
		return false, err
	}
	voted := map[int64]bool{}
	for _, v := range full.Votes {
		if v.UserID == p.UserID {
			return false, nil
		}
		voted[v.MemberID] = true
	}
	for _, m := range p.Members {
		if m.Role == identity.RoleAdmin && slices.Contains(eligible, m.ID) && !voted[m.ID] {
			return true, nil
		}
	}
	return false, nil
}
