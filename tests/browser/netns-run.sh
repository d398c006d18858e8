#!/usr/bin/env bash
# Runs a media-engine and a node driver together inside a fresh network namespace that has only
# `lo`, so neither Chromium nor webrtc-rs can reach any other interface.
#   netns-run.sh <media-engine binary> <driver.mjs>
set -euo pipefail
engine=$1
driver=$2
exec unshare --net bash -c '
  set -euo pipefail
  ip link set lo up
  "$0" --listen 127.0.0.1:8888 --rtc-ip 127.0.0.1 &
  engine_pid=$!
  trap "kill $engine_pid 2>/dev/null; wait $engine_pid 2>/dev/null || true" EXIT
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/8888) 2>/dev/null && break
    sleep 0.05
  done
  ENGINE_URL=ws://127.0.0.1:8888/kurento node "$1"
' "$engine" "$driver"
