#!/usr/bin/env bash
# Builds helm, actionlint and cosign at the versions smoke/tools/go.mod pins into a cache directory
# outside the repository, keyed by the hash of go.sum so a version change rebuilds:
#
#   ${PROOFPOD_CLUSTER_CACHE:-$HOME/.cache/proofpod}/tools/<go.sum hash>/{helm,actionlint,cosign}
#
# cosign verifies the DSSE/in-toto attestations offline (verify-blob-attestation --key).
#
# Prints that directory (put it on PATH). A second run reuses the binaries.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PROOFPOD_CLUSTER_CACHE:-$HOME/.cache/proofpod}
BIN_DIR="$CACHE/tools/$(sha256sum "$HERE/go.sum" | cut -c1-16)"

log() { printf '[tools] %s\n' "$*" >&2; }
command -v go >/dev/null || { log "error: go is not on PATH (Go 1.26 or newer is needed)"; exit 1; }

if [[ -x "$BIN_DIR/helm" && -x "$BIN_DIR/actionlint" && -x "$BIN_DIR/cosign" ]] && "$BIN_DIR/helm" version --short 2>/dev/null | grep -q '^v4\.[0-9]*\.[0-9]'; then
  log "using cached helm, actionlint and cosign in $BIN_DIR"
else
  start=$(date +%s)
  tmp="$BIN_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  log "building helm, actionlint and cosign into $BIN_DIR"
  # The version stamps their own release builds set.
  helm_version=$(cd "$HERE" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
  actionlint_version=$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/rhysd/actionlint)
  cosign_version=$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/sigstore/cosign/v3)
  (cd "$HERE" && CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false -o "$tmp/" \
    -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version -X github.com/rhysd/actionlint.version=$actionlint_version -X sigs.k8s.io/release-utils/version.gitVersion=$cosign_version -X sigs.k8s.io/release-utils/version.gitTreeState=clean" \
    helm.sh/helm/v4/cmd/helm github.com/rhysd/actionlint/cmd/actionlint github.com/sigstore/cosign/v3/cmd/cosign)
  mkdir -p "$BIN_DIR"
  mv -f "$tmp/helm" "$tmp/actionlint" "$tmp/cosign" "$BIN_DIR/"
  rm -rf "$tmp"
  trap - EXIT
  log "built in $(($(date +%s) - start))s: $("$BIN_DIR/helm" version --short), actionlint $("$BIN_DIR/actionlint" -version | head -1), cosign $("$BIN_DIR/cosign" version --json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')"
fi
echo "$BIN_DIR"
