-- Restore tests: a heartbeat per running test, so that a test whose worker died (killed,
-- crashed, its machine gone) is noticed within minutes and retried, instead of waiting for
-- River's stuck-job rescue (the test timeout, hours). Written by the worker every
-- verify.Config.HeartbeatEvery with the database's clock; read by the sweeper
-- (restore_sweep job) and by "run now".
ALTER TABLE restore_test_runs ADD COLUMN heartbeat_at timestamptz;
