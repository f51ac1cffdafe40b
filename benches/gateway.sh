#!/usr/bin/env bash
# Load figures for `latchkey serve` on loopback, bounded in time and count:
#   1. wrk on GET /health (keep-alive, TLS),
#   2. PANELS authenticated panel WebSockets (default 10,000) held open, with the server's
#      RSS before and after (benches/examples/panels.rs opens them),
#   3. wrk on POST /login with the right password (Argon2id at the OWASP minimum per request).
# Usage: bash benches/gateway.sh            (RUNTIME=smol PANELS=2000 DURATION=10 to vary)
# Prints one JSON line per figure. Needs wrk and curl (installed from Debian when missing).
# The server listens on a free port (PORT=0, read from its `listening` line) unless PORT is set.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME=${RUNTIME:-tokio}
PANELS=${PANELS:-10000}
DURATION=${DURATION:-10}
PORT=${PORT:-0}
PASSWORD='Bench1Password'

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build --release -q -p latchkey
cargo build --release -q -p latchkey-benches --example panels
release=${CARGO_TARGET_DIR:-target}/release
# Each side holds one descriptor per panel connection.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((PANELS + 256)) ]; then
    echo "open-file limit $(ulimit -n) is below PANELS=$PANELS + 256" >&2
    exit 1
fi

work=$(mktemp -d)
server=""
panels=""
cleanup() {
    if [ -n "$panels" ]; then kill "$panels" 2>/dev/null || true; wait "$panels" 2>/dev/null || true; fi
    if [ -n "$server" ]; then
        # `timeout` passes TERM on to the server; KILL goes to timeout's process group (pgid =
        # its pid: GNU timeout makes one), as a killed timeout cannot pass it on.
        kill "$server" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

timeout 900 "$release/latchkey" serve --runtime "$RUNTIME" --state-dir "$work/state" \
    --listen "127.0.0.1:$PORT" --no-http --max-connections 30000 \
    --max-connections-per-ip 30000 --max-panels 20000 >"$work/out" 2>"$work/err" &
server=$!
for _ in $(seq 100); do
    grep -q setup_link "$work/out" 2>/dev/null && break
    sleep 0.1
done
url=$(grep setup_link "$work/out" | sed 's/.*"url":"\([^"]*\)".*/\1/')
[ -n "$url" ] || { echo "latchkey serve did not start: $(cat "$work/err")" >&2; exit 1; }
# The bound port (the `listening` line comes before the setup link).
PORT=$(sed -n 's/.*"event":"listening","https":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/out")
[ -n "$PORT" ] || { echo "no port in: $(head -n 1 "$work/out")" >&2; exit 1; }
cert=$(ls "$work"/state/https-*.cert.pem | head -1)
base="https://127.0.0.1:$PORT"
c() { curl -sS --cacert "$cert" --resolve "localhost:$PORT:127.0.0.1" "$@"; }
localurl() { echo "${1/127.0.0.1/localhost}"; }

# First-boot setup, then the admin session and its CSRF token for the API.
page=$(c -i "$(localurl "$url")")
pre=$(printf '%s' "$page" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: __Host-lk_pre=\([0-9a-f]*\).*/\1/p')
csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
token=${url##*token=}
session=$(c -i -X POST "https://localhost:$PORT/setup" -H "Cookie: __Host-lk_pre=$pre" \
    --data "token=$token&csrf=$csrf&password=$PASSWORD&confirm=$PASSWORD" |
    tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: __Host-lk_session=\([0-9a-f]*\).*/\1/p')
api_csrf=$(c "https://localhost:$PORT/api/session" -H "Cookie: __Host-lk_session=$session" |
    sed 's/.*"csrf_token":"\([0-9a-f]*\)".*/\1/')

# `timeout` runs the server as its child: its RSS is measured, not timeout's.
pid=$(pgrep -P "$server" latchkey) || { echo "no latchkey process under timeout $server" >&2; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
wrk_json() { # name, then wrk's output on stdin
    awk -v name="$1" -v runtime="$RUNTIME" '
        /Requests\/sec/ {rps=$2}
        /Latency/ {lat=$2}
        /requests in/ {n=$1}
        /Non-2xx or 3xx/ {bad=$5}
        END {printf "{\"figure\":\"%s\",\"runtime\":\"%s\",\"requests_per_sec\":%s,\"latency_avg\":\"%s\",\"requests\":%s,\"non_2xx_3xx\":%d}\n", name, runtime, rps, lat, n, bad+0}'
}

# 1. /health
wrk -t2 -c64 -d"${DURATION}s" "$base/health" | wrk_json health

# 2. Panels held open.
before=$(rss)
"$release/examples/panels" "127.0.0.1:$PORT" "$cert" "$session" "$api_csrf" "$PANELS" 10 \
    >"$work/panels" &
panels=$!
for _ in $(seq 1200); do
    grep -q '"connected"' "$work/panels" 2>/dev/null && break
    sleep 0.5
done
sleep 2
held=$(rss)
line=$(grep '"connected"' "$work/panels")
wait "$panels" || { echo "benches/examples/panels failed" >&2; exit 1; }
panels=""
printf '{"figure":"panels_held","runtime":"%s","rss_before_kib":%s,"rss_held_kib":%s,"per_connection_bytes":%s,"summary":%s}\n' \
    "$RUNTIME" "$before" "$held" "$(( (held - before) * 1024 / PANELS ))" "$line"
sleep 2

# 3. Logins (each request verifies Argon2id m=19 MiB t=2 and opens a session).
page=$(c -i "https://localhost:$PORT/login")
pre=$(printf '%s' "$page" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: __Host-lk_pre=\([0-9a-f]*\).*/\1/p')
csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
# The script holds the admin password: 0600 from the start.
(umask 077 && : >"$work/login.lua")
cat >"$work/login.lua" <<EOF
wrk.method = "POST"
wrk.body = "user=admin&password=$PASSWORD&csrf=$csrf"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "__Host-lk_pre=$pre"
EOF
wrk -t2 -c8 -d"${DURATION}s" -s "$work/login.lua" "$base/login" | wrk_json login
