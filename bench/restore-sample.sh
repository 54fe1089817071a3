#!/usr/bin/env bash
# restore-sample.sh — see docs/restore-tests.md, "Benchmarks". Prints the ratio and the goal.
# Runs inside `archipelago testenv` (throwaway PostgreSQL and MinIO), starting it when needed.
# Flags pass through to `go run ./bench/restorebench sample` (-help lists them).
source "$(dirname "$0")/testenv.sh"
exec go run ./bench/restorebench sample "$@"
