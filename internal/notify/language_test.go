package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/notify"
)

// Emails and webhook summaries speak their audience's language: a member's channels the
// member's language (members.language, else the federation's), with dates in the
// federation's time zone and sizes as the language writes them (« 9,6 Go »); a webhook's
// machine fields stay as they are.
func TestMessagesSpeakTheMembersLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{})
	var english int64
	if err := b.pool.QueryRow(b.ctx, `INSERT INTO members (slug, name) VALUES ('en-cloud', 'English Cloud') RETURNING id`).Scan(&english); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(b.ctx, `UPDATE members SET language = 'fr' WHERE id = $1`, b.member); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(b.ctx, `UPDATE federation_settings SET time_zone = 'Europe/Paris'`); err != nil {
		t.Fatal(err)
	}
	b.email(t, "admin@libre-nuage.example", &b.member)
	b.email(t, "admin@en-cloud.example", &english)
	b.webhook(t, "fr-hook")
	at := time.Date(2026, 12, 5, 13, 3, 0, 0, time.UTC) // 14:03 in Paris
	quota := func(member int64) notify.Event {
		return notify.Event{Kind: notify.KindQuota95, MemberID: &member, Subject: "vault/1", At: at,
			Title: "Vault photos is over 95% of its quota",
			Detail: map[string]any{"vault_id": 1, "vault": "photos", "threshold_percent": 95, "usage_bytes": int64(9_600_000_000),
				"quota_bytes": int64(10_000_000_000)}}
	}
	b.emit(t, quota(b.member))
	b.emit(t, quota(english))
	b.deliver(t)
	msgs := waitFor(t, b.sink, 3)
	var fr, en, wh bool
	for _, m := range msgs {
		switch {
		case m.Via == "webhook":
			wh = true
			if m.Payload == nil || m.Payload.Summary != "Le coffre photos dépasse 95\u202f% de son quota (9,6\u00a0Go sur 10\u00a0Go)" {
				t.Errorf("webhook summary: %s", m.Body)
			}
			// Machine fields as they were: kind, severity, the stored title, the raw detail.
			if e := m.Payload.Events[0]; e.Kind != notify.KindQuota95 || e.Severity != "critical" || e.Title != "Vault photos is over 95% of its quota" ||
				e.Detail["quota_bytes"] != float64(10_000_000_000) {
				t.Errorf("webhook event: %+v", e)
			}
		case len(m.To) == 1 && m.To[0] == "admin@libre-nuage.example":
			fr = true
			for _, want := range []string{"[CRITIQUE] Le coffre photos dépasse 95\u202f% de son quota (9,6\u00a0Go sur 10\u00a0Go)",
				"5 déc. 2026 à 14:03 CET · libre-nuage · Un coffre a dépassé 95\u00a0% de son quota", "quota\u202f: 10\u00a0Go",
				"Réglages et historique des notifications\u202f: http://archipelago.example/notifications", "canal «\u202fmail admin@libre-nuage.example\u202f»"} {
				if !strings.Contains(m.Body, want) {
					t.Errorf("French mail lacks %q:\n%s", want, m.Body)
				}
			}
			if m.Subject != "[Archipelago] Le coffre photos dépasse 95\u202f% de son quota (9,6\u00a0Go sur 10\u00a0Go)" {
				t.Errorf("French subject %q", m.Subject)
			}
		case len(m.To) == 1 && m.To[0] == "admin@en-cloud.example":
			en = true
			for _, want := range []string{"[CRITICAL] Vault photos is over 95% of its quota (9.6\u00a0GB of 10\u00a0GB)",
				"Dec 5, 2026, 14:03 CET · en-cloud · A vault passed 95 % of its quota", "quota: 10\u00a0GB",
				"Notification settings and history: http://archipelago.example/notifications"} {
				if !strings.Contains(m.Body, want) {
					t.Errorf("English mail lacks %q:\n%s", want, m.Body)
				}
			}
			if m.Subject != "[Archipelago] Vault photos is over 95% of its quota (9.6\u00a0GB of 10\u00a0GB)" {
				t.Errorf("English subject %q", m.Subject)
			}
		}
	}
	if !fr || !en || !wh {
		t.Fatalf("received fr %v, en %v, webhook %v: %+v", fr, en, wh, msgs)
	}
}

// What the domains stored in English — a restore test's reason, an approval request's
// effect — is said in the member's language in the mail (restic's own words excepted).
func TestMailsSayStoredDomainTextsInTheMembersLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{})
	if _, err := b.pool.Exec(b.ctx, `UPDATE members SET language = 'fr' WHERE id = $1`, b.member); err != nil {
		t.Fatal(err)
	}
	b.email(t, "admin@libre-nuage.example", &b.member)
	at := time.Date(2026, 12, 5, 13, 3, 0, 0, time.UTC)
	b.emit(t, notify.Event{Kind: notify.KindRestoreFailed, MemberID: &b.member, Subject: "repository/1", At: at,
		Title: "Restore test of mail-server failed",
		Detail: map[string]any{"repository": "mail-server", "reason": "the canary file \"canary.txt\" is not in snapshot 1a2b3c4d: " +
			"put a file of that name holding the repository's canary token into the backed-up data"}})
	b.emit(t, notify.Event{Kind: notify.KindApprovalRequested, MemberID: &b.member, Subject: "approval/5", At: at,
		Title:  "Approval needed (#5, 0 of 2): Delete island north (id 7), which holds 12345 vaults.",
		Detail: map[string]any{"request_id": 5, "approvals": 0, "required_approvals": 2, "effect": "Delete island north (id 7), which holds 12345 vaults."}})
	b.deliver(t)
	msgs := waitFor(t, b.sink, 2)
	body := ""
	for _, m := range msgs {
		body += m.Subject + "\n" + m.Body + "\n"
	}
	for _, want := range []string{"le fichier canari \"canary.txt\" n’est pas dans l’instantané 1a2b3c4d\u202f: mettez dans les données sauvegardées",
		"Supprimer l’île north (id 7), qui contient 12\u202f345 coffres."} {
		if !strings.Contains(body, want) {
			t.Errorf("the French mails lack %q:\n%s", want, body)
		}
	}
	for _, english := range []string{"is not in snapshot", "put a file of that name", "Delete island", "which holds"} {
		if strings.Contains(body, english) {
			t.Errorf("the French mails still say %q:\n%s", english, body)
		}
	}
}

// A French member's mail says every detail line in French: the field names through the
// catalog (« résultat », not "outcome"), machine values as words (« échoué », not
// "failed"), durations, times and lists as the language writes them; a field the catalog
// does not know stays readable (its underscores as spaces). The report's counts take
// their plurals (« 3 verts, 0 orange, 4 rouges »).
func TestMailDetailLinesSpeakTheMembersLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{})
	if _, err := b.pool.Exec(b.ctx, `UPDATE members SET language = 'fr' WHERE id = $1`, b.member); err != nil {
		t.Fatal(err)
	}
	b.email(t, "admin@libre-nuage.example", &b.member)
	at := time.Date(2026, 12, 5, 13, 3, 0, 0, time.UTC)
	b.emit(t, notify.Event{Kind: notify.KindRestoreFailed, MemberID: &b.member, Subject: "repository/1", At: at,
		Title: "Restore test of mail-server failed: see the run",
		Detail: map[string]any{"repository_id": 1, "repository": "mail-server", "run_id": 42, "outcome": "failed",
			"snapshot_age_seconds": 7200, "rpo_seconds": 86400, "some_new_field": "x"}})
	b.emit(t, notify.Event{Kind: notify.KindApprovalDecided, MemberID: &b.member, Subject: "approval/5/rejected", At: at,
		Title: "Approval request #5 rejected: Delete island north (id 7), which holds 12345 vaults.",
		Detail: map[string]any{"request_id": 5, "action": "island.delete", "status": "rejected", "detail": "",
			"effect": "Delete island north (id 7), which holds 12345 vaults."}})
	b.emit(t, notify.Event{Kind: notify.KindReportPublished, MemberID: &b.member, Subject: "report/9", At: at,
		Title: "monthly report for libre-nuage, 2026-11-01 – 2026-11-30: 3 green, 0 amber, 4 red, 1 untested",
		Detail: map[string]any{"report_id": 9, "sha256": "abc", "scope": "member", "period": "monthly",
			"period_start": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), "period_end": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			"member_name": "Libre Nuage", "green": 3, "amber": 0, "red": 4, "untested": 1}})
	b.emit(t, notify.Event{Kind: notify.KindLifecycleRule, MemberID: &b.member, Subject: "vault/3/lifecycle", At: at,
		Title: "Expiration rule found and removed on photos",
		Detail: map[string]any{"vault_id": 3, "bucket": "b-3", "bucket_name": "photos", "island": "north",
			"removed": []string{"rule a", "rule b"}, "expiration_rules": 1}})
	b.deliver(t)
	msgs := waitFor(t, b.sink, 4)
	body := ""
	for _, m := range msgs {
		body += m.Subject + "\n" + m.Body + "\n"
	}
	for _, want := range []string{
		"· Un test de restauration a échoué", "résultat\u202f: échoué", "id de l’exécution\u202f: 42",
		"âge du dernier instantané\u202f: 2\u00a0h", "RPO\u202f: 24\u00a0h", "some new field\u202f: x",
		"statut\u202f: rejetée", "action\u202f: supprimer une île", "effet\u202f: Supprimer l’île north (id 7)",
		"portée\u202f: membre", "période\u202f: mensuel", "début de la période\u202f: 1 nov. 2026",
		"3 verts, 0 orange, 4 rouges, 1 jamais testé",
		"règles retirées\u202f: rule a; rule b", "règles d’expiration\u202f: 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the French mails lack %q:\n%s", want, body)
		}
	}
	for _, english := range []string{"outcome:", "run_id", "snapshot_age_seconds", "rpo_seconds", "repository:", "status:",
		"action:", "island.delete", "scope:", "period:", "monthly", "report_id", "member_name", "green", "amber",
		"bucket_name", "removed:", "expiration_rules", "restore.failed", "approval.decided", "report.published",
		"vault.lifecycle", ": failed", ": rejected", "some_new_field"} {
		if strings.Contains(body, english) {
			t.Errorf("the French mails still say %q:\n%s", english, body)
		}
	}
}
