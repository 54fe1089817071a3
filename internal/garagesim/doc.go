// Package garagesim simulates the admin API v2 of a Garage cluster (one
// island) for development, tests and the sandbox, because Garage itself
// cannot be installed on these machines.
//
// It owns an in-memory model of one cluster: access keys, buckets with their
// aliases, per-key permissions and quotas, and simulated nodes, zones,
// capacities and layout versions. It answers with Garage's JSON shapes, status
// codes and error codes (403 AccessDenied, 404 NoSuch*, 409
// BucketAlreadyExists/BucketNotEmpty, 400 InvalidRequest, ...), as described in
// docs/garage-simulator.md.
//
// Its S3 data plane is a real MinIO it is given root credentials for: keys
// become MinIO users, bucket permissions become one canned policy per key
// limited to that key's buckets, expired and deleted keys are disabled or
// removed, maxSize quotas become MinIO hard bucket quotas, and usage comes from
// MinIO's data-usage scanner. Several simulators may share one MinIO: each
// sees and lists only the buckets and keys it created.
//
// It must not be used in production, does not persist anything, and is not a
// model of Garage's consistency: everything is immediate except usage.
package garagesim
