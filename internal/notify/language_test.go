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
				"5 déc. 2026 à 14:03 CET · libre-nuage · quota.95", "quota_bytes: 10\u00a0Go",
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
				"Dec 5, 2026, 14:03 CET · en-cloud · quota.95", "quota_bytes: 10\u00a0GB",
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
