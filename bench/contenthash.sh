#!/usr/bin/env bash
# contenthash.sh — see docs/restore-tests.md, "Benchmarks" (issue 15). Prints the ratio and the goal.
# Runs inside `archipelago testenv` (throwaway PostgreSQL and MinIO), starting it when needed.
# Flags pass through to `go run ./bench/restorebench contenthash` (-help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
export ARCHIPELAGO_MINIO="${ARCHIPELAGO_MINIO:-$PWD/.tools/bin/minio}"
export ARCHIPELAGO_RESTIC="${ARCHIPELAGO_RESTIC:-$PWD/.tools/bin/restic}"
if [[ -z "${ARCHIPELAGO_TEST_PG_URL:-}" ]]; then
	[[ -x bin/archipelago ]] || go build -o bin/archipelago ./cmd/archipelago
	exec bin/archipelago testenv -- "$0" "$@"
fi
exec go run ./bench/restorebench contenthash "$@"
