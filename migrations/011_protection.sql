-- Protected vaults: the lifecycle tripwire, the protected copy of each vault on a second
-- island, delayed deletion in the copy, and freeze. Owned by internal/protection
-- (docs/protection.md).

-- Federation-wide protection settings (one row).
CREATE TABLE protection_settings (
    id                      boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- new vaults get a protected copy when an island the member does not operate, other
    -- than the vault's, can hold it
    copy_by_default         boolean NOT NULL DEFAULT true,
    -- how often each vault's copy is brought up to date
    copy_every_seconds      bigint NOT NULL DEFAULT 3600 CHECK (copy_every_seconds BETWEEN 60 AND 604800),
    -- how long an object must stay deleted from the vault before it is deleted from the copy
    deletion_grace_seconds  bigint NOT NULL DEFAULT 2592000 CHECK (deletion_grace_seconds >= 259200),
    -- how long after an unfreeze request the member keys get their write permission back
    unfreeze_delay_seconds  bigint NOT NULL DEFAULT 86400 CHECK (unfreeze_delay_seconds BETWEEN 0 AND 2592000),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
INSERT INTO protection_settings DEFAULT VALUES;

-- Protection state of a vault. The copy is a bucket on copy_island_id written only by
-- Archipelago's copy key (secret sealed under "vault/<vault_id>/copy_secret"); the member
-- may hold one read-only key on it (reader_key_id; its secret is shown once).
-- copy_status: none (no copy: disabled or no island can hold one), pending (not provisioned
-- yet), active, error (copy_detail says why).
CREATE TABLE vault_protection (
    vault_id                bigint PRIMARY KEY REFERENCES vaults (id) ON DELETE CASCADE,
    copy_enabled            boolean NOT NULL DEFAULT true,
    copy_island_id          bigint REFERENCES islands (id) ON DELETE RESTRICT,
    copy_bucket_name        text CHECK (copy_bucket_name ~ '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'),
    copy_garage_bucket_id   text CHECK (copy_garage_bucket_id ~ '^[0-9a-f]{64}$'),
    copy_key_id             text,
    copy_secret_sealed      text,
    reader_key_id           text,
    copy_status             text NOT NULL DEFAULT 'pending' CHECK (copy_status IN ('none', 'pending', 'active', 'error')),
    copy_detail             text NOT NULL DEFAULT '',
    -- start of the last complete copy run: every object present then is in the copy
    copied_through          timestamptz,
    -- freeze: member keys read-only; an unfreeze request takes effect at unfreeze_after
    frozen_at               timestamptz,
    frozen_by               text NOT NULL DEFAULT '',
    freeze_reason           text NOT NULL DEFAULT '' CHECK (length(freeze_reason) <= 1000),
    unfreeze_after          timestamptz,
    unfreeze_requested_by   text NOT NULL DEFAULT '',
    -- lifecycle tripwire
    lifecycle_checked_at    timestamptz,
    lifecycle_tripped_at    timestamptz,
    lifecycle_detail        text NOT NULL DEFAULT '',
    -- unfinished multipart uploads seen by the tripwire (Garage's quota does not count them)
    multipart_bytes         bigint NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (unfreeze_after IS NULL OR frozen_at IS NOT NULL)
);
CREATE INDEX vault_protection_copy_island_idx ON vault_protection (copy_island_id);

-- The copy's manifest: one row per object name copied. source_etag/size are the source
-- object's when it was copied. source_missing_since marks an object deleted from the vault:
-- it is deleted from the copy once it has stayed deleted for the grace period (unless the
-- vault is frozen). overwritten_at marks a source object whose content no longer matches
-- its name: the copy keeps the good one.
CREATE TABLE vault_copy_objects (
    vault_id              bigint NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    key                   text NOT NULL,
    size                  bigint NOT NULL CHECK (size >= 0),
    source_etag           text NOT NULL,
    sha256                text NOT NULL DEFAULT '',
    copied_at             timestamptz NOT NULL,
    source_missing_since  timestamptz,
    overwritten_at        timestamptz,
    overwrite_detail      text NOT NULL DEFAULT '',
    PRIMARY KEY (vault_id, key)
);
CREATE INDEX vault_copy_objects_missing_idx ON vault_copy_objects (vault_id, source_missing_since)
    WHERE source_missing_since IS NOT NULL;

-- One row per copy run of a vault.
CREATE TABLE vault_copy_runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vault_id            bigint NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    started_at          timestamptz NOT NULL,
    finished_at         timestamptz NOT NULL,
    status              text NOT NULL CHECK (status IN ('ok', 'partial', 'error')),
    objects_copied      bigint NOT NULL DEFAULT 0,
    bytes_copied        bigint NOT NULL DEFAULT 0,
    objects_in_copy     bigint NOT NULL DEFAULT 0,
    bytes_in_copy       bigint NOT NULL DEFAULT 0,
    deletions_seen      bigint NOT NULL DEFAULT 0,
    deletions_pending   bigint NOT NULL DEFAULT 0,
    deletions_applied   bigint NOT NULL DEFAULT 0,
    overwrites          bigint NOT NULL DEFAULT 0,
    -- seconds between the previous complete run's start and this run's start: how old the
    -- copy was when this run began
    lag_seconds         bigint NOT NULL DEFAULT 0,
    errors              text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX vault_copy_runs_vault_idx ON vault_copy_runs (vault_id, started_at DESC);
