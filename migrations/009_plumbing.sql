-- internal/notify: a commit-ordered outbox of the changes notifications are made of.
-- A producer adds a row in the same transaction as the change (a restore test run
-- finished, a vault usage observation or usage event, a pledge status change); xid is
-- that transaction's id. notify.ScanSources consumes rows only once every transaction
-- older than the oldest still running has ended (xid below the snapshot's xmin), in xid
-- order, and marks them consumed: a change committed late is consumed late, never
-- skipped (the former cursors on wall-clock times skipped them).
CREATE TABLE notify_outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text NOT NULL CHECK (source IN ('restore_test_runs', 'vault_events', 'vault_usage', 'pledges')),
    ref_id       bigint NOT NULL,
    ref_at       timestamptz,
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    consumed_at  timestamptz
);
CREATE INDEX notify_outbox_pending_idx ON notify_outbox (xid, id) WHERE consumed_at IS NULL;
CREATE INDEX notify_outbox_consumed_idx ON notify_outbox (consumed_at) WHERE consumed_at IS NOT NULL;

-- internal/vaults: a purge records that it started (write-ahead, with its audit entry)
-- before its first destructive call on Garage; a restore is refused from then on.
ALTER TABLE vault_deletions ADD COLUMN purge_started_at timestamptz;

-- internal/vaults: where each background task (reconcile, usage, purge, expired keys)
-- resumes on each island: the last vault (or key) it handled. A run that used up its
-- time budget on an island continues after that vault next time, so every vault is
-- handled within a few periods however many an island holds.
CREATE TABLE vault_task_cursors (
    task        text NOT NULL CHECK (length(task) BETWEEN 1 AND 60),
    island_id   bigint NOT NULL REFERENCES islands (id) ON DELETE CASCADE,
    last_id     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task, island_id)
);
