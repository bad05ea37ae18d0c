#!/usr/bin/env bash
# Builds the qaward image around a prebuilt binary (`--target prebuilt` of deploy/Dockerfile),
# on a machine that can reach Debian's packages but no container registry: the Debian base
# image is made once with debootstrap and imported, then kept. Idempotent.
#
#   deploy/build-image.sh [BINARY]      # default target/release/qaward; prints the image size
#
# QAWARD_IMAGE names the image (localhost/qaward:latest); CONTAINER the engine (podman; with
# podman, runc is used: the default crun fails on setrlimit on these machines).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/release/qaward}
image=${QAWARD_IMAGE:-localhost/qaward:latest}
engine=${CONTAINER:-podman}
tools=${QAWARD_CI_TOOLS:-$HOME/.cache/qaward-ci}
run() {
  if [ "$engine" = podman ]; then podman --runtime runc "$@"; else "$engine" "$@"; fi
}

base=docker.io/library/debian:bookworm-slim
if ! run image exists "$base" 2>/dev/null; then
  if ! run image exists localhost/debian:bookworm-slim 2>/dev/null; then
    if [ ! -d "$tools/rootfs-bookworm/usr" ]; then
      echo "making the Debian base image (once): debootstrap bookworm"
      rm -rf "$tools/rootfs-bookworm"
      debootstrap --variant=minbase bookworm "$tools/rootfs-bookworm" http://deb.debian.org/debian >/dev/null
    fi
    tar -C "$tools/rootfs-bookworm" -c . | run import - localhost/debian:bookworm-slim >/dev/null
  fi
  # The Dockerfile's FROM debian:bookworm-slim finds it under its usual name, never pulled.
  run tag localhost/debian:bookworm-slim "$base"
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/qaward"
run build --format docker --pull=never --network host -f deploy/Dockerfile --target prebuilt -t "$image" "$context" >/dev/null
size=$(run image inspect "$image" --format '{{.Size}}')
echo "built $image: $((size / 1024 / 1024)) MiB ($binary: $(( $(stat -c %s "$binary") / 1024 / 1024 )) MiB)"
