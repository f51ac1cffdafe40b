#!/usr/bin/env bash
# `GET /health` of the U-tec local gateway, side by side in one run: the peer
# Wheresitat/uteclocal-HA (FastAPI on uvicorn, its gateway/main.py as published) and
# `latchkey token keep --utec`, both plain HTTP on loopback, both without a valid token
# (the same answer shape: `token_expiring_or_missing`), wrk 2 threads / 64 connections.
#
# Usage: PEER_DIR=/path/to/uteclocal-HA PEER_PYTHON=/path/to/python bash benches/utec_health.sh
#   PEER_DIR    a checkout of https://github.com/Wheresitat/uteclocal-HA (not part of this
#               repository; bring it yourself)
#   PEER_PYTHON a Python with fastapi, uvicorn, httpx and apscheduler installed
#   DURATION    seconds per run (default 10)
# Nothing is fetched at run time; the peer's /data directory is redirected to a temp dir,
# and latchkey's token endpoint points at a closed loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PEER_DIR:?set PEER_DIR to a checkout of Wheresitat/uteclocal-HA}"
: "${PEER_PYTHON:?set PEER_PYTHON to a python with fastapi uvicorn httpx apscheduler}"
DURATION=${DURATION:-10}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null

cargo build --release -q -p latchkey
release=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The peer, with its hard-coded /data redirected.
cat >"$work/run_peer.py" <<'EOF'
import pathlib, sys
sys.path.insert(0, sys.argv[1])
import gateway.main as m
data = pathlib.Path(sys.argv[2]); data.mkdir(parents=True, exist_ok=True)
for name in dir(m):
    v = getattr(m, name)
    if isinstance(v, pathlib.Path) and str(v).startswith("/data"):
        setattr(m, name, data / v.relative_to("/data"))
import uvicorn
uvicorn.run(m.app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
EOF
peer_port=$(free_port)
timeout 300 "$PEER_PYTHON" "$work/run_peer.py" "$PEER_DIR" "$work/peer-data" "$peer_port" \
    >"$work/peer.log" 2>&1 &
pids+=($!)

# latchkey, with a U-tec session imported (its age unknown, so a refresh is tried and
# refused at once by the closed port: no valid token, like the peer).
lk_port=$(free_port)
sed 's#https://oauth.u-tec.com/token#https://127.0.0.1:9/token#' oauth-core/profiles/utec.toml \
    >"$work/utec.toml"
cat >"$work/config.json" <<'EOF'
{"access_key":"AK","secret_key":"SK","access_token":"a","refresh_token":"r",
 "token_type":"Bearer","token_expires_in":7200,"scope":"openapi"}
EOF
"$release/latchkey" token import --profile-file "$work/utec.toml" --from "$work/config.json" \
    --state-dir "$work/state" >/dev/null 2>&1
timeout 300 "$release/latchkey" token keep --utec --profile-file "$work/utec.toml" \
    --state-dir "$work/state" --listen "127.0.0.1:$lk_port" >"$work/lk.log" 2>&1 &
pids+=($!)

for port in "$peer_port" "$lk_port"; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "port $port did not answer" >&2; exit 1; }
done

bench() { # name port
    wrk -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$2/health" | awk -v name="$1" '
        /Requests\/sec/ {rps=$2}
        /Latency/ {lat=$2; p=$4}
        /Non-2xx or 3xx/ {bad=$5}
        END {printf "{\"figure\":\"utec_health\",\"server\":\"%s\",\"requests_per_sec\":%s,\"latency_avg\":\"%s\",\"non_2xx_3xx\":%d}\n", name, rps, lat, bad+0}'
}
bench uteclocal-HA "$peer_port"
bench "latchkey token keep --utec" "$lk_port"
