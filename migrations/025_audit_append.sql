-- The length check on audit_entries.tree_hashes (migration 003) becomes a domain's: the same
-- condition, checked on every insert as before, but PostgreSQL reads a table CHECK
-- constraint's stored expression and plans it again at every insert, while a domain's is
-- prepared once per connection (its type cache). Appends are serialised, so that work was
-- done under the append lock. Nothing stored changes: the column keeps its bytes (bytea
-- under the domain: no rewrite), and the constraint is validated against every existing row
-- when it is added.
CREATE DOMAIN audit_tree_hashes_bytes AS bytea;
ALTER TABLE audit_entries ALTER COLUMN tree_hashes TYPE audit_tree_hashes_bytes;
ALTER DOMAIN audit_tree_hashes_bytes ADD CONSTRAINT audit_tree_hashes_length
    CHECK (length(VALUE) BETWEEN 32 AND 64 * 32 AND length(VALUE) % 32 = 0);
ALTER TABLE audit_entries DROP CONSTRAINT audit_entries_tree_hashes_check;
