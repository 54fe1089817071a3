#!/usr/bin/env bash
# agent.sh — benchmark (b) of issue 15, see docs/agent.md, "Benchmark". Prints the ratio and the goal.
# Runs inside `archipelago testenv` (throwaway PostgreSQL and MinIO), starting it when needed.
# Flags pass through to `go run ./bench/agentbench` (-help lists them).
source "$(dirname "$0")/testenv.sh"
exec go run ./bench/agentbench "$@"
