// Package garage is Archipelago's typed client for the admin API v2 of a Garage
// cluster (one island).
//
// It owns the HTTP conversation with Garage's admin endpoint: the bearer token,
// a timeout on every call, retries of reads and of 503 answers with exponential
// backoff and jitter, and the translation of Garage's JSON error bodies into
// *APIError values that match the sentinels of this package with errors.Is
// (ErrNotFound, ErrConflict, ErrBucketNotEmpty, ErrAccessDenied, ErrInvalidRequest,
// ErrUnavailable). Failures to reach Garage at all are *TransportError values, so
// "Garage said no" and "Garage could not be asked" stay distinguishable.
//
// It must not hold policy: it does not decide who gets which bucket or quota, it
// keeps no state besides its configuration, and it never logs or prints the
// admin token. The operations follow the OpenAPI document of Garage v2.3
// (testdata/garage-admin-v2.json), which the contract tests validate every
// request and response against, using the simulator in internal/garagesim.
//
// Where Garage's API is easy to misuse the Go shape is narrower than the wire:
// bucket quotas always send both maxSize and maxObjects, permission changes take
// a set of flags to change (Allow/Deny) or an absolute wanted state
// (SetBucketKeyPermissions), layout role changes always carry zone, capacity and
// tags, and ApplyStagedLayout reads the current version before applying +1.
package garage
