#!/usr/bin/env bash
# Stops exactly the processes up.sh started: each PID recorded in $PROOFPOD_CLUSTER_DIR/pids/ is
# signalled only while it still runs the binary recorded beside it. Waits for them to exit
# (SIGTERM, then SIGKILL after a grace period). Leaves the data directory in place, or removes it
# with --purge.
#
# Usage: down.sh [--purge]
set -euo pipefail

DIR=${PROOFPOD_CLUSTER_DIR:-$HOME/.cache/proofpod/cluster}
PIDS="$DIR/pids"
GRACE=${PROOFPOD_CLUSTER_STOP_GRACE:-15}
# Stop in reverse start order, so the API server does not log etcd errors while it shuts down.
# The process-kubelet first: it stops the sandboxes it runs when told to.
COMPONENTS=(process-kubelet kube-controller-manager kube-apiserver etcd)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

purge=0
case "${1:-}" in
  --purge) purge=1 ;;
  "") ;;
  *) die "unknown argument: $1 (usage: down.sh [--purge])" ;;
esac

# shellcheck source=smoke/cluster/pids.sh
source "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

stop() {
  local name=$1 pid deadline
  if ! pid=$(owned_pid "$name"); then
    [[ -f "$PIDS/$name.pid" ]] && log "$name is not running (pid $(<"$PIDS/$name.pid") has exited or runs something else: left alone)"
    rm -f "$PIDS/$name.pid" "$PIDS/$name.exe"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + GRACE))
  while owned_pid "$name" >/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) did not exit after ${GRACE}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while owned_pid "$name" >/dev/null; do
        ((SECONDS < deadline)) || die "$name (pid $pid) survived SIGKILL"
        sleep 0.1
      done
      break
    fi
    sleep 0.1
  done
  # It has exited; give its parent (init, as up.sh has exited) a moment to reap the zombie, so
  # that process listings right after this script show nothing left.
  deadline=$((SECONDS + 3))
  while [[ -e "/proc/$pid" ]] && ((SECONDS < deadline)); do sleep 0.1; done
  rm -f "$PIDS/$name.pid" "$PIDS/$name.exe"
}

if [[ -d "$DIR" ]]; then
  for c in "${COMPONENTS[@]}"; do stop "$c"; done
fi

if ((purge)); then
  # Refuse to remove anything that does not look like a cluster directory this script made.
  if [[ -d "$DIR" ]]; then
    [[ -d "$DIR/pki" || -d "$DIR/pids" || -d "$DIR/etcd" ]] || die "$DIR does not look like a cluster directory; not removing it"
    rm -rf "$DIR"
    log "removed $DIR"
  fi
else
  log "stopped; state kept in $DIR (down.sh --purge removes it)"
fi
