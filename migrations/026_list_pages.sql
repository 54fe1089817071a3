-- Scale (issue 20): list pages whose cost grew with the federation.

-- Reports newest first: the dashboard's latest reports and a federation admin's pages of
-- reports (internal/reports Page) read every report and sorted them for each view (20,000
-- reports at 10,000 members, 22–71 ms of SQL per dashboard view); they walk this index from
-- the cursor and stop at the page's end.
CREATE INDEX reports_generated_idx ON reports (generated_at DESC, id DESC);

-- The restore-tests page's outcome counts over the whole federation (internal/verify
-- OutcomeCounts for a federation admin): repositories not deleted by latest outcome ('none':
-- never tested), the sums of restore_summary (migration 018) per outcome. Summing
-- restore_summary at each view read a few rows per member (26 ms at 10,000 members, growing
-- with the federation).
--
-- Kept as deltas, by a trigger on restore_summary, so every change of the summary (a test that
-- changes a repository's outcome, a repository added or deleted, a cascade) moves them. Rows
-- are only inserted, never updated, in the transaction of the change: no lock is taken, so
-- writers never wait on each other for them and cannot deadlock (one row per outcome updated in
-- place would be locked by two tests moving outcomes in opposite directions in opposite
-- orders, and a bulk update of 100,000 repositories would update the same rows 200,000 times).
-- A read sums them per outcome and folds them into one row per outcome when there are many
-- (verify.OutcomeCounts): the DELETE … RETURNING and the INSERT of the sums are one statement,
-- so the totals never change, and rows inserted by transactions not yet committed are not
-- seen, so they stay. The read costs the changes since the last fold, not the federation.
CREATE TABLE restore_outcome_deltas (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outcome      text NOT NULL,
    repositories bigint NOT NULL
);

CREATE FUNCTION restore_outcome_deltas_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.outcome = OLD.outcome THEN
        IF NEW.repositories <> OLD.repositories THEN
            INSERT INTO restore_outcome_deltas (outcome, repositories) VALUES (NEW.outcome, NEW.repositories - OLD.repositories);
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.repositories <> 0 THEN
        INSERT INTO restore_outcome_deltas (outcome, repositories) VALUES (OLD.outcome, -OLD.repositories);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.repositories <> 0 THEN
        INSERT INTO restore_outcome_deltas (outcome, repositories) VALUES (NEW.outcome, NEW.repositories);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER restore_outcome_deltas AFTER INSERT OR UPDATE OR DELETE ON restore_summary
    FOR EACH ROW EXECUTE FUNCTION restore_outcome_deltas_apply();

INSERT INTO restore_outcome_deltas (outcome, repositories)
    SELECT outcome, sum(repositories) FROM restore_summary GROUP BY outcome;
