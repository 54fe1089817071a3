-- Vaults, keys and quotas. Owned by internal/vaults (policy arithmetic in internal/quota).
-- A vault is a Garage bucket on an island the member does not operate, with a quota that
-- follows the member's pledges, member S3 keys (read+write on that bucket only) and one
-- read-only verifier key that Archipelago keeps for restore verification.

-- Federation-wide settings of the quota policy and of the grace periods (one row).
CREATE TABLE federation_settings (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- a member's quota ≤ quota_ratio × its active pledged capacity ÷ the island's replication factor
    quota_ratio         double precision NOT NULL DEFAULT 1.0 CHECK (quota_ratio > 0 AND quota_ratio <= 100),
    -- an island's allocated quotas ≤ its usable capacity (layout ÷ rf) × overcommit
    overcommit          double precision NOT NULL DEFAULT 1.0 CHECK (overcommit > 0 AND overcommit <= 100),
    -- how long a rotated member key keeps working
    key_grace_seconds   bigint NOT NULL DEFAULT 604800 CHECK (key_grace_seconds >= 0),
    -- how long a soft-deleted vault keeps its bucket (undo possible)
    vault_delete_grace_seconds bigint NOT NULL DEFAULT 2592000 CHECK (vault_delete_grace_seconds >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO federation_settings DEFAULT VALUES;

-- Extra quota a federation admin grants a member (newcomers who pledge nothing yet).
CREATE TABLE quota_grants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id   bigint NOT NULL REFERENCES members (id) ON DELETE RESTRICT,
    bytes       bigint NOT NULL CHECK (bytes > 0),
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    granted_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX quota_grants_member_idx ON quota_grants (member_id);

-- A vault: one Garage bucket (global alias bucket_name) on island_id for member_id.
-- status:
--   pending   recorded, Garage not (fully) provisioned yet; the reconciler finishes it
--             (status_detail says what failed)
--   active    provisioned
--   deleting  soft-deleted: the bucket is kept until the deletion's purge_after (undo possible)
--   deleted   the bucket and keys were removed from Garage (row kept for history)
-- drift lists what the reconciler found wrong and could not repair (shown on the vault).
CREATE TABLE vaults (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id           bigint NOT NULL REFERENCES members (id) ON DELETE RESTRICT,
    island_id           bigint NOT NULL REFERENCES islands (id) ON DELETE RESTRICT,
    name                text NOT NULL CHECK (length(name) BETWEEN 3 AND 63),
    bucket_name         text NOT NULL CHECK (bucket_name ~ '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'),
    garage_bucket_id    text CHECK (garage_bucket_id ~ '^[0-9a-f]{64}$'),
    quota_bytes         bigint NOT NULL CHECK (quota_bytes > 0),
    max_objects         bigint CHECK (max_objects > 0),
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'deleting', 'deleted')),
    status_detail       text NOT NULL DEFAULT '',
    placement           text NOT NULL CHECK (placement IN ('automatic', 'chosen', 'override')),
    placement_reason    text NOT NULL DEFAULT '',
    idempotency_key     text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    created_by          text NOT NULL DEFAULT '',
    drift               text[] NOT NULL DEFAULT '{}',
    reconciled_at       timestamptz,
    usage_bytes         bigint,
    usage_objects       bigint,
    usage_at            timestamptz,
    -- the highest usage threshold (0, 80, 95 percent) crossed and not yet gone back under
    usage_level         int NOT NULL DEFAULT 0 CHECK (usage_level IN (0, 80, 95)),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL)),
    CHECK (status = 'pending' OR status = 'deleted' OR garage_bucket_id IS NOT NULL)
);
-- Bucket names are unique in the federation while the bucket may exist; a member's vault
-- names likewise. A double-submitted create with the same idempotency key finds the first.
CREATE UNIQUE INDEX vaults_bucket_name_key ON vaults (bucket_name) WHERE status <> 'deleted';
CREATE UNIQUE INDEX vaults_member_name_key ON vaults (member_id, name) WHERE status <> 'deleted';
CREATE UNIQUE INDEX vaults_idempotency_key ON vaults (member_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX vaults_island_idx ON vaults (island_id) WHERE status <> 'deleted';

-- Member keys: read+write (never owner) on their vault's bucket only. The secret is shown
-- once at creation and never stored. A rotated key gets replaced_by and an expires_at at
-- the end of the grace period; DeleteExpiredKeys then deletes it from Garage (deleted_at).
-- A revoked key is deleted from Garage at once (deleted_at stays NULL while that failed).
CREATE TABLE vault_keys (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vault_id        bigint NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    access_key_id   text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL DEFAULT '',
    expires_at      timestamptz,
    rotated_from    bigint REFERENCES vault_keys (id),
    replaced_by     bigint REFERENCES vault_keys (id),
    revoked_at      timestamptz,
    deleted_at      timestamptz
);
CREATE INDEX vault_keys_vault_idx ON vault_keys (vault_id);
CREATE INDEX vault_keys_expiring_idx ON vault_keys (expires_at) WHERE deleted_at IS NULL AND expires_at IS NOT NULL;

-- The verifier key of a vault: read-only on the bucket; the secret is sealed with
-- internal/seal under the purpose "vault/<vault_id>/verifier_secret" and is never shown.
CREATE TABLE vault_verifier_keys (
    vault_id        bigint PRIMARY KEY REFERENCES vaults (id) ON DELETE CASCADE,
    access_key_id   text NOT NULL UNIQUE,
    secret_sealed   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    checked_at      timestamptz,
    check_error     text NOT NULL DEFAULT ''
);

-- Usage history collected from Garage (bytes and objects as Garage counts them).
CREATE TABLE vault_usage (
    vault_id     bigint NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    observed_at  timestamptz NOT NULL DEFAULT now(),
    bytes        bigint NOT NULL CHECK (bytes >= 0),
    objects      bigint NOT NULL CHECK (objects >= 0),
    quota_bytes  bigint NOT NULL,
    PRIMARY KEY (vault_id, observed_at)
);

-- Events of a vault: usage thresholds crossed, drift found and repaired. Notifications
-- will be built on them.
CREATE TABLE vault_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vault_id    bigint NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL CHECK (kind IN ('usage_80', 'usage_95', 'usage_normal', 'drift_repaired', 'drift_found')),
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX vault_events_vault_idx ON vault_events (vault_id, at DESC);

-- Deleting a non-empty vault is a request: the bucket is kept until purge_after, the
-- request can be cancelled (undo) until then, and PurgeDeletedVaults executes it.
-- Multi-party approval slots in as a table of approvals per request and one more
-- condition on the purge (see docs/vaults.md).
CREATE TABLE vault_deletions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vault_id      bigint NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    requested_by  text NOT NULL DEFAULT '',
    requested_at  timestamptz NOT NULL DEFAULT now(),
    reason        text NOT NULL DEFAULT '',
    purge_after   timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled', 'done')),
    closed_at     timestamptz,
    closed_by     text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX vault_deletions_open_key ON vault_deletions (vault_id) WHERE status = 'scheduled';
