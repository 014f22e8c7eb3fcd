#!/usr/bin/env bash
# The main job, end to end on this machine: install what is missing, build, start the local
# Vault TEST DOUBLE seeded with a demo CA, then run `cacerts-agent init` into a tmpfs
# directory (from KV, and from PKI with a key generated in the agent) and `check` both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh" "$build"

work=$(mktemp -d)
out="$work/cacerts"
server_pid=""
shm_dir=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  mountpoint -q "$out" 2>/dev/null && umount "$out"
  mountpoint -q "$out-pki" 2>/dev/null && umount "$out-pki"
  rm -rf "$work"
  [ -n "$shm_dir" ] && rm -rf "$shm_dir" "$shm_dir-pki"
  return 0
}
trap cleanup EXIT

# A memory-backed output directory, like the emptyDir {medium: Memory} in the istiod pod.
mkdir -p "$out" "$out-pki"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=4m,mode=0755 cacerts-demo "$out" 2>/dev/null &&
   mount -t tmpfs -o size=4m,mode=0755 cacerts-demo "$out-pki" 2>/dev/null; then
  echo "demo: output directories are fresh tmpfs mounts"
else
  shm_dir=$(mktemp -d /dev/shm/cacerts-demo-XXXXXX)
  out=$shm_dir
  mkdir -p "$out-pki"
  echo "demo: using $out on /dev/shm (tmpfs)"
fi

"$build/vault-test-server" --listen 127.0.0.1:0 --seed-demo --ready-file "$work/port" \
  --ca-out "$work/vault-ca.pem" --jwt-out "$work/sa-token" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "demo: the Vault test server did not start" >&2; exit 1; }

VAULT_ADDR="https://127.0.0.1:$(cat "$work/port")"
export VAULT_ADDR
export VAULT_CACERT="$work/vault-ca.pem"
export CACERTS_AGENT_AUTH_METHOD=kubernetes CACERTS_AGENT_AUTH_ROLE=istiod
export CACERTS_AGENT_JWT_FILE="$work/sa-token"

echo
echo "=== init from Vault KV (secret/data/istio/cacerts) ==="
"$build/cacerts-agent" init --dir "$out" --source kv \
  --kv-cert vault:secret/data/istio/cacerts#ca-cert --kv-key vault:secret/data/istio/cacerts#ca-key \
  --kv-chain vault:secret/data/istio/cacerts#cert-chain --kv-root vault:secret/data/istio/cacerts#root-cert
ls -la "$out"
"$build/cacerts-agent" check --dir "$out"

echo
echo "=== init from Vault PKI (key generated in the agent, only the CSR sent) ==="
"$build/cacerts-agent" init --dir "$out-pki" --source pki --pki-sign-path pki/root/sign-intermediate \
  --common-name "istiod demo-cluster" --uri-sans spiffe://cluster.local --ttl 720h
"$build/cacerts-agent" check --dir "$out-pki"
echo
echo "demo: done (the Vault used here is the project's test double, not HashiCorp Vault)"
