-- Restore-test reports and notifications. Owned by internal/reports (reports) and
-- internal/notify (channels, events, deliveries).

-- Where notifications go. member_id NULL: a federation-wide channel (managed by
-- federation admins), which receives the events of every member and of the federation.
-- kind webhook: target is the URL (checked against SSRF rules at creation and at every
-- connection); secret_sealed holds the HMAC key, sealed with internal/seal under the
-- purpose "notify/channel/<id>/secret". kind email: target is one address.
-- events lists the event kinds wanted; empty means all.
CREATE TABLE notify_channels (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id      bigint REFERENCES members (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('webhook', 'email')),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    target         text NOT NULL CHECK (length(target) BETWEEN 3 AND 2000),
    secret_sealed  text NOT NULL DEFAULT '',
    events         text[] NOT NULL DEFAULT '{}',
    enabled        boolean NOT NULL DEFAULT true,
    created_by     text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- The last delivery attempt's outcome, shown on the channel.
    last_attempt_at timestamptz,
    last_success_at timestamptz,
    last_error     text NOT NULL DEFAULT ''
);
CREATE INDEX notify_channels_member_idx ON notify_channels (member_id);

-- Something worth telling people. subject names what it is about ("repository/12",
-- "vault/3", "pledge/5", "report/9"): together with the channel it is the
-- de-duplication key. severity orders events (info < warning < critical).
CREATE TABLE notify_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  bigint REFERENCES members (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind ~ '^[a-z0-9_.]{1,60}$'),
    severity   text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    detail     jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notify_events_member_idx ON notify_events (member_id, at DESC);

-- De-duplication state per channel and subject: the first event about a subject is sent
-- at once; later ones within the window (and not more severe) wait for the digest.
-- A resolution (the repository passes again) deletes the row.
CREATE TABLE notify_dedup (
    channel_id  bigint NOT NULL REFERENCES notify_channels (id) ON DELETE CASCADE,
    subject     text NOT NULL,
    severity    text NOT NULL,
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (channel_id, subject)
);

-- Events held back for a channel's next digest.
CREATE TABLE notify_digest_items (
    channel_id  bigint NOT NULL REFERENCES notify_channels (id) ON DELETE CASCADE,
    event_id    bigint NOT NULL REFERENCES notify_events (id) ON DELETE CASCADE,
    PRIMARY KEY (channel_id, event_id)
);

-- The outbox: one message to send to one channel (a single event, a digest of several,
-- or a test). Delivery claims due rows, sends, and records the outcome; a failure is
-- retried with backoff until max attempts, then the row is 'failed' (visible, not retried).
CREATE TABLE notify_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id      bigint NOT NULL REFERENCES notify_channels (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('event', 'digest', 'test')),
    event_ids       bigint[] NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text NOT NULL DEFAULT '',
    response_code   int,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notify_deliveries_due_idx ON notify_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notify_deliveries_channel_idx ON notify_deliveries (channel_id, id DESC);

-- Cursors of the scanners that turn rows of other domains' tables (vault events, pledge
-- status, restore test runs) into notification events.
CREATE TABLE notify_cursors (
    name        text PRIMARY KEY,
    last_id     bigint NOT NULL DEFAULT 0,
    last_at     timestamptz NOT NULL DEFAULT '-infinity',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Reports: the JSON document (document, exactly as hashed) is the report; HTML and CSV
-- are rendered from it. sha256 is recorded in the audit log (entry audit_seq, action
-- report.publish) in the same transaction, and the document carries the signed audit
-- checkpoint taken just before.
CREATE TABLE reports (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope           text NOT NULL CHECK (scope IN ('member', 'federation')),
    member_id       bigint REFERENCES members (id) ON DELETE RESTRICT,
    period          text NOT NULL CHECK (period IN ('weekly', 'monthly', 'custom')),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    generated_at    timestamptz NOT NULL,
    generated_by    text NOT NULL DEFAULT '',
    schema_version  text NOT NULL,
    document        bytea NOT NULL,
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    checkpoint_size bigint NOT NULL,
    audit_seq       bigint NOT NULL,
    summary         jsonb NOT NULL DEFAULT '{}',
    CHECK ((scope = 'member') = (member_id IS NOT NULL)),
    CHECK (period_end > period_start)
);
CREATE INDEX reports_member_idx ON reports (member_id, generated_at DESC);
CREATE INDEX reports_scope_idx ON reports (scope, generated_at DESC);
-- One scheduled report per scope, member and period.
CREATE UNIQUE INDEX reports_scheduled_key ON reports (scope, coalesce(member_id, 0), period, period_start)
    WHERE period <> 'custom';
