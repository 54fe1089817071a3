package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/notify/sink"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// bundle is what a notification test works with: a database, the service, a real
// receiver (HTTP and SMTP) and a member.
type bundle struct {
	ctx    context.Context
	pool   *pgxpool.Pool
	svc    *notify.Service
	sink   *sink.Sink
	keys   *seal.Keyring
	member int64
}

func setup(t *testing.T, cfg notify.Config) *bundle {
	t.Helper()
	pool := testenv.DB(t)
	s, err := sink.Start(sink.Options{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	kr, err := seal.ParseKeyring(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Policy.AllowPrivate = true // the receiver is on 127.0.0.1
	cfg.SMTP = notify.SMTPConfig{Addr: s.SMTPAddr, From: "Archipelago <alerts@archipelago.example>", TLS: "none"}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 0 }
	}
	cfg.PublicURL = "http://archipelago.example"
	b := &bundle{ctx: audit.WithActor(context.Background(), audit.System("notify-test")), pool: pool,
		svc: notify.New(pool, kr, testenv.Logger(t), cfg), sink: s, keys: kr}
	if err := pool.QueryRow(b.ctx, `INSERT INTO members (slug, name) VALUES ('libre-nuage', 'Libre Nuage') RETURNING id`).Scan(&b.member); err != nil {
		t.Fatal(err)
	}
	return b
}

func str(s string) *string { return &s }

// webhook creates a webhook channel of the member pointing at the sink.
func (b *bundle) webhook(t *testing.T, name string) notify.Channel {
	t.Helper()
	url := b.sink.Hook(name, "") // secret set below, once known
	c, secret, err := b.svc.ChannelCreate(b.ctx, notify.ChannelInput{MemberID: &b.member, Kind: str("webhook"), Name: str(name), Target: &url})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret = %q", secret)
	}
	b.sink.Hook(name, secret)
	return c
}

func (b *bundle) email(t *testing.T, addr string, member *int64) notify.Channel {
	t.Helper()
	c, _, err := b.svc.ChannelCreate(b.ctx, notify.ChannelInput{MemberID: member, Kind: str("email"), Name: str("mail " + addr), Target: &addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b *bundle) emit(t *testing.T, e notify.Event) {
	t.Helper()
	if err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		_, err := notify.Emit(b.ctx, tx, e)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) deliver(t *testing.T) {
	t.Helper()
	if err := b.svc.DeliverDue(b.ctx); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) deliveries(t *testing.T, ch int64) []notify.Delivery {
	t.Helper()
	ds, err := notify.DeliveryList(b.ctx, b.pool, []int64{ch}, 100)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func waitFor(t *testing.T, s *sink.Sink, n int) []sink.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // generous: a loaded machine
	defer cancel()
	msgs, err := s.Wait(ctx, func(m []sink.Message) bool { return len(m) >= n })
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// TestBrokenRepositorySendsOneMessagePerChannelThenADigest is the acceptance scenario: a
// repository failing again and again produces exactly one message on each channel (a
// signed webhook checked by a real HTTP receiver, an email received by a real SMTP
// server), then one digest of the rest.
func TestBrokenRepositorySendsOneMessagePerChannelThenADigest(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{})
	hook := b.webhook(t, "ops")
	mail := b.email(t, "ops@libre-nuage.example", &b.member)
	fed := b.email(t, "federation@archipelago.example", nil) // federation-wide: sees every member's events

	for i := range 5 {
		b.emit(t, notify.Event{Kind: notify.KindRestoreFailed, MemberID: &b.member, Subject: "repository/7",
			Title: "Restore test of nextcloud failed: canary missing", Detail: map[string]any{"run": i}})
	}
	b.deliver(t)
	msgs := waitFor(t, b.sink, 3)
	time.Sleep(200 * time.Millisecond) // nothing more may arrive
	if got := len(b.sink.Messages()); got != 3 {
		t.Fatalf("after 5 failures: %d messages, want 3 (one per channel): %+v", got, b.sink.Messages())
	}
	var webhooks, mails int
	for _, m := range msgs {
		switch m.Via {
		case "webhook":
			webhooks++
			if !m.Verified {
				t.Errorf("webhook signature did not verify: %s", m.Problem)
			}
			if m.Payload == nil || m.Payload.Type != "event" || len(m.Payload.Events) != 1 || m.Payload.Events[0].Kind != notify.KindRestoreFailed ||
				m.Payload.Events[0].MemberSlug != "libre-nuage" {
				t.Errorf("webhook payload = %s", m.Body)
			}
			if m.Event != notify.KindRestoreFailed {
				t.Errorf("event header = %q", m.Event)
			}
		case "email":
			mails++
			if !strings.Contains(m.Subject, "Restore test of nextcloud failed") || !strings.Contains(m.Body, "CRITICAL") {
				t.Errorf("mail subject %q body %q", m.Subject, m.Body)
			}
		}
	}
	if webhooks != 1 || mails != 2 {
		t.Fatalf("webhooks %d, mails %d", webhooks, mails)
	}

	// The four others go out as one digest per channel.
	if err := b.svc.SendDigests(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.deliver(t)
	msgs = waitFor(t, b.sink, 6)
	for _, m := range msgs[3:] {
		if m.Via == "webhook" {
			if m.Payload == nil || m.Payload.Type != "digest" || len(m.Payload.Events) != 4 || !m.Verified {
				t.Errorf("digest webhook = %+v", m)
			}
		} else if !strings.Contains(m.Subject, "Digest: 4 more events about 1 subject since the last message") {
			t.Errorf("digest mail subject = %q", m.Subject)
		}
	}
	for _, ch := range []int64{hook.ID, mail.ID, fed.ID} {
		ds := b.deliveries(t, ch)
		if len(ds) != 2 || ds[0].Kind != "digest" || ds[1].Kind != "event" || ds[0].Status != "sent" || ds[1].Status != "sent" {
			t.Errorf("channel %d deliveries = %+v", ch, ds)
		}
	}
	// No new events: no digest.
	if err := b.svc.SendDigests(b.ctx); err != nil {
		t.Fatal(err)
	}
	if ds := b.deliveries(t, hook.ID); len(ds) != 2 {
		t.Errorf("an empty digest was queued: %+v", ds)
	}

	// A more severe or a different subject goes out at once; a resolved subject too.
	b.emit(t, notify.Event{Kind: notify.KindQuota80, MemberID: &b.member, Subject: "vault/3", Title: "Vault over 80%"})
	if err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error { return notify.Resolve(b.ctx, tx, "repository/7") }); err != nil {
		t.Fatal(err)
	}
	b.emit(t, notify.Event{Kind: notify.KindRestoreFailed, MemberID: &b.member, Subject: "repository/7", Title: "Broken again"})
	if ds := b.deliveries(t, hook.ID); len(ds) != 4 || ds[0].Kind != "event" || ds[1].Kind != "event" {
		t.Errorf("after a new subject and a resolution: %+v", ds)
	}
}

// TestFailedDeliveriesAreRetriedAndVisible: a receiver answering 503 is retried until it
// accepts; one that never does ends as a failed delivery whose error shows on the channel.
func TestFailedDeliveriesAreRetriedAndVisible(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{MaxAttempts: 3})
	hook := b.webhook(t, "flaky")
	b.sink.FailNext("flaky", 2)
	b.emit(t, notify.Event{Kind: notify.KindPledgeDown, MemberID: &b.member, Subject: "pledge/1", Title: "Node down"})
	for range 3 {
		b.deliver(t)
	}
	ds := b.deliveries(t, hook.ID)
	if len(ds) != 1 || ds[0].Status != "sent" || ds[0].Attempts != 3 {
		t.Fatalf("after two refusals: %+v", ds)
	}
	if msgs := b.sink.Messages(); len(msgs) != 3 || !msgs[2].Verified || msgs[0].Verified {
		t.Fatalf("received %+v", msgs)
	}

	// A channel whose secret the receiver does not know: the signature fails, 401, retried,
	// then failed; the channel shows the error.
	bad := b.webhook(t, "wrong-secret")
	b.sink.Hook("wrong-secret", "whsec_not-the-right-one")
	b.emit(t, notify.Event{Kind: notify.KindPledgeDown, MemberID: &b.member, Subject: "pledge/2", Title: "Another node down"})
	for range 4 {
		b.deliver(t)
	}
	ds = b.deliveries(t, bad.ID)
	if len(ds) != 1 || ds[0].Status != "failed" || ds[0].Attempts != 3 || ds[0].ResponseCode == nil || *ds[0].ResponseCode != 401 {
		t.Fatalf("deliveries to a receiver refusing the signature: %+v", ds)
	}
	c, err := notify.ChannelGetByID(b.ctx, b.pool, bad.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.LastError, "401") || c.Failed != 1 || c.LastSuccessAt != nil {
		t.Fatalf("channel = %+v", c)
	}

	// Email with no reachable relay fails visibly too.
	b2 := setup(t, notify.Config{MaxAttempts: 1, SMTP: notify.SMTPConfig{}})
	m := b2.email(t, "x@example.org", &b2.member)
	b2.svc = notify.New(b2.pool, b2.keys, testenv.Logger(t), notify.Config{MaxAttempts: 1, Backoff: func(int) time.Duration { return 0 }})
	b2.emit(t, notify.Event{Kind: notify.KindQuota95, MemberID: &b2.member, Subject: "vault/1", Title: "Vault at 95%"})
	b2.deliver(t)
	if ds := b2.deliveries(t, m.ID); len(ds) != 1 || ds[0].Status != "failed" || !strings.Contains(ds[0].LastError, "ARCHIPELAGO_SMTP_ADDR") {
		t.Fatalf("email without a relay: %+v", ds)
	}
}

func mustKeyring(t *testing.T) *seal.Keyring {
	kr, err := seal.ParseKeyring(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSignatureVerification(t *testing.T) {
	t.Parallel()
	body := []byte(`{"x":1}`)
	now := time.Unix(1_750_000_000, 0)
	h := http.Header{}
	h.Set(notify.HeaderTimestamp, "1750000000")
	h.Set(notify.HeaderSignature, notify.Sign("whsec_k", now, body))
	if err := notify.VerifySignature("whsec_k", h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func() error{
		"other secret": func() error { return notify.VerifySignature("whsec_other", h, body, now, 5*time.Minute) },
		"other body":   func() error { return notify.VerifySignature("whsec_k", h, []byte(`{"x":2}`), now, 5*time.Minute) },
		"replayed":     func() error { return notify.VerifySignature("whsec_k", h, body, now.Add(time.Hour), 5*time.Minute) },
	} {
		if err := check(); !errors.Is(err, notify.ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestWebhookAddressPolicy: loopback, private, link-local and metadata addresses are
// refused unless allowed (metadata never), both when the URL is saved and when a
// connection is made (so a name resolving to such an address is refused too).
func TestWebhookAddressPolicy(t *testing.T) {
	t.Parallel()
	strict, lax := notify.AddressPolicy{}, notify.AddressPolicy{AllowPrivate: true}
	cases := []struct {
		url             string
		strictOK, laxOK bool
	}{
		{"https://hooks.example.org/archipelago/abc", true, true},
		{"http://93.184.215.14:8080/x", true, true},
		{"http://127.0.0.1:9000/hook", false, true},
		{"http://localhost/hook", false, true},
		{"http://[::1]/hook", false, true},
		{"http://10.1.2.3/hook", false, true},
		{"http://192.168.1.10/hook", false, true},
		{"http://100.64.0.1/hook", false, true},
		{"http://169.254.10.1/hook", false, true},
		{"http://169.254.169.254/latest/meta-data/", false, false},
		{"http://[fd00:ec2::254]/", false, false},
		{"http://metadata.google.internal/computeMetadata/v1/", false, false},
		{"http://[::ffff:127.0.0.1]/", false, true},
		{"http://0.0.0.0/", false, false},
		{"ftp://example.org/", false, false},
		{"https://user:pw@example.org/", false, false},
		{"/relative", false, false},
	}
	for _, c := range cases {
		_, errS := strict.ValidateWebhookURL(c.url)
		_, errL := lax.ValidateWebhookURL(c.url)
		if (errS == nil) != c.strictOK || (errL == nil) != c.laxOK {
			t.Errorf("%s: strict %v, allow-private %v", c.url, errS, errL)
		}
	}
	// At connection time: a real listener on 127.0.0.1, reached through the name
	// "localhost" (which the URL check cannot judge without resolving).
	s, err := sink.Start(sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	port := strings.TrimPrefix(s.WebhookBase, "http://127.0.0.1")
	conn, err := strict.Dialer(time.Second).Dial("tcp", "localhost"+port)
	if err == nil {
		conn.Close()
		t.Fatal("the strict dialer connected to localhost")
	}
	if !errors.Is(err, notify.ErrForbiddenAddress) {
		t.Fatalf("dial error = %v", err)
	}
	conn, err = lax.Dialer(time.Second).Dial("tcp", "localhost"+port)
	if err != nil {
		t.Fatalf("allow-private dialer: %v", err)
	}
	conn.Close()
	if err := strict.CheckAddr(netip.MustParseAddr("2001:db8::1")); err != nil {
		t.Errorf("a public IPv6 address: %v", err)
	}
}

// TestDeliveryRefusesForbiddenAddressesAtSendTime: a channel saved while allowed, sent
// by a strict service, fails without connecting.
func TestDeliveryRefusesForbiddenAddressesAtSendTime(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{MaxAttempts: 1})
	hook := b.webhook(t, "internal")
	strict := notify.New(b.pool, b.keys, testenv.Logger(t), notify.Config{MaxAttempts: 1})
	b.emit(t, notify.Event{Kind: notify.KindRestoreError, MemberID: &b.member, Subject: "repository/1", Title: "Could not run"})
	if err := strict.DeliverDue(b.ctx); err != nil {
		t.Fatal(err)
	}
	ds := b.deliveries(t, hook.ID)
	if len(ds) != 1 || ds[0].Status != "failed" || !strings.Contains(ds[0].LastError, "loopback") {
		t.Fatalf("deliveries = %+v", ds)
	}
	if n := len(b.sink.Messages()); n != 0 {
		t.Fatalf("the receiver got %d messages", n)
	}
}

func TestChannelValidationAndRedaction(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{})
	bad := []notify.ChannelInput{
		{MemberID: &b.member, Kind: str("sms"), Name: str("x"), Target: str("+33")},
		{MemberID: &b.member, Kind: str("email"), Name: str("x"), Target: str("not an address")},
		{MemberID: &b.member, Kind: str("email"), Name: str("x"), Target: str("a@example.org, b@example.org")},
		{MemberID: &b.member, Kind: str("webhook"), Name: str(""), Target: str("https://example.org/")},
		{MemberID: &b.member, Kind: str("webhook"), Name: str("x"), Target: str("https://example.org/"), Events: &[]string{"restore.exploded"}},
	}
	for _, in := range bad {
		var fe *notify.FieldError
		if _, _, err := b.svc.ChannelCreate(b.ctx, in); !errors.As(err, &fe) {
			t.Errorf("%+v: %v", in, err)
		}
	}
	c, _, err := b.svc.ChannelCreate(b.ctx, notify.ChannelInput{MemberID: &b.member, Kind: str("webhook"), Name: str("chat"),
		Target: str("https://chat.example.org/hooks/T0123456789abcdefghijklmnop/secret-token?x=1"), Events: &[]string{notify.KindRestoreFailed}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.Target, "secret-token") || c.Target != "https://chat.example.org/hook…/…" && c.Target != "https://chat.example.org/hooks/…" {
		t.Errorf("target shown as %q", c.Target)
	}
	// The audit entry does not hold the full URL either.
	var details string
	if err := b.pool.QueryRow(b.ctx, `SELECT details::text FROM audit_entries WHERE action = 'notify.channel.create' ORDER BY seq DESC LIMIT 1`).Scan(&details); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(details, "secret-token") {
		t.Errorf("audit details %s", details)
	}
	// Only subscribed kinds reach the channel.
	b.emit(t, notify.Event{Kind: notify.KindQuota80, MemberID: &b.member, Subject: "vault/1", Title: "80%"})
	if ds := b.deliveries(t, c.ID); len(ds) != 0 {
		t.Errorf("an unsubscribed kind was queued: %+v", ds)
	}
	raw, _ := json.Marshal(c)
	if strings.Contains(string(raw), "secret") && strings.Contains(string(raw), "whsec_") {
		t.Errorf("channel JSON shows a secret: %s", raw)
	}
}
