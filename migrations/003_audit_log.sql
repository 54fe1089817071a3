-- The audit log becomes a transparency log: every entry is a leaf of an RFC 6962 Merkle
-- tree (golang.org/x/mod/sumdb/tlog), whose stored hashes internal/audit writes in the
-- entry's own row; signed tree heads (checkpoints) are kept alongside. Entries (with their
-- hashes) and checkpoints are append-only: UPDATE, DELETE and TRUNCATE are refused.

-- Each entry carries the stored hashes of the tree its append created (tlog.StoredHashes):
-- its leaf hash, then one interior node per trailing 1 bit of its seq, from level 1 up. The
-- hash tlog numbers (level, n) is therefore byte 32*level of the entry
-- ((n + 1) << level) - 1. Written in the same row, by the same statement, as the entry.
ALTER TABLE audit_entries ADD COLUMN tree_hashes bytea NOT NULL
    CHECK (length(tree_hashes) BETWEEN 32 AND 64 * 32 AND length(tree_hashes) % 32 = 0);

-- audit_tree_hashes returns what the append of entry n stores in tree_hashes, given its
-- leaf hash: the leaf hash, then for each trailing 1 bit of n (level i from 0) the node
-- SHA-256(0x01 || sibling || hash so far), the sibling being byte 32*i of the tree_hashes of
-- entry ((n >> i) << i) - 1. NULL when a sibling is missing. Called by internal/audit's append
-- statement, under the append lock.
CREATE FUNCTION audit_tree_hashes(n bigint, leaf bytea) RETURNS bytea
LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
    h   bytea := leaf;
    out bytea := leaf;
    sib bytea;
    i   int := 0;
BEGIN
    WHILE (n >> i) & 1 = 1 LOOP
        SELECT substring(e.tree_hashes FROM 32 * i + 1 FOR 32) INTO sib FROM audit_entries e WHERE e.seq = ((n >> i) << i) - 1;
        h := sha256('\x01'::bytea || sib || h);
        out := out || h;
        i := i + 1;
    END LOOP;
    RETURN out;
END $$;

-- Signed tree heads: a note (golang.org/x/mod/sumdb/note) whose text is a checkpoint
-- "<origin>\n<tree size>\n<base64 root hash>\n", signed with the audit signing key.
CREATE TABLE audit_checkpoints (
    tree_size  bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash  bytea NOT NULL CHECK (length(root_hash) = 32),
    note       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Filters of the audit API.
CREATE INDEX audit_entries_target_idx ON audit_entries (target_type, target_id, seq);
CREATE INDEX audit_entries_actor_idx ON audit_entries (actor_id, seq);
