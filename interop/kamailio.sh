#!/usr/bin/env bash
# Kamailio 5.6 (registrar and proxy over mutual TLS, digest with qop=auth) and SIPp (the door
# station calling, the gate answering) on loopback, started per run with certificates made for
# the run, for each digest algorithm (SHA-256, MD5), then stopped.
#
# Each run first checks the set-up itself with an independent client (check_registrar.py:
# Python's ssl and hashlib): registration, a gate MESSAGE relayed after a 407, a doorbell INVITE
# from SIPp reaching the TLS client over its own connection, a foreign client certificate
# refused. latchkey's SIP user agent tests run against the same set-up once its drivers exist
# (issue 5); until then this script proves the peers they will meet.
#
# Needs kamailio (+ TLS module), sipp, openssl, python3; .ci/run installs them from Debian.
set -euo pipefail
exec </dev/null

here="$(cd "$(dirname "$0")" && pwd)"
say() { printf 'kamailio.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
for tool in kamailio sipp openssl python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool is required (Debian: kamailio kamailio-tls-modules sip-tester openssl python3)"
done
say "$(kamailio -v 2>&1 | head -n 1), $(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -n 1)"

# shellcheck source=kamailio/lib.sh
source "$here/kamailio/lib.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-kamailio.XXXXXX")"
gate=""
cleanup() {
  local status=$?
  [ -n "$gate" ] && kill "$gate" 2>/dev/null || true
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
  kamailio_stop
  [ "$check" -eq 0 ] || die "$alg: the set-up check failed"
  [ "$door" -eq 0 ] || die "$alg: the SIPp door station did not get 180 and 486"
  [ "$gate_rc" -eq 0 ] || die "$alg: the SIPp gate did not answer the MESSAGE"
done
say "ok: mutual TLS registrar, gate relay and doorbell path work with SHA-256 and MD5"
