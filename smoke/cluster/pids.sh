# shellcheck shell=bash
# Sourced by up.sh and down.sh: the one test of whether a recorded process is still ours.

# Prints the PID recorded in $PIDS/NAME.pid when that process still runs the binary recorded in
# $PIDS/NAME.exe (so a reused PID is never mistaken for ours); fails otherwise.
owned_pid() {
  local name=$1 pid want exe
  [[ -f "$PIDS/$name.pid" && -f "$PIDS/$name.exe" ]] || return 1
  pid=$(<"$PIDS/$name.pid")
  want=$(<"$PIDS/$name.exe")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ "${exe% (deleted)}" == "$want" ]] || return 1
  echo "$pid"
}
