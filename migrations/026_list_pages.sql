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
-- with the federation); this holds one row per outcome.
--
-- Kept by a trigger on restore_summary, so every change of the summary (a test that changes a
-- repository's outcome, a repository added or deleted, a cascade) moves it. The trigger is
-- deferred to the commit and takes one transaction-scoped advisory lock before touching these
-- rows: two transactions moving outcomes in opposite directions (one test passing again, another
-- failing) would otherwise lock the same two rows in opposite orders and deadlock, and a
-- transaction holding the lock is committing, so it never waits for a lock held by another.
-- Transactions that change an outcome are serialised at their commit only, for the few row
-- updates below; a test whose outcome does not change does not touch restore_summary.
CREATE TABLE restore_outcome_totals (
    outcome      text PRIMARY KEY,
    repositories bigint NOT NULL CHECK (repositories >= 0)
);

CREATE FUNCTION restore_outcome_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The advisory lock's key: 'outcomes' in ASCII.
    PERFORM pg_advisory_xact_lock(8031453480905172339);
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE restore_outcome_totals SET repositories = repositories - OLD.repositories WHERE outcome = OLD.outcome;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO restore_outcome_totals (outcome, repositories) VALUES (NEW.outcome, NEW.repositories)
            ON CONFLICT (outcome) DO UPDATE SET repositories = restore_outcome_totals.repositories + excluded.repositories;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER restore_outcome_totals AFTER INSERT OR UPDATE OR DELETE ON restore_summary
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION restore_outcome_totals_apply();

INSERT INTO restore_outcome_totals (outcome, repositories)
    SELECT outcome, sum(repositories) FROM restore_summary GROUP BY outcome;
