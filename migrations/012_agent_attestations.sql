-- Member-side agent attestations (issue 15, docs/agent.md). Owned by internal/attest.
-- The member runs `archipelago agent` on its own machine with the restic password (which
-- never reaches the federation) and pushes DSSE-signed in-toto statements; the federation
-- keeps only the agents' public keys and the envelopes.

-- Ed25519 public keys allowed to sign attestations of a repository (public part only).
CREATE TABLE agent_keys (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id  bigint NOT NULL REFERENCES restic_repositories (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    public_key     bytea NOT NULL CHECK (length(public_key) = 32),
    -- the DSSE keyid: hex SHA-256 of the key's SubjectPublicKeyInfo (DER)
    key_id         text NOT NULL CHECK (key_id ~ '^[0-9a-f]{64}$'),
    created_by     text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE UNIQUE INDEX agent_keys_repository_key_id_key ON agent_keys (repository_id, key_id);

-- The expected agent schedule of a repository: an agent silent for longer than
-- interval + grace raises an agent.stale alert (alerted_at), cleared when it reports again.
CREATE TABLE agent_schedules (
    repository_id    bigint PRIMARY KEY REFERENCES restic_repositories (id) ON DELETE CASCADE,
    interval_seconds bigint NOT NULL CHECK (interval_seconds BETWEEN 60 AND 31622400),
    grace_seconds    bigint NOT NULL CHECK (grace_seconds BETWEEN 0 AND 31622400),
    since            timestamptz NOT NULL DEFAULT now(),
    alerted_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Accepted attestations: the envelope as received, and what was read from it.
CREATE TABLE agent_attestations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id    bigint NOT NULL REFERENCES restic_repositories (id) ON DELETE CASCADE,
    agent_key_id     bigint NOT NULL REFERENCES agent_keys (id) ON DELETE RESTRICT,
    -- hex SHA-256 of the envelope's payload (the statement): replays are refused on it
    statement_sha256 text NOT NULL UNIQUE CHECK (statement_sha256 ~ '^[0-9a-f]{64}$'),
    envelope         jsonb NOT NULL,
    snapshot_id      text CHECK (snapshot_id ~ '^[0-9a-f]{64}$'),
    snapshot_seen    boolean NOT NULL DEFAULT false,
    status           text NOT NULL CHECK (status IN ('passed', 'warning', 'failed', 'error')),
    reason           text NOT NULL DEFAULT '',
    levels           jsonb NOT NULL DEFAULT '[]',
    check_subset     text NOT NULL DEFAULT '',
    agent_version    text NOT NULL DEFAULT '',
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    audit_seq        bigint NOT NULL
);
CREATE INDEX agent_attestations_repository_idx ON agent_attestations (repository_id, finished_at DESC, id DESC);
