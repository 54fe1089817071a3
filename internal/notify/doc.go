// Package notify owns notifications: channels (a webhook signed with HMAC-SHA256, or an
// email address reached over SMTP), per member or federation-wide; the events other
// domains emit (Emit, in their transaction); de-duplication and digests, so one broken
// repository sends one message per channel and then a digest, not a hundred; the outbox
// of deliveries, retried with backoff and visible with their status; and the scanners
// that turn rows of other domains' tables (vault events and usage, pledge status,
// restore-test runs) into events, each behind a cursor.
//
// Webhook URLs are members' input: they are checked when a channel is saved and again at
// every connection (the resolved address, so DNS cannot rebind them), and must not reach
// loopback, private, link-local or cloud-metadata addresses unless the configuration
// allows private addresses (the sandbox and tests); metadata addresses are never allowed.
//
// This package must never log or show a webhook secret, and shows webhook URLs only in a
// redacted form (they often carry tokens).
//
// Naming: reads are named noun first, NounGetByID / NounGetBySlug / NounList (ChannelGetByID, ChannelList);
// audited writes are Service methods (NounCreate, NounUpdate, NounDelete and verbs). Errors
// are those of internal/problem (this package's FieldError and ErrNotFound are problem's),
// which both front ends map without knowing this package.
package notify
