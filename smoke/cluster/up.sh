#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback: etcd, kube-apiserver and
# kube-controller-manager built by build.sh (cached outside the repository), with TLS everywhere,
# certificates from a CA generated here, service-account signing keys, Node,RBAC authorization and
# the PodSecurity admission plugin. Then the process-kubelet (smoke/cluster/process-kubelet.ts, built
# by `npm run build`) registers a node and runs pods in the local substrate's sandboxes; without the
# build it is left out and pods stay Pending.
#
# All state lives under $PROOFPOD_CLUSTER_DIR (default ~/.cache/proofpod/cluster):
#   pki/              CA, serving and client certificates, service-account keys (made once)
#   etcd/             etcd's data
#   logs/             one log per process
#   pids/             <name>.pid and <name>.exe for each process this script started
#   ports.env         the loopback ports in use
#   admin.kubeconfig  cluster-admin (O=system:masters) kubeconfig; its path is printed on stdout
#
# Running it while the cluster is up is a no-op that prints the kubeconfig path. down.sh stops it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${PROOFPOD_CLUSTER_DIR:-$HOME/.cache/proofpod/cluster}
PKI="$DIR/pki"
LOGS="$DIR/logs"
PIDS="$DIR/pids"
KUBECONFIG_OUT="$DIR/admin.kubeconfig"
SERVICE_CIDR=10.96.0.0/12
SERVICE_IP=10.96.0.1 # the first address of SERVICE_CIDR: the `kubernetes` Service
ISSUER=https://kubernetes.default.svc.cluster.local
COMPONENTS=(etcd kube-apiserver kube-controller-manager)
# The controllers the tests need (kube-controller-manager --controllers); the Deployment and
# ReplicaSet controllers run the chart's scheduler (no EndpointSlice controller: pods have loopback
# addresses here, which EndpointSlices refuse). The root CA publisher
# writes the kube-root-ca.crt ConfigMap that projected service-account token volumes mount.
# PROOFPOD_CLUSTER_CONTROLLERS overrides the list (e.g. to add pod-garbage-collector-controller).
CONTROLLERS=${PROOFPOD_CLUSTER_CONTROLLERS:-job-controller,deployment-controller,replicaset-controller,disruption-controller,garbage-collector-controller,ttl-after-finished-controller,serviceaccount-controller,serviceaccount-token-controller,namespace-controller,root-ca-certificate-publisher-controller}
READY_TIMEOUT=${PROOFPOD_CLUSTER_READY_TIMEOUT:-90}

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

for tool in openssl curl base64 setsid realpath node; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done

# shellcheck source=smoke/cluster/pids.sh
source "$HERE/pids.sh"
# True when pids/<name>.pid names a live process running the recorded binary.
running() { owned_pid "$1" >/dev/null; }

# curl against one of our TLS endpoints with the admin client certificate.
admin_curl() {
  curl --silent --show-error --fail --max-time 5 --cacert "$PKI/ca.crt" \
    --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"
}

api_ready() { [[ -f "$DIR/ports.env" ]] && [[ "$(admin_curl "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null)" == ok ]]; }
kcm_ready() { [[ "$(curl --silent --fail --max-time 5 --cacert "$PKI/ca.crt" "https://127.0.0.1:$KCM_PORT/healthz" 2>/dev/null)" == ok ]]; }
etcd_ready() {
  local health
  health=$(curl --silent --fail --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/etcd-client.crt" \
    --key "$PKI/etcd-client.key" "https://127.0.0.1:$ETCD_PORT/health" 2>/dev/null) || return 1
  [[ "$health" == *'"health":"true"'* ]]
}

# wait_for WHAT CHECK PROCESS: polls CHECK until it succeeds, failing early if PROCESS died.
wait_for() {
  local what=$1 check=$2 name=$3 deadline=$((SECONDS + READY_TIMEOUT))
  until "$check"; do
    if ! running "$name"; then
      tail -n 30 "$LOGS/$name.log" >&2 || true
      die "$name exited while waiting for $what (log: $LOGS/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOGS/$name.log" >&2 || true
      die "timed out after ${READY_TIMEOUT}s waiting for $what (log: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
}

# --- the process-kubelet -------------------------------------------------------------------------
KUBELET_JS=$(realpath -m "$HERE/../../dist/smoke/cluster/process-kubelet.js")
NODE_NAME=proofpod-local
# Pod sandboxes run as an unprivileged uid, which must reach their state: not under a private home.
KUBELET_DIR=${PROOFPOD_KUBELET_DIR:-/var/tmp/proofpod-kubelet-$(id -u)}
kubelet_wanted() { [[ -f "$KUBELET_JS" && "${PROOFPOD_CLUSTER_KUBELET:-1}" != 0 ]]; }
node_ready() { admin_curl "https://127.0.0.1:$API_PORT/api/v1/nodes/$NODE_NAME" 2>/dev/null | grep -q '"reason": *"KubeletReady"'; }
start_kubelet() {
  if ! kubelet_wanted; then
    log "no process-kubelet ($KUBELET_JS not built: npm run build): pods will stay Pending"
    return 0
  fi
  running process-kubelet && return 0
  log "starting the process-kubelet (node $NODE_NAME)"
  mkdir -p "$KUBELET_DIR" && chmod 711 "$KUBELET_DIR"
  # Where the chart smoke puts proof repositories for the proofpod/local image (kubelet-config.yaml).
  mkdir -p /var/tmp/proofpod-smoke-sources && chmod 1777 /var/tmp/proofpod-smoke-sources
  printf '\n==== %s starting process-kubelet\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$LOGS/process-kubelet.log"
  setsid node "$KUBELET_JS" --kubeconfig "$KUBECONFIG_OUT" --state "$KUBELET_DIR" --node "$NODE_NAME" \
    --config "$HERE/kubelet-config.yaml" </dev/null >>"$LOGS/process-kubelet.log" 2>&1 &
  echo "$!" >"$PIDS/process-kubelet.pid"
  realpath "$(command -v node)" >"$PIDS/process-kubelet.exe"
  wait_for "the process-kubelet's node to be Ready" node_ready process-kubelet
}

# --- already up? -------------------------------------------------------------------------------
if [[ -f "$DIR/ports.env" ]]; then
  # shellcheck source=/dev/null
  source "$DIR/ports.env"
  all=1
  any=0
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then any=1; else all=0; fi
  done
  if ((all)) && [[ -f "$KUBECONFIG_OUT" ]] && api_ready && kcm_ready; then
    start_kubelet
    log "already up"
    echo "$KUBECONFIG_OUT"
    exit 0
  fi
  if ((any)); then
    log "partly up: stopping what is left before starting again"
    bash "$HERE/down.sh"
  fi
fi

start_time=$(date +%s)
BIN=$(bash "$HERE/build.sh")
for c in "${COMPONENTS[@]}"; do [[ -x "$BIN/$c" ]] || die "no $c in $BIN"; done

mkdir -p "$PKI" "$LOGS" "$PIDS" "$DIR/etcd"
chmod 700 "$DIR" "$PKI" "$DIR/etcd"

# --- certificates and keys (made once, reused) ---------------------------------------------------
# make_ca NAME CN: a self-signed CA (its certificates are re-made with it).
make_ca() {
  local name=$1 cn=$2
  [[ -f "$PKI/$name.crt" && -f "$PKI/$name.key" ]] && return 0
  log "generating CA $name in $PKI"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$name.key" -subj "/CN=$cn" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$name.crt" 2>/dev/null
  touch "$PKI/$name.new"
}

# sign CA NAME SUBJECT EXTENSIONS: a key and a certificate signed by CA (made again when CA is new).
sign() {
  local ca=$1 name=$2 subject=$3 ext=$4
  [[ -f "$PKI/$name.crt" && -f "$PKI/$name.key" && ! -f "$PKI/$ca.new" ]] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# One CA for the cluster (serving and client certificates); a second one only for the front proxy
# (request-header authentication), as kubeadm does, so that a client certificate from the cluster
# CA can never pass as the front proxy.
make_ca ca proofpod-test-ca
make_ca front-proxy-ca proofpod-test-front-proxy-ca
server_ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
client_ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
sign ca kube-apiserver "/CN=kube-apiserver" "$server_ext
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# etcd's gRPC gateway dials etcd itself with the serving certificate, so it is a client one too.
sign ca etcd-server "/CN=etcd" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
sign ca kube-controller-manager-server "/CN=kube-controller-manager" "$server_ext
subjectAltName=IP:127.0.0.1,DNS:localhost"
sign ca etcd-client "/CN=kube-apiserver-etcd-client" "$client_ext"
sign ca admin "/O=system:masters/CN=proofpod-admin" "$client_ext"
sign ca kube-controller-manager "/CN=system:kube-controller-manager" "$client_ext"
sign ca kube-apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client_ext"
sign front-proxy-ca front-proxy-client "/CN=front-proxy-client" "$client_ext"
rm -f "$PKI"/*.new
if [[ ! -f "$PKI/sa.key" || ! -f "$PKI/sa.pub" ]]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi
chmod 600 "$PKI"/*.key

# --- ports ---------------------------------------------------------------------------------------
# Reuse the previous ports when they are free, else take new free ones from the kernel.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_ports() {
  node -e '
    const net = require("node:net");
    const servers = Array.from({ length: Number(process.argv[1]) }, () => net.createServer());
    Promise.all(servers.map((s) => new Promise((ok) => s.listen(0, "127.0.0.1", () => ok(s.address().port)))))
      .then((ports) => { console.log(ports.join(" ")); servers.forEach((s) => s.close()); });
  ' "$1"
}
reuse=0
if [[ -f "$DIR/ports.env" ]]; then
  reuse=1
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$KCM_PORT"; do port_free "$p" || reuse=0; done
fi
if ((!reuse)); then
  read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT < <(free_ports 4)
  printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPI_PORT=%s\nKCM_PORT=%s\n' \
    "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$KCM_PORT" >"$DIR/ports.env"
fi

# --- kubeconfigs ---------------------------------------------------------------------------------
kubeconfig() {
  local out=$1 user=$2 cert=$3
  cat >"$out.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: proofpod
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$cert.crt")
    client-key-data: $(base64 -w0 <"$PKI/$cert.key")
contexts:
- name: $user@proofpod
  context:
    cluster: proofpod
    user: $user
current-context: $user@proofpod
EOF
  chmod 600 "$out.tmp"
  mv -f "$out.tmp" "$out"
}
kubeconfig "$DIR/kube-controller-manager.kubeconfig" system:kube-controller-manager kube-controller-manager

# --- start ---------------------------------------------------------------------------------------
# launch NAME ARGS...: starts $BIN/NAME in its own session (so a terminal's Ctrl-C or hang-up does
# not reach it), records its PID and binary, logs to logs/NAME.log.
launch() {
  local name=$1
  shift
  printf '\n==== %s starting %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" >>"$LOGS/$name.log"
  setsid "$BIN/$name" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$PIDS/$name.pid"
  realpath "$BIN/$name" >"$PIDS/$name.exe"
}

# From here on, a failure stops whatever this run started.
started=0
cleanup_on_failure() {
  local rc=$?
  if ((rc != 0 && started)); then
    log "start failed: stopping what was started (logs in $LOGS)"
    bash "$HERE/down.sh" || true
  fi
}
trap cleanup_on_failure EXIT
trap 'exit 130' INT TERM

log "starting etcd on 127.0.0.1:$ETCD_PORT"
started=1
launch etcd \
  --name=proofpod \
  --data-dir="$DIR/etcd" \
  --listen-client-urls="https://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="https://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="proofpod=http://127.0.0.1:$ETCD_PEER_PORT" \
  --cert-file="$PKI/etcd-server.crt" \
  --key-file="$PKI/etcd-server.key" \
  --trusted-ca-file="$PKI/ca.crt" \
  --client-cert-auth=true \
  --log-level=warn \
  --quota-backend-bytes=2147483648 \
  --unsafe-no-fsync=true # test data only: speed over durability
wait_for "etcd /health" etcd_ready etcd

# The API server advertises 127.0.0.1, which the endpoint reconcilers refuse (a loopback address is
# no valid Endpoints address), so the `kubernetes` Service gets no endpoints here: in-cluster
# processes of this tier reach the API server at 127.0.0.1 directly.
log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
launch kube-apiserver \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --secure-port="$API_PORT" \
  --etcd-servers="https://127.0.0.1:$ETCD_PORT" \
  --etcd-cafile="$PKI/ca.crt" \
  --etcd-certfile="$PKI/etcd-client.crt" \
  --etcd-keyfile="$PKI/etcd-client.key" \
  --tls-cert-file="$PKI/kube-apiserver.crt" \
  --tls-private-key-file="$PKI/kube-apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
  --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --kubelet-client-certificate="$PKI/kube-apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/kube-apiserver-kubelet-client.key" \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer="$ISSUER" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,NodeRestriction,PodSecurity,Priority,DefaultTolerationSeconds,ResourceQuota \
  --allow-privileged=true \
  --profiling=false
wait_for "kube-apiserver /readyz" api_ready kube-apiserver

kubeconfig "$KUBECONFIG_OUT" proofpod-admin admin

log "starting kube-controller-manager on https://127.0.0.1:$KCM_PORT"
launch kube-controller-manager \
  --kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --tls-cert-file="$PKI/kube-controller-manager-server.crt" \
  --tls-private-key-file="$PKI/kube-controller-manager-server.key" \
  --controllers="$CONTROLLERS" \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --leader-elect=false \
  --profiling=false
wait_for "kube-controller-manager /healthz" kcm_ready kube-controller-manager

start_kubelet

log "up in $(($(date +%s) - start_time))s; kubeconfig: $KUBECONFIG_OUT"
echo "$KUBECONFIG_OUT"
