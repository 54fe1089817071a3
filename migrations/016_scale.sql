-- Scale (issue 20): events read by time across every member — the federation's event list
-- page by page (newest first) and a federation report's incidents of its period — seek
-- this index instead of sorting the whole table.
CREATE INDEX notify_events_at_idx ON notify_events (at, id);
