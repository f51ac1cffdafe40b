#!/usr/bin/env bash
# Kamailio 5.6 (registrar and proxy over mutual TLS, digest with qop=auth) and SIPp (the door
# station calling, the gate answering) on loopback, started per run with certificates made for
# the run, for each digest algorithm (SHA-256, MD5), then stopped.
#
# Each run first checks the set-up itself with an independent client (check_registrar.py:
# Python's ssl and hashlib): registration, a gate MESSAGE relayed after a 407, a doorbell INVITE
# from SIPp reaching the TLS client over its own connection, a foreign client certificate
# refused. Then latchkey's own SIP user agent runs against the same Kamailio: the interop_sip
# tests on tokio and on smol (register and refresh, doorbell, gate, Kamailio restarted
# mid-session, stale peer, bad client certificate) and the `latchkey sip` commands. Last, the
# BTicino end to end (cli/tests/interop_bticino.rs): a stand-in Legrand API whose certificate
# endpoint signs with the run's CA → `bticino setup` → `bticino listen` registered at
# Kamailio → SIPp rings as the gateway and as a stranger → `bticino open` → the MESSAGE body
# checked by the SIPp gate.
#
# Needs kamailio (+ TLS module), sipp, openssl, python3, cargo; .ci/run installs them from
# Debian. SIP_TEST_TIMEOUT (default 300 s) bounds each runtime's test run.
set -euo pipefail
exec </dev/null

here="$(cd "$(dirname "$0")" && pwd)"
say() { printf 'kamailio.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
for tool in kamailio sipp openssl python3 timeout ss; do
  command -v "$tool" >/dev/null || die "$tool is required (Debian: kamailio kamailio-tls-modules sip-tester openssl python3)"
done
say "$(kamailio -v 2>&1 | head -n 1), $(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -n 1)"

# shellcheck source=kamailio/lib.sh
source "$here/kamailio/lib.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-kamailio.XXXXXX")"
gate=""
listener=""
cleanup() {
  local status=$?
  [ -n "$gate" ] && kill "$gate" 2>/dev/null || true
  if [ -n "$listener" ]; then
    # `timeout` passes TERM on to `latchkey sip listen`; KILL goes to timeout's process group
    # (pgid = its pid), as a killed timeout cannot pass it on.
    kill -TERM "$listener" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$listener" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$listener" 2>/dev/null || true
    wait "$listener" 2>/dev/null || true
  fi
  kamailio_stop
  if [ "$status" -ne 0 ]; then
    for f in "$work"/*/kamailio.log "$work"/*/*.out; do
      [ -s "$f" ] && { say "--- $f (last 25 lines)"; tail -n 25 "$f" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sipp_dir="$here/kamailio/sipp"
root="$(cd "$here/.." && pwd)"
say "building latchkey's SIP interop tests and the CLI"
(cd "$root" && timeout "${SIP_BUILD_TIMEOUT:-1800}" cargo test -q -p latchkey-tokio -p latchkey-smol \
  --test interop_sip --no-run && timeout "${SIP_BUILD_TIMEOUT:-1800}" cargo build -q -p latchkey \
  && timeout "${SIP_BUILD_TIMEOUT:-1800}" cargo test -q -p latchkey --test interop_bticino --no-run) \
  || die "build failed"
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
latchkey_bin="$target_dir/debug/latchkey"

# latchkey's own tests and CLI against the Kamailio of run $1 (algorithm $2).
latchkey_checks() {
  local run=$1 alg=$2
  export LATCHKEY_KAM_TLS_PORT=$KAM_TLS_PORT LATCHKEY_KAM_UDP_PORT=$KAM_UDP_PORT \
    LATCHKEY_KAM_GATE_PORT=$KAM_GATE_PORT LATCHKEY_KAM_PASSWORD=$KAM_PASSWORD \
    LATCHKEY_KAM_CERTS="$run/certs" LATCHKEY_KAM_SIPP="$sipp_dir" \
    LATCHKEY_KAM_CTL="$here/kamailio/ctl.sh" LATCHKEY_KAM_WORK="$run"
  for crate in latchkey-tokio latchkey-smol; do
    say "$alg: $crate interop_sip"
    (cd "$root" && timeout "${SIP_TEST_TIMEOUT:-300}" cargo test -q -p "$crate" --test interop_sip \
      -- --include-ignored --test-threads=1) >"$run/$crate.out" 2>&1 \
      || { tail -n 40 "$run/$crate.out" >&2; die "$alg: $crate interop_sip failed"; }
    grep -E '^test result' "$run/$crate.out" | sed "s/^/kamailio.sh: $alg: $crate: /" >&2
  done
  # The CLI, with the Node.js client's account file (it holds the password: 0600 from the start).
  (umask 077 && printf '{"payload":{"sipUri":"cli@127.0.0.1","username":"cli","sipPassword":"%s"}}' \
    "$KAM_PASSWORD" >"$run/sip_account.json")
  local common=(--account "$run/sip_account.json" --cert "$run/certs/client.crt"
    --key "$run/certs/client.key" --ca "$run/certs/ca.crt" --server "127.0.0.1:$KAM_TLS_PORT")
  timeout 60 sipp -sf "$sipp_dir/gate.xml" -i 127.0.0.1 -p "$KAM_GATE_PORT" -m 1 \
    -key body_re 'lock\.setStatus' -nostdin -timeout 50 >"$run/cli-gate.out" 2>&1 &
  gate=$!
  wait_udp_bound "$KAM_GATE_PORT" || die "$alg: the SIPp gate did not bind udp:127.0.0.1:$KAM_GATE_PORT"
  timeout 60 "$latchkey_bin" sip open-gate "${common[@]}" --lock lock-1 \
    --gate-uri sip:gate@127.0.0.1 >"$run/cli-open-gate.out" 2>&1 \
    || { cat "$run/cli-open-gate.out" >&2; die "$alg: latchkey sip open-gate failed"; }
  wait "$gate" || die "$alg: the SIPp gate did not accept latchkey sip open-gate's body"
  gate=""
  say "$alg: latchkey sip open-gate: $(head -n 1 "$run/cli-open-gate.out")"
  if timeout 60 "$latchkey_bin" sip message "${common[@]}" --to sip:nobody@127.0.0.1 \
    --body hello >"$run/cli-message.out" 2>&1; then
    die "$alg: latchkey sip message to an unknown user exited 0"
  fi
  grep -q 'SIP 404' "$run/cli-message.out" || { cat "$run/cli-message.out" >&2; die "$alg: no 404 named"; }
  say "$alg: latchkey sip message to nobody: $(grep error "$run/cli-message.out")"
  timeout 60 "$latchkey_bin" sip listen "${common[@]}" --any-caller --duration 8 \
    >"$run/cli-listen.out" 2>"$run/cli-listen.err" &
  listener=$!
  for _ in $(seq 1 50); do grep -q '"registered"' "$run/cli-listen.out" && break; sleep 0.1; done
  timeout 30 sipp "127.0.0.1:$KAM_UDP_PORT" -sf "$sipp_dir/doorbell.xml" -s cli \
    -i 127.0.0.1 -m 1 -nostdin -timeout 25 >"$run/cli-door.out" 2>&1 \
    || die "$alg: SIPp did not get 180 and 486 from latchkey sip listen"
  wait "$listener" || { cat "$run/cli-listen.err" >&2; die "$alg: latchkey sip listen failed"; }
  listener=""
  [ "$(grep -c '"event":"doorbell"' "$run/cli-listen.out")" -eq 1 ] \
    || { cat "$run/cli-listen.out" >&2; die "$alg: latchkey sip listen printed no single doorbell line"; }
  tail -n 1 "$run/cli-listen.out" | grep -q '"closed"' || die "$alg: latchkey sip listen did not close"
  say "$alg: latchkey sip listen: $(grep -o '"event":"[a-z_]*"' "$run/cli-listen.out" | cut -d'"' -f4 | tr '\n' ' ')"
  say "$alg: bticino end to end (setup, listen, rings, open)"
  (cd "$root" && timeout "${SIP_TEST_TIMEOUT:-300}" cargo test -q -p latchkey --test interop_bticino \
    -- --include-ignored --test-threads=1) >"$run/bticino.out" 2>&1 \
    || { tail -n 40 "$run/bticino.out" >&2; die "$alg: bticino end to end failed"; }
  grep -E '^test result' "$run/bticino.out" | sed "s/^/kamailio.sh: $alg: bticino: /" >&2
}

for alg in SHA-256 MD5; do
  run="$work/$alg"
  mkdir -p "$run"
  kamailio_start "$run" "$alg" || die "kamailio did not start ($alg)"
  say "$alg: kamailio on tls:127.0.0.1:$KAM_TLS_PORT, udp:127.0.0.1:$KAM_UDP_PORT"
  timeout 60 sipp -sf "$sipp_dir/gate.xml" -i 127.0.0.1 -p "$KAM_GATE_PORT" -m 1 \
    -key body_re 'lock\.setStatus' -nostdin -timeout 50 >"$run/gate.out" 2>&1 &
  gate=$!
  mkfifo "$run/check"
  (timeout 60 python3 "$here/kamailio/check_registrar.py" "$KAM_TLS_PORT" "$run/certs" \
    "$KAM_PASSWORD" 2>&1; echo "check exit $?") >"$run/check" &
  door=1
  check=1
  while read -r line; do
    say "$alg: $line"
    case "$line" in
      registered)
        if timeout 30 sipp "127.0.0.1:$KAM_UDP_PORT" -sf "$sipp_dir/doorbell.xml" -s panel \
          -i 127.0.0.1 -m 1 -nostdin -timeout 25 >"$run/door.out" 2>&1; then
          door=0
        fi
        ;;
      "check exit 0") check=0 ;;
    esac
  done <"$run/check"
  wait "$gate" && gate_rc=0 || gate_rc=$?
  gate=""
  [ "$check" -eq 0 ] || die "$alg: the set-up check failed"
  [ "$door" -eq 0 ] || die "$alg: the SIPp door station did not get 180 and 486"
  [ "$gate_rc" -eq 0 ] || die "$alg: the SIPp gate did not answer the MESSAGE"
  latchkey_checks "$run" "$alg"
  kamailio_stop
done
say "ok: mutual TLS registrar, gate relay and doorbell path work with SHA-256 and MD5, for the Python check, latchkey on tokio and smol, the latchkey CLI and the BTicino end to end"
