-- Protected vaults, continued (docs/protection.md): restore tests that target the copy,
-- and the end of a purged vault's copy. Owned by internal/protection (vault_protection)
-- and internal/verify (the test target of repositories and runs).

-- A read-only verifier key on the copy bucket, provisioned with the copy and kept like the
-- vault's verifier key (secret sealed under "vault/<vault_id>/copy_verifier_secret"): the
-- restore tests of a repository whose policy targets the copy read it with this key, never
-- with Archipelago's copy key (which can write).
ALTER TABLE vault_protection
    ADD COLUMN copy_verifier_key_id      text,
    ADD COLUMN copy_verifier_secret_sealed text,
    -- a purged vault's copy is kept until copy_purge_after (the vault's purge + the
    -- deletion grace period), then deleted; copy_purged_at records the end
    ADD COLUMN copy_purge_after          timestamptz,
    ADD COLUMN copy_purge_started_at     timestamptz,
    ADD COLUMN copy_purged_at            timestamptz,
    ADD CHECK ((copy_verifier_key_id IS NULL) = (copy_verifier_secret_sealed IS NULL));

-- Which side of a vault a repository's restore tests read: the vault itself (source) or
-- its protected copy on the second island (copy). NULL: source.
ALTER TABLE restic_repositories ADD COLUMN test_target text CHECK (test_target IN ('source', 'copy'));

-- Which side a run tested.
ALTER TABLE restore_test_runs ADD COLUMN target text NOT NULL DEFAULT 'source' CHECK (target IN ('source', 'copy'));
