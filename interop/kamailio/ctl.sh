#!/usr/bin/env bash
# ctl.sh stop|start WORK: stops, or starts again with the same ports, certificates and
# secrets, the Kamailio of run WORK (made by lib.sh's kamailio_start). The interop tests
# call it (LATCHKEY_KAM_CTL) to take the registrar away mid-session and bring it back.
set -euo pipefail
exec </dev/null
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
[ $# -eq 2 ] || { echo "usage: ctl.sh stop|start WORK" >&2; exit 2; }
KAM_WORK=$2
case $1 in
  stop) kamailio_stop ;;
  start) kamailio_launch "$2" >/dev/null ;;
  *) echo "usage: ctl.sh stop|start WORK" >&2; exit 2 ;;
esac
