-- Zero-knowledge verification (issue 15, federation side).
--
-- Three modes of a repository:
--   blind     the federation holds no password: freshness, deletion watch and content-hash
--             integrity (every object's SHA-256 against its name), from the verifier key
--   attested  blind, plus signed attestations pushed by the member's own agent (the
--             member runs the levels that need the password on its machine)
--   full      the federation holds the password of a restic key (password_sealed): every
--             level, after the member's explicit consent (full_consent_*)
ALTER TABLE restic_repositories DROP CONSTRAINT restic_repositories_mode_check;
ALTER TABLE restic_repositories ADD CONSTRAINT restic_repositories_mode_check
    CHECK (mode IN ('full', 'attested', 'blind'));
ALTER TABLE restore_test_runs DROP CONSTRAINT restore_test_runs_mode_check;
ALTER TABLE restore_test_runs ADD CONSTRAINT restore_test_runs_mode_check
    CHECK (mode IN ('full', 'attested', 'blind'));

-- The consent given for full mode: who, when, and which version of the statement of what
-- a restic key implies (verify.FullModeStatementVersion). Kept after a switch back to
-- blind, for the record; a new switch to full needs a new consent.
ALTER TABLE restic_repositories
    ADD COLUMN full_consent_by      text,
    ADD COLUMN full_consent_at      timestamptz,
    ADD COLUMN full_consent_version text CHECK (length(full_consent_version) BETWEEN 1 AND 100),
    ADD CHECK ((full_consent_at IS NULL) = (full_consent_version IS NULL)),
    -- content-hash coverage of the current cycle, as of the last test that hashed:
    -- objects/bytes present, and those hashed within the cycle
    ADD COLUMN contenthash_at             timestamptz,
    ADD COLUMN contenthash_objects_total  bigint,
    ADD COLUMN contenthash_bytes_total    bigint,
    ADD COLUMN contenthash_objects_cycle  bigint,
    ADD COLUMN contenthash_bytes_cycle    bigint,
    ADD COLUMN contenthash_cycle_seconds  bigint;

-- The new level.
ALTER TABLE restore_test_levels DROP CONSTRAINT restore_test_levels_level_check;
ALTER TABLE restore_test_levels ADD CONSTRAINT restore_test_levels_level_check
    CHECK (level IN ('freshness', 'deletions', 'contenthash', 'integrity', 'sample', 'canary', 'full'));

-- Every object of a repository the content-hash level has read (data/, index/,
-- snapshots/, keys/): its size when last seen and when its hash last matched its name. The
-- rotation reads the objects never hashed, then the oldest, so that each is read at least
-- once per cycle. Rows of objects no longer in the bucket are removed by the next test.
CREATE TABLE contenthash_objects (
    repository_id bigint NOT NULL REFERENCES restic_repositories (id) ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 1024),
    size          bigint NOT NULL CHECK (size >= 0),
    hashed_at     timestamptz NOT NULL,
    PRIMARY KEY (repository_id, key)
);
