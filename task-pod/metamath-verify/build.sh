#!/usr/bin/env bash
# Builds proofpod-metamath-verify (our wrapper around metamath-rs, the second Metamath verifier) with
# the crate versions Cargo.lock pins, into a cache directory outside the repository keyed by the
# hash of its sources, and installs it as dist/bin/proofpod-metamath-verify, where the check wrapper
# looks for our checker programs first. A second run reuses the cached binary.
#
#   ${PROOFPOD_CLUSTER_CACHE:-$HOME/.cache/proofpod}/checkers/<hash>/proofpod-metamath-verify
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${PROOFPOD_CLUSTER_CACHE:-$HOME/.cache/proofpod}
KEY=$(cd "$HERE" && cat Cargo.toml Cargo.lock src/*.rs | sha256sum | cut -c1-16)
BIN_DIR="$CACHE/checkers/$KEY"
BIN=proofpod-metamath-verify

log() { printf '[checkers] %s\n' "$*" >&2; }
if [[ -x "$BIN_DIR/$BIN" ]] && "$BIN_DIR/$BIN" --version >/dev/null 2>&1; then
  log "using cached $BIN in $BIN_DIR"
else
  command -v cargo >/dev/null || { log "error: cargo is not on PATH (Rust with crates.io is needed to build $BIN)"; exit 1; }
  start=$(date +%s)
  log "building $BIN into $BIN_DIR"
  CARGO_TARGET_DIR="$CACHE/checkers/target" cargo build --quiet --release --locked --manifest-path "$HERE/Cargo.toml"
  mkdir -p "$BIN_DIR"
  cp "$CACHE/checkers/target/release/$BIN" "$BIN_DIR/$BIN.tmp.$$"
  mv -f "$BIN_DIR/$BIN.tmp.$$" "$BIN_DIR/$BIN"
  log "built in $(($(date +%s) - start))s: $("$BIN_DIR/$BIN" --version)"
fi
mkdir -p "$ROOT/dist/bin"
# Readable and runnable by the sandboxes' unprivileged uids.
install -m 0755 "$BIN_DIR/$BIN" "$ROOT/dist/bin/$BIN"
