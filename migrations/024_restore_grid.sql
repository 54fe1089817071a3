-- Scale (issue 20): the federation grid of the restore-tests page (verify.GridPage) orders the
-- members by their worst latest outcome, by name, or by their oldest newest snapshot. Those
-- keys were computed for every member at each page (a subquery per member over
-- restore_summary and restic_repositories, then a sort: 0.13 s at 1,000 members, growing with
-- the federation). They are kept here, one row per member, with the member's name, so that a
-- page walks one of three indexes and reads only its rows.
--
--   worst       rank of the worst latest outcome of the member's repositories that are not
--               deleted: 0 failed, 1 error, 2 warning, 3 never tested (or any other), 4 passed,
--               5 no repository (from restore_summary)
--   oldest_key  the oldest of the repositories' last_snapshot_time in microseconds since the
--               epoch; 9223372036854775807 when none is known (last in the order)
--   oldest      that moment (NULL: none known)
--
-- Kept by triggers in the transaction of the change: a member's row is written when the member
-- is created or renamed, when its restore_summary rows change, and when one of its
-- repositories' last_snapshot_time, deleted_at or member changes.
CREATE TABLE restore_grid (
    member_id  bigint PRIMARY KEY REFERENCES members (id) ON DELETE CASCADE,
    name       text NOT NULL,
    worst      smallint NOT NULL DEFAULT 5,
    oldest     timestamptz,
    oldest_key bigint NOT NULL DEFAULT 9223372036854775807
);
CREATE INDEX restore_grid_worst_idx ON restore_grid (worst, name, member_id);
CREATE INDEX restore_grid_name_idx ON restore_grid (name, member_id);
CREATE INDEX restore_grid_oldest_idx ON restore_grid (oldest_key, name, member_id);

-- PL/pgSQL (not SQL) functions: their statements' plans are kept for the session, where an
-- SQL function called from a trigger is planned again at each row.
CREATE FUNCTION restore_grid_set_worst(member bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    w smallint;
BEGIN
    SELECT coalesce(min(CASE outcome WHEN 'failed' THEN 0 WHEN 'error' THEN 1 WHEN 'warning' THEN 2
            WHEN 'passed' THEN 4 ELSE 3 END), 5)::smallint INTO w
        FROM restore_summary WHERE member_id = member AND repositories > 0;
    UPDATE restore_grid SET worst = w WHERE member_id = member AND worst <> w;
END $$;

CREATE FUNCTION restore_grid_set_oldest(member bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
BEGIN
    SELECT min(last_snapshot_time) INTO t FROM restic_repositories WHERE member_id = member AND deleted_at IS NULL;
    UPDATE restore_grid SET oldest = t,
            oldest_key = coalesce((extract(epoch FROM t) * 1000000)::bigint, 9223372036854775807)
        WHERE member_id = member AND oldest IS DISTINCT FROM t;
END $$;

CREATE FUNCTION restore_grid_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO restore_grid (member_id, name) VALUES (NEW.id, NEW.name) ON CONFLICT (member_id) DO NOTHING;
    ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
        UPDATE restore_grid SET name = NEW.name WHERE member_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER restore_grid_members AFTER INSERT OR UPDATE OF name ON members
    FOR EACH ROW EXECUTE FUNCTION restore_grid_members();

CREATE FUNCTION restore_grid_summary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM restore_grid_set_worst(OLD.member_id);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND (TG_OP = 'INSERT' OR NEW.member_id <> OLD.member_id) THEN
        PERFORM restore_grid_set_worst(NEW.member_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER restore_grid_summary AFTER INSERT OR UPDATE OR DELETE ON restore_summary
    FOR EACH ROW EXECUTE FUNCTION restore_grid_summary();

CREATE FUNCTION restore_grid_repositories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM restore_grid_set_oldest(OLD.member_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.member_id <> OLD.member_id) THEN
        PERFORM restore_grid_set_oldest(NEW.member_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER restore_grid_repositories_insert_delete AFTER INSERT OR DELETE ON restic_repositories
    FOR EACH ROW EXECUTE FUNCTION restore_grid_repositories();
CREATE TRIGGER restore_grid_repositories_update AFTER UPDATE ON restic_repositories
    FOR EACH ROW WHEN (OLD.last_snapshot_time IS DISTINCT FROM NEW.last_snapshot_time
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at OR OLD.member_id <> NEW.member_id)
    EXECUTE FUNCTION restore_grid_repositories();

INSERT INTO restore_grid (member_id, name, worst, oldest, oldest_key)
    SELECT m.id, m.name, coalesce(w.worst, 5), o.t, coalesce((extract(epoch FROM o.t) * 1000000)::bigint, 9223372036854775807)
    FROM members m
    LEFT JOIN (SELECT member_id, min(CASE outcome WHEN 'failed' THEN 0 WHEN 'error' THEN 1 WHEN 'warning' THEN 2
            WHEN 'passed' THEN 4 ELSE 3 END)::smallint AS worst
        FROM restore_summary WHERE repositories > 0 GROUP BY member_id) w ON w.member_id = m.id
    LEFT JOIN (SELECT member_id, min(last_snapshot_time) AS t FROM restic_repositories
        WHERE deleted_at IS NULL GROUP BY member_id) o ON o.member_id = m.id;
