-- Foundation: member organisations and the audit log's first form.

CREATE TABLE members (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug          text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    contact_email text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Every mutation writes one row here, in the same transaction as the change.
-- seq is assigned gap-free under a transaction-scoped advisory lock by internal/audit.
CREATE TABLE audit_entries (
    seq          bigint PRIMARY KEY CHECK (seq >= 0),
    at           timestamptz NOT NULL,
    actor_kind   text NOT NULL CHECK (actor_kind IN ('user', 'token', 'system', 'anonymous')),
    actor_id     text NOT NULL DEFAULT '',
    actor_name   text NOT NULL DEFAULT '',
    member_id    bigint REFERENCES members (id) ON DELETE RESTRICT,
    action       text NOT NULL,
    target_type  text NOT NULL DEFAULT '',
    target_id    text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    source_ip    text NOT NULL DEFAULT '',
    -- json, not jsonb: the object is kept byte for byte as internal/audit wrote it, so the
    -- bytes its Merkle leaf covers are the bytes stored.
    details      json NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_entries_at_idx ON audit_entries (at);
CREATE INDEX audit_entries_member_idx ON audit_entries (member_id, seq);
CREATE INDEX audit_entries_action_idx ON audit_entries (action, seq);
