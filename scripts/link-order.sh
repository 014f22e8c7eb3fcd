#!/usr/bin/env bash
# Regenerates scripts/link-order.txt: the functions cacerts-agent runs in production, in the
# order it first needs them, for the static link's --symbol-ordering-file (CMakeLists.txt).
#
# Why: a static binary's code pages are mapped into the process around each page it touches
# (the kernel's fault-around, 64 KiB or a whole large folio). Left in archive order, the code
# the sidecar runs is spread over nearly every 64 KiB of the 5 MB of text, so almost all of it
# stays resident. Packed together first, the same code fills about 3 MiB and the rest is never
# mapped (bench/run.sh measures the sidecar's RSS both ways).
#
# How: each scenario below runs the static binary under valgrind's callgrind against the Vault
# test server over TLS, as the pod would: init with KV, PKI ec-256 and PKI rsa-3072; the sidecar
# with PKI and with KV, each rotating and confirming istiod's reload against
# cacerts-soak-reader's metrics endpoint; `rotate`; `check`. Every function with cost in any
# scenario is listed, sidecar scenarios first, each once. Mangled names, local ones too; a
# name no longer in the binary is ignored by the linker, so a stale list only costs memory.
# Rerun after changes to what the agent runs, and check the sidecar's RSS with bench/run.sh.
#
#   bash scripts/link-order.sh
#
# Needs valgrind (apt-get install valgrind), a full httplib.h (tests/deploy/fetch-httplib.sh)
# and about 5 minutes. Environment:
#   LINK_ORDER_BUILD_DIR   build with the Vault test server and the soak reader (default: build)
#   LINK_ORDER_STATIC_DIR  static build to profile (default: build-static-profile; built here)
#   LINK_ORDER_OUT         output file (default: scripts/link-order.txt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LINK_ORDER_BUILD_DIR:-$root/build}
static_build=${LINK_ORDER_STATIC_DIR:-$root/build-static-profile}
out=${LINK_ORDER_OUT:-$root/scripts/link-order.txt}

log() { echo "link-order: $*" >&2; }
command -v valgrind >/dev/null || { log "valgrind is missing (apt-get install valgrind)"; exit 2; }

# --- binaries: the test tools from the normal build, the agent as the image links it ---------
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCACERTS_WERROR=ON >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target vault-test-server cacerts-soak-reader >/dev/null
httplib_dir="$build/deploy/httplib"
bash "$root/tests/deploy/fetch-httplib.sh" "$httplib_dir"
bash "$root/scripts/build.sh" "$static_build" -DCACERTS_STATIC=ON -DCACERTS_BUILD_TESTS=OFF \
  -DCACERTS_HTTPLIB_SINGLE_HEADER_DIR="$httplib_dir"
agent="$static_build/cacerts-agent"
server="$build/vault-test-server"
reader="$build/cacerts-soak-reader"

work=$(mktemp -d)
shm=$(mktemp -d /dev/shm/cacerts-link-order-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "$shm"
}
trap cleanup EXIT

# wait_for FILE PATTERN PID [SECONDS]: until FILE has a line matching PATTERN, while PID lives.
wait_for() {
  local i
  for ((i = 0; i < ${4:-120} * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  grep -q -- "$2" "$1" 2>/dev/null || { cat "$1" >&2; log "no '$2' in $1"; exit 1; }
}

"$server" --listen 127.0.0.1:0 --seed-demo --ready-file "$work/port" --ca-out "$work/vault-ca.pem" \
  --jwt-out "$work/sa-token" 2>"$work/server.log" &
pids+=("$!")
for _ in $(seq 1 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { cat "$work/server.log" >&2; log "the Vault test server did not start"; exit 1; }
VAULT_ADDR="https://127.0.0.1:$(cat "$work/port")"
export VAULT_ADDR VAULT_CACERT="$work/vault-ca.pem"
export CACERTS_AGENT_AUTH_METHOD=kubernetes CACERTS_AGENT_AUTH_ROLE=istiod
export CACERTS_AGENT_JWT_FILE="$work/sa-token"

profiles=()
# under_callgrind NAME: sets $cg to the agent's argv under callgrind, its profile in $work/NAME.cg.
# (An array, not a function, so that a background run's PID is valgrind's own.)
under_callgrind() {
  profiles+=("$work/$1.cg")
  cg=(valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no
    --callgrind-out-file="$work/$1.cg" --log-file="$work/$1.valgrind" "$agent")
}
profiled() {
  under_callgrind "$1"
  shift
  "${cg[@]}" "$@"
}

kv_ref="vault:secret/data/istio/cacerts"
kv_flags=(--source kv --kv-cert "$kv_ref#ca-cert" --kv-key "$kv_ref#ca-key" --kv-chain "$kv_ref#cert-chain"
  --kv-root "$kv_ref#root-cert")
pki_flags=(--source pki --pki-sign-path pki/root/sign-intermediate --common-name istiod-intermediate
  --max-path-length 0)

# sidecar NAME ROTATIONS FLAGS...: a sidecar confirming reloads against a reader playing istiod;
# one rotation through `cacerts-agent rotate`, the rest through the status endpoint.
sidecar() {
  local name=$1 rotations=$2 i port istiod_port before
  shift 2
  mkdir -p "$shm/$name"
  "$reader" --dir "$shm/$name" --istiod-listen 127.0.0.1:0 >/dev/null 2>"$work/$name.reader" &
  local reader_pid=$!
  pids+=("$reader_pid")
  wait_for "$work/$name.reader" 'event=reader_started' "$reader_pid"
  istiod_port=$(sed -n 's/.*event=reader_started istiod_port=\([0-9]*\).*/\1/p' "$work/$name.reader" | head -1)
  under_callgrind "$name"
  "${cg[@]}" sidecar --dir "$shm/$name" --listen 127.0.0.1:0 \
    --istiod-metrics-url "http://127.0.0.1:$istiod_port/metrics" --confirm-timeout 60s "$@" 2>"$work/$name.log" &
  local pid=$!
  pids+=("$pid")
  wait_for "$work/$name.log" 'event=reload_confirmed' "$pid"
  port=$(sed -n 's/.*event=sidecar_started .* port=\([0-9]*\).*/\1/p' "$work/$name.log" | head -1)
  for ((i = 0; i < rotations; i++)); do
    before=$(grep -c 'event=reload_confirmed' "$work/$name.log" || true)
    if ((i == 0)); then
      profiled "$name-rotate" rotate --listen "127.0.0.1:$port" >/dev/null 2>&1
    else
      curl -sf -X POST -d '' "http://127.0.0.1:$port/rotate" >/dev/null
    fi
    for _ in $(seq 1 1200); do
      (($(grep -c 'event=reload_confirmed' "$work/$name.log" || true) > before)) && break
      sleep 0.1
    done
  done
  curl -sf "http://127.0.0.1:$port/metrics" "http://127.0.0.1:$port/readyz" "http://127.0.0.1:$port/healthz" \
    >/dev/null || true
  kill -TERM "$pid"
  wait "$pid" || { cat "$work/$name.log" >&2; log "sidecar $name failed"; exit 1; }
  kill -TERM "$reader_pid" 2>/dev/null || true
}

log "sidecar, PKI ec-256"
sidecar sidecar-pki 3 "${pki_flags[@]}" --ttl 720h --key-type ec --key-bits 256
log "sidecar, KV"
sidecar sidecar-kv 2 "${kv_flags[@]}"
log "init: KV, PKI ec-256, PKI rsa-3072; check"
for scenario in kv pki-ec pki-rsa; do mkdir -p "$shm/init-$scenario"; done
profiled init-kv init --dir "$shm/init-kv" "${kv_flags[@]}" 2>/dev/null
profiled init-pki-ec init --dir "$shm/init-pki-ec" "${pki_flags[@]}" --ttl 720h --key-type ec --key-bits 256 2>/dev/null
profiled init-pki-rsa init --dir "$shm/init-pki-rsa" "${pki_flags[@]}" --ttl 720h --key-type rsa --key-bits 3072 \
  2>/dev/null
profiled check check --dir "$shm/init-kv" >/dev/null 2>&1

# Functions with cost, in each profile's order; callgrind's recursion suffix ('2) dropped,
# addresses without a symbol skipped.
{
  echo "# Generated by scripts/link-order.sh: functions cacerts-agent runs, hot first. Do not edit."
  for profile in "${profiles[@]}"; do
    sed -n "s/^fn=\([^ ']*\)\('[0-9]*\)\{0,1\}\$/\1/p" "$profile" | grep -v '^0x'
  done | awk '!seen[$0]++'
} >"$work/order"
mv "$work/order" "$out"
count=$(grep -vc '^#' "$out")
log "$count functions written to $out"
