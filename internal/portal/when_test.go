package portal

import (
	"github.com/chatons/archipelago/internal/i18n"
	"strings"
	"testing"
	"time"
)

func TestRelativeTimes(t *testing.T) {
	t.Parallel()
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	en, fr := cat.Printer(i18n.English), cat.Printer(i18n.French)
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{now, "just now"},
		{now.Add(-42 * time.Second), "42 s ago"},
		{now.Add(-5 * time.Minute), "5 min ago"},
		{now.Add(-3*time.Hour - 59*time.Minute), "3 h ago"},
		{now.Add(-47 * time.Hour), "47 h ago"},
		{now.Add(-72 * time.Hour), "3 d ago"},
		{now.Add(2 * time.Hour), "in 2 h"},
	} {
		if got := relative(now, c.at); got != c.want {
			t.Errorf("relative(%v) = %q, want %q", now.Sub(c.at), got, c.want)
		}
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone database")
	}
	h := strings.ReplaceAll(string(newClockIn(now, paris, en).Ago(now.Add(-3*time.Hour))), "\u00a0", " ")
	if !strings.Contains(h, `title="2026-12-05 10:00 CET"`) || !strings.Contains(h, ">3 h ago</time>") || !strings.Contains(h, `datetime="2026-12-05T09:00:00Z"`) {
		t.Fatalf("Ago = %s", h)
	}
	if h := string(newClockIn(now, paris, fr).Ago(now.Add(-3 * time.Hour))); !strings.Contains(h, `title="5 déc. 2026 à 10:00 CET"`) || !strings.Contains(h, ">il y a 3\u00a0h</time>") {
		t.Fatalf("Ago in French = %s", h)
	}
	if newClockIn(now, nil, en).Ago((*time.Time)(nil)) != "—" {
		t.Fatal("no moment is not a dash")
	}
}
