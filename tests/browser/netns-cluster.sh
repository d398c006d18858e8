#!/usr/bin/env bash
# Runs a whole signaling cluster and a node driver together inside a fresh network namespace that
# has only `lo`: redis-server, two media engines, three signaling nodes on Redis (ports 4443-4445)
# and nginx in front of them with the repository's sample configuration (port 8080, which the
# tokens name). The driver gets the nodes' pids in SIGNALING_PIDS (to kill one).
#   netns-cluster.sh <signaling binary> <media-engine binary> <driver.mjs> <repo root>
set -euo pipefail
exec unshare --net bash -c '
  set -euo pipefail
  ip link set lo up
  signaling=$0 engine=$1 driver=$2 root=$3
  work=$(mktemp -d)
  pids=()
  trap "kill \${pids[*]} 2>/dev/null; wait 2>/dev/null || true; rm -rf $work" EXIT
  redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  pids+=($!)
  for port in 8890 8891; do
    RTCPOOL_ENGINE_LOG=warn,rtc=error "$engine" --listen 127.0.0.1:$port --rtc-ip 127.0.0.1 &
    pids+=($!)
  done
  wait_port() { for _ in $(seq 1 400); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
  wait_port 6390; wait_port 8890; wait_port 8891
  nodes=()
  for port in 4443 4444 4445; do
    SERVER_PORT=$port HTTPS_PORT=8080 DOMAIN_OR_PUBLIC_IP=127.0.0.1 REDIS_URL=redis://127.0.0.1:6390 \
      KMS_URIS="[\"ws://127.0.0.1:8890/kurento\",\"ws://127.0.0.1:8891/kurento\"]" \
      STATIC_DIR="$root/static" RTCPOOL_LOG="${RTCPOOL_LOG:-warn}" "$signaling" &
    pids+=($!); nodes+=($!)
  done
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  "$nginx_bin" -p "$work" -c "$root/signaling/deploy/nginx.conf" \
    -g "daemon off; pid $work/nginx.pid; error_log $work/error.log;" &
  pids+=($!)
  wait_port 4443; wait_port 4444; wait_port 4445; wait_port 8080
  SIGNALING_PIDS=$(IFS=,; echo "${nodes[*]}") node "$driver"
' "$1" "$2" "$3" "$4"
