#!/usr/bin/env bash
# Runs the `sip_gate` criterion bench (benches/benches/sip_gate.rs) against a loopback
# Kamailio (lib.sh: mutual TLS, SHA-256 digest) with a SIPp gate that answers every MESSAGE
# whose body holds lock.setStatus with 200. Stops both at the end.
#
#   CARGO_TARGET_DIR=… bash interop/kamailio/bench.sh
set -euo pipefail
exec </dev/null
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-sip-bench.XXXXXX")"
gate=""
cleanup() {
  local status=$?
  # Kamailio first, and nothing here may fail: under set -e a failing command ends the trap
  # (a failing `[ … ] && grep …` used to leave Kamailio running and the directory behind).
  kamailio_stop || true
  if [ -n "$gate" ]; then kill "$gate" 2>/dev/null || true; fi
  if [ "$status" -ne 0 ]; then
    grep -v 'INFO: {' "$work/kamailio.log" 2>/dev/null | tail -n 25 >&2 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
(cd "$root" && cargo bench -p latchkey-benches --bench sip_gate --no-run -q)
# Registrations of the per-command clients are never removed (as the original client's):
# keep them short.
# Every MESSAGE is a transaction Kamailio keeps for a few seconds after it ends: at thousands
# per second the default 64 MB of shared memory runs out (Kamailio then drops the connection).
KAM_SHM_MB=512 KAM_REG_MAX=60 kamailio_start "$work" SHA-256 >/dev/null
timeout 900 sipp -sf "$here/sipp/gate.xml" -i 127.0.0.1 -p "$KAM_GATE_PORT" -m 1000000 \
  -key body_re 'lock\.setStatus' -nostdin -timeout 850 >/dev/null 2>&1 &
gate=$!
wait_udp_bound "$KAM_GATE_PORT" || { echo "the SIPp gate did not bind udp:127.0.0.1:$KAM_GATE_PORT" >&2; exit 1; }
export LATCHKEY_KAM_TLS_PORT=$KAM_TLS_PORT LATCHKEY_KAM_PASSWORD=$KAM_PASSWORD \
  LATCHKEY_KAM_CERTS="$work/certs"
(cd "$root" && timeout 900 cargo bench -p latchkey-benches --bench sip_gate)
