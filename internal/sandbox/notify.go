package sandbox

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/notify/sink"
	"github.com/chatons/archipelago/internal/reports"
)

// NotifyInfo tells a newcomer where the sandbox's notifications land.
type NotifyInfo struct {
	Page    string `json:"page"`     // the receiver's page listing every webhook call and mail received
	LogFile string `json:"log_file"` // the same, one JSON line per message
	SMTP    string `json:"smtp"`     // the mail sink (host:port)
}

// startSink starts the sandbox's own webhook receiver and mail sink.
func startSink(stateDir string) (*sink.Sink, NotifyInfo, error) {
	log := filepath.Join(stateDir, "notifications.log")
	s, err := sink.Start(sink.Options{LogFile: log})
	if err != nil {
		return nil, NotifyInfo{}, fmt.Errorf("start notification receiver: %w", err)
	}
	return s, NotifyInfo{Page: s.WebhookBase + "/", LogFile: log, SMTP: s.SMTPAddr}, nil
}

// demoChannelMembers get a webhook and an email channel; the federation gets a webhook.
var demoChannelMembers = []string{"libre-nuage", "chaton-rouge", "vercors-libre"}

// seedNotifications points demo channels at the sink. A kept sandbox started again gets
// new sink addresses, so existing channels are re-pointed and their secrets rotated.
func seedNotifications(ctx context.Context, a *app.App, s *sink.Sink) error {
	ctx = audit.WithActor(ctx, audit.System("sandbox-seed"))
	existing, err := notify.ChannelList(ctx, a.Pool, notify.ChannelFilter{All: true})
	if err != nil {
		return err
	}
	byName := map[string]notify.Channel{}
	for _, c := range existing {
		byName[c.Name] = c
	}
	ensure := func(member *int64, name, kind, target string) error {
		if c, ok := byName[name]; ok {
			secret, err := updateChannel(ctx, a, c, target)
			if err == nil && kind == notify.ChannelWebhook {
				s.Hook(name, secret)
			}
			return err
		}
		_, secret, err := a.Notify.ChannelCreate(ctx, notify.ChannelInput{MemberID: member, Kind: &kind, Name: &name, Target: &target})
		if err == nil && kind == notify.ChannelWebhook {
			s.Hook(name, secret)
		}
		return err
	}
	for _, slug := range demoChannelMembers {
		m, err := islands.MemberGetBySlug(ctx, a.Pool, slug)
		if err != nil {
			return fmt.Errorf("member %s: %w", slug, err)
		}
		if err := ensure(&m.ID, slug+"-webhook", notify.ChannelWebhook, s.WebhookBase+"/hooks/"+slug+"-webhook"); err != nil {
			return fmt.Errorf("webhook of %s: %w", slug, err)
		}
		if err := ensure(&m.ID, slug+"-email", notify.ChannelEmail, "backup-team@"+slug+".example"); err != nil {
			return fmt.Errorf("email of %s: %w", slug, err)
		}
	}
	return ensure(nil, "federation-webhook", notify.ChannelWebhook, s.WebhookBase+"/hooks/federation-webhook")
}

func updateChannel(ctx context.Context, a *app.App, c notify.Channel, target string) (string, error) {
	in := notify.ChannelInput{RotateSecret: c.Kind == notify.ChannelWebhook}
	if c.Kind == notify.ChannelWebhook {
		in.Target = &target
	}
	_, secret, err := a.Notify.ChannelUpdate(ctx, c.ID, in)
	return secret, err
}

// publishReports generates a report for every demo member with channels and one for the
// federation, covering the last week, so a newcomer finds reports at once.
func publishReports(ctx context.Context, a *app.App) error {
	ctx = audit.WithActor(ctx, audit.System("sandbox-seed"))
	now := time.Now().UTC()
	period := reports.Period{Kind: "custom", Start: now.Add(-7 * 24 * time.Hour), End: now}
	for _, slug := range demoChannelMembers {
		m, err := islands.MemberGetBySlug(ctx, a.Pool, slug)
		if err != nil {
			return err
		}
		if _, err := a.Reports.Generate(ctx, reports.Request{Scope: reports.ScopeMember,
			Member: &reports.MemberRef{ID: m.ID, Slug: m.Slug, Name: m.Name}, Period: period}); err != nil {
			return fmt.Errorf("report for %s: %w", slug, err)
		}
	}
	if _, err := a.Reports.Generate(ctx, reports.Request{Scope: reports.ScopeFederation, Period: period}); err != nil {
		return fmt.Errorf("federation report: %w", err)
	}
	return nil
}
