#!/usr/bin/env bash
# Stops or starts the local control plane's kube-apiserver alone, for fault injection (the chaos
# run, test/bench/chaos.ts): etcd, the controller manager and the process-kubelet keep running.
#
#   restart-apiserver.sh stop    saves the running server's command line (/proc/PID/cmdline, i.e.
#                                exactly what up.sh started) as pids/kube-apiserver.cmdline, sends
#                                SIGTERM and waits for it to exit (SIGKILL after a grace period)
#   restart-apiserver.sh start   starts that saved command line again as up.sh's launch does (own
#                                session, logs/kube-apiserver.log, pid and binary recorded for
#                                down.sh) and waits for /readyz
#   restart-apiserver.sh stop --kill   the same stop with SIGKILL at once: a crash, not a shutdown
#                                (on SIGTERM the server drains its watches first, which takes ~15 s)
#   restart-apiserver.sh         stop and start, one after the other
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${PROOFPOD_CLUSTER_DIR:-$HOME/.cache/proofpod/cluster}
PKI="$DIR/pki"
LOGS="$DIR/logs"
PIDS="$DIR/pids"
SAVED="$PIDS/kube-apiserver.cmdline"
GRACE=${PROOFPOD_CLUSTER_STOP_GRACE:-15}
READY_TIMEOUT=${PROOFPOD_CLUSTER_READY_TIMEOUT:-90}

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=smoke/cluster/pids.sh
source "$HERE/pids.sh"

stop_apiserver() {
  local signal=$1 pid deadline
  pid=$(owned_pid kube-apiserver) || die "kube-apiserver is not running (start the control plane with npm run cluster:up)"
  tr '\0' '\n' <"/proc/$pid/cmdline" >"$SAVED.tmp"
  mv -f "$SAVED.tmp" "$SAVED"
  log "stopping kube-apiserver (pid $pid, SIG$signal)"
  kill "-$signal" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + GRACE))
  while owned_pid kube-apiserver >/dev/null; do
    if ((SECONDS >= deadline)); then
      log "kube-apiserver (pid $pid) did not exit after ${GRACE}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
}

start_apiserver() {
  local argv pid deadline
  [[ -f "$SAVED" ]] || die "no $SAVED: stop the API server with this script first"
  owned_pid kube-apiserver >/dev/null && die "kube-apiserver is running already"
  mapfile -t argv <"$SAVED"
  # shellcheck source=/dev/null
  source "$DIR/ports.env"
  log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
  printf '\n==== %s starting kube-apiserver (restart-apiserver.sh)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$LOGS/kube-apiserver.log"
  setsid "${argv[@]}" </dev/null >>"$LOGS/kube-apiserver.log" 2>&1 &
  pid=$!
  echo "$pid" >"$PIDS/kube-apiserver.pid"
  realpath "${argv[0]}" >"$PIDS/kube-apiserver.exe"
  deadline=$((SECONDS + READY_TIMEOUT))
  until [[ "$(curl --silent --fail --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null)" == ok ]]; do
    owned_pid kube-apiserver >/dev/null || die "kube-apiserver exited while starting (log: $LOGS/kube-apiserver.log)"
    ((SECONDS < deadline)) || die "timed out after ${READY_TIMEOUT}s waiting for kube-apiserver /readyz"
    sleep 0.2
  done
  log "kube-apiserver ready (pid $pid)"
}

case "${1:-}" in
  stop)
    case "${2:-}" in
      --kill) stop_apiserver KILL ;;
      "") stop_apiserver TERM ;;
      *) die "unknown argument: $2 (usage: restart-apiserver.sh stop [--kill])" ;;
    esac
    ;;
  start) start_apiserver ;;
  "")
    stop_apiserver TERM
    start_apiserver
    ;;
  *) die "unknown argument: $1 (usage: restart-apiserver.sh [stop [--kill]|start])" ;;
esac
