#!/usr/bin/env bash
# The compose stack, end to end, on podman (what the ops team would run, without a registry):
# builds the image around BINARY and PostgreSQL from Debian's package, makes the secrets, brings
# the stack of deploy/compose.yaml up with podman-compose, drives a short cycle through the
# published gateway port from outside the containers over TLS, checks every container's health,
# restarts one mid-way, and stops the stack with SIGTERM, every qaward container exiting 0.
#
#   deploy/compose-smoke.sh [BINARY]       # default target/release/qaward
#
# Needs podman, runc, debootstrap (Debian's packages) and podman-compose (PyPI; PODMAN_COMPOSE
# names it). podman 4.3 runs no health checks without systemd and podman-compose ignores
# `service_healthy` there, so the start order is driven here: each step waits on
# `qaward health` (or pg_isready) inside the container before the next starts.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/release/qaward}
compose=${PODMAN_COMPOSE:-podman-compose}
project=qaward-smoke
# No default ulimits (setting them is not permitted in this sandbox) and runc (crun fails on
# setrlimit): for this script's podman and podman-compose's alike.
conf=$(mktemp)
printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' > "$conf"
export CONTAINERS_CONF=$conf
export QAWARD_IMAGE=localhost/qaward:latest QAWARD_POSTGRES_IMAGE=localhost/qaward-postgres
export QAWARD_HTTP_PORT=${QAWARD_HTTP_PORT:-18443} QAWARD_GRPC_PORT=${QAWARD_GRPC_PORT:-15443}
pc() { "$compose" -p "$project" -f deploy/compose.yaml "$@" >/dev/null 2>&1; }
say() { printf 'compose smoke: %s\n' "$*"; }
cleanup() { pc down -v || true; rm -f "$conf"; }
trap cleanup EXIT
# On a failure, what the call said is printed by curl (--fail-with-body) above.
started=$(date +%s)

CONTAINER=podman deploy/build-image.sh "$binary"
podman build --format docker --pull=never --network host -q \
  -f deploy/postgres/Containerfile -t "$QAWARD_POSTGRES_IMAGE" deploy/postgres >/dev/null
PATH="$(cd "$(dirname "$binary")" && pwd):$PATH" deploy/init-secrets.sh >/dev/null
pc down -v || true

container() { echo "${project}_$1_1"; }
wait_for() { # NAME COMMAND...: until COMMAND succeeds inside the container, at most 90 s
  local name=$1; shift
  for _ in $(seq 1 90); do
    if podman exec "$(container "$name")" "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  podman logs --tail 20 "$(container "$name")" || true
  echo "compose smoke: $name never became healthy" >&2
  return 1
}

pc up -d --no-deps postgres
wait_for postgres pg_isready -U qaward -d qaward
say "postgres ready"
pc up -d --no-deps migrate
code=$(podman wait "$(container migrate)")
[ "$code" = 0 ] || { podman logs "$(container migrate)"; echo "migrate exited $code" >&2; exit 1; }
say "migrated"
for s in reviewers scoring notifications applications gateway; do
  pc up -d --no-deps "$s"
  wait_for "$s" qaward health
  say "$s healthy"
done

# From outside the containers, as the platform calls: HTTPS on the published loopback port.
ca=deploy/secrets/tls/ca.crt
base="https://localhost:$QAWARD_HTTP_PORT"
# Signed on the host with the people's key, which no container holds; with a clean
# environment, so nothing in the caller's QAWARD_* variables is read as configuration.
token() { env -i PATH="$PATH" "$binary" token --data-dir deploy/secrets "$@"; }
office=$(token --role office --subject office-1 --programme yunyang)
code=91500235MA5U7XXX08
firm=$(token --role enterprise --subject "$code" --org "$code")
call() { # TOKEN ARGS...: one HTTPS call through the gateway; fails on any error status
  local t=$1; shift
  curl -sS --fail-with-body --cacert "$ca" -H "authorization: Bearer $t" \
    -H 'content-type: application/json' "$@" | tee /dev/stderr
  echo >&2
}
# A short cycle: the programme, its notice (R-01), an enterprise, its draft application (R-05).
call "$office" -X POST "$base/v1/programmes?programmeId=yunyang" \
  -d '{"displayName":"云阳县县长质量奖"}' | grep -q '"programmes/yunyang"'
call "$office" -X POST "$base/v1/programmes/yunyang/cycles" -d '{"year":2027,
  "noticeTitle":"关于开展2027年度云阳县县长质量奖评选工作的通知",
  "conditions":"在本县登记注册并纳税、具有独立法人资格、连续经营3年以上",
  "requiredMaterials":["申报表","组织概述","自评报告","证明材料"],
  "deadline":"2027-06-30T09:00:00Z"}' | grep -q '"programmes/yunyang/cycles/2027"'
call "$office" -X POST "$base/v1/enterprises" -d '{"creditCode":"'$code'",
  "displayName":"重庆云阳某某机械有限公司","establishedDate":{"year":2015,"month":3,"day":1},
  "industryCode":"C3411","recommendingUnit":"qinglong-street"}' | grep -q "enterprises/$code"
call "$firm" -X POST "$base/v1/programmes/yunyang/cycles/2027/applications" -d '{
  "enterprise":"enterprises/'$code'","organisationProfile":"企业概况"}' | grep -q '"APPLICATION_STAGE_DRAFT"'
call "$firm" "$base/v1/programmes/yunyang/cycles/2027/applications/$code" | grep -q '企业概况'
say "a short cycle driven through the published gateway port over HTTPS (programme, notice, enterprise, draft)"

# Restart one service mid-way: it comes back, and calls through it work again.
podman restart -t 15 "$(container reviewers)" >/dev/null
wait_for reviewers qaward health
call "$office" "$base/v1/reviewers?pageSize=5" | grep -q 'nextPageToken'
say "reviewers restarted and answering"

for s in reviewers scoring notifications applications gateway; do
  podman exec "$(container "$s")" qaward health >/dev/null
done
say "every container healthy"

# SIGTERM: each drains and exits 0.
for s in gateway applications notifications scoring reviewers; do
  podman stop -t 15 "$(container "$s")" >/dev/null
  code=$(podman inspect "$(container "$s")" --format '{{.State.ExitCode}}')
  [ "$code" = 0 ] || { podman logs --tail 20 "$(container "$s")"; echo "$s exited $code on SIGTERM" >&2; exit 1; }
done
say "stopped cleanly, every qaward container exit 0"

# The single-node Kubernetes overlay's pod, as `podman kube play` runs it (KUSTOMIZE names
# kustomize; skipped without it).
if [ -n "${KUSTOMIZE:-}" ]; then
  rendered=$(mktemp --suffix=.yaml)
  "$KUSTOMIZE" build deploy/k8s/overlays/single-node | sed 's|image: qaward:latest|image: localhost/qaward:latest|' > "$rendered"
  podman kube play "$rendered" >/dev/null 2>&1
  pod=qaward-pod-0-qaward
  ok=
  for _ in $(seq 1 60); do
    if podman exec "$pod" qaward health >/dev/null 2>&1; then ok=1; break; fi
    sleep 1
  done
  podman kube down "$rendered" >/dev/null 2>&1 || true
  podman volume rm -f qaward-data >/dev/null 2>&1 || true
  rm -f "$rendered"
  [ -n "$ok" ] || { echo "compose smoke: the single-node pod never became healthy" >&2; exit 1; }
  say "the single-node overlay's pod runs under podman kube play, every service SERVING"
fi
say "$(( $(date +%s) - started )) s in all"
