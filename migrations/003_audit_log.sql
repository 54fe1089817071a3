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

-- tlog's stored hash index for (level, n). Mirrors tlog.StoredHashIndex; internal/audit
-- checks the two agree.
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

-- One field of a leaf: its length as an unsigned varint (encoding/binary.AppendUvarint),
-- then its bytes.
CREATE FUNCTION audit_leaf_field(b bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    n bigint := length(b);
    out bytea := '';
BEGIN
    WHILE n >= 128 LOOP
        out := out || set_byte('\x00'::bytea, 0, ((n & 127) | 128)::int);
        n := n >> 7;
    END LOOP;
    RETURN out || set_byte('\x00'::bytea, 0, n::int) || b;
END $$;

-- The stored hash indexes an append of leaf n combines with (tlog.StoredHashesForRecordHash),
-- from level 0 up: one per trailing 1 bit of n.
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

-- audit_append appends an entry and the tree's new stored hashes in one call, so that
-- internal/audit's Record takes one round trip. It takes the append lock (a
-- transaction-scoped advisory lock on 0x6175646974, "audit" in ASCII: audit.appendLockID),
-- held until the caller's transaction ends, so sequence numbers have no gaps and the tree
-- cannot fork. The leaf (LogEntry.Leaf in internal/audit/leaf.go) is the version line, then
-- 12 length-prefixed fields: seq and details are encoded here, as assigned and as jsonb
-- renders the stored value; the ten fields between them (time, actor kind, id and name,
-- member id, action, target type and id, request id, source address) come encoded by Record
-- from the same values it passes as columns (mid). The leaf hash is SHA-256(0x00 || leaf) and
-- each interior node SHA-256(0x01 || left || right) (RFC 6962), stored as tlog.StoredHashes
-- numbers them.
--
-- It returns the entry's seq, its details as stored and its leaf hash; Record recomputes the
-- leaf from the values it holds and fails the change unless the hashes agree. When the
-- stored hashes do not end where the entries do (entries written before the log was a
-- tree), it appends nothing and returns a NULL seq: Record hashes those entries and calls
-- it again.
CREATE FUNCTION audit_append(at timestamptz, actor_kind text, actor_id text, actor_name text,
                             member_id bigint, action text, target_type text, target_id text,
                             request_id text, source_ip text, details jsonb, mid bytea,
                             OUT seq bigint, OUT details_text text, OUT leaf_hash bytea)
LANGUAGE plpgsql AS $$
DECLARE
    n      bigint;
    stored bigint;
    first  bigint;
    sibs   bytea[];
    h      bytea;
    hashes bytea[];
BEGIN
    PERFORM pg_advisory_xact_lock(418581342580); -- 0x6175646974
    -- A statement after the lock: its snapshot sees every append committed before.
    SELECT head.n, (SELECT coalesce(max(t.idx) + 1, 0) FROM audit_tree_hashes t),
           ARRAY(SELECT t.hash FROM unnest(audit_append_reads(head.n)) WITH ORDINALITY AS r(i, o)
                 JOIN audit_tree_hashes t ON t.idx = r.i ORDER BY r.o)
    INTO n, stored, sibs
    FROM (SELECT coalesce(max(e.seq) + 1, 0) AS n FROM audit_entries e) head;
    first := audit_stored_hash_index(0, n); -- = tlog.StoredHashCount(n)
    IF stored <> first THEN
        RETURN; -- seq stays NULL: Record backfills
    END IF;
    IF coalesce(array_length(sibs, 1), 0) <> coalesce(array_length(audit_append_reads(n), 1), 0) THEN
        RAISE EXCEPTION 'the audit tree lacks a stored hash entry % needs: run `archipelago audit verify`', n;
    END IF;
    details_text := details::text;
    h := sha256('\x00'::bytea || convert_to('archipelago-audit-leaf/v1' || chr(10), 'UTF8')
                || audit_leaf_field(convert_to(n::text, 'UTF8')) || mid
                || audit_leaf_field(convert_to(details_text, 'UTF8')));
    leaf_hash := h;
    hashes := ARRAY[h];
    FOR i IN 1..coalesce(array_length(sibs, 1), 0) LOOP
        h := sha256('\x01'::bytea || sibs[i] || h);
        hashes := hashes || h;
    END LOOP;
    WITH entry AS (
        INSERT INTO audit_entries (seq, at, actor_kind, actor_id, actor_name, member_id, action,
                                   target_type, target_id, request_id, source_ip, details)
        VALUES (n, audit_append.at, audit_append.actor_kind, audit_append.actor_id, audit_append.actor_name,
                audit_append.member_id, audit_append.action, audit_append.target_type, audit_append.target_id,
                audit_append.request_id, audit_append.source_ip, audit_append.details)
    )
    INSERT INTO audit_tree_hashes (idx, hash)
    SELECT first + u.o - 1, u.x FROM unnest(hashes) WITH ORDINALITY AS u(x, o);
    seq := n;
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
