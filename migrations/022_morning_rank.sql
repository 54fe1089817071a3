-- Scale (issue 20): the dashboard's worst-first lists read a rank kept on each repository and
-- vault instead of ranking every one of them at each view (6.9–10.2 s at 10,000 members).
--
-- What does not depend on the time is kept, in the transaction of the change that moves it:
--
--   vaults.place_rank            least(the island's rank, the vault's usage rank): set when the
--                                vault's usage, quota, status or island change, and for every
--                                vault of an island when the island's status changes
--   vaults.morning_rank          least(place_rank, 4 while the vault is not active)
--   restic_repositories.morning_rank
--                                least(the latest outcome's rank, its vault's place_rank): set
--                                when a test finishes (last_status) and when the vault's
--                                place_rank changes
--   restic_repositories.newest_snapshot_time
--                                the newest snapshot a test saw: the latest run's, or (when it
--                                could not read the snapshots) the one before it kept
--   restic_repositories.stale_at when the newest snapshot becomes older than the RPO:
--                                newest_snapshot_time + the repository's RPO (or the
--                                federation's: set for every repository following it when
--                                restore_settings.rpo_seconds changes)
--
-- What depends on the time — a snapshot growing older than the RPO with no write at all — is
-- not stored as a rank: stale_at is a fixed moment, indexed, and a read compares it with now().
--
-- Ranks (internal/reports, Rank*): 0 failed; 1 stale or island down; 2 95 % full or an error;
-- 3 warning, never tested or island degraded; 4 80 % full, island unknown, vault not active; 5 good.

CREATE FUNCTION morning_island_rank(status text) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE status WHEN 'unavailable' THEN 1 WHEN 'unreachable' THEN 1 WHEN 'degraded' THEN 3
        WHEN 'unknown' THEN 4 ELSE 5 END)::smallint $$;

CREATE FUNCTION morning_usage_rank(usage bigint, quota bigint) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE WHEN usage IS NULL THEN 5 WHEN usage::numeric * 100 >= quota::numeric * 95 THEN 2
        WHEN usage::numeric * 100 >= quota::numeric * 80 THEN 4 ELSE 5 END)::smallint $$;

CREATE FUNCTION morning_outcome_rank(status text) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE status WHEN 'failed' THEN 0 WHEN 'error' THEN 2 WHEN 'warning' THEN 3 WHEN 'passed' THEN 5
        ELSE 3 END)::smallint $$;

ALTER TABLE vaults
    ADD COLUMN place_rank   smallint NOT NULL DEFAULT 5,
    ADD COLUMN morning_rank smallint NOT NULL DEFAULT 5;
ALTER TABLE restic_repositories
    ADD COLUMN morning_rank         smallint NOT NULL DEFAULT 3,
    ADD COLUMN newest_snapshot_time timestamptz,
    ADD COLUMN stale_at             timestamptz;

UPDATE vaults v SET place_rank = least(morning_island_rank(i.status), morning_usage_rank(v.usage_bytes, v.quota_bytes))
    FROM islands i WHERE i.id = v.island_id;
UPDATE vaults SET morning_rank = least(place_rank, CASE WHEN status <> 'active' THEN 4 ELSE 5 END);
UPDATE restic_repositories r SET morning_rank = least(morning_outcome_rank(r.last_status), v.place_rank),
    newest_snapshot_time = coalesce(r.last_snapshot_time, (SELECT t.snapshot_time FROM restore_test_runs t
        WHERE t.repository_id = r.id AND t.snapshot_time IS NOT NULL ORDER BY t.id DESC LIMIT 1))
    FROM vaults v WHERE v.id = r.vault_id;
UPDATE restic_repositories r SET stale_at = r.newest_snapshot_time + coalesce(r.rpo_seconds, s.rpo_seconds) * interval '1 second'
    FROM restore_settings s WHERE r.newest_snapshot_time IS NOT NULL;

-- Vaults: place_rank and morning_rank, before the row is written.
CREATE FUNCTION vaults_morning_rank() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.island_id <> OLD.island_id OR NEW.usage_bytes IS DISTINCT FROM OLD.usage_bytes
            OR NEW.quota_bytes <> OLD.quota_bytes THEN
        NEW.place_rank := least(coalesce((SELECT morning_island_rank(i.status) FROM islands i WHERE i.id = NEW.island_id), 5),
            morning_usage_rank(NEW.usage_bytes, NEW.quota_bytes));
    END IF;
    NEW.morning_rank := least(NEW.place_rank, CASE WHEN NEW.status <> 'active' THEN 4 ELSE 5 END);
    RETURN NEW;
END $$;
CREATE TRIGGER vaults_morning_rank BEFORE INSERT OR UPDATE ON vaults
    FOR EACH ROW EXECUTE FUNCTION vaults_morning_rank();

-- A vault's place_rank moved: its repositories' ranks follow.
CREATE FUNCTION vaults_morning_rank_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE restic_repositories SET morning_rank = least(morning_outcome_rank(last_status), NEW.place_rank)
        WHERE vault_id = NEW.id AND morning_rank <> least(morning_outcome_rank(last_status), NEW.place_rank);
    RETURN NULL;
END $$;
CREATE TRIGGER vaults_morning_rank_follow AFTER UPDATE ON vaults
    FOR EACH ROW WHEN (OLD.place_rank <> NEW.place_rank) EXECUTE FUNCTION vaults_morning_rank_follow();

-- An island's status moved: its vaults' place_rank follow (and, through them, their repositories').
CREATE FUNCTION islands_morning_rank_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE vaults v SET place_rank = least(morning_island_rank(NEW.status), morning_usage_rank(v.usage_bytes, v.quota_bytes))
        WHERE v.island_id = NEW.id AND v.status <> 'deleted'
            AND v.place_rank <> least(morning_island_rank(NEW.status), morning_usage_rank(v.usage_bytes, v.quota_bytes));
    RETURN NULL;
END $$;
CREATE TRIGGER islands_morning_rank_follow AFTER UPDATE ON islands
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION islands_morning_rank_follow();

-- Repositories: morning_rank, newest_snapshot_time and stale_at, before the row is written.
-- Named to run after restic_repositories_last_run (migration 018), which sets last_status and
-- last_snapshot_time from last_run_id: BEFORE triggers run in the order of their names.
CREATE FUNCTION restic_repositories_rank() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.last_status IS DISTINCT FROM OLD.last_status OR NEW.vault_id <> OLD.vault_id THEN
        NEW.morning_rank := least(morning_outcome_rank(NEW.last_status),
            coalesce((SELECT v.place_rank FROM vaults v WHERE v.id = NEW.vault_id), 5));
    END IF;
    IF TG_OP = 'INSERT' OR NEW.last_run_id IS DISTINCT FROM OLD.last_run_id THEN
        IF NEW.last_snapshot_time IS NOT NULL THEN
            NEW.newest_snapshot_time := NEW.last_snapshot_time;
        ELSIF NEW.last_run_id IS NOT NULL AND NEW.newest_snapshot_time IS NULL THEN
            -- not known yet (last_run_id was set past earlier runs, as a bulk load does): the
            -- newest snapshot an earlier test saw, by the (repository_id, id) index
            SELECT t.snapshot_time INTO NEW.newest_snapshot_time FROM restore_test_runs t
                WHERE t.repository_id = NEW.id AND t.snapshot_time IS NOT NULL ORDER BY t.id DESC LIMIT 1;
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.newest_snapshot_time IS DISTINCT FROM OLD.newest_snapshot_time
            OR NEW.rpo_seconds IS DISTINCT FROM OLD.rpo_seconds THEN
        NEW.stale_at := NEW.newest_snapshot_time
            + coalesce(NEW.rpo_seconds, (SELECT s.rpo_seconds FROM restore_settings s)) * interval '1 second';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER restic_repositories_rank BEFORE INSERT OR UPDATE ON restic_repositories
    FOR EACH ROW EXECUTE FUNCTION restic_repositories_rank();

-- The federation's RPO moved: stale_at of every repository following it.
CREATE FUNCTION restore_settings_stale_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE restic_repositories SET stale_at = newest_snapshot_time + NEW.rpo_seconds * interval '1 second'
        WHERE rpo_seconds IS NULL AND newest_snapshot_time IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER restore_settings_stale_follow AFTER UPDATE ON restore_settings
    FOR EACH ROW WHEN (OLD.rpo_seconds <> NEW.rpo_seconds) EXECUTE FUNCTION restore_settings_stale_follow();

-- The dashboard walks these in its order and stops at its limit.
CREATE INDEX restic_repositories_morning_idx ON restic_repositories (morning_rank, lower(name), id) WHERE deleted_at IS NULL;
CREATE INDEX restic_repositories_stale_at_idx ON restic_repositories (stale_at, id) WHERE deleted_at IS NULL;
CREATE INDEX vaults_morning_idx ON vaults (morning_rank, lower(name), id) WHERE status <> 'deleted';

-- The dashboard's glance (internal/reports, FederationGlance) is rebuilt when what it shows
-- may have changed. It used to tell by aggregating every repository and vault at each view
-- (count, sum of last_run_id, newest updated_at: a scan of 100,000 rows of each per view at
-- 10,000 members); a sequence bumped by statement triggers tells it in one read instead.
-- nextval is not transactional and takes no row lock, so writers never wait on each other for
-- it; a write rolled back only costs one rebuild.
CREATE SEQUENCE dashboard_changes;
CREATE FUNCTION dashboard_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('dashboard_changes');
    RETURN NULL;
END $$;
CREATE TRIGGER restic_repositories_dashboard AFTER INSERT OR DELETE OR TRUNCATE
    OR UPDATE OF last_run_id, deleted_at, member_id, vault_id, name, mode, rpo_seconds, rto_seconds ON restic_repositories
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_changed();
CREATE TRIGGER members_dashboard AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON members
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_changed();
CREATE TRIGGER islands_dashboard AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF name, status, replication_factor ON islands
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_changed();
CREATE TRIGGER vaults_dashboard AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF name, status, island_id, member_id ON vaults
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_changed();
CREATE TRIGGER restore_settings_dashboard AFTER UPDATE ON restore_settings
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_changed();
