package identity

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zone names work on machines without a zone database

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
)

// TimeZone is the zone a user sees times in: their own setting, else the federation's; and,
// read with it, the language they read pages in (issue 18).
type TimeZone struct {
	Own        string // "" when the user has not chosen one
	Federation string
	Location   *time.Location
	// Language is the user's own language setting ("en", "fr"), "" for their browser's;
	// FederationLanguage is the federation's default.
	Language, FederationLanguage string
}

// UserTimeZone reads the zone and the language the user sees pages in (one statement). A
// stored zone name this binary does not know falls back to the federation's zone, then UTC.
func (s *Service) UserTimeZone(ctx context.Context, userID int64) (TimeZone, error) {
	var tz TimeZone
	var own, lang *string
	err := s.pool.QueryRow(ctx, `SELECT u.time_zone, f.time_zone, u.language, f.language FROM users u CROSS JOIN federation_settings f WHERE u.id = $1`,
		userID).Scan(&own, &tz.Federation, &lang, &tz.FederationLanguage)
	if err != nil {
		return tz, fmt.Errorf("read the time zone of user %d: %w", userID, err)
	}
	if own != nil {
		tz.Own = *own
	}
	if lang != nil {
		tz.Language = *lang
	}
	tz.Location = time.UTC
	for _, name := range []string{tz.Own, tz.Federation} {
		if name == "" {
			continue
		}
		if loc, err := time.LoadLocation(name); err == nil {
			tz.Location = loc
			break
		}
	}
	return tz, nil
}

// UserTimeZoneSet sets the zone the user sees times in: an IANA name such as
// "Europe/Paris", or "" for the federation's. Audited.
func (s *Service) UserTimeZoneSet(ctx context.Context, p *Principal, name string) error {
	name = strings.TrimSpace(name)
	var v *string
	if name != "" {
		if !zoneKnown(name) {
			return &FieldError{Field: "time_zone", Problem: "must be a time zone name such as Europe/Paris, or empty for the federation's"}
		}
		v = &name
	}
	defer s.cache.invalidate()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET time_zone = $2, updated_at = now() WHERE id = $1`, p.UserID, v); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "user.time_zone", TargetType: "user", TargetID: strconv.FormatInt(p.UserID, 10),
			Details: map[string]any{"time_zone": name}})
		return err
	})
}

// zoneKnown reports whether name is an IANA zone this binary knows ("Local", the server's
// own, is not a name a person means).
func zoneKnown(name string) bool {
	if name == "" || len(name) > 64 || name == "Local" {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// FederationSettings are the federation-wide settings of people's experience.
type FederationSettings struct {
	// TimeZone is the zone times are shown in to a person who has not chosen their own.
	TimeZone string `json:"time_zone"`
	// Language ("en", "fr") is the language of pages for a person who has not chosen one
	// and whose browser asks for no supported language, and of what is sent to a member
	// that has not chosen one.
	Language string `json:"language"`
}

// FederationSettingsGet reads the federation's default time zone and language.
func (s *Service) FederationSettingsGet(ctx context.Context) (FederationSettings, error) {
	var st FederationSettings
	if err := s.pool.QueryRow(ctx, `SELECT time_zone, language FROM federation_settings WHERE id`).Scan(&st.TimeZone, &st.Language); err != nil {
		return st, fmt.Errorf("read the federation's settings: %w", err)
	}
	return st, nil
}

// FederationTimeZoneSet sets the zone times are shown in to everyone who has not chosen
// their own: an IANA name such as "Europe/Paris" (federation admins decide: the caller
// checks; audited).
func (s *Service) FederationTimeZoneSet(ctx context.Context, name string) (FederationSettings, error) {
	return s.FederationSettingsUpdate(ctx, FederationSettingsPatch{TimeZone: &name})
}

// FederationSettingsPatch is a change of the federation's defaults; nil fields are unchanged.
type FederationSettingsPatch struct {
	TimeZone *string
	Language *string
}

// FederationSettingsUpdate checks every field of the patch, then changes them together in
// one transaction with one audit entry per field changed (federation.time_zone,
// federation.language, each with the previous value): a refused field changes nothing.
func (s *Service) FederationSettingsUpdate(ctx context.Context, p FederationSettingsPatch) (FederationSettings, error) {
	if p.TimeZone != nil {
		v := strings.TrimSpace(*p.TimeZone)
		if !zoneKnown(v) {
			return FederationSettings{}, &FieldError{Field: "time_zone", Problem: "must be a time zone name such as Europe/Paris or UTC"}
		}
		p.TimeZone = &v
	}
	if p.Language != nil {
		v := strings.TrimSpace(*p.Language)
		if v != "en" && v != "fr" {
			return FederationSettings{}, &FieldError{Field: "language", Problem: "must be en or fr"}
		}
		p.Language = &v
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var oldZone, oldLang string
		if err := tx.QueryRow(ctx, `SELECT time_zone, language FROM federation_settings WHERE id FOR UPDATE`).Scan(&oldZone, &oldLang); err != nil {
			return err
		}
		if p.TimeZone != nil {
			if _, err := tx.Exec(ctx, `UPDATE federation_settings SET time_zone = $1 WHERE id`, *p.TimeZone); err != nil {
				return err
			}
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "federation.time_zone", TargetType: "federation_settings", TargetID: "1",
				Details: map[string]any{"time_zone": *p.TimeZone, "previous": oldZone}}); err != nil {
				return err
			}
		}
		if p.Language != nil {
			if _, err := tx.Exec(ctx, `UPDATE federation_settings SET language = $1 WHERE id`, *p.Language); err != nil {
				return err
			}
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "federation.language", TargetType: "federation_settings", TargetID: "1",
				Details: map[string]any{"language": *p.Language, "previous": oldLang}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return FederationSettings{}, fmt.Errorf("change the federation's settings: %w", err)
	}
	return s.FederationSettingsGet(ctx)
}

// UserLanguageSet sets the language the user reads the portal in: "en", "fr", or "" for
// their browser's (Accept-Language, else the federation's). Audited.
func (s *Service) UserLanguageSet(ctx context.Context, p *Principal, lang string) error {
	lang = strings.TrimSpace(lang)
	var v *string
	if lang != "" {
		if lang != "en" && lang != "fr" {
			return &FieldError{Field: "language", Problem: "must be en, fr, or empty for the browser's"}
		}
		v = &lang
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET language = $2, updated_at = now() WHERE id = $1`, p.UserID, v); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "user.language", TargetType: "user", TargetID: strconv.FormatInt(p.UserID, 10),
			Details: map[string]any{"language": lang}})
		return err
	})
}

// FederationLanguage is the federation's default language, for pages nobody is logged in to.
func (s *Service) FederationLanguage(ctx context.Context) (string, error) {
	var lang string
	if err := s.pool.QueryRow(ctx, `SELECT language FROM federation_settings`).Scan(&lang); err != nil {
		return "", fmt.Errorf("read the federation's language: %w", err)
	}
	return lang, nil
}

// FederationLanguageSet sets the federation's default language: "en" or "fr" (federation
// admins decide: the caller checks; audited with the previous language).
func (s *Service) FederationLanguageSet(ctx context.Context, lang string) (FederationSettings, error) {
	return s.FederationSettingsUpdate(ctx, FederationSettingsPatch{Language: &lang})
}
