// Package vaults owns members' storage in the federation: vaults (a Garage bucket with a
// quota on an island the member does not operate), the member S3 keys on them (read and
// write on that bucket only, secrets shown once and never kept), the read-only verifier
// key Archipelago keeps sealed for restore verification, usage history and thresholds,
// soft deletion, and the background work that keeps Garage in line with PostgreSQL
// (ReconcileAll, CollectUsage, DeleteExpiredKeys, PurgeDeletedVaults).
//
// PostgreSQL holds the desired state; Garage is changed only through internal/garage
// with bounded timeouts. The placement rule and quota arithmetic come from internal/quota.
// Every mutation is audited in its transaction; no secret is ever logged or audited.
// It must not decide authorization: callers ask internal/authz first.
//
// Naming: reads are named noun first, NounGetByID / NounGetBySlug / NounList (VaultGetByID, KeyGetByID, GrantGetByID (Service methods, as they need the keyring), VaultList);
// audited writes are Service methods (NounCreate, NounUpdate, NounDelete and verbs). Errors
// are those of internal/problem (this package's FieldError and ErrNotFound are problem's),
// which both front ends map without knowing this package.
package vaults
