#!/usr/bin/env bash
# Installs the OS packages Archipelago's sandbox and tests need, when they are missing:
# PostgreSQL server binaries, Debian's Chromium (for the portal's browser tests), curl and jq
# (for scripts/blackbox-protection.sh).
# Only acts as root on Debian/Ubuntu; elsewhere it says what is missing.
set -euo pipefail

need=()
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ "${ARCHIPELAGO_SKIP_BROWSER:-}" != "1" ] && [ ! -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi
# scripts/blackbox-protection.sh (run by the sandbox's tests) drives the API with curl and jq.
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing OS packages: ${need[*]} — install them (Debian: apt-get install -y ${need[*]})" >&2
  exit 1
fi

echo "installing OS packages: ${need[*]}"
# Installing postgresql must not start a system cluster (it would outlive the tests):
# keep the package's service from starting and from creating its default cluster.
policy_created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_created=1
fi
trap '[ $policy_created = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
mkdir -p /etc/postgresql-common
grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
  echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
