#!/usr/bin/env bash
# `latchkey serve` against real clients, on loopback, on tokio and on smol. See interop/README.md.
#
# 1. Headless Chromium (Debian's, driven by playwright-core; interop/gateway/admin.mjs):
#    first-boot setup through the one-time link, the dashboard with the certificate's days
#    left and the token status, cookie flags, logout and login, five wrong passwords → the
#    blocked message. Screenshots go to interop/.out/gateway-<runtime>/ (ignored by git).
# 2. Python `websockets` as a RemoteUI panel in both signing variants
#    (interop/gateway/panel.py): provisioning before the code exists (404) and again at once
#    (429, the 1-per-10-s limit), the retry after 10 s provisioned; a correct HMAC accepted
#    with exactly the referenced IO states; forged HMAC 403, stale timestamp 401, replayed
#    nonce 401; an API change arrives as io_state, an unreferenced one does not; set_state
#    reaches the registry. On tokio also the blacklist (the eleventh distinct code from one
#    address within the hour; ~2 minutes, the codes must pass the rate limit).
# 3. curl: HTTP → HTTPS redirect, /health fields, security headers, a certificate upload
#    with a key that does not match refused with pki's message.
# 4. SIGTERM: the server reports "stopped" and exits 0.
#
# Everything listens on 127.0.0.x only, on ports the server picks (port 0, read from its
# `listening` line); every wait is bounded; every process started here is stopped at the end
# and the temporary directory removed. Python's websockets and playwright-core are installed
# into interop/.cache and interop/gateway/node_modules when missing (pinned versions; .ci/run
# installs them beforehand); Debian's chromium is installed when /usr/bin/chromium is missing.
set -euo pipefail
exec </dev/null

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
say() { printf 'gateway.sh: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

for tool in cargo curl openssl python3 node npm timeout pgrep; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
if [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
pydeps="$here/.cache/python"
if ! PYTHONPATH="$pydeps" python3 -c 'import websockets' 2>/dev/null; then
  say "installing websockets 15.0.1 into $pydeps"
  timeout 300 python3 -m pip install -q --disable-pip-version-check --target "$pydeps" \
    -r "$here/gateway/requirements.txt"
fi
# npm writes node_modules/.package-lock.json on every install: older than the lock file means
# the lock changed since.
if [ ! "$here/gateway/node_modules/.package-lock.json" -nt "$here/gateway/package-lock.json" ]; then
  say "installing playwright-core (npm ci)"
  (cd "$here/gateway" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
fi

say "building latchkey"
bin="$(cd "$root" && timeout 1800 cargo build -q -p latchkey --bin latchkey \
  --message-format=json-render-diagnostics |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])' | tail -1)"
[ -x "$bin" ] || die "no latchkey binary"

work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-gateway.XXXXXX")"
server=""
panels=()
# Stops a `timeout …` started here. GNU timeout puts itself and its command in a process group
# of their own (pgid = timeout's pid): TERM to timeout is passed on to the command, and KILL
# goes to the whole group, since a killed timeout cannot pass it on.
stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  for pid in "${panels[@]}" ${server:+"$server"}; do stop "$pid"; done
  rm -rf "$work"
  exit "$status"
}
# Not `trap cleanup EXIT INT TERM`: on a signal $? is 0 and the script would exit 0.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run() { # runtime blacklist
  local runtime=$1 blacklist=$2
  local state="$work/$runtime" out="$root/interop/.out/gateway-$runtime"
  mkdir -p "$out"
  say "[$runtime] starting latchkey serve on 127.0.0.1, free ports"
  timeout 900 "$bin" serve --runtime "$runtime" --state-dir "$state" \
    --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    >"$work/$runtime.out" 2>"$work/$runtime.err" &
  server=$!
  # The `listening` line (the bound ports) comes before the `setup_link` line.
  for _ in $(seq 300); do
    grep -q '"setup_link"' "$work/$runtime.out" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || die "[$runtime] server exited: $(cat "$work/$runtime.err")"
    sleep 0.1
  done
  local setup base cert ports port http_port
  setup=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] == "setup_link": print(e["url"])' "$work/$runtime.out")
  [ -n "$setup" ] || die "[$runtime] no setup link"
  ports=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] == "listening": print(e["https"].rsplit(":", 1)[1], e["http"].rsplit(":", 1)[1])' \
    "$work/$runtime.out")
  read -r port http_port <<<"$ports"
  [[ ${port:-} =~ ^[1-9][0-9]*$ && ${http_port:-} =~ ^[1-9][0-9]*$ ]] ||
    die "[$runtime] no ports in the listening line: $(head -n 1 "$work/$runtime.out")"
  say "[$runtime] listening on 127.0.0.1:$port (http $http_port)"
  base="https://127.0.0.1:$port"
  cert=$(ls "$state"/https-*.cert.pem | head -1)

  # 1. The browser: setup, dashboard, cookies, logout/login; it leaves its session here.
  say "[$runtime] chromium: setup, dashboard, login, lockout"
  # The session cookie is a secret: its file is 0600 before anything is written to it.
  (umask 077 && : >"$work/$runtime.session")
  SETUP_URL="$setup" BASE="$base" OUT="$out" SESSION_FILE="$work/$runtime.session" \
    timeout 180 node "$here/gateway/admin.mjs" || die "[$runtime] browser checks"
  local cookie csrf
  cookie=$(cat "$work/$runtime.session")
  csrf=$(curl -sS --cacert "$cert" "$base/api/session" -H "Cookie: __Host-lk_session=$cookie" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')

  # 2. Panels of both variants, in parallel (each from its own 127.0.x.y addresses).
  say "[$runtime] python websockets panels (design and calaos_base)"
  local a b
  BASE="$base" CA="$cert" COOKIE="$cookie" CSRF="$csrf" VARIANT=design PREFIX=1 \
    PYTHONPATH="$pydeps" timeout 300 python3 "$here/gateway/panel.py" &
  a=$!
  panels+=("$a")
  BASE="$base" CA="$cert" COOKIE="$cookie" CSRF="$csrf" VARIANT=calaos PREFIX=2 \
    BLACKLIST="$blacklist" PYTHONPATH="$pydeps" timeout 300 python3 "$here/gateway/panel.py" &
  b=$!
  panels+=("$b")
  wait "$a" || die "[$runtime] design panel"
  wait "$b" || die "[$runtime] calaos panel"
  panels=()
  if [ "$blacklist" = 1 ]; then
    grep -q 'ProvisioningBlacklisted' "$work/$runtime.out" ||
      die "[$runtime] no security event for the blacklist"
    say "[$runtime] ok: the blacklist was reported as a security event"
  fi

  # 3. curl.
  say "[$runtime] curl: redirect, health, headers, mismatched certificate upload"
  local redirect
  redirect=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' \
    "http://127.0.0.1:$http_port/admin?x=1")
  [ "$redirect" = "308 https://127.0.0.1:$port/admin?x=1" ] || die "[$runtime] redirect: $redirect"
  curl -sS --cacert "$cert" "$base/health" | python3 -c '
import json, sys
h = json.load(sys.stdin)
for k in ("status", "token_valid", "token_expires_at", "auto_refresh_enabled"):
    assert k in h, k
assert h["token_valid"] is False' || die "[$runtime] /health fields"
  local headers
  headers=$(curl -sS --cacert "$cert" -D - -o /dev/null "$base/login" | tr -d '\r')
  for h in 'Content-Security-Policy: ' 'X-Frame-Options: DENY' 'X-Content-Type-Options: nosniff' \
    'Strict-Transport-Security: max-age=' 'Referrer-Policy: no-referrer'; do
    grep -qi "^$h" <<<"$headers" || die "[$runtime] missing header $h"
  done
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/k1.pem" 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/k2.pem" 2>/dev/null
  openssl req -new -x509 -key "$work/k1.pem" -subj /CN=localhost -days 30 \
    -addext subjectAltName=DNS:localhost -out "$work/c1.pem" 2>/dev/null
  local page
  page=$(curl -sS --cacert "$cert" "$base/admin/certificate" \
    -H "Cookie: __Host-lk_session=$cookie" \
    --data-urlencode "csrf=$csrf" --data-urlencode "cert_pem@$work/c1.pem" \
    --data-urlencode "key_pem@$work/k2.pem")
  grep -q 'key mismatch: the private key' <<<"$page" ||
    die "[$runtime] mismatched key not refused with pki's message"
  [ "$(ls "$state"/https-*.cert.pem)" = "$cert" ] || die "[$runtime] a refused upload replaced the certificate"
  say "[$runtime] ok: redirect, /health, security headers, mismatched key refused"

  # 4. Graceful stop. SIGTERM to the server itself, not to timeout: timeout passes a signal on
  # twice (to its command, then to its process group), and a second signal makes the server
  # stop at once with status 130.
  local child
  child=$(pgrep -P "$server") || die "[$runtime] no server process under timeout $server"
  kill -TERM "$child"
  local status=0
  wait "$server" || status=$?
  server=""
  [ "$status" = 0 ] || die "[$runtime] exit status $status after SIGTERM"
  grep -q '"stopped"' "$work/$runtime.out" || die "[$runtime] no stopped event"
  say "[$runtime] ok: SIGTERM → stopped, exit 0"
}

started=$(date +%s)
run tokio 1
run smol 0
say "all checks passed in $(( $(date +%s) - started )) s"
