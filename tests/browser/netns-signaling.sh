#!/usr/bin/env bash
# Runs rtcpool signaling (which starts its own local media engines) and a node driver together
# inside a fresh network namespace that has only `lo`. The local engines get a known secret
# (LOCAL_ENGINES_SECRET) so the drivers can check them with kurento-client (common.mjs).
#   netns-signaling.sh <signaling binary> <driver.mjs> [static dir]
set -euo pipefail
exec unshare --net bash -c '
  set -euo pipefail
  ip link set lo up
  export LOCAL_ENGINES_SECRET="${LOCAL_ENGINES_SECRET:-browser-tests}"
  STATIC_DIR="${2:-static}" "$0" &
  sig_pid=$!
  trap "kill $sig_pid 2>/dev/null; wait $sig_pid 2>/dev/null || true" EXIT
  for _ in $(seq 1 400); do
    if (exec 3<>/dev/tcp/127.0.0.1/4443) 2>/dev/null; then break; fi
    sleep 0.05
  done
  node "$1"
' "$1" "$2" "${3:-static}"
