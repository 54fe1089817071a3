// Package audit owns Archipelago's audit log, a transparency log every member can verify.
//
// Every mutation calls Record inside the database transaction of the change, so a change
// without its entry cannot commit (fail-closed). Who acts (a user, an API token, a system
// job) and the request's id and source address travel in the context, set once by the HTTP
// middleware or the job runner; call sites only say what happened. Details must never hold
// a secret: where the identity of a secret matters, record a fingerprint of it
// (Fingerprint).
//
// Each entry is a leaf of an RFC 6962 Merkle tree built with golang.org/x/mod/sumdb/tlog:
// its canonical encoding (LogEntry.Leaf) covers every column, and the tree's stored hashes
// the append creates are written by Record in the entry's own row, under the append lock:
// computed by the process from the head it last wrote when the context carries an Appender
// (the archipelago command gives each process one), checked by the database, else computed
// by the database. A Service signs
// checkpoints (signed tree heads, in the golang.org/x/mod/sumdb/note format) periodically
// and on demand, and serves entries, inclusion and consistency proofs. Verify recomputes
// the tree from the database and checks it against every signed checkpoint; VerifyRemote
// lets a member check, through the API alone, that the log it saw earlier is a prefix of
// today's.
//
// The checkpoint key's name (the log's origin) is stored in the database, chosen once by
// migration 010, so every process signs and verifies with the same key whatever its
// ARCHIPELAGO_PUBLIC_URL (LoadKeys). Entry times never go back and stay within a second of
// the database's clock, read under the append lock (Appender). Authentication and account entries (Personal) are visible only to the person
// they concern, that person's member admins and federation admins (Visibility).
//
// The tables are append-only (a trigger refuses UPDATE, DELETE and TRUNCATE). This
// package must never store or log a secret, and never rewrite an entry.
package audit
