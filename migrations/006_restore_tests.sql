-- Restore verification: the restic repositories members register in their vaults, their
-- test policy, and the result of every test run with its per-level results. Owned by
-- internal/verify (see docs/restore-tests.md).

-- Federation-wide defaults of the test policy (one row). A repository's policy column that
-- is NULL takes the value from here.
CREATE TABLE restore_settings (
    id                     boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- robfig/cron syntax: a 5-field cron expression (UTC) or "@every 24h", "@daily"…
    schedule               text NOT NULL DEFAULT '@every 24h',
    -- start window (UTC): tests start within [window_start_minute, +window_minutes) of a day;
    -- window_minutes = 0 means "any time"
    window_start_minute    int NOT NULL DEFAULT 0 CHECK (window_start_minute BETWEEN 0 AND 1439),
    window_minutes         int NOT NULL DEFAULT 0 CHECK (window_minutes BETWEEN 0 AND 1440),
    -- a test starts up to jitter_seconds after its nominal time (spread per repository)
    jitter_seconds         int NOT NULL DEFAULT 3600 CHECK (jitter_seconds >= 0),
    rpo_seconds            bigint NOT NULL DEFAULT 93600 CHECK (rpo_seconds > 0),   -- 26 h
    rto_seconds            bigint NOT NULL DEFAULT 86400 CHECK (rto_seconds > 0),   -- 24 h
    sample_files           int NOT NULL DEFAULT 20 CHECK (sample_files BETWEEN 0 AND 100000),
    sample_bytes           bigint NOT NULL DEFAULT 268435456 CHECK (sample_bytes >= 0),
    -- integrity: restic check every check_every_runs runs, --read-data-subset n/check_subsets
    check_every_runs       int NOT NULL DEFAULT 1 CHECK (check_every_runs BETWEEN 1 AND 1000),
    check_subsets          int NOT NULL DEFAULT 30 CHECK (check_subsets BETWEEN 1 AND 10000),
    -- full restore every full_restore_days days; NULL: never
    full_restore_days      int CHECK (full_restore_days > 0),
    canary_path            text NOT NULL DEFAULT 'archipelago-canary.txt',
    -- at most this many tests run at once against one island (all workers together)
    island_concurrency     int NOT NULL DEFAULT 2 CHECK (island_concurrency BETWEEN 1 AND 100),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
INSERT INTO restore_settings DEFAULT VALUES;

-- A restic repository a member keeps in one of its vaults, under path (a prefix in the
-- bucket). mode:
--   full   Archipelago holds the password of a restic key the member added for it
--          (password_sealed, seal purpose "repository/<id>/password"; never shown again)
--   blind  no password: only the checks that need none (freshness and deletion watch from
--          object timestamps)
-- Policy columns that are NULL take the federation default from restore_settings.
CREATE TABLE restic_repositories (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id           bigint NOT NULL REFERENCES members (id) ON DELETE RESTRICT,
    vault_id            bigint NOT NULL REFERENCES vaults (id) ON DELETE RESTRICT,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    path                text NOT NULL CHECK (path ~ '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$' AND path !~ '(^|/)\.\.?(/|$)'),
    mode                text NOT NULL CHECK (mode IN ('full', 'blind')),
    password_sealed     text,
    password_set_at     timestamptz,
    -- what the member writes into its canary file
    canary_token        text NOT NULL CHECK (canary_token ~ '^archipelago-canary-[a-z2-7]{26}$'),
    schedule            text,
    window_start_minute int CHECK (window_start_minute BETWEEN 0 AND 1439),
    window_minutes      int CHECK (window_minutes BETWEEN 0 AND 1440),
    jitter_seconds      int CHECK (jitter_seconds >= 0),
    rpo_seconds         bigint CHECK (rpo_seconds > 0),
    rto_seconds         bigint CHECK (rto_seconds > 0),
    sample_files        int CHECK (sample_files BETWEEN 0 AND 100000),
    sample_bytes        bigint CHECK (sample_bytes >= 0),
    check_every_runs    int CHECK (check_every_runs BETWEEN 1 AND 1000),
    check_subsets       int CHECK (check_subsets BETWEEN 1 AND 10000),
    -- 0: never, whatever the federation default says (NULL: the federation default)
    full_restore_days   int CHECK (full_restore_days BETWEEN 0 AND 3650),
    canary_path         text CHECK (length(canary_path) BETWEEN 1 AND 1000),
    -- scheduler state
    paused              boolean NOT NULL DEFAULT false,
    next_run_at         timestamptz,
    -- integrity rotation: number of checks done so far (the next one reads subset
    -- (check_count mod t) + 1 of t), and runs since the last check
    check_count         bigint NOT NULL DEFAULT 0,
    runs_since_check    int NOT NULL DEFAULT 0,
    last_full_restore_at timestamptz,
    last_run_id         bigint,
    created_by          text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    CHECK ((mode = 'full') = (password_sealed IS NOT NULL))
);
CREATE UNIQUE INDEX restic_repositories_member_name_key ON restic_repositories (member_id, lower(name)) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX restic_repositories_vault_path_key ON restic_repositories (vault_id, path) WHERE deleted_at IS NULL;
CREATE INDEX restic_repositories_due_idx ON restic_repositories (next_run_at) WHERE deleted_at IS NULL AND NOT paused;

-- One test run of a repository: one River job (river_job_id, unique: a retried or rescued job
-- updates its run, so there is exactly one result per job). status:
--   queued     waiting for a worker
--   running    a worker is on it (progress is live)
--   postponed  waiting: an exclusive lock in the repository, or the island's slots are full
--   retrying   an attempt ended in error; River retries it (reason says why)
--   passed / warning / failed / error   the final outcome (finished_at set)
--     failed: the backup is bad (the member must act); error: the verifier could not judge
--   cancelled  the repository was deleted before the test ran
CREATE TABLE restore_test_runs (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id        bigint NOT NULL REFERENCES restic_repositories (id) ON DELETE CASCADE,
    member_id            bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    island_id            bigint NOT NULL REFERENCES islands (id) ON DELETE CASCADE,
    river_job_id         bigint UNIQUE,
    trigger              text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    requested_by         text NOT NULL DEFAULT '',
    mode                 text NOT NULL CHECK (mode IN ('full', 'blind')),
    status               text NOT NULL DEFAULT 'queued'
                         CHECK (status IN ('queued', 'running', 'postponed', 'retrying', 'passed', 'warning',
                                           'failed', 'error', 'cancelled')),
    -- one sentence a member can act on (the first failing level's summary)
    reason               text NOT NULL DEFAULT '',
    attempt              int NOT NULL DEFAULT 0,
    -- how many times the run was put back (exclusive lock in the repository, island busy)
    postponements        int NOT NULL DEFAULT 0,
    worker               text NOT NULL DEFAULT '',
    queued_at            timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    finished_at          timestamptz,
    duration_ms          bigint,
    -- what was tested
    snapshot_id          text,
    snapshot_time        timestamptz,
    snapshot_age_seconds bigint,
    snapshot_count       int,
    deleted_snapshots    int NOT NULL DEFAULT 0,
    check_subset         text NOT NULL DEFAULT '',
    full_restore         boolean NOT NULL DEFAULT false,
    -- sample restore measurements and the RTO projection
    sample_files         bigint,
    sample_bytes         bigint,
    restore_seconds      double precision,
    throughput_bps       double precision,
    repo_size_bytes      bigint,
    rto_estimate_seconds bigint,
    rpo_target_seconds   bigint NOT NULL,
    rto_target_seconds   bigint NOT NULL,
    -- live progress: {"level","phase","percent","bytes_done","bytes_total","files_done","files_total"}
    progress             jsonb NOT NULL DEFAULT '{}',
    progress_at          timestamptz,
    -- restic's full output of the run (secrets scrubbed), capped
    log                  text NOT NULL DEFAULT '',
    CHECK ((status IN ('passed', 'warning', 'failed', 'error', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX restore_test_runs_repository_idx ON restore_test_runs (repository_id, id DESC);
CREATE INDEX restore_test_runs_member_idx ON restore_test_runs (member_id, id DESC);
CREATE INDEX restore_test_runs_open_idx ON restore_test_runs (status) WHERE finished_at IS NULL;

ALTER TABLE restic_repositories ADD CONSTRAINT restic_repositories_last_run_fkey
    FOREIGN KEY (last_run_id) REFERENCES restore_test_runs (id) ON DELETE SET NULL;

-- The levels of one run, in order: freshness, deletions, integrity, sample, canary, full.
-- outcome: passed | warning | failed (the backup is bad) | error (we could not judge) |
-- skipped (not due, or not possible in blind mode; summary says which).
CREATE TABLE restore_test_levels (
    run_id      bigint NOT NULL REFERENCES restore_test_runs (id) ON DELETE CASCADE,
    level       text NOT NULL CHECK (level IN ('freshness', 'deletions', 'integrity', 'sample', 'canary', 'full')),
    position    int NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('passed', 'warning', 'failed', 'error', 'skipped')),
    summary     text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL,
    duration_ms bigint NOT NULL DEFAULT 0,
    details     jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, level)
);

-- Snapshots seen by the tests of a repository, for the deletion watch. In blind mode the
-- snapshot id is the object name under snapshots/ and snapshot_time its upload time.
CREATE TABLE restore_test_snapshots (
    repository_id  bigint NOT NULL REFERENCES restic_repositories (id) ON DELETE CASCADE,
    snapshot_id    text NOT NULL CHECK (snapshot_id ~ '^[0-9a-f]{64}$'),
    snapshot_time  timestamptz NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    gone_at        timestamptz,
    gone_run_id    bigint REFERENCES restore_test_runs (id) ON DELETE SET NULL,
    PRIMARY KEY (repository_id, snapshot_id)
);
