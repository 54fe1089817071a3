package islands

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/problem"
)

// MemberLanguage is the language of what is sent to a member (reports, notification
// emails and webhook texts; issue 18): its own setting, else the federation's default.
type MemberLanguage struct {
	Own       string    // members.language: "en", "fr", or "" when the member has not chosen
	Effective i18n.Lang // Own, else federation_settings.language
}

// MemberLanguageGet reads a member's language (one statement).
func MemberLanguageGet(ctx context.Context, q Querier, memberID int64) (MemberLanguage, error) {
	var own *string
	var fed string
	err := q.QueryRow(ctx, `SELECT m.language, f.language FROM members m CROSS JOIN federation_settings f WHERE m.id = $1`,
		memberID).Scan(&own, &fed)
	if errors.Is(err, pgx.ErrNoRows) {
		return MemberLanguage{}, ErrNotFound
	}
	if err != nil {
		return MemberLanguage{}, fmt.Errorf("read the language of member %d: %w", memberID, err)
	}
	var out MemberLanguage
	if own != nil {
		out.Own = *own
	}
	out.Effective = i18n.English
	if l, ok := i18n.Parse(fed); ok {
		out.Effective = l
	}
	if l, ok := i18n.Parse(out.Own); ok {
		out.Effective = l
	}
	return out, nil
}

// MemberLanguageSet sets the language of what is sent to a member: "en", "fr", or "" for
// the federation's default. Audited.
func (s *Service) MemberLanguageSet(ctx context.Context, memberID int64, lang string) (MemberLanguage, error) {
	lang = strings.TrimSpace(lang)
	var v *string
	if lang != "" {
		l, ok := i18n.Parse(lang)
		if !ok || string(l) != strings.ToLower(lang) {
			return MemberLanguage{}, problem.Invalid("language", "must be en, fr, or empty for the federation's")
		}
		v = &lang
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE members SET language = $2, updated_at = now() WHERE id = $1`, memberID, v)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "member.language", MemberID: &memberID, TargetType: "member",
			TargetID: strconv.FormatInt(memberID, 10), Details: map[string]any{"language": lang}})
		return err
	})
	if err != nil {
		return MemberLanguage{}, fmt.Errorf("set the language of member %d: %w", memberID, err)
	}
	return MemberLanguageGet(ctx, s.pool, memberID)
}

// MemberLanguages are the own language settings of the members ids ("en", "fr", "" for
// the federation's default), in one statement, for a page that lists members.
func MemberLanguages(ctx context.Context, q Querier, ids []int64) (map[int64]string, error) {
	rows, err := q.Query(ctx, `SELECT id, coalesce(language, '') FROM members WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the languages of members: %w", err)
	}
	out := map[int64]string{}
	for rows.Next() {
		var id int64
		var l string
		if err := rows.Scan(&id, &l); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the languages of members: %w", err)
		}
		out[id] = l
	}
	return out, rows.Err()
}
