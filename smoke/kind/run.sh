#!/usr/bin/env bash
# The kind smokes (docs/testing.md): create a kind cluster, build proofpod's images and load them into it,
# run the chart smoke (smoke/chart-smoke.ts) against it, delete the cluster whatever happens.
#
#   smoke/kind/run.sh kubernetes   scheduler with RBAC on, every attempt a batch/v1 Job
#   smoke/kind/run.sh local        scheduler running attempts in its own pod: no Jobs, no RBAC
#
# Needs docker, kind, kubectl, helm and Node.js (npm ci done). The proofs' git repository must be
# reachable from the cluster: set PROOFPOD_SMOKE_SOURCE and PROOFPOD_SMOKE_COMMIT (the workflow uses
# the GitHub repository at the pushed commit). KEEP_CLUSTER=1 leaves the cluster for debugging.
set -euo pipefail
substrate=${1:-}
case "$substrate" in
  kubernetes) targets=(scheduler task prover-coq prover-metamath prover-smt prover-agda) ;;
  local) targets=(local) ;;
  *) echo "usage: $0 kubernetes|local" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster=proofpod-smoke-$substrate
postgres_image=postgres:18-alpine
for tool in docker kind kubectl helm node; do
  command -v "$tool" >/dev/null || { echo "$tool is not on PATH" >&2; exit 1; }
done
: "${PROOFPOD_SMOKE_SOURCE:?set PROOFPOD_SMOKE_SOURCE to a git URL the cluster can fetch (holding test/fixtures/proofs)}"
: "${PROOFPOD_SMOKE_COMMIT:?set PROOFPOD_SMOKE_COMMIT to the commit to verify}"

KUBECONFIG=$(mktemp)
export KUBECONFIG
cleanup() {
  if [ "${KEEP_CLUSTER:-}" = 1 ]; then
    echo "[kind] keeping cluster $cluster (KUBECONFIG=$KUBECONFIG)"
  else
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
    rm -f "$KUBECONFIG"
  fi
}
trap cleanup EXIT

echo "[kind] creating cluster $cluster"
kind create cluster --name "$cluster" --kubeconfig "$KUBECONFIG" --wait 180s

images=()
for target in "${targets[@]}"; do
  echo "[kind] building proofpod/$target:latest"
  docker build --target "$target" -t "proofpod/$target:latest" "$root"
  images+=("proofpod/$target:latest")
done
docker pull -q "$postgres_image"
images+=("$postgres_image")
kind load docker-image --name "$cluster" "${images[@]}"

(cd "$root" && npm run build --silent)
node "$root/dist/smoke/chart-smoke.js" --substrate "$substrate" --set image.tag=latest "${@:2}"
