package notify

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
)

// Messages speak the language of their audience (issue 18): a member's channel the
// member's language (members.language), else the federation's default
// (federation_settings.language); a federation-wide channel the federation's. Dates are
// written in the federation's time zone (federation_settings.time_zone), sizes and
// numbers the way the language writes them. Only human-readable texts are translated —
// an email's subject and body, a webhook's summary; a webhook's machine fields (schema,
// type, kinds, severities, events with their stored English title and detail) stay as
// they are.

// audience is the printer and time zone of a channel's messages.
func (s *Service) audience(ctx context.Context, ch Channel) (*i18n.Printer, *time.Location, error) {
	l, loc, err := Audience(ctx, s.pool, ch.MemberID)
	if err != nil {
		return nil, nil, fmt.Errorf("channel %d: %w", ch.ID, err)
	}
	return s.catalog.Printer(l), loc, nil
}

// detail reads an event's detail fields (JSON numbers arrive as float64).
type detail map[string]any

func (d detail) str(k string) (string, bool) {
	v, ok := d[k].(string)
	return v, ok && v != ""
}

func (d detail) num(k string) (int64, bool) {
	switch v := d[k].(type) {
	case float64:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

func (d detail) time(k string) (time.Time, bool) {
	switch v := d[k].(type) {
	case time.Time:
		return v, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	return time.Time{}, false
}

// TitleKeys are the detail keys eventTitle reads to say an event in a reader's language:
// a document that keeps an event's line (a federation report's incidents) keeps these
// details with it, and no others, so it can be said again in any language.
var TitleKeys = []string{"repository", "reason", "snapshot_age_seconds", "rpo_seconds", "deleted_snapshots", "vault",
	"threshold_percent", "usage_bytes", "quota_bytes", "node_id", "island", "period_start", "period_end", "period",
	"member_name", "green", "amber", "red", "untested", "bucket_name", "expiration_rules", "deleted",
	"delete_from_copy_after", "overwritten", "error_count", "last_report", "interval_seconds", "grace_seconds",
	"request_id", "approvals", "required_approvals", "effect", "status", "reachable", "required"}

// eventTitle is an event's one line in p's language, built from its kind and detail; an
// event whose detail lacks what the sentence needs keeps its stored (English) title.
func eventTitle(p *i18n.Printer, loc *time.Location, e EventView) string {
	d := detail(e.Detail)
	t := func(id string, args ...any) string { return p.T("notify.title."+id, args...) }
	repo, hasRepo := d.str("repository")
	switch e.Kind {
	case KindRestoreFailed, KindRestoreError:
		if !hasRepo {
			break
		}
		reason, ok := d.str("reason")
		if !ok {
			reason = p.T("notify.see_the_run")
		}
		if e.Kind == KindRestoreFailed {
			return t("restore_failed", "Repository", repo, "Reason", p.Retell(reason))
		}
		return t("restore_error", "Repository", repo, "Reason", p.Retell(reason))
	case KindSnapshotStale:
		age, ok1 := d.num("snapshot_age_seconds")
		rpo, ok2 := d.num("rpo_seconds")
		if hasRepo && ok1 && ok2 {
			return t("snapshot_stale", "Repository", repo, "Age", p.Span(time.Duration(age)*time.Second), "RPO", p.Span(time.Duration(rpo)*time.Second))
		}
	case KindDeletionsSeen:
		if n, ok := d.num("deleted_snapshots"); ok && hasRepo {
			return p.N("notify.title.deletions_seen", int(n), "Repository", repo, "N", p.Number(n))
		}
	case KindQuota80, KindQuota95:
		vault, ok1 := d.str("vault")
		pct, ok2 := d.num("threshold_percent")
		usage, ok3 := d.num("usage_bytes")
		quota, ok4 := d.num("quota_bytes")
		switch {
		case ok1 && ok2 && ok3 && ok4:
			return t("quota_over_usage", "Vault", vault, "Percent", p.Percent(float64(pct)/100), "Usage", p.Bytes(usage), "Quota", p.Bytes(quota))
		case ok1 && ok2:
			return t("quota_over", "Vault", vault, "Percent", p.Percent(float64(pct)/100))
		}
	case KindQuota100:
		vault, ok1 := d.str("vault")
		usage, ok2 := d.num("usage_bytes")
		quota, ok3 := d.num("quota_bytes")
		if ok1 && ok2 && ok3 {
			return t("quota_full", "Vault", vault, "Usage", p.Bytes(usage), "Quota", p.Bytes(quota))
		}
	case KindPledgeDown:
		node, ok1 := d.str("node_id")
		island, ok2 := d.str("island")
		if ok1 && ok2 {
			if len(node) > 16 {
				node = node[:16]
			}
			return t("pledge_down", "Node", node, "Member", e.MemberSlug, "Island", island)
		}
	case KindReportPublished:
		start, ok1 := d.time("period_start")
		end, ok2 := d.time("period_end")
		period, ok3 := d.str("period")
		if ok1 && ok2 && ok3 {
			who, ok := d.str("member_name")
			if !ok {
				who = p.T("notify.the_federation")
			}
			g, _ := d.num("green")
			a, _ := d.num("amber")
			r, _ := d.num("red")
			u, _ := d.num("untested")
			count := func(colour string, n int64) string {
				return p.N("notify.count."+colour, int(n), "N", p.Number(n))
			}
			// The period is half-open: its last day is the one before its end.
			return t("report_published", "Period", p.T("notify.period."+period), "Who", who, "Start", p.Date(start, loc),
				"End", p.Date(end.Add(-time.Second), loc), "Green", count("green", g), "Amber", count("amber", a), "Red", count("red", r),
				"Untested", count("untested", u))
		}
	case KindTest:
		if by, ok := d.str("requested_by"); ok {
			return t("test_by", "By", by)
		}
		return t("test")
	case KindLifecycleRule:
		if bucket, ok := d.str("bucket_name"); ok {
			if n, _ := d.num("expiration_rules"); n > 0 {
				return t("lifecycle_expiration", "Bucket", bucket)
			}
			return t("lifecycle_removed", "Bucket", bucket)
		}
	case KindCopyDeletions:
		vault, ok1 := d.str("vault")
		n, ok2 := d.num("deleted")
		until, ok3 := d.time("delete_from_copy_after")
		if ok1 && ok2 && ok3 {
			return p.N("notify.title.copy_deletions", int(n), "Vault", vault, "N", p.Number(n), "Until", p.DateTime(until, loc))
		}
	case KindCopyOverwrite:
		vault, ok1 := d.str("vault")
		n, ok2 := d.num("overwritten")
		if ok1 && ok2 {
			return p.N("notify.title.copy_overwrite", int(n), "Vault", vault, "N", p.Number(n))
		}
	case KindCopyFailed:
		vault, ok1 := d.str("vault")
		n, ok2 := d.num("error_count")
		if ok1 && ok2 {
			return p.N("notify.title.copy_failed", int(n), "Vault", vault, "N", p.Number(n))
		}
	case KindAgentStale:
		last, ok1 := d.time("last_report")
		every, ok2 := d.num("interval_seconds")
		grace, ok3 := d.num("grace_seconds")
		if hasRepo && ok1 && ok2 && ok3 {
			return t("agent_stale", "Repository", repo, "Last", p.DateTime(last, loc),
				"Every", p.Span(time.Duration(every)*time.Second), "Grace", p.Span(time.Duration(grace)*time.Second))
		}
	case KindApprovalRequested:
		id, ok1 := d.num("request_id")
		got, ok2 := d.num("approvals")
		need, ok3 := d.num("required_approvals")
		effect, ok4 := d.str("effect")
		if ok1 && ok2 && ok3 && ok4 {
			return t("approval_requested", "ID", id, "Approvals", p.Number(got), "Required", p.Number(need), "Effect", p.Retell(effect))
		}
	case KindApprovalDecided:
		id, ok1 := d.num("request_id")
		status, ok2 := d.str("status")
		effect, ok3 := d.str("effect")
		if ok1 && ok2 && ok3 {
			return t("approval_decided", "ID", id, "Status", p.T("notify.approval_status."+status), "Effect", p.Retell(effect))
		}
	case KindApprovalLiveness:
		reach, ok1 := d.num("reachable")
		need, ok2 := d.num("required")
		if ok1 && ok2 {
			return t("approval_liveness", "Reachable", p.Number(reach), "Required", p.Number(need))
		}
	case KindApprovalPing:
		if user, ok := d.str("user"); ok {
			return t("approval_ping", "User", user)
		}
	}
	return e.Title
}

// detailName is a detail field's name in p's language (notify.field.<key>); a field the
// catalog does not know keeps its key, its underscores as spaces.
func detailName(p *i18n.Printer, k string) string {
	id := "notify.field." + k
	if t := p.T(id); t != id {
		return t
	}
	return strings.ReplaceAll(k, "_", " ")
}

// machineWords are the detail fields holding a machine value, with the catalog prefix
// that says the value in words (an unknown value stays as it is).
var machineWords = map[string]string{
	"outcome": "notify.outcome.",
	"status":  "notify.approval_status.",
	"period":  "notify.period.",
	"scope":   "notify.scope.",
	"action":  "notify.action.",
}

// kindName is an event kind in words (notify.kind.<kind, dots as underscores>).
func kindName(p *i18n.Printer, kind string) string {
	id := "notify.kind." + strings.ReplaceAll(kind, ".", "_")
	if t := p.T(id); t != id {
		return t
	}
	return kind
}

// detailValue writes a detail value for people: sizes (…_bytes), durations (…_seconds)
// and times as the language writes them, machine values (outcomes, statuses, periods,
// scopes, actions) as words, yes and no, lists item by item, the domain's stored English
// sentences said again (Retell), the rest as it is.
func detailValue(p *i18n.Printer, loc *time.Location, k string, v any) string {
	d := detail{k: v}
	if strings.HasSuffix(k, "_bytes") {
		if n, ok := d.num(k); ok {
			return p.Bytes(n)
		}
	}
	if strings.HasSuffix(k, "_seconds") {
		if n, ok := d.num(k); ok {
			return p.Span(time.Duration(n) * time.Second)
		}
	}
	if prefix, ok := machineWords[k]; ok {
		if s, ok := v.(string); ok {
			if t := p.T(prefix + s); t != prefix+s {
				return t
			}
			return s
		}
	}
	switch x := v.(type) {
	case bool:
		if x {
			return p.T("notify.yes")
		}
		return p.T("notify.no")
	case []any:
		items := make([]string, 0, len(x))
		for _, it := range x {
			items = append(items, detailValue(p, loc, "", it))
		}
		return strings.Join(items, "; ")
	case []string:
		items := make([]string, 0, len(x))
		for _, it := range x {
			items = append(items, detailValue(p, loc, "", it))
		}
		return strings.Join(items, "; ")
	case time.Time:
		return p.DateTime(x, loc)
	case nil:
		return "—"
	}
	if s, ok := v.(string); ok && len(s) >= 20 && s[4] == '-' && s[10] == 'T' {
		if t, ok := d.time(k); ok {
			return p.DateTime(t, loc)
		}
	}
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return p.Number(int64(f))
	}
	if n, ok := d.num(k); ok {
		return p.Number(n)
	}
	if s, ok := v.(string); ok {
		return p.Retell(s) // a test's reason, an approval's effect: stored in English
	}
	return fmt.Sprint(v)
}

// summary is a message's one line: the event's title, or what a digest holds.
func summary(p *i18n.Printer, loc *time.Location, kind string, events []EventView) string {
	if len(events) == 0 {
		return p.T("notify.no_events")
	}
	if kind != "digest" {
		return eventTitle(p, loc, events[0])
	}
	subjects := map[string]bool{}
	for _, e := range events {
		subjects[e.Subject] = true
	}
	return p.N("notify.digest_summary", len(events), "N", p.Number(int64(len(events))),
		"Subjects", p.N("notify.subjects", len(subjects), "N", p.Number(int64(len(subjects)))))
}

// emailBody is the plain-text body of an email in p's language.
func (s *Service) emailBody(p *i18n.Printer, loc *time.Location, ch Channel, d Delivery, events []EventView) string {
	var b strings.Builder
	switch d.Kind {
	case "digest":
		b.WriteString(p.T("notify.email.digest_intro") + "\n\n")
	case "test":
		b.WriteString(p.T("notify.email.test_intro", "Channel", ch.Name) + "\n\n")
	}
	for _, e := range events {
		who := p.T("notify.the_federation")
		if e.MemberSlug != "" {
			who = e.MemberSlug
		}
		fmt.Fprintf(&b, "[%s] %s\n  %s · %s · %s\n", p.T("notify.severity."+e.Severity), eventTitle(p, loc, e), p.DateTime(e.At, loc), who, kindName(p, e.Kind))
		keys := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v, ok := e.Detail[k].(string); (ok && v == "") || e.Detail[k] == nil {
				continue // nothing to say
			}
			b.WriteString("  " + p.T("notify.email.detail", "Name", detailName(p, k), "Value", detailValue(p, loc, k, e.Detail[k])) + "\n")
		}
		b.WriteString("\n")
	}
	if s.cfg.PublicURL != "" {
		b.WriteString(p.T("notify.email.settings", "URL", s.cfg.PublicURL+"/notifications") + "\n")
	}
	b.WriteString(p.T("notify.email.footer", "Delivery", d.ID, "Channel", ch.Name) + "\n")
	return b.String()
}

// Audience is the language and time zone of what is sent to a member (memberID nil: the
// federation) — reports and notifications: members.language, else
// federation_settings.language; the federation's time zone. One statement.
func Audience(ctx context.Context, q Querier, memberID *int64) (i18n.Lang, *time.Location, error) {
	var lang, zone string
	if err := q.QueryRow(ctx, `SELECT coalesce(m.language, f.language), f.time_zone
		FROM federation_settings f LEFT JOIN members m ON m.id = $1`, memberID).Scan(&lang, &zone); err != nil {
		return i18n.English, time.UTC, fmt.Errorf("read the language of a member's messages: %w", err)
	}
	l, ok := i18n.Parse(lang)
	if !ok {
		l = i18n.English
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.UTC
	}
	return l, loc, nil
}

// Said is the event's one line in p's language, its dates in loc: the sentence of its kind
// made from its detail, as a notification says it (the stored English title when the
// detail lacks what the sentence needs). For pages that list events.
func (e EventView) Said(p *i18n.Printer, loc *time.Location) string { return eventTitle(p, loc, e) }
