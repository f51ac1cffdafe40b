#!/usr/bin/env bash
# The idle cost of `latchkey sip listen`: one registration held against a loopback Kamailio
# (interop/kamailio/lib.sh, mutual TLS, SHA-256 digest) with the BTicino profile's timers
# (REGISTER expiry 600 s granted in full, CRLF keep-alive every 30 s), for SIP_IDLE_SECS
# (default 600 = 10 minutes). Prints the listener's resident memory at the start and the end
# and its wake-ups per minute (voluntary + involuntary context switches of all its threads,
# from /proc). Bounded: the listener runs with --duration, everything is stopped at the end.
#
#   CARGO_TARGET_DIR=… bash scripts/sip_idle_cost.sh      # builds the CLI first
set -euo pipefail
exec </dev/null
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
secs=${SIP_IDLE_SECS:-600}
# 5 s of settling and the last 10 s of --duration are not measured: at least 16 s.
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 16 ]; then
  echo "sip_idle_cost.sh: SIP_IDLE_SECS must be a whole number of seconds >= 16, not '$secs'" >&2
  exit 2
fi
say() { printf 'sip_idle_cost.sh: %s\n' "$*" >&2; }
(cd "$root" && cargo build -q --release -p latchkey)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target_dir/release/latchkey"
# shellcheck source=../interop/kamailio/lib.sh
source "$root/interop/kamailio/lib.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-idle.XXXXXX")"
listener=""
cleanup() {
  [ -n "$listener" ] && kill "$listener" 2>/dev/null || true
  kamailio_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
KAM_REG_MAX=600 kamailio_start "$work" SHA-256 >/dev/null
# The account file holds the password: 0600 from the start.
(umask 077 && printf '{"payload":{"sipUri":"idle@127.0.0.1","username":"idle","sipPassword":"%s"}}' \
  "$KAM_PASSWORD" >"$work/sip_account.json")
"$bin" sip listen --account "$work/sip_account.json" --cert "$work/certs/client.crt" \
  --key "$work/certs/client.key" --ca "$work/certs/ca.crt" --server "127.0.0.1:$KAM_TLS_PORT" \
  --duration "$secs" >"$work/listen.out" 2>"$work/listen.err" &
listener=$!
switches() { # total context switches of all threads of $1
  cat /proc/"$1"/task/*/status 2>/dev/null \
    | awk '/^(non)?voluntary_ctxt_switches/ {s += $2} END {print s + 0}'
}
rss() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }
for _ in $(seq 1 50); do grep -q '"registered"' "$work/listen.out" && break; sleep 0.1; done
grep -q '"registered"' "$work/listen.out" || { cat "$work/listen.err" >&2; exit 1; }
sleep 5 # settle after start-up
rss0=$(rss "$listener"); sw0=$(switches "$listener"); t0=$(date +%s)
threads=$(ls /proc/"$listener"/task | wc -l)
sleep $((secs - 15))
rss1=$(rss "$listener"); sw1=$(switches "$listener"); t1=$(date +%s)
status=0
wait "$listener" || status=$?
listener=""
[ "$status" -eq 0 ] || { cat "$work/listen.err" >&2; say "the listener failed (exit $status)"; exit 1; }
minutes=$(python3 -c "print(($t1 - $t0) / 60)")
per_min=$(python3 -c "print(round(($sw1 - $sw0) / (($t1 - $t0) / 60), 1))")
events=$(grep -o '"event":"[a-z_]*"' "$work/listen.out" | cut -d'"' -f4 | sort | uniq -c | tr '\n' ' ')
say "listener: $threads threads; RSS ${rss0} KiB after start, ${rss1} KiB after ${minutes} min"
say "wake-ups (context switches): $((sw1 - sw0)) in ${minutes} min = ${per_min}/min"
say "events: $events"
