// Package attest owns member-side attestations (issue 15, docs/agent.md): the Ed25519
// public keys members register per repository for their agents, the agent's statement (an
// in-toto Statement v1 in a DSSE envelope), the checks that accept or refuse one (the
// signature against the repository's non-revoked keys, the binding to the repository, its
// snapshot and the time, replays), the stored envelopes, the expected agent schedule and
// its stale alert, and the agent itself (`archipelago agent`), which runs the levels that
// need the restic password on the member's machine through internal/verify.MemberRun.
//
// What it must not do: hold or ask for a repository password or an agent's private key,
// exec restic itself, or touch a repository's mode (a repository with a registered key is
// attested whatever its mode). Its SQL lives here; its errors are internal/problem's.
package attest
