# testenv.sh — sourced by the benchmark scripts: from the repository's root, with the pinned
# MinIO and restic, re-runs the calling script inside `archipelago testenv` (throwaway PostgreSQL
# and MinIO) unless it already runs in one.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
export ARCHIPELAGO_MINIO="${ARCHIPELAGO_MINIO:-$PWD/.tools/bin/minio}"
export ARCHIPELAGO_RESTIC="${ARCHIPELAGO_RESTIC:-$PWD/.tools/bin/restic}"
if [[ -z "${ARCHIPELAGO_TEST_PG_URL:-}" ]]; then
	[[ -x bin/archipelago ]] || go build -o bin/archipelago ./cmd/archipelago
	exec bin/archipelago testenv -- "$0" "$@"
fi
