// Package protection keeps the federation's core promise: a stolen member key cannot
// destroy that member's backups. Garage gives a member key write permission, which
// includes deleting objects and setting lifecycle rules, and has neither versioning nor
// object lock; this package compensates (docs/protection.md):
//
//   - the lifecycle tripwire (CheckLifecycle) reads every vault's lifecycle rules on a
//     short period, removes any rule Archipelago did not set (an Expiration rule is a
//     critical alert) and keeps Archipelago's AbortIncompleteMultipartUpload rule on every
//     vault;
//   - the protected copy (CopyAll) copies each vault by object name to a bucket on a second
//     island the member does not operate, written only by Archipelago's copy key, verifying
//     each restic object against the SHA-256 in its name, never copying an overwrite over a
//     good object, and deleting from the copy only what stayed deleted from the vault for
//     the federation's grace period;
//   - freeze (Freeze, RequestUnfreeze, ApplyUnfreezes) makes a vault's member keys
//     read-only at once and stops deletions in the copy; unfreezing takes effect after a
//     delay.
//
// It owns the tables protection_settings, vault_protection, vault_copy_objects and
// vault_copy_runs. It calls Garage through internal/garage and S3 through minio-go with
// bounded timeouts; every mutation is audited in its transaction; no secret is logged or
// audited. It must not decide authorization: callers ask internal/authz first.
package protection
