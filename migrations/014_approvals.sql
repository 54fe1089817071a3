-- Multi-party approval: protected actions become requests that admins of other member
-- organisations approve (docs/governance.md). Owned by internal/approvals.

-- The federation's approval rules (one row). Changing them is itself a protected action.
CREATE TABLE approval_settings (
    id                          boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- M: approvals from distinct organisations a request needs
    required_approvals          int NOT NULL DEFAULT 2 CHECK (required_approvals BETWEEN 1 AND 20),
    -- which organisations' admins may approve; empty: every member organisation
    approver_member_ids         bigint[] NOT NULL DEFAULT '{}',
    approval_window_seconds     bigint NOT NULL DEFAULT 604800 CHECK (approval_window_seconds BETWEEN 3600 AND 1209600),
    execution_window_seconds    bigint NOT NULL DEFAULT 86400 CHECK (execution_window_seconds BETWEEN 3600 AND 1209600),
    -- at least 72 h, except in the sandbox / development mode (internal/approvals enforces it)
    cooling_off_seconds         bigint NOT NULL DEFAULT 259200 CHECK (cooling_off_seconds BETWEEN 0 AND 2592000),
    -- an approver is reachable after a login or an acknowledged ping within this window
    liveness_window_seconds     bigint NOT NULL DEFAULT 2592000 CHECK (liveness_window_seconds BETWEEN 3600 AND 31536000),
    -- "protected when the federation says so"
    protect_quota_cuts          boolean NOT NULL DEFAULT false,
    protect_island_token        boolean NOT NULL DEFAULT false,
    protect_pledge_withdrawal   boolean NOT NULL DEFAULT false,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO approval_settings DEFAULT VALUES;

-- One request to perform a protected action. status: pending (collecting votes until
-- approval_expires_at), approved (cooling off until execute_after, then executed before
-- execute_before), executed, failed (the executor refused; detail says why), rejected,
-- cancelled, expired.
CREATE TABLE approval_requests (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action                text NOT NULL CHECK (action ~ '^[a-z_.]{1,60}$'),
    target_type           text NOT NULL CHECK (length(target_type) BETWEEN 1 AND 40),
    target_id             text NOT NULL CHECK (length(target_id) BETWEEN 1 AND 100),
    -- the member whose objects the action affects; its admins never approve
    affected_member_id    bigint REFERENCES members (id) ON DELETE SET NULL,
    params                jsonb NOT NULL DEFAULT '{}',
    effect                text NOT NULL CHECK (length(effect) BETWEEN 1 AND 2000),
    reason                text NOT NULL DEFAULT '' CHECK (length(reason) <= 1000),
    requested_by          bigint NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    requested_by_name     text NOT NULL DEFAULT '',
    -- the requester's organisations when asking; their admins never approve
    requester_member_ids  bigint[] NOT NULL DEFAULT '{}',
    -- what authority executes it: 'federation_admin' or 'member_admin'
    authority             text NOT NULL CHECK (authority IN ('federation_admin', 'member_admin')),
    required_approvals    int NOT NULL CHECK (required_approvals >= 1),
    destroys_data         boolean NOT NULL DEFAULT false,
    status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'approved', 'executed', 'failed', 'rejected', 'cancelled', 'expired')),
    detail                text NOT NULL DEFAULT '' CHECK (length(detail) <= 2000),
    created_at            timestamptz NOT NULL,
    approval_expires_at   timestamptz NOT NULL,
    approved_at           timestamptz,
    execute_after         timestamptz,
    execute_before        timestamptz,
    finished_at           timestamptz,
    finished_by           text NOT NULL DEFAULT '',
    CHECK (status <> 'approved' OR (execute_after IS NOT NULL AND execute_before IS NOT NULL))
);
CREATE INDEX approval_requests_open_idx ON approval_requests (status, id) WHERE status IN ('pending', 'approved');
CREATE INDEX approval_requests_member_idx ON approval_requests (affected_member_id, id);
-- one open request per action and target
CREATE UNIQUE INDEX approval_requests_one_open_idx ON approval_requests (action, target_type, target_id)
    WHERE status IN ('pending', 'approved');

-- Votes: one per organisation and one per person on a request.
CREATE TABLE approval_votes (
    request_id  bigint NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
    member_id   bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_name   text NOT NULL DEFAULT '',
    decision    text NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     text NOT NULL DEFAULT '' CHECK (length(comment) <= 1000),
    at          timestamptz NOT NULL,
    PRIMARY KEY (request_id, member_id),
    UNIQUE (request_id, user_id)
);

-- Liveness pings: an approver acknowledges one to show they can still be reached.
CREATE TABLE approver_pings (
    user_id      bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sent_at      timestamptz NOT NULL,
    acked_at     timestamptz
);

-- The last liveness check's outcome (one row), shown on the Approvals page and in metrics.
CREATE TABLE approval_liveness (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    checked_at      timestamptz,
    reachable       int NOT NULL DEFAULT 0,
    required        int NOT NULL DEFAULT 0,
    alerting        boolean NOT NULL DEFAULT false
);
INSERT INTO approval_liveness DEFAULT VALUES;
