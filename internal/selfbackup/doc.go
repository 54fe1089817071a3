// Package selfbackup owns the coordinator's own backup (docs/deploy.md, "The
// coordinator's own backup and disaster recovery"): Archipelago dumps its own PostgreSQL
// with pg_dump, which restic runs and streams into a restic repository in a vault on an
// island (`restic backup --stdin-from-command`: a failing pg_dump leaves no snapshot), then
// forgets old snapshots after a retention policy. The vault belongs to the member that
// stands for the federation; the repository is registered with internal/verify like any
// member's (full mode), so the ordinary restore-test levels run on it and show in reports
// and on the portal. A restore check of its own restores the newest dump, loads it with
// pg_restore into a throwaway PostgreSQL and compares the schema version and row counts
// with those recorded in the snapshot's tags at backup time.
//
// The repository password and the S3 secret are sealed with the master key and also given
// once, at `archipelago admin backup init`, as a recovery kit (Kit): if the coordinator is
// lost, its database and master key go with it, so Restore works from the kit alone.
//
// It runs restic only through internal/restic. What it must not do: log, audit or return a
// secret (the kit is returned once by Init and never stored in clear).
package selfbackup
