-- Scale (issue 20): what lists, counts and /metrics read about a repository's latest test is
-- kept on the repository, so they read one row per repository instead of joining the run
-- history (a year of daily tests at 10,000 members is tens of millions of runs).
--
--   last_status         the outcome of the latest finished run (last_run_id); NULL: never tested
--   last_snapshot_time  the newest snapshot that run saw (freshness against the RPO)
--   last_success_at     when the latest passed or warning run finished; kept when a later run
--                       fails, and when retention deletes the run itself (read from the history
--                       when a failed run is recorded and no success is known yet)
--
-- A trigger keeps them whenever last_run_id is set (by the verifier, the seed, anything), in
-- the same statement: they cannot drift from last_run_id.
ALTER TABLE restic_repositories
    ADD COLUMN last_status        text,
    ADD COLUMN last_snapshot_time timestamptz,
    ADD COLUMN last_success_at    timestamptz;

CREATE FUNCTION restic_repositories_last_run() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    st  text;
    snap timestamptz;
    fin timestamptz;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.last_run_id IS NOT DISTINCT FROM OLD.last_run_id THEN
        RETURN NEW;
    END IF;
    IF NEW.last_run_id IS NULL THEN
        -- the run was deleted (ON DELETE SET NULL): its outcome is no longer known, the
        -- time of the last success still is
        NEW.last_status := NULL;
        NEW.last_snapshot_time := NULL;
        RETURN NEW;
    END IF;
    SELECT status, snapshot_time, finished_at INTO st, snap, fin FROM restore_test_runs WHERE id = NEW.last_run_id;
    NEW.last_status := st;
    NEW.last_snapshot_time := snap;
    IF st IN ('passed', 'warning') THEN
        NEW.last_success_at := fin;
    ELSIF NEW.last_success_at IS NULL THEN
        -- not known yet (last_run_id was set past earlier runs, as a bulk load does): the
        -- newest success of the history, by the (repository_id, id) index
        SELECT x.finished_at INTO NEW.last_success_at FROM restore_test_runs x
            WHERE x.repository_id = NEW.id AND x.status IN ('passed', 'warning') ORDER BY x.id DESC LIMIT 1;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER restic_repositories_last_run BEFORE INSERT OR UPDATE OF last_run_id ON restic_repositories
    FOR EACH ROW EXECUTE FUNCTION restic_repositories_last_run();

UPDATE restic_repositories r SET last_status = lr.status, last_snapshot_time = lr.snapshot_time
    FROM restore_test_runs lr WHERE lr.id = r.last_run_id;
UPDATE restic_repositories r SET last_success_at = (SELECT x.finished_at FROM restore_test_runs x
        WHERE x.repository_id = r.id AND x.status IN ('passed', 'warning') ORDER BY x.id DESC LIMIT 1);

-- Repository pages are ordered by (member, name, id): the federation admin's pages walk this
-- index instead of sorting every repository for each page.
CREATE INDEX restic_repositories_page_idx ON restic_repositories (member_id, name, id) WHERE deleted_at IS NULL;

-- Repositories per member, island and latest outcome ('none': never tested), counting those
-- not deleted: the restore-tests page's counts and /metrics read this (a few rows per member)
-- instead of every repository. Kept by a trigger on restic_repositories, in the transaction
-- that changes a repository. A vault never changes island.
CREATE TABLE restore_summary (
    member_id    bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    island_id    bigint NOT NULL REFERENCES islands (id) ON DELETE CASCADE,
    outcome      text NOT NULL,
    repositories bigint NOT NULL CHECK (repositories >= 0),
    PRIMARY KEY (member_id, island_id, outcome)
);
CREATE INDEX restore_summary_island_idx ON restore_summary (island_id);

-- Per member: the oldest of its repositories' latest successes (NULL: none ever passed).
CREATE TABLE restore_member_summary (
    member_id         bigint PRIMARY KEY REFERENCES members (id) ON DELETE CASCADE,
    oldest_success_at timestamptz
);

CREATE FUNCTION restore_summary_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    isl bigint;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
        SELECT island_id INTO isl FROM vaults WHERE id = OLD.vault_id;
        UPDATE restore_summary SET repositories = repositories - 1
            WHERE member_id = OLD.member_id AND island_id = isl AND outcome = coalesce(OLD.last_status, 'none');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.deleted_at IS NULL THEN
        SELECT island_id INTO isl FROM vaults WHERE id = NEW.vault_id;
        INSERT INTO restore_summary (member_id, island_id, outcome, repositories)
            VALUES (NEW.member_id, isl, coalesce(NEW.last_status, 'none'), 1)
            ON CONFLICT (member_id, island_id, outcome) DO UPDATE SET repositories = restore_summary.repositories + 1;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO restore_member_summary (member_id, oldest_success_at)
            SELECT OLD.member_id, min(last_success_at) FROM restic_repositories
            WHERE member_id = OLD.member_id AND deleted_at IS NULL
            ON CONFLICT (member_id) DO UPDATE SET oldest_success_at = excluded.oldest_success_at;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND (TG_OP = 'INSERT' OR NEW.member_id <> OLD.member_id) THEN
        INSERT INTO restore_member_summary (member_id, oldest_success_at)
            SELECT NEW.member_id, min(last_success_at) FROM restic_repositories
            WHERE member_id = NEW.member_id AND deleted_at IS NULL
            ON CONFLICT (member_id) DO UPDATE SET oldest_success_at = excluded.oldest_success_at;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER restore_summary_insert_delete AFTER INSERT OR DELETE ON restic_repositories
    FOR EACH ROW EXECUTE FUNCTION restore_summary_apply();
CREATE TRIGGER restore_summary_update AFTER UPDATE ON restic_repositories
    FOR EACH ROW WHEN (OLD.last_status IS DISTINCT FROM NEW.last_status OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
        OR OLD.vault_id <> NEW.vault_id OR OLD.member_id <> NEW.member_id
        OR OLD.last_success_at IS DISTINCT FROM NEW.last_success_at)
    EXECUTE FUNCTION restore_summary_apply();

INSERT INTO restore_summary (member_id, island_id, outcome, repositories)
    SELECT r.member_id, v.island_id, coalesce(r.last_status, 'none'), count(*)
    FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id WHERE r.deleted_at IS NULL GROUP BY 1, 2, 3;
INSERT INTO restore_member_summary (member_id, oldest_success_at)
    SELECT member_id, min(last_success_at) FROM restic_repositories WHERE deleted_at IS NULL GROUP BY 1;

-- Stale repositories (newest snapshot older than the RPO) are found by walking these indexes
-- over the stale ones only: those with the federation's RPO by snapshot time, and the few
-- with their own RPO.
CREATE INDEX restic_repositories_fresh_default_idx ON restic_repositories (last_snapshot_time)
    WHERE deleted_at IS NULL AND rpo_seconds IS NULL;
CREATE INDEX restic_repositories_fresh_own_idx ON restic_repositories (member_id)
    WHERE deleted_at IS NULL AND rpo_seconds IS NOT NULL;

-- Vaults per member and island that are pending or active: count, quota, last counted usage,
-- and how many are at least 95 % and 100 % full; /metrics reads this instead of every vault.
-- Kept by a trigger on vaults. A vault never changes member or island.
CREATE TABLE vault_summary (
    member_id   bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    island_id   bigint NOT NULL REFERENCES islands (id) ON DELETE CASCADE,
    vaults      bigint NOT NULL,
    quota_bytes numeric NOT NULL,
    usage_bytes numeric NOT NULL,
    over95      bigint NOT NULL,
    over100     bigint NOT NULL,
    PRIMARY KEY (member_id, island_id)
);

CREATE FUNCTION vault_summary_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('pending', 'active') THEN
        UPDATE vault_summary SET vaults = vaults - 1, quota_bytes = quota_bytes - OLD.quota_bytes,
            usage_bytes = usage_bytes - coalesce(OLD.usage_bytes, 0),
            over95 = over95 - (OLD.usage_bytes >= 0.95 * OLD.quota_bytes IS TRUE)::int,
            over100 = over100 - (OLD.usage_bytes >= OLD.quota_bytes IS TRUE)::int
            WHERE member_id = OLD.member_id AND island_id = OLD.island_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status IN ('pending', 'active') THEN
        INSERT INTO vault_summary AS s (member_id, island_id, vaults, quota_bytes, usage_bytes, over95, over100)
            VALUES (NEW.member_id, NEW.island_id, 1, NEW.quota_bytes, coalesce(NEW.usage_bytes, 0),
                (NEW.usage_bytes >= 0.95 * NEW.quota_bytes IS TRUE)::int, (NEW.usage_bytes >= NEW.quota_bytes IS TRUE)::int)
            ON CONFLICT (member_id, island_id) DO UPDATE SET vaults = s.vaults + 1,
                quota_bytes = s.quota_bytes + excluded.quota_bytes, usage_bytes = s.usage_bytes + excluded.usage_bytes,
                over95 = s.over95 + excluded.over95, over100 = s.over100 + excluded.over100;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER vault_summary_insert_delete AFTER INSERT OR DELETE ON vaults
    FOR EACH ROW EXECUTE FUNCTION vault_summary_apply();
CREATE TRIGGER vault_summary_update AFTER UPDATE ON vaults
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.quota_bytes <> NEW.quota_bytes
        OR OLD.usage_bytes IS DISTINCT FROM NEW.usage_bytes OR OLD.member_id <> NEW.member_id OR OLD.island_id <> NEW.island_id)
    EXECUTE FUNCTION vault_summary_apply();

INSERT INTO vault_summary (member_id, island_id, vaults, quota_bytes, usage_bytes, over95, over100)
    SELECT member_id, island_id, count(*), sum(quota_bytes), coalesce(sum(usage_bytes), 0),
        count(*) FILTER (WHERE usage_bytes >= 0.95 * quota_bytes), count(*) FILTER (WHERE usage_bytes >= quota_bytes)
    FROM vaults WHERE status IN ('pending', 'active') GROUP BY 1, 2;
