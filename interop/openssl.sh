#!/usr/bin/env bash
# Certificates against the openssl CLI (OpenSSL 3), on loopback. See interop/README.md.
#
# 1. CSRs: `openssl req -verify -text` accepts every CSR `latchkey cert csr` makes (the Legrand
#    subject and SIP SAN URI, PEM and --der-base64; DNS/IP SANs with usages; keys made by
#    openssl: SEC1 P-256 and Ed25519) and shows its SANs; an RSA key is refused cleanly.
# 2. Expiry: `openssl x509 -enddate/-checkend` agrees with `latchkey cert info --json`
#    (notAfter, expiring_soon, days, seconds) for latchkey-made and openssl-made certificates
#    (P-256, Ed25519, RSA; valid, near the 30-day threshold on both sides, expired), with
#    -checkend values on both sides of every boundary.
# 3. Hot swap: `openssl s_client` against `latchkey cert serve`: after the files are replaced
#    (by an openssl-made RSA pair, then a latchkey-made pair, the second time half-written
#    first) new handshakes get the new certificate while a connection opened before the first
#    swap keeps echoing; the half-written pair is refused. Mutual TLS the other way round:
#    `cert serve --client-ca` with an openssl client presenting a latchkey certificate.
# 4. Mutual TLS: `openssl s_server -Verify 1 -verify_return_error` accepts latchkey client
#    certificates presented by the runtimes' TLS client (a LiveIdentity swapped between two
#    connections), and refuses a foreign one: `cargo test --test interop_openssl
#    -- --include-ignored` on latchkey-tokio and latchkey-smol.
#
# Everything listens on 127.0.0.1 only, every wait is bounded, every process started here is
# stopped at the end and the temporary directory removed. Environment: OPENSSL_BUILD_TIMEOUT
# (s, default 1800) for the cargo builds, OPENSSL_TEST_TIMEOUT (s, default 300) per test run,
# CARGO_TARGET_DIR as usual.
set -euo pipefail
exec </dev/null

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build_timeout="${OPENSSL_BUILD_TIMEOUT:-1800}"
test_timeout="${OPENSSL_TEST_TIMEOUT:-300}"

say() { printf 'openssl.sh: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

for tool in openssl cargo timeout python3 mkfifo date base64; do
  command -v "$tool" >/dev/null || die "$tool is required (openssl 3, cargo, python3, coreutils)"
done
case "$(openssl version)" in
  "OpenSSL 3."*) ;;
  *) die "OpenSSL 3 is required, found: $(openssl version)" ;;
esac
say "$(openssl version)"

work="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-openssl.XXXXXX")"
pids=()
cleanup() {
  local status=$?
  exec 7>&- 2>/dev/null || true
  exec 8>&- 2>/dev/null || true
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    # Every pid here is a `timeout …`, which puts itself and its command in a process group of
    # their own (pgid = its pid): KILL the group, as a killed timeout cannot pass it on.
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for f in "$work"/*.log "$work"/*.out; do
      [ -s "$f" ] && { say "--- $f (last 25 lines)"; tail -n 25 "$f" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits up to $2 seconds for file $1 to contain the fixed string $3.
wait_for() {
  local file=$1 seconds=$2 text=$3 i
  for ((i = 0; i < seconds * 10; i++)); do
    grep -qF -- "$text" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# --- build -------------------------------------------------------------------------------
say "building latchkey and the interop tests"
bin="$(cd "$root" && timeout "$build_timeout" cargo build -p latchkey --bin latchkey \
  --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "latchkey":
        print(m["executable"])
')"
[ -x "$bin" ] || die "no latchkey binary was built"
(cd "$root" && timeout "$build_timeout" cargo test -p latchkey-tokio -p latchkey-smol \
  --test interop_openssl --no-run 2>"$work/build.log") || die "the interop tests do not build"
lk() { timeout 60 "$bin" "$@"; }
fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/^.*=//'; }

# --- 1. CSRs -------------------------------------------------------------------------------
say "1. CSRs made by latchkey, verified by openssl req -verify"
csr="$work/csr"
mkdir -p "$csr"
check_csr() { # name, CSR file, option for openssl req (-inform DER or nothing), expected texts…
  local name=$1 file=$2 inform=$3
  shift 3
  # shellcheck disable=SC2086
  openssl req $inform -in "$file" -noout -verify -text >"$csr/$name.txt" 2>&1 \
    || die "CSR $name: openssl req -verify refused it: $(tail -n 3 "$csr/$name.txt")"
  grep -q "verify OK" "$csr/$name.txt" || die "CSR $name: no 'verify OK'"
  for expected in "$@"; do
    grep -qF -- "$expected" "$csr/$name.txt" || die "CSR $name: '$expected' not in openssl's text"
  done
  say "   $name: verify OK, $(grep -A1 'Subject Alternative Name' "$csr/$name.txt" | tail -n 1 | sed 's/^ *//')"
}
sip_uri="sip:owner-9_client-7@gateway-3.bs.iotleg.com"
legrand_subject="/CN=client-7/OU=DIY/O=Legrand/L=Erlangen/ST=Bavaria/C=DE/emailAddress=owner@example.com"
lk cert csr --key "$csr/legrand.key" --new-key --subject "$legrand_subject" \
  --san "uri:$sip_uri" >"$csr/legrand.pem"
check_csr legrand-pem "$csr/legrand.pem" "" "URI:$sip_uri" \
  "Subject: CN = client-7, OU = DIY, O = Legrand, L = Erlangen, ST = Bavaria, C = DE, emailAddress = owner@example.com" \
  "ASN1 OID: prime256v1"
lk cert csr --key "$csr/legrand.key" --subject "$legrand_subject" --san "uri:$sip_uri" \
  --der-base64 >"$csr/legrand.b64"
[ "$(wc -l <"$csr/legrand.b64")" -eq 1 ] || die "--der-base64 is not one line"
base64 -d "$csr/legrand.b64" >"$csr/legrand.der"
check_csr legrand-der "$csr/legrand.der" "-inform DER" "URI:$sip_uri"
lk cert csr --key "$csr/server.key" --new-key --subject "/CN=doorstation.local" \
  --san dns:doorstation.local --san ip:192.168.1.10 --san ip:fe80::1 --usage server \
  >"$csr/server.pem"
check_csr server "$csr/server.pem" "" "DNS:doorstation.local, IP Address:192.168.1.10, IP Address:FE80:0:0:0:0:0:0:1" \
  "TLS Web Server Authentication" "Digital Signature"
lk cert csr --key "$csr/client.key" --new-key --subject "/CN=panel/O=latchkey" \
  --san email:panel@example.com --usage client >"$csr/client.pem"
check_csr client "$csr/client.pem" "" "email:panel@example.com" "TLS Web Client Authentication"
openssl ecparam -name prime256v1 -genkey -noout -out "$csr/openssl-ec.key" 2>/dev/null
lk cert csr --key "$csr/openssl-ec.key" --subject "/CN=openssl EC key" \
  --san "uri:$sip_uri" >"$csr/openssl-ec.pem"
check_csr openssl-sec1-p256 "$csr/openssl-ec.pem" "" "URI:$sip_uri"
openssl genpkey -algorithm ed25519 -out "$csr/openssl-ed.key" 2>/dev/null
lk cert csr --key "$csr/openssl-ed.key" --subject "/CN=openssl Ed25519 key" \
  --san "uri:$sip_uri" >"$csr/openssl-ed.pem"
check_csr openssl-ed25519 "$csr/openssl-ed.pem" "" "URI:$sip_uri" "ED25519"
openssl genrsa -out "$csr/openssl-rsa.key" 2048 2>/dev/null
if lk cert csr --key "$csr/openssl-rsa.key" --subject /CN=rsa >"$csr/rsa.pem" 2>"$csr/rsa.err"; then
  die "an RSA key was accepted for a CSR latchkey cannot sign"
fi
grep -q "RSA" "$csr/rsa.err" || die "the RSA refusal does not say why: $(cat "$csr/rsa.err")"
say "   openssl RSA key: refused cleanly ($(cat "$csr/rsa.err"))"

# --- 2. expiry -----------------------------------------------------------------------------
say "2. expiry: openssl x509 -checkend against latchkey cert info --json"
exp="$work/expiry"
mkdir -p "$exp/ca/new"
: >"$exp/ca/index.txt"
echo 1000 >"$exp/ca/serial"
cat >"$exp/ca.cnf" <<EOF
[ ca ]
default_ca = own
[ own ]
database = $exp/ca/index.txt
new_certs_dir = $exp/ca/new
serial = $exp/ca/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = copy
[ anything ]
commonName = supplied
EOF
stamp() { date -u -d "@$1" +%Y%m%d%H%M%SZ; }
# openssl-made, with exact dates: name, key algorithm, notBefore and notAfter relative to now.
openssl_cert() {
  local name=$1 alg=$2 from=$3 to=$4 now
  now=$(date +%s)
  case "$alg" in
    ec) openssl ecparam -name prime256v1 -genkey -noout -out "$exp/$name.key" 2>/dev/null ;;
    rsa) openssl genrsa -out "$exp/$name.key" 2048 2>/dev/null ;;
  esac
  openssl req -new -key "$exp/$name.key" -subj "/CN=$name" -out "$exp/$name.csr" 2>/dev/null
  openssl ca -batch -config "$exp/ca.cnf" -selfsign -keyfile "$exp/$name.key" \
    -in "$exp/$name.csr" -startdate "$(stamp $((now + from)))" \
    -enddate "$(stamp $((now + to)))" -notext -out "$exp/$name.pem" >"$exp/$name.log" 2>&1 \
    || die "openssl ca could not make $name: $(tail -n 3 "$exp/$name.log")"
}
day=86400
openssl_cert openssl-ec-10d12h ec -3600 $((10 * day + 12 * 3600))
openssl_cert openssl-rsa-29d23h rsa -3600 $((29 * day + 23 * 3600))
openssl_cert openssl-rsa-30d1h rsa -3600 $((30 * day + 3600))
openssl_cert openssl-ec-expired ec $((-10 * day)) -7200
lk cert generate --cn latchkey-p256 --days 10 --out "$exp/lk-p256" 2>/dev/null
cp "$exp/lk-p256/cert.pem" "$exp/latchkey-p256-10d.pem"
lk cert generate --cn latchkey-ed25519 --days 40 --key-type ed25519 --out "$exp/lk-ed" 2>/dev/null
cp "$exp/lk-ed/cert.pem" "$exp/latchkey-ed25519-40d.pem"
lk cert generate --cn latchkey-31d --days 31 --out "$exp/lk-31" 2>/dev/null
cp "$exp/lk-31/cert.pem" "$exp/latchkey-p256-31d.pem"

# One field of `cert info --json` ($1: file, $2: warn days, $3: python expression on r).
info() {
  lk cert info --json --warn-days "$2" "$1" | python3 -c "
import json, sys
r = json.load(sys.stdin)[0]
print($3)"
}
# False when `openssl x509 -checkend $2` says the certificate will not expire within $2
# seconds, True when it says it will (Python's spelling, as the JSON reader prints it). Its exit
# status is 1 for "will expire" and for an error alike: the verdict is read from its output.
checkend() {
  local out
  out="$(openssl x509 -noout -checkend "$2" -in "$1" 2>&1)" || true
  case "$out" in
    "Certificate will not expire") echo False ;;
    "Certificate will expire") echo True ;;
    *) die "openssl x509 -checkend $2 -in $1 failed: $out" ;;
  esac
}
for cert in "$exp"/openssl-*.pem "$exp"/latchkey-*.pem; do
  name="$(basename "$cert" .pem)"
  not_after="$(info "$cert" 30 "r['certificate']['not_after']")"
  openssl_end="$(date -u -d "$(openssl x509 -noout -enddate -in "$cert" | cut -d= -f2)" +%s)"
  [ "$not_after" = "$openssl_end" ] || die "$name: notAfter $not_after (latchkey) vs $openssl_end (openssl)"
  seconds="$(info "$cert" 30 "r['expiry']['seconds_until_expiry']")"
  days="$(info "$cert" 30 "r['expiry']['days_until_expiry']")"
  state="$(info "$cert" 30 "r['expiry']['state']")"
  [ "$days" -eq "$(python3 -c "print($seconds // 86400)")" ] || die "$name: days $days vs seconds $seconds"
  if [ "$seconds" -lt 0 ]; then
    [ "$state" = expired ] || die "$name: state $state for a past notAfter"
    warn_list="0 1 30"
  else
    warn_list="$days $((days + 1)) 30"
    # Seconds on both sides of the exact boundary (a minute covers the two tools' clocks).
    for n in $((seconds - 60)) $((seconds + 60)); do
      [ "$n" -ge 0 ] || continue
      expected=$([ "$n" -gt "$seconds" ] && echo True || echo False)
      [ "$(checkend "$cert" "$n")" = "$expected" ] \
        || die "$name: openssl -checkend $n disagrees with seconds_until_expiry $seconds"
    done
  fi
  verdicts=""
  for warn in $warn_list; do
    ours="$(info "$cert" "$warn" "r['expiry']['expiring_soon']")"
    theirs="$(checkend "$cert" $((warn * day)))"
    [ "$ours" = "$theirs" ] \
      || die "$name: --warn-days $warn says expiring_soon=$ours, openssl -checkend $((warn * day)) says $theirs"
    verdicts="$verdicts ${warn}d=$ours"
  done
  say "   $name: notAfter agrees, $days days ($state), expiring_soon:$verdicts — same as -checkend"
done

# --- 3. hot swap under openssl s_client ----------------------------------------------------
say "3. openssl s_client against latchkey cert serve, files replaced while it runs"
swap="$work/swap"
mkdir -p "$swap/srv"
lk cert generate --cn localhost --days 2 --out "$swap/a" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$swap/b.key" -out "$swap/b.pem" -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -addext extendedKeyUsage=serverAuth 2>/dev/null
lk cert generate --cn localhost --san ip:127.0.0.1 --days 3 --out "$swap/c" 2>/dev/null
# The advice the watcher documents: a temporary file beside the target, then a rename.
put() { cp "$1" "$2.tmp" && mv "$2.tmp" "$2"; }
put "$swap/a/cert.pem" "$swap/srv/cert.pem"
put "$swap/a/key.pem" "$swap/srv/key.pem"
timeout 600 "$bin" cert serve --cert "$swap/srv/cert.pem" --key "$swap/srv/key.pem" \
  --listen 127.0.0.1:0 --poll-ms 100 >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
wait_for "$work/serve.out" 20 '"event":"listening"' || die "cert serve did not start"
port="$(sed -n 's/.*"event":"listening","address":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/serve.out" | head -n 1)"
[ -n "$port" ] || die "no port in: $(head -n 1 "$work/serve.out")"
served() {
  timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null \
    2>/dev/null | openssl x509 -noout -fingerprint -sha256 | sed 's/^.*=//'
}
# Waits up to 20 s for the `swapped` line of generation $1 with fingerprint $2.
swapped_to() { wait_for "$work/serve.out" 20 "\"event\":\"swapped\",\"generation\":$1,\"fingerprint\":\"$2\""; }
fa="$(fingerprint "$swap/a/cert.pem")"
fb="$(fingerprint "$swap/b.pem")"
fc="$(fingerprint "$swap/c/cert.pem")"
[ "$(served)" = "$fa" ] || die "s_client does not see the first certificate"
say "   listening on 127.0.0.1:$port with A (latchkey P-256) $fa"

# A connection opened before any swap, kept open through a fifo (fd 7).
mkfifo "$work/old.in"
timeout 300 openssl s_client -connect "127.0.0.1:$port" -servername localhost -ign_eof \
  -nocommands <"$work/old.in" >"$work/old.out" 2>&1 &
pids+=($!)
exec 7>"$work/old.in"
token="ping-$$-$RANDOM"
echo "$token-before" >&7
wait_for "$work/old.out" 20 "$token-before" || die "the first connection does not echo"
sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$work/old.out" >"$work/old-cert.pem"
[ "$(fingerprint "$work/old-cert.pem")" = "$fa" ] || die "the first connection saw another certificate"

put "$swap/b.key" "$swap/srv/key.pem"
put "$swap/b.pem" "$swap/srv/cert.pem"
swapped_to 1 "$fb" || die "cert serve did not swap to B: $(tail -n 3 "$work/serve.out")"
[ "$(served)" = "$fb" ] || die "a new s_client does not see B after the swap"
echo "$token-after" >&7
wait_for "$work/old.out" 20 "$token-after" || die "the connection opened before the swap stopped echoing"
say "   swapped to B (openssl RSA) $fb: new handshakes see it, the old connection still echoes"

refusals() { grep -c '"event":"refused"' "$work/serve.out" || true; }
before_refusals="$(refusals)"
put "$swap/c/cert.pem" "$swap/srv/cert.pem" # half-written: the key is still B's
for _ in $(seq 1 200); do
  [ "$(refusals)" -gt "$before_refusals" ] && break
  sleep 0.1
done
grep '"event":"refused"' "$work/serve.out" | tail -n 1 | grep -q "key mismatch" \
  || die "the half-written pair was not refused for its key: $(tail -n 2 "$work/serve.out")"
[ "$(served)" = "$fb" ] || die "a half-written pair went live"
put "$swap/c/key.pem" "$swap/srv/key.pem"
swapped_to 2 "$fc" || die "cert serve did not swap to C: $(tail -n 3 "$work/serve.out")"
[ "$(served)" = "$fc" ] || die "a new s_client does not see C after the swap"
echo "$token-later" >&7
wait_for "$work/old.out" 20 "$token-later" || die "the first connection stopped echoing after two swaps"
exec 7>&-
say "   half-written C refused (key mismatch), whole C $fc swapped in; the first connection still echoes"

# latchkey as the mutual-TLS server, openssl as the client.
lk cert generate --cn panel-s --usage client --days 1 --out "$swap/client" 2>/dev/null
timeout 600 "$bin" cert serve --cert "$swap/a/cert.pem" --key "$swap/a/key.pem" \
  --listen 127.0.0.1:0 --client-ca "$swap/client/cert.pem" >"$work/serve-mtls.out" \
  2>"$work/serve-mtls.log" &
pids+=($!)
wait_for "$work/serve-mtls.out" 20 '"event":"listening"' || die "cert serve --client-ca did not start"
mport="$(sed -n 's/.*"address":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/serve-mtls.out" | head -n 1)"
# Sends line $2 through a new s_client (more options after it) to port $mport and waits up to
# 10 s for the echo in file $1, or for s_client to end; 0 when the echo came back.
echo_through() {
  local out=$1 line=$2 pid i
  shift 2
  mkfifo "$out.in"
  timeout 20 openssl s_client -connect "127.0.0.1:$mport" -servername localhost -quiet "$@" \
    <"$out.in" >"$out" 2>&1 &
  pid=$!
  pids+=("$pid")
  exec 8>"$out.in"
  echo "$line" >&8
  for ((i = 0; i < 100; i++)); do
    grep -qF -- "$line" "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  exec 8>&-
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -qF -- "$line" "$out"
}
echo_through "$work/mtls-client.out" "mtls-$token" -cert "$swap/client/cert.pem" \
  -key "$swap/client/key.pem" || die "cert serve --client-ca did not echo to a client with a certificate"
wait_for "$work/serve-mtls.out" 10 "\"client_fingerprint\":\"$(fingerprint "$swap/client/cert.pem")\"" \
  || die "cert serve did not report the client's certificate"
if echo_through "$work/nocert-client.out" "nocert-$token"; then
  die "cert serve --client-ca echoed to a client with no certificate"
fi
# Not echoing could be any failure: both sides must say the certificate was missing.
grep -q "alert certificate required" "$work/nocert-client.out" \
  || die "s_client without a certificate got no certificate_required alert: $(tail -n 2 "$work/nocert-client.out")"
if ! wait_for "$work/serve-mtls.out" 10 '"event":"handshake_failed"' \
  || ! grep '"event":"handshake_failed"' "$work/serve-mtls.out" | grep -q 'no certificates'; then
  die "cert serve did not report refusing a client with no certificate: $(tail -n 2 "$work/serve-mtls.out")"
fi
say "   cert serve --client-ca: openssl's client with a latchkey certificate served, one without refused (certificate_required alert, handshake_failed reported)"

# --- 4. mutual TLS against openssl s_server ------------------------------------------------
say "4. latchkey client certificates against openssl s_server -Verify 1"
mtls="$work/mtls"
mkdir -p "$mtls/clients/a" "$mtls/clients/b" "$mtls/clients/foreign"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$mtls/server.key" \
  -out "$mtls/server.pem" -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$mtls/ca.key" \
  -out "$mtls/ca.pem" -days 1 -subj "/CN=interop client CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
lk cert generate --cn panel-a --usage client --days 1 --out "$mtls/clients/a" --force 2>/dev/null
lk cert csr --key "$mtls/clients/b/key.pem" --new-key --subject /CN=panel-b --usage client \
  >"$mtls/b.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' \
  >"$mtls/client.ext"
openssl x509 -req -in "$mtls/b.csr" -CA "$mtls/ca.pem" -CAkey "$mtls/ca.key" \
  -set_serial "0x$(openssl rand -hex 8)" -days 1 -extfile "$mtls/client.ext" \
  -out "$mtls/clients/b/cert.pem" 2>/dev/null
lk cert generate --cn intruder --usage client --days 1 --out "$mtls/clients/foreign" --force 2>/dev/null
cat "$mtls/clients/a/cert.pem" "$mtls/ca.pem" >"$mtls/trusted.pem"
timeout $((2 * test_timeout + 60)) openssl s_server -accept 127.0.0.1:0 -cert "$mtls/server.pem" \
  -key "$mtls/server.key" -Verify 1 -CAfile "$mtls/trusted.pem" -verify_return_error -rev \
  >"$work/s_server.log" 2>&1 &
pids+=($!)
wait_for "$work/s_server.log" 20 "ACCEPT 127.0.0.1:" || die "openssl s_server did not start"
sport="$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/s_server.log" | head -n 1)"
export LATCHKEY_OPENSSL_SERVER="127.0.0.1:$sport"
export LATCHKEY_OPENSSL_SERVER_CERT="$mtls/server.pem"
export LATCHKEY_OPENSSL_CLIENTS="$mtls/clients"
for crate in latchkey-tokio latchkey-smol; do
  say "   cargo test -p $crate --test interop_openssl -- --include-ignored"
  status=0
  (cd "$root" && timeout "$test_timeout" cargo test -q -p "$crate" --test interop_openssl \
    -- --include-ignored --test-threads 1 >"$work/test-$crate.out" 2>&1) || status=$?
  [ "$status" -ne 124 ] || die "$crate: the interop tests took longer than $test_timeout s"
  [ "$status" -eq 0 ] || { cat "$work/test-$crate.out" >&2; die "$crate: the interop tests failed (exit $status)"; }
  grep -E "^test result" "$work/test-$crate.out" | sed 's/^/      /' >&2
done
# s_server's own account: each runtime's connections, verified, and the intruder refused.
for who in "CN = panel-a" "CN = panel-b"; do
  seen="$(grep -cF "Peer certificate: $who" "$work/s_server.log" || true)"
  [ "$seen" -eq 2 ] || die "s_server verified $who $seen times, not once per runtime"
done
[ "$(grep -c "^Verification: OK" "$work/s_server.log" || true)" -eq 4 ] \
  || die "s_server did not verify every accepted connection"
[ "$(grep -A1 -F "depth=0 CN = intruder" "$work/s_server.log" | grep -c "verify error" || true)" -eq 2 ] \
  || die "s_server did not refuse the foreign certificate on both runtimes"
say "   s_server verified panel-a (latchkey self-signed) and panel-b (latchkey CSR, openssl CA), refused the intruder"
say "passed"
