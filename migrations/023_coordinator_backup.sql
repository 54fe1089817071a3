-- The coordinator's own backup (issue 19, internal/selfbackup): Archipelago dumps its own
-- PostgreSQL with pg_dump into a restic repository in a vault on an island, a vault of the
-- member that stands for the federation. One row (id = 1) says where: the vault, the restic
-- repository registered for restore tests, the S3 key that writes it (its secret sealed under
-- "coordinator_backup/s3_secret") and the repository password (sealed under
-- "coordinator_backup/password"). Both secrets are also printed once, in the recovery kit, at
-- `archipelago admin backup init`: the federation's admins keep the kit off the coordinator.
CREATE TABLE coordinator_backup (
    id               int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    vault_id         bigint NOT NULL REFERENCES vaults (id) ON DELETE RESTRICT,
    repository_id    bigint NOT NULL REFERENCES restic_repositories (id) ON DELETE RESTRICT,
    repository_url   text NOT NULL CHECK (length(repository_url) BETWEEN 1 AND 2000),
    s3_region        text NOT NULL DEFAULT '',
    access_key_id    text NOT NULL CHECK (length(access_key_id) BETWEEN 1 AND 200),
    secret_sealed    text NOT NULL,
    password_sealed  text NOT NULL,
    created_by       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One backup or restore check. kind:
--   backup         pg_dump streamed into restic (then forget/prune when retention is set)
--   restore_check  the newest dump restored and loaded with pg_restore into a throwaway
--                  PostgreSQL, its schema version and row counts compared with the snapshot's
-- status: ok, or failed with error (never a secret). metadata: schema version and row counts
-- recorded at backup time (also in the snapshot's tags), or found by the restore check.
CREATE TABLE coordinator_backup_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('backup', 'restore_check')),
    status        text NOT NULL CHECK (status IN ('ok', 'failed')),
    trigger       text NOT NULL DEFAULT '' CHECK (length(trigger) <= 100),
    snapshot_id   text CHECK (snapshot_id ~ '^[0-9a-f]{64}$'),
    bytes         bigint CHECK (bytes >= 0),
    metadata      jsonb NOT NULL DEFAULT '{}',
    error         text NOT NULL DEFAULT '' CHECK (length(error) <= 4000),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'failed') = (error <> ''))
);
CREATE INDEX coordinator_backup_runs_kind_idx ON coordinator_backup_runs (kind, finished_at DESC);
