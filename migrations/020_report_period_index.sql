-- Scale (issue 20): a federation report sums the runs of its period per repository in one
-- statement (internal/reports, gatherTotals). This index lets that statement read the
-- period's runs only — a week is 700,000 runs at 10,000 members, a year of history 36.5
-- million — instead of every run (a sequential scan) or each repository's runs through
-- its own index (100,000 index walks reading the heap at random: 22 s on a loaded 2-core
-- machine).
CREATE INDEX restore_test_runs_finished_idx ON restore_test_runs (finished_at) WHERE finished_at IS NOT NULL;
