-- The audit log's name, chosen once; personal audit entries; nothing else changes.

-- The audit log's name: the origin of its checkpoints and the name in its public key
-- ("name+hash+base64", which members keep). It used to follow ARCHIPELAGO_PUBLIC_URL, so a
-- process without exactly that URL (a worker, the CLI) disagreed with `serve`, and a domain
-- change broke every member's saved key. It is now chosen once, here, and read by every
-- process (internal/audit LoadKeys). Rows are never changed or removed.
CREATE TABLE audit_key_names (
    name       text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:space:]+]'),
    -- The name the log signs with; the others are former names whose checkpoints (signed
    -- by the same key) still verify.
    current    boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX audit_key_names_one_current ON audit_key_names (current) WHERE current;
CREATE TRIGGER audit_key_names_append_only BEFORE UPDATE OR DELETE ON audit_key_names
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_key_names_no_truncate BEFORE TRUNCATE ON audit_key_names
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- An existing log keeps the name of its latest checkpoint (what members saved); the names of
-- older checkpoints (signed before a change of public URL) are kept as former names.
INSERT INTO audit_key_names (name, current)
SELECT o.origin, o.origin = (SELECT split_part(note, E'\n', 1) FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1)
FROM (SELECT DISTINCT split_part(note, E'\n', 1) AS origin FROM audit_checkpoints) o
WHERE length(o.origin) BETWEEN 1 AND 200 AND o.origin !~ '[[:space:]+]';

-- A log without checkpoints gets a name of its own, unique to this deployment.
INSERT INTO audit_key_names (name, current)
SELECT 'archipelago-audit/' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16), true
WHERE NOT EXISTS (SELECT 1 FROM audit_key_names WHERE current);

-- Personal entries: authentication and account entries (auth.*, user.*) are visible only to
-- the person they concern, the admins of that person's members, and federation admins —
-- not to every member, as entries without a member are. A row here makes an entry personal;
-- person_id is the person (NULL when nobody is known, e.g. a failed login for an unknown
-- email: federation admins only). Written by internal/audit Record in the entry's own
-- statement; append-only like the log. (Visibility only: the entry's leaf is unchanged.)
CREATE TABLE audit_entry_people (
    seq       bigint PRIMARY KEY,
    person_id bigint
);
CREATE INDEX audit_entry_people_person_idx ON audit_entry_people (person_id);
CREATE TRIGGER audit_entry_people_append_only BEFORE UPDATE OR DELETE ON audit_entry_people
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entry_people_no_truncate BEFORE TRUNCATE ON audit_entry_people
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

INSERT INTO audit_entry_people (seq, person_id)
SELECT e.seq, CASE
        WHEN e.target_type = 'user' AND e.target_id ~ '^[0-9]{1,18}$' THEN e.target_id::bigint
        WHEN e.actor_kind = 'user' AND e.actor_id ~ '^[0-9]{1,18}$' THEN e.actor_id::bigint
        ELSE (SELECT u.id FROM users u WHERE u.email = lower(e.actor_name))
    END
FROM audit_entries e
WHERE starts_with(e.action, 'auth.') OR starts_with(e.action, 'user.');
