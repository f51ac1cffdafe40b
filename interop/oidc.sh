#!/usr/bin/env bash
# OAuth interop: latchkey's oauth-core + HTTPS client against a real oidc-provider 9 (Node) on
# loopback, on both runtimes, and the `latchkey` binary itself. See interop/README.md.
#
# 1. `npm ci` in interop/oidc unless node_modules is up to date with the lock file (the only
#    network access: the pinned oidc-provider from npm; .ci/run does it in its install step);
# 2. starts interop/oidc/server.mjs on 127.0.0.1 (HTTPS, certificates made with the openssl
#    CLI into a temporary directory; an admin side channel on another loopback port);
# 3. exports LATCHKEY_OIDC_ISSUER, LATCHKEY_OIDC_CA, LATCHKEY_OIDC_ADMIN and runs every test
#    target named `interop_oidc*` with `--include-ignored`, for latchkey-tokio, then
#    latchkey-smol, then latchkey (the CLI: `login --loopback`, `token keep`);
# 4. always stops the server (trap), and bounds every step with `timeout`.
#
# Environment: OIDC_BUILD_TIMEOUT (s, default 1800) for the cargo build, OIDC_TEST_TIMEOUT (s,
# default 300) per crate's test run, CARGO_TARGET_DIR as usual.
set -euo pipefail
exec </dev/null

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build_timeout="${OIDC_BUILD_TIMEOUT:-1800}"
test_timeout="${OIDC_TEST_TIMEOUT:-300}"
crates=(latchkey-tokio latchkey-smol latchkey)

say() { printf 'oidc.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

for tool in node npm openssl cargo timeout; do
  command -v "$tool" >/dev/null || die "$tool is required (node >= 20.19 with npm, openssl, cargo, coreutils timeout)"
done
node_version="$(node -p 'process.versions.node')"
node -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  process.exit(maj > 20 || (maj === 20 && min >= 19) ? 0 : 1);
' || die "node $node_version is too old: oidc-provider 9 needs >= 20.19"
say "node $node_version, $(openssl version | cut -d' ' -f1-2)"

work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-oidc.XXXXXX")"
server_pid=""
cleanup() {
  local status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/server.log" ]; then
    say "server log (last 40 lines):"
    tail -n 40 "$work/server.log" >&2 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# npm writes node_modules/.package-lock.json on every install: older than the lock file means
# the lock changed since (.ci/run installs in its install step).
if [ ! "$here/oidc/node_modules/.package-lock.json" -nt "$here/oidc/package-lock.json" ]; then
  say "npm ci (interop/oidc)"
  (cd "$here/oidc" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
fi

# Build first, so the server does not sit idle through a long compile.
say "building the interop tests"
(cd "$root" && timeout "$build_timeout" cargo test -p latchkey-tokio -p latchkey-smol \
  -p latchkey --test 'interop_oidc*' --no-run)

say "starting oidc-provider on 127.0.0.1"
node "$here/oidc/server.mjs" --port 0 --admin-port 0 --certs "$work/certs" \
  --max-seconds $(( ${#crates[@]} * test_timeout + 120 )) \
  >"$work/ready" 2>"$work/server.log" &
server_pid=$!

ready=""
for _ in $(seq 1 150); do # 30 s
  if [ -s "$work/ready" ] && ready="$(head -n 1 "$work/ready")" && [ -n "$ready" ]; then
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || die "the server exited before it was ready"
  sleep 0.2
done
[ -n "$ready" ] || die "the server was not ready within 30 s"

field() {
  printf '%s' "$ready" | node -e '
    let s = ""; process.stdin.on("data", (d) => { s += d; });
    process.stdin.on("end", () => { process.stdout.write(String(JSON.parse(s)[process.argv[1]])); });
  ' "$1"
}
LATCHKEY_OIDC_ISSUER="$(field issuer)"
LATCHKEY_OIDC_CA="$(field ca)"
LATCHKEY_OIDC_ADMIN="$(field admin)"
export LATCHKEY_OIDC_ISSUER LATCHKEY_OIDC_CA LATCHKEY_OIDC_ADMIN
case "$LATCHKEY_OIDC_ISSUER $LATCHKEY_OIDC_ADMIN" in
  "https://127.0.0.1:"*" http://127.0.0.1:"*) ;;
  *) die "unexpected ready line: $ready" ;;
esac
say "issuer $LATCHKEY_OIDC_ISSUER, admin $LATCHKEY_OIDC_ADMIN"

for crate in "${crates[@]}"; do
  say "cargo test -p $crate --test 'interop_oidc*' -- --include-ignored"
  status=0
  (cd "$root" && timeout "$test_timeout" cargo test -p "$crate" --test 'interop_oidc*' \
    -- --include-ignored) || status=$?
  [ "$status" -ne 124 ] || die "$crate: the interop tests took longer than $test_timeout s"
  [ "$status" -eq 0 ] || die "$crate: the interop tests failed (exit $status)"
done
say "passed on both runtimes and the CLI"
