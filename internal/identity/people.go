package identity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
)

// ErrLastAdmin refuses a change that would leave a member without an admin.
var ErrLastAdmin = problem.Conflict("", "this person is the member's last admin; make someone else admin first")

// ErrNoPerson is a user who is not a person of the member (or a path that names no user):
// the front ends answer it as a missing "person".
var ErrNoPerson = &problem.NotFoundError{What: "person", Field: "person", Problem: "no such person in this member"}

// Person is a user as one member sees them: their role there, and when they last logged in.
type Person struct {
	UserID      int64      `json:"user_id"`
	Email       string     `json:"email"`
	DisplayName string     `json:"display_name"`
	Role        Role       `json:"role"`
	Status      string     `json:"status"`
	AddedAt     time.Time  `json:"added_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

// NewPerson is what PersonAdd needs. DisplayName is used only when the user is created.
type NewPerson struct {
	Email       string
	DisplayName string
	Role        Role
}

// PersonAdded is the outcome of PersonAdd.
type PersonAdded struct {
	Person
	// InitialPassword is set only when the user was created: it is shown to the caller
	// this once and never stored (only its hash is) nor logged nor audited.
	InitialPassword string
	// WasMember is true when the user already belonged to the member: their role was replaced.
	WasMember bool
}

const personColumns = `u.id, u.email, u.display_name, ms.role, u.status, ms.created_at,
	(SELECT max(s.created_at) FROM sessions s WHERE s.user_id = u.id)`

func scanPerson(r pgx.Row) (Person, error) {
	var p Person
	err := r.Scan(&p.UserID, &p.Email, &p.DisplayName, &p.Role, &p.Status, &p.AddedAt, &p.LastLoginAt)
	return p, err
}

// PersonList lists the people of a member, admins first, then by email.
func (s *Service) PersonList(ctx context.Context, memberID int64) ([]Person, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+personColumns+` FROM memberships ms JOIN users u ON u.id = ms.user_id
		WHERE ms.member_id = $1 ORDER BY ms.role = 'admin' DESC, u.email`, memberID)
	if err != nil {
		return nil, fmt.Errorf("list people of member %d: %w", memberID, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Person, error) { return scanPerson(r) })
	if err != nil {
		return nil, fmt.Errorf("list people of member %d: %w", memberID, err)
	}
	return ps, nil
}

// PersonByID returns one person of a member; a user who does not belong to it is ErrNoPerson.
func (s *Service) PersonByID(ctx context.Context, memberID, userID int64) (Person, error) {
	return personGet(ctx, s.pool, memberID, userID)
}

func personGet(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, memberID, userID int64) (Person, error) {
	p, err := scanPerson(q.QueryRow(ctx, `SELECT `+personColumns+` FROM memberships ms JOIN users u ON u.id = ms.user_id
		WHERE ms.member_id = $1 AND ms.user_id = $2`, memberID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Person{}, ErrNoPerson
	}
	if err != nil {
		return Person{}, fmt.Errorf("person %d of member %d: %w", userID, memberID, err)
	}
	return p, nil
}

// PersonAdd adds a person to a member with a role. When no user has the email, one is
// created with a generated password, returned once in PersonAdded.InitialPassword. When
// the user exists, they get the membership, or their role there is replaced (refused with
// ErrLastAdmin if that would demote the member's last admin). Audited as member_user.add,
// in the same transaction; the password is never in the audit log.
func (s *Service) PersonAdd(ctx context.Context, memberID int64, np NewPerson) (PersonAdded, error) {
	email, err := NormalizeEmail(np.Email)
	if err != nil {
		return PersonAdded{}, &FieldError{Field: "email", Problem: err.Error()}
	}
	name := strings.TrimSpace(np.DisplayName)
	if utf8.RuneCountInString(name) > 200 || strings.ContainsAny(name, "\r\n\t") {
		return PersonAdded{}, &FieldError{Field: "display_name", Problem: "must be at most 200 characters on one line"}
	}
	if !np.Role.Valid() {
		return PersonAdded{}, &FieldError{Field: "role", Problem: "must be admin or viewer"}
	}
	var out PersonAdded
	add := func(tx pgx.Tx) error {
		out = PersonAdded{}
		if err := lockMember(ctx, tx, memberID); err != nil {
			return err
		}
		var userID int64
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE email = $1`, email).Scan(&userID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			out.InitialPassword = initialPassword(email)
			u, err := s.UserCreate(ctx, tx, NewUser{Email: email, DisplayName: name, Password: out.InitialPassword})
			if err != nil {
				return err
			}
			userID = u.ID
		case err != nil:
			return fmt.Errorf("look up user: %w", err)
		}
		var previous Role
		err = tx.QueryRow(ctx, `SELECT role FROM memberships WHERE user_id = $1 AND member_id = $2`, userID, memberID).Scan(&previous)
		switch {
		case err == nil:
			out.WasMember = true
			if err := checkNotLastAdmin(ctx, tx, memberID, userID, previous, np.Role); err != nil {
				return err
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("look up membership: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO memberships (user_id, member_id, role) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, member_id) DO UPDATE SET role = excluded.role`, userID, memberID, string(np.Role)); err != nil {
			return fmt.Errorf("add membership: %w", err)
		}
		details := map[string]any{"email": email, "role": np.Role, "user_created": out.InitialPassword != ""}
		if out.WasMember {
			details["previous_role"] = previous
		}
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "member_user.add", MemberID: &memberID, TargetType: "user",
			TargetID: strconv.FormatInt(userID, 10), Details: details}); err != nil {
			return err
		}
		out.Person, err = personGet(ctx, tx, memberID, userID)
		return err
	}
	defer s.cache.invalidate() // PersonAdd can demote an existing member
	err = pgx.BeginFunc(ctx, s.pool, add)
	if errors.Is(err, ErrEmailTaken) {
		// Someone created this user between our look-up and insert: add the user they created.
		err = pgx.BeginFunc(ctx, s.pool, add)
	}
	if err != nil {
		return PersonAdded{}, err
	}
	return out, nil
}

// PersonRoleSet changes a person's role in a member, audited as member_user.role. Demoting
// the member's last admin is refused with ErrLastAdmin. The person's API tokens for the
// member act with the new role at most from now on.
func (s *Service) PersonRoleSet(ctx context.Context, memberID, userID int64, role Role) (Person, error) {
	if !role.Valid() {
		return Person{}, &FieldError{Field: "role", Problem: "must be admin or viewer"}
	}
	var out Person
	defer s.cache.invalidate()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockMember(ctx, tx, memberID); err != nil {
			return err
		}
		cur, err := personGet(ctx, tx, memberID, userID)
		if err != nil {
			return err
		}
		if cur.Role == role {
			out = cur
			return nil
		}
		if err := checkNotLastAdmin(ctx, tx, memberID, userID, cur.Role, role); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3 WHERE user_id = $1 AND member_id = $2`,
			userID, memberID, string(role)); err != nil {
			return fmt.Errorf("change role: %w", err)
		}
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "member_user.role", MemberID: &memberID, TargetType: "user",
			TargetID: strconv.FormatInt(userID, 10),
			Details:  map[string]any{"email": cur.Email, "role": role, "previous_role": cur.Role}}); err != nil {
			return err
		}
		out = cur
		out.Role = role
		return nil
	})
	return out, err
}

// PersonRemove removes a person from a member, audited as member_user.remove. Removing
// the member's last admin is refused with ErrLastAdmin. The person's API tokens for the
// member are revoked (each audited as token.revoke), and when they no longer belong to any
// member and are not a federation admin, their sessions are revoked too.
func (s *Service) PersonRemove(ctx context.Context, memberID, userID int64) error {
	defer s.cache.invalidate()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockMember(ctx, tx, memberID); err != nil {
			return err
		}
		cur, err := personGet(ctx, tx, memberID, userID)
		if err != nil {
			return err
		}
		if err := checkNotLastAdmin(ctx, tx, memberID, userID, cur.Role, ""); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM memberships WHERE user_id = $1 AND member_id = $2`, userID, memberID); err != nil {
			return fmt.Errorf("remove membership: %w", err)
		}
		now := s.cfg.Now()
		rows, err := tx.Query(ctx, `UPDATE api_tokens SET revoked_at = $3 WHERE user_id = $1 AND member_id = $2
			AND revoked_at IS NULL RETURNING id, name, prefix`, userID, memberID, now)
		if err != nil {
			return fmt.Errorf("revoke tokens: %w", err)
		}
		type revoked struct {
			id           int64
			name, prefix string
		}
		toks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (revoked, error) {
			var t revoked
			err := r.Scan(&t.id, &t.name, &t.prefix)
			return t, err
		})
		if err != nil {
			return fmt.Errorf("revoke tokens: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL
			AND NOT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1)
			AND NOT (SELECT federation_admin FROM users WHERE id = $1)`, userID, now)
		if err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		sessions := tag.RowsAffected()
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "member_user.remove", MemberID: &memberID, TargetType: "user",
			TargetID: strconv.FormatInt(userID, 10),
			Details: map[string]any{"email": cur.Email, "role": cur.Role, "tokens_revoked": len(toks),
				"sessions_revoked": sessions}}); err != nil {
			return err
		}
		for _, t := range toks {
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "token.revoke", MemberID: &memberID, TargetType: "token",
				TargetID: strconv.FormatInt(t.id, 10),
				Details:  map[string]any{"name": t.name, "prefix": t.prefix, "reason": "its creator was removed from the member"}}); err != nil {
				return err
			}
		}
		return nil
	})
}

// lockMember serialises changes to a member's people, so two admins demoting each other at
// once cannot leave it without an admin. An unknown member is ErrNotFound.
func lockMember(ctx context.Context, tx pgx.Tx, memberID int64) error {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM members WHERE id = $1 FOR NO KEY UPDATE`, memberID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("lock member %d: %w", memberID, err)
	}
	return nil
}

// checkNotLastAdmin refuses to turn an admin into something else (next: viewer, or "" for
// removal) unless another active admin of the member remains.
func checkNotLastAdmin(ctx context.Context, tx pgx.Tx, memberID, userID int64, current, next Role) error {
	if current != RoleAdmin || next == RoleAdmin {
		return nil
	}
	var others int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM memberships ms JOIN users u ON u.id = ms.user_id
		WHERE ms.member_id = $1 AND ms.user_id <> $2 AND ms.role = 'admin' AND u.status = 'active'`, memberID, userID).Scan(&others); err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if others == 0 {
		return ErrLastAdmin
	}
	return nil
}

// initialPassword generates a strong password that passes the policy for this email.
func initialPassword(email string) string {
	for {
		pw := GeneratePassword()
		if CheckPasswordPolicy(pw, email) == nil {
			return pw
		}
	}
}
