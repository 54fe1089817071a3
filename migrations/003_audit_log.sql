-- The audit log becomes a transparency log: every entry is a leaf of an RFC 6962 Merkle
-- tree (golang.org/x/mod/sumdb/tlog), whose stored hashes are written by internal/audit in
-- the same transaction as the entry; signed tree heads (checkpoints) are kept alongside.
-- Entries, hashes and checkpoints are append-only: UPDATE, DELETE and TRUNCATE are refused.

-- Stored hashes of the tree, indexed as tlog.StoredHashIndex numbers them (level 0 hashes
-- are the leaf hashes). Record appends the hashes for entry n after those of entry n-1.
CREATE TABLE audit_tree_hashes (
    idx  bigint PRIMARY KEY CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32)
);

-- Signed tree heads: a note (golang.org/x/mod/sumdb/note) whose text is a checkpoint
-- "<origin>\n<tree size>\n<base64 root hash>\n", signed with the audit signing key.
CREATE TABLE audit_checkpoints (
    tree_size  bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash  bytea NOT NULL CHECK (length(root_hash) = 32),
    note       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- tlog's stored hash index for (level, n), so an append can read the hashes it needs in the
-- same round trip that takes the append lock (see internal/audit). Mirrors
-- tlog.StoredHashIndex; internal/audit checks the two agree.
CREATE FUNCTION audit_stored_hash_index(level int, n bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    i bigint := 0;
BEGIN
    FOR l IN 1..level LOOP
        n := 2 * n + 1;
    END LOOP;
    WHILE n > 0 LOOP
        i := i + n;
        n := n >> 1;
    END LOOP;
    RETURN i + level;
END $$;

-- The stored hash indexes an append of leaf n reads (tlog.StoredHashesForRecordHash): one
-- per trailing 1 bit of n.
CREATE FUNCTION audit_append_reads(n bigint) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    out bigint[] := '{}';
    i int := 0;
BEGIN
    WHILE ((n >> i) & 1) = 1 LOOP
        out := out || audit_stored_hash_index(i, (n >> i) - 1);
        i := i + 1;
    END LOOP;
    RETURN out;
END $$;

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
CREATE TRIGGER audit_tree_hashes_append_only BEFORE UPDATE OR DELETE ON audit_tree_hashes
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_tree_hashes_no_truncate BEFORE TRUNCATE ON audit_tree_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Filters of the audit API.
CREATE INDEX audit_entries_target_idx ON audit_entries (target_type, target_id, seq);
CREATE INDEX audit_entries_actor_idx ON audit_entries (actor_id, seq);
