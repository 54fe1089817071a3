-- Synthetic demo history (issue 17 item 10). The sandbox (`archipelago dev`) writes 30 days
-- of past restore tests for its demo repositories so that charts, the dashboard and
-- reports show what a month looks like. Those runs carry trigger 'demo' so that every page
-- can label them; a real deployment never writes one.
ALTER TABLE restore_test_runs DROP CONSTRAINT restore_test_runs_trigger_check;
ALTER TABLE restore_test_runs ADD CONSTRAINT restore_test_runs_trigger_check
    CHECK (trigger IN ('schedule', 'manual', 'demo'));
