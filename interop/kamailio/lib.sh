# Sourced by the interop scripts: a Kamailio registrar on loopback TLS for one run.
#
#   kamailio_start WORK ALG   certificates in WORK (CA, server, client, a foreign client),
#                             Kamailio started with DIGEST_ALG=ALG; sets KAM_PID, KAM_TLS_PORT,
#                             KAM_UDP_PORT, KAM_GATE_PORT, KAM_PASSWORD
#   kamailio_launch WORK      (re)starts the Kamailio of WORK with the same ports, certificates
#                             and secrets (interop/kamailio/ctl.sh start WORK)
#   kamailio_stop             stops it (TERM, then KILL after 2 s)
#   wait_udp_bound PORT       waits up to 5 s for a UDP socket on 127.0.0.1:PORT (a SIPp
#                             started in the background ready to receive)
# Needs: kamailio with its TLS module, openssl, ss (iproute2) or a free-port helper.

kam_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# A free TCP/UDP port on 127.0.0.1 (bound and released; loopback only).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_udp_bound() {
  local i
  for ((i = 0; i < 50; i++)); do
    [ -n "$(ss -Hlun "src 127.0.0.1:$1")" ] && return 0
    sleep 0.1
  done
  return 1
}

# CA, server (localhost, 127.0.0.1), client (the account's identity), and a client from an
# unrelated CA; all P-256, valid for a day.
kamailio_certs() {
  local dir=$1
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 1 -subj "/CN=latchkey interop CA" -out ca.crt
    openssl ecparam -name prime256v1 -genkey -noout -out other-ca.key 2>/dev/null
    openssl req -x509 -new -key other-ca.key -sha256 -days 1 -subj "/CN=unrelated CA" -out other-ca.crt
    leaf() { # name ca subject san
      openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
      openssl req -new -key "$1.key" -subj "$3" -out "$1.csr"
      printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$4" > "$1.ext"
      openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 1 \
        -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    leaf server ca "/CN=localhost" "DNS:localhost,IP:127.0.0.1"
    leaf client ca "/CN=panel" "URI:sip:panel@127.0.0.1"
    leaf foreign other-ca "/CN=intruder" "URI:sip:intruder@127.0.0.1"
    chmod 600 ./*.key
  )
}

kamailio_start() {
  local work=$1 alg=$2
  command -v kamailio >/dev/null || { echo "kamailio is required" >&2; return 1; }
  kamailio_certs "$work/certs"
  cat > "$work/tls.cfg" <<CFG
[server:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
private_key = $work/certs/server.key
certificate = $work/certs/server.crt
ca_list = $work/certs/ca.crt

[client:default]
verify_certificate = no
require_certificate = no
CFG
  KAM_TLS_PORT=$(free_port)
  KAM_UDP_PORT=$(free_port)
  KAM_GATE_PORT=$(free_port)
  KAM_PASSWORD="pw-$RANDOM$RANDOM"
  # Everything a restart needs (interop/kamailio/ctl.sh): same ports, certificates, secrets.
  # Created empty and private before the secrets are written into it.
  (umask 077 && : > "$work/kam.env")
  cat > "$work/kam.env" <<ENV
KAM_ALG='$alg'
KAM_TLS_PORT=$KAM_TLS_PORT
KAM_UDP_PORT=$KAM_UDP_PORT
KAM_GATE_PORT=$KAM_GATE_PORT
KAM_PASSWORD='$KAM_PASSWORD'
KAM_SECRET='s$RANDOM$RANDOM'
KAM_REG_MAX=${KAM_REG_MAX:-20}
ENV
  chmod 600 "$work/kam.env"
  kamailio_launch "$work"
}

# Starts (or restarts) the Kamailio of run WORK with the settings kamailio_start saved.
kamailio_launch() {
  local work=$1
  # shellcheck source=/dev/null
  source "$work/kam.env"
  mkdir -p "$work/run"
  kamailio -f "$kam_here/kamailio.cfg" -DD -E -m "${KAM_SHM_MB:-64}" -M 8 -Y "$work/run" -P "$work/run/kamailio.pid" \
    -A "TLS_PORT=$KAM_TLS_PORT" -A "UDP_PORT=$KAM_UDP_PORT" \
    -A "GATE_URI=\"sip:127.0.0.1:$KAM_GATE_PORT\"" -A "DIGEST_ALG=\"$KAM_ALG\"" \
    -A "SECRET=\"$KAM_SECRET\"" -A "PASSWORD=\"$KAM_PASSWORD\"" \
    -A "TLS_CFG=\"$work/tls.cfg\"" -A "REG_MAX=$KAM_REG_MAX" \
    >>"$work/kamailio.log" 2>&1 &
  KAM_PID=$!
  KAM_WORK=$work
  # Ready when the TLS port accepts.
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$KAM_TLS_PORT") 2>/dev/null; then
      export KAM_PID KAM_WORK KAM_TLS_PORT KAM_UDP_PORT KAM_GATE_PORT KAM_PASSWORD
      return 0
    fi
    kill -0 "$KAM_PID" 2>/dev/null || { tail -n 30 "$work/kamailio.log" >&2; return 1; }
    sleep 0.1
  done
  echo "kamailio did not listen within 10 s" >&2
  tail -n 30 "$work/kamailio.log" >&2
  return 1
}

# Stops the Kamailio of this shell (KAM_PID) or, after a restart by ctl.sh, the one named
# in the run's pid file.
kamailio_stop() {
  local pid=${KAM_PID:-}
  if [ -n "${KAM_WORK:-}" ] && [ -s "$KAM_WORK/run/kamailio.pid" ]; then
    pid=$(cat "$KAM_WORK/run/kamailio.pid")
  fi
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -n "${KAM_WORK:-}" ] && rm -f "$KAM_WORK/run/kamailio.pid"
  KAM_PID=""
}
