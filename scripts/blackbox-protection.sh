#!/usr/bin/env bash
# Black-box check of protected vaults (docs/protection.md, "Black-box check").
#
# Against a running sandbox (`archipelago dev`), with only the REST API (curl with a
# token), S3 (curl --aws-sigv4, as any S3 client would) and restic, it plays a thief
# holding a member's restic credentials and checks that the member's backups survive:
#
#   1. a federation admin creates a vault for MEMBER and a member key (API);
#   2. the member backs up twice with restic; the copy catches up;
#   3. with the member key: `restic forget --prune` of every snapshot, delete every
#      remaining object, set an Expiration lifecycle rule;
#   4. within one tripwire period + one copy period (+ slack): the lifecycle alert fired
#      and the rule is gone, the deletions are reported (pending in the copy);
#   5. the member's read-only copy key (API) restores the data from the copy with restic,
#      bit for bit (cmp); that key, and the member key, cannot write in the copy.
#
# Usage: scripts/blackbox-protection.sh [path/to/sandbox.json]
# Environment: RESTIC (restic binary, default: restic on PATH or .tools/bin/restic),
# MEMBER (default garrigue-net: a demo member whose vaults get a copy), TIMEOUT (seconds
# for each wait, default 600). Needs bash, curl (≥ 7.75, for --aws-sigv4), jq, openssl, cmp.
# Exit status 0 when every check passes; the first failed check is printed.
set -euo pipefail

SANDBOX_JSON=${1:-${ARCHIPELAGO_SANDBOX_JSON:-}}
if [[ -z $SANDBOX_JSON ]]; then
	echo "usage: $0 path/to/sandbox.json (written by archipelago dev in its state directory)" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
RESTIC=${RESTIC:-$(command -v restic || echo "$here/.tools/bin/restic")}
MEMBER=${MEMBER:-garrigue-net}
TIMEOUT=${TIMEOUT:-600}
BASE=$(jq -r .base_url "$SANDBOX_JSON")
ADMIN_EMAIL=$(jq -r '[.users[] | select(.role == "federation admin")][0].email' "$SANDBOX_JSON")
ADMIN_PASSWORD=$(jq -r '[.users[] | select(.role == "federation admin")][0].password' "$SANDBOX_JSON")
work=$(mktemp -d "${TMPDIR:-/tmp}/blackbox-protection.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() {
	printf '\nFAILED: %s\n' "$*" >&2
	exit 1
}

# api METHOD PATH [JSON]: the REST API with the token; fails on a non-2xx answer.
api() {
	local method=$1 path=$2 body=${3:-}
	local args=(-sS -X "$method" -H "Authorization: Bearer $TOKEN" -H 'Accept: application/json' -w '\n%{http_code}')
	[[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data "$body")
	local out code
	out=$(curl "${args[@]}" "$BASE$path")
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	[[ $code == 2* ]] || fail "$method $path answered $code: $out"
	printf '%s' "$out"
}

# s3 KEY SECRET REGION METHOD URL [curl args…]: one signed S3 request; prints the body
# and, on the last line, the HTTP status. A query parameter without a value must be
# written "?lifecycle=" for curl's SigV4 canonical request to match the server's.
s3() {
	local key=$1 secret=$2 region=$3 method=$4 url=$5
	shift 5
	curl -sS -X "$method" --aws-sigv4 "aws:amz:$region:s3" --user "$key:$secret" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -w '\n%{http_code}' "$@" "$url"
}

# wait_for DESCRIPTION SECONDS COMMAND…: polls COMMAND every 5 s until it succeeds.
wait_for() {
	local what=$1 limit=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@"; do
		((SECONDS < deadline)) || fail "$what: not within ${limit}s"
		sleep 5
	done
	ok "$what (after $((SECONDS - deadline + limit))s)"
}

step "log in to $BASE as $ADMIN_EMAIL"
TOKEN=$(curl -sS -fH 'Content-Type: application/json' --data "$(jq -n --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{email: $e, password: $p}')" \
	"$BASE/v1/auth/login" | jq -r .access_token)
[[ -n $TOKEN && $TOKEN != null ]] || fail "no access token"
settings=$(api GET /v1/protection/settings)
COPY_EVERY=$(jq -r .copy_every_seconds <<<"$settings")
ok "copy every ${COPY_EVERY}s, deletion grace $(jq -r .deletion_grace_seconds <<<"$settings")s (the sandbox prints its tripwire period in its banner)"

step "create a vault of $MEMBER and a member key"
name="blackbox-$(date +%s)-$RANDOM"
vault=$(api POST /v1/vaults "$(jq -n --arg m "$MEMBER" --arg n "$name" '{member: $m, name: $n, quota_bytes: 1000000000, idempotency_key: $n}')")
VID=$(jq -r .id <<<"$vault")
BUCKET=$(jq -r .bucket_name <<<"$vault")
S3URL=$(jq -r .s3_endpoint <<<"$vault")
REGION=$(jq -r .s3_region <<<"$vault")
[[ $(jq -r .status <<<"$vault") == active ]] || fail "vault $VID is $(jq -r '.status + ": " + .status_detail' <<<"$vault")"
key=$(api POST "/v1/vaults/$VID/keys" '{"name": "laptop"}')
AK=$(jq -r .access_key_id <<<"$key")
SK=$(jq -r .secret_access_key <<<"$key")
export RESTIC_REPOSITORY RESTIC_PASSWORD AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
RESTIC_REPOSITORY=$(jq -r .env.RESTIC_REPOSITORY <<<"$key")
AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=$REGION
RESTIC_PASSWORD="blackbox-$RANDOM-$RANDOM-$RANDOM"
export RESTIC_CACHE_DIR=$work/cache
ok "vault $VID ($BUCKET on $S3URL), key $AK"

step "the member backs up twice with restic"
mkdir -p "$work/data" "$work/restored"
head -c 3000000 /dev/urandom >"$work/data/photos.bin"
printf 'the data to keep\n' >"$work/data/notes.txt"
"$RESTIC" init -q
"$RESTIC" backup -q "$work/data"
head -c 500000 /dev/urandom >"$work/data/later.bin"
"$RESTIC" backup -q "$work/data"
backed_up=$(date -u +%s)
ok "2 snapshots"

protection() { api GET "/v1/vaults/$VID/protection"; }
copy_caught_up() {
	local p
	p=$(protection)
	[[ $(jq -r .copy_status <<<"$p") == active ]] || return 1
	local started
	started=$(jq -r '.last_run.started_at // empty' <<<"$p")
	[[ -n $started && $(jq -r .last_run.status <<<"$p") == ok ]] || return 1
	(($(date -ud "$started" +%s) >= backed_up))
}
wait_for "the copy (on another island) holds both backups" "$TIMEOUT" copy_caught_up
p=$(protection)
COPY_BUCKET=$(jq -r .copy_bucket <<<"$p")
ok "copy $COPY_BUCKET on $(jq -r .copy_island_name <<<"$p"), $(jq -r .last_run.objects_in_copy <<<"$p") objects"

step "the thief, with the member key: forget --prune every snapshot, delete every object, set an Expiration rule"
mapfile -t snaps < <("$RESTIC" snapshots --json | jq -r '.[].id')
"$RESTIC" forget -q --prune "${snaps[@]}"
out=$(s3 "$AK" "$SK" "$REGION" GET "$S3URL/$BUCKET?list-type=2")
for obj in $(grep -o '<Key>[^<]*</Key>' <<<"$out" | sed 's/<Key>\(.*\)<\/Key>/\1/'); do
	code=$(s3 "$AK" "$SK" "$REGION" DELETE "$S3URL/$BUCKET/$obj" | tail -n1)
	[[ $code == 204 ]] || fail "the member key could not delete $obj ($code)"
done
left=$(s3 "$AK" "$SK" "$REGION" GET "$S3URL/$BUCKET?list-type=2")
grep -q '<Key>' <<<"$left" && fail "the vault is not empty after the attack"
ok "the vault is empty"
rule='<LifecycleConfiguration><Rule><ID>cleanup</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>'
md5=$(printf '%s' "$rule" | openssl dgst -md5 -binary | base64)
code=$(s3 "$AK" "$SK" "$REGION" PUT "$S3URL/$BUCKET?lifecycle=" -H "Content-MD5: $md5" -H 'Content-Type: application/xml' --data "$rule" | tail -n1)
[[ $code == 200 ]] || fail "the member key could not set a lifecycle rule ($code): Garage lets it, so must the sandbox"
attacked=$(date -u +%s)
ok "Expiration rule set"

step "within one tripwire period and one copy period"
tripped() {
	local p
	p=$(protection)
	[[ $(jq -r '.lifecycle_tripped_at // empty' <<<"$p") != "" ]] || return 1
	(($(date -ud "$(jq -r .lifecycle_tripped_at <<<"$p")" +%s) >= attacked - 1))
}
wait_for "the tripwire removed the rule" "$TIMEOUT" tripped
alert() {
	api GET "/v1/notify/events?limit=500" | jq -e --argjson v "$VID" \
		'[.events[] | select(.kind == "vault.lifecycle" and .severity == "critical" and ((.detail.vault_id // 0) | tonumber) == $v)] | length > 0' >/dev/null
}
wait_for "a critical vault.lifecycle alert fired" 60 alert
rules=$(s3 "$AK" "$SK" "$REGION" GET "$S3URL/$BUCKET?lifecycle=")
grep -q '<Expiration>' <<<"$rules" && fail "the Expiration rule is still on the vault: $rules"
ok "no Expiration rule left on the vault"
deletions_reported() {
	local p
	p=$(protection)
	(($(jq -r .pending_deletion_count <<<"$p") > 0)) || return 1
	api GET "/v1/notify/events?limit=500" | jq -e --argjson v "$VID" \
		'[.events[] | select(.kind == "copy.deletions" and ((.detail.vault_id // 0) | tonumber) == $v)] | length > 0' >/dev/null
}
wait_for "the deletions are reported, pending in the copy" "$TIMEOUT" deletions_reported
p=$(protection)
ok "$(jq -r .pending_deletion_count <<<"$p") pending deletions, first leaves the copy on $(jq -r '.pending_deletions[0].delete_after' <<<"$p")"

step "restore from the copy with the member's read-only copy key"
reader=$(api POST "/v1/vaults/$VID/protection/reader-key" '{}')
RAK=$(jq -r .access_key_id <<<"$reader")
RSK=$(jq -r .secret_access_key <<<"$reader")
RESTIC_REPOSITORY=$(jq -r .env.RESTIC_REPOSITORY <<<"$reader")
AWS_ACCESS_KEY_ID=$RAK AWS_SECRET_ACCESS_KEY=$RSK AWS_DEFAULT_REGION=$(jq -r .env.AWS_DEFAULT_REGION <<<"$reader")
COPY_URL=${RESTIC_REPOSITORY#s3:}
COPY_URL=${COPY_URL%%/"$COPY_BUCKET"/*}
# A fresh key may take a moment to be accepted by every island node.
reader_works() { "$RESTIC" --no-lock snapshots --json >"$work/snaps.json" 2>/dev/null; }
wait_for "the read-only copy key lists the snapshots" 120 reader_works
n=$(jq length "$work/snaps.json")
((n == 2)) || fail "the copy holds $n snapshots, want 2"
"$RESTIC" --no-lock restore -q latest --target "$work/restored"
for f in photos.bin notes.txt later.bin; do
	cmp "$work/data/$f" "$work/restored$work/data/$f" || fail "$f restored from the copy differs"
done
ok "2 snapshots in the copy; the latest restored bit for bit (cmp)"
for who in "read-only copy key:$RAK:$RSK" "member key:$AK:$SK"; do
	IFS=: read -r label k s <<<"$who"
	code=$(s3 "$k" "$s" "$REGION" PUT "$COPY_URL/$COPY_BUCKET/restic/intrusion" --data x | tail -n1)
	[[ $code == 403 ]] || fail "the $label writes in the copy ($code)"
done
ok "neither the read-only copy key nor the member key can write in the copy"

printf '\nPASS: the stolen member key could not destroy the backups of vault %s.\n' "$VID"
