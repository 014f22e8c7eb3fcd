#!/usr/bin/env bash
# Performance figures for cacerts-agent, measured in one run on this machine with the
# project's own tools: the Vault test server (over TLS, demo data), `cacerts-agent init`,
# and bench/shell-recipe.sh (curl + jq + openssl, the guides' way) as the baseline.
# Prints a table and writes it to BENCHMARKS.md.
#
#   bash bench/run.sh
#
# Environment:
#   BENCH_BUILD_DIR     build directory with cacerts-agent and vault-test-server
#                       (default: build; configured and built when needed)
#   BENCH_RUNS          timed runs per command, after 3 warm-up runs (default: 30)
#   BENCH_RSS_RUNS      runs per peak-RSS figure (default: 7)
#   BENCH_REPORT        where to write the report (default: BENCHMARKS.md in the repository)
#   BENCH_FUZZ_SECONDS  seconds per fuzz target for the long fuzz run (default: 60; 0 skips)
#   BENCH_SIDECAR       auto (measure when `cacerts-agent sidecar` exists) | off
#   BENCH_IDLE_SECONDS  length of the sidecar's idle window (default: 60)
#   BENCH_FLEET         sidecars in the fleet run (default: 50; 0 skips)
#   BENCH_FLEET_SECONDS length of the fleet run (default: 150)
#   SOAK_ROTATIONS      scheduled rotations in the rotation soak, bench/soak.sh (default: 300; 0 skips);
#                       SOAK_TTL, SOAK_RENEW_BEFORE, SOAK_DEADLINE: see bench/soak.sh --help
#
# Needs: curl, jq, openssl, python3, /usr/bin/time (Debian: time), strip (binutils); hyperfine when
# installed (else a timing loop reports medians the same way); clang for the fuzz run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
runs=${BENCH_RUNS:-30}
rss_runs=${BENCH_RSS_RUNS:-7}
report=${BENCH_REPORT:-$root/BENCHMARKS.md}
fuzz_seconds=${BENCH_FUZZ_SECONDS:-60}
sidecar_mode=${BENCH_SIDECAR:-auto}
idle_seconds=${BENCH_IDLE_SECONDS:-60}
fleet_size=${BENCH_FLEET:-50}
fleet_seconds=${BENCH_FLEET_SECONDS:-150}
soak_rotations=${SOAK_ROTATIONS:-300}

for tool in curl jq openssl python3 strip /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install curl jq openssl python3 binutils time)" >&2; exit 2; }
done

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCACERTS_WERROR=ON >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target cacerts-agent vault-test-server >/dev/null
agent="$build/cacerts-agent"
server="$build/vault-test-server"

work=$(mktemp -d)
# Output directories on tmpfs, as in the pod (the agent refuses a disk-backed key directory).
shm=$(mktemp -d /dev/shm/cacerts-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "$shm"
}
trap cleanup EXIT

log() { echo "bench: $*" >&2; }

# --- the Vault test server, seeded with the demo CA, kubernetes auth and a PKI root -------
"$server" --listen 127.0.0.1:0 --seed-demo --ready-file "$work/port" --ca-out "$work/vault-ca.pem" \
  --token-out "$work/root-token" --jwt-out "$work/sa-token" 2>"$work/server.log" &
pids+=("$!")
for _ in $(seq 1 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { cat "$work/server.log" >&2; echo "bench: the Vault test server did not start" >&2; exit 1; }
VAULT_ADDR="https://127.0.0.1:$(cat "$work/port")"
VAULT_CACERT="$work/vault-ca.pem"
JWT_FILE="$work/sa-token"
export VAULT_ADDR VAULT_CACERT JWT_FILE
export CACERTS_AGENT_AUTH_METHOD=kubernetes CACERTS_AGENT_AUTH_ROLE=istiod CACERTS_AGENT_JWT_FILE="$JWT_FILE"
root_token=$(cat "$work/root-token")

control() {
  curl --silent --show-error --fail --cacert "$VAULT_CACERT" -H "X-Vault-Token: $root_token" "$@"
}
clear_requests() { control -X DELETE "$VAULT_ADDR/_test/requests" >/dev/null; }
request_count() { control "$VAULT_ADDR/_test/requests" | jq 'length'; }
# "2× GET secret/data/istio/cacerts, 1× POST auth/kubernetes/login": what the server saw.
request_summary() {
  control "$VAULT_ADDR/_test/requests" |
    jq -r 'map(.method + " " + (.path | ltrimstr("/v1/"))) | group_by(.) |
           map("\(length)× \(.[0])") | join(", ")'
}

# --- measurement helpers ---------------------------------------------------------------
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Median wall time in milliseconds of the command in "$@".
wall_ms() {
  if command -v hyperfine >/dev/null; then
    local quoted
    quoted=$(printf '%q ' "$@")
    hyperfine --shell=none --style none --warmup 3 --runs "$runs" --export-json "$work/hf.json" "$quoted" >/dev/null
    jq '.results[0].median * 1000' "$work/hf.json"
  else
    local i start end
    for i in 1 2 3; do "$@" >/dev/null 2>&1; done
    for ((i = 0; i < runs; i++)); do
      start=$(date +%s%N)
      "$@" >/dev/null 2>&1
      end=$(date +%s%N)
      echo $(((end - start) / 1000))
    done | median | awk '{print $1 / 1000}'
  fi
}

# Median peak RSS in KiB (the largest single process of the command's process tree).
peak_rss_kib() {
  local i
  for ((i = 0; i < rss_runs; i++)); do
    /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>&1
    cat "$work/rss"
  done | median
}

# Vault requests of one run of the command.
requests_of() {
  clear_requests
  "$@" >/dev/null 2>&1
  REQ_COUNT=$(request_count)
  REQ_SUMMARY=$(request_summary)
}

fmt_ms() { awk -v v="$1" 'BEGIN {printf "%.1f ms", v}'; }
fmt_mib() { awk -v v="$1" 'BEGIN {printf "%.1f MiB", v / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f×", a / b; else print "n/a"}'; }

# The container image holds one static binary (Dockerfile); the image test (deploy.image, this
# machine's architecture) leaves one behind.
static_bin="$build/deploy/image/$(dpkg --print-architecture)/build-static/cacerts-agent"
size_static=""
if [ -f "$static_bin" ]; then
  strip --strip-all -o "$work/cacerts-agent.static" "$static_bin"
  size_static=$(stat -c %s "$work/cacerts-agent.static")
fi
# The hot-code order (scripts/link-order.txt) is applied only when lld linked the binary.
static_linker="(not built here)"
if [ -n "$size_static" ]; then
  static_linker="by GNU ld, without the hot-code order of scripts/link-order.txt"
  if readelf -p .comment "$static_bin" 2>/dev/null | grep -q 'LLD'; then
    static_linker="by lld with the code the agent runs packed first (scripts/link-order.txt)"
  fi
fi

# --- init: the agent and the shell recipe, KV and PKI ------------------------------------
kv_ref="vault:secret/data/istio/cacerts"
agent_kv=("$agent" init --dir "$shm/agent-kv" --source kv --kv-cert "$kv_ref#ca-cert" --kv-key "$kv_ref#ca-key"
  --kv-chain "$kv_ref#cert-chain" --kv-root "$kv_ref#root-cert")
agent_pki=("$agent" init --source pki --pki-sign-path pki/root/sign-intermediate --common-name istiod-intermediate
  --ttl 720h --max-path-length 0)
agent_pki_ec=("${agent_pki[@]}" --dir "$shm/agent-pki-ec" --key-type ec --key-bits 256)
agent_pki_rsa=("${agent_pki[@]}" --dir "$shm/agent-pki-rsa" --key-type rsa --key-bits 3072)
recipe="$root/bench/shell-recipe.sh"
shell_kv=(bash "$recipe" kv "$shm/shell-kv")
shell_pki_ec=(bash "$recipe" pki "$shm/shell-pki-ec" ec-256)
shell_pki_rsa=(bash "$recipe" pki "$shm/shell-pki-rsa" rsa-3072)
init_runs=(agent_kv agent_pki_ec agent_pki_rsa shell_kv shell_pki_ec shell_pki_rsa)
# The image's static binary, when there is one: no dynamic loading at start.
if [ -n "$size_static" ]; then
  agent_kv_static=("$work/cacerts-agent.static" "${agent_kv[@]:1}")
  agent_pki_ec_static=("$work/cacerts-agent.static" "${agent_pki_ec[@]:1}")
  init_runs+=(agent_kv_static agent_pki_ec_static)
fi

mkdir -p "$shm/agent-kv" "$shm/agent-pki-ec" "$shm/agent-pki-rsa"
# Every command must work before it is timed: a failing command would be timed as fast.
for name in "${init_runs[@]}"; do
  declare -n cmd=$name
  if ! "${cmd[@]}" >"$work/$name.out" 2>&1; then
    cat "$work/$name.out" >&2
    echo "bench: $name failed; nothing measured" >&2
    exit 1
  fi
  unset -n cmd
done
for dir in agent-kv agent-pki-ec agent-pki-rsa; do
  "$agent" check --dir "$shm/$dir" >/dev/null 2>&1 || { echo "bench: check rejects $shm/$dir" >&2; exit 1; }
done

# --- RSA material from KV, as Istio's tooling makes it -----------------------------------
# tools/certs in Istio makes RSA-4096 roots and intermediates; many KV users store exactly
# that. rsa_ca BITS DIR: a self-signed root and an intermediate CA signed by it, both RSA.
rsa_ca() {
  local bits=$1 dir=$2
  mkdir -p "$dir"
  openssl req -x509 -newkey "rsa:$bits" -nodes -keyout "$dir/root-key.pem" -out "$dir/root-cert.pem" -days 3650 \
    -subj "/O=Istio/CN=Root CA rsa-$bits" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey "rsa:$bits" -nodes -keyout "$dir/ca-key.pem" -out "$dir/ca.csr" \
    -subj "/O=Istio/CN=Intermediate CA rsa-$bits" 2>/dev/null
  printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/ca.csr" -CA "$dir/root-cert.pem" -CAkey "$dir/root-key.pem" -CAcreateserial \
    -days 730 -sha256 -extfile "$dir/ext.cnf" -out "$dir/ca-cert.pem" 2>/dev/null
  cat "$dir/ca-cert.pem" "$dir/root-cert.pem" >"$dir/cert-chain.pem"
}
declare -A material_wall
for bits in 2048 4096; do
  log "making and storing RSA-$bits material"
  rsa_ca "$bits" "$work/rsa$bits"
  jq -n --rawfile c "$work/rsa$bits/ca-cert.pem" --rawfile k "$work/rsa$bits/ca-key.pem" \
    --rawfile ch "$work/rsa$bits/cert-chain.pem" --rawfile r "$work/rsa$bits/root-cert.pem" \
    '{data: {"ca-cert": $c, "ca-key": $k, "cert-chain": $ch, "root-cert": $r}}' |
    control -X POST -H 'Content-Type: application/json' -H 'X-Vault-Request: true' --data @- \
      "$VAULT_ADDR/v1/secret/data/istio/cacerts-rsa$bits" >/dev/null
done
mkdir -p "$shm/agent-kv-rsa2048" "$shm/agent-kv-rsa4096"
for m in "ec-256 cacerts agent-kv" "rsa-2048 cacerts-rsa2048 agent-kv-rsa2048" "rsa-4096 cacerts-rsa4096 agent-kv-rsa4096"; do
  read -r name secret dir <<<"$m"
  ref="vault:secret/data/istio/$secret"
  material_init=("$agent" init --dir "$shm/$dir" --source kv --kv-cert "$ref#ca-cert" --kv-key "$ref#ca-key"
    --kv-chain "$ref#cert-chain" --kv-root "$ref#root-cert")
  "${material_init[@]}" >"$work/kv-$name.out" 2>&1 || { cat "$work/kv-$name.out" >&2; exit 1; }
  "$agent" check --dir "$shm/$dir" >/dev/null 2>&1 || { echo "bench: check rejects $shm/$dir" >&2; exit 1; }
  log "timing init from KV and check, $name material ($runs runs)"
  material_wall[init-$name]=$(wall_ms "${material_init[@]}")
  material_wall[check-$name]=$(wall_ms "$agent" check --dir "$shm/$dir")
done

declare -A wall rss reqs reqsum
# The fixed cost of starting the binary (dynamic loading, OpenSSL initialisation), no Vault.
log "timing process start ($runs runs)"
wall_version=$(wall_ms "$agent" version)
for name in "${init_runs[@]}"; do
  declare -n cmd=$name
  log "timing $name ($runs runs)"
  clear_requests
  wall[$name]=$(wall_ms "${cmd[@]}")
  rss[$name]=$(peak_rss_kib "${cmd[@]}")
  requests_of "${cmd[@]}"
  reqs[$name]=$REQ_COUNT
  reqsum[$name]=$REQ_SUMMARY
  unset -n cmd
done

# --- init against a Vault that trickles its answers (one byte every 0.3 s) ------------------
# Each byte restarts a read timeout; only the request's overall budget, cut to --timeout,
# ends the run. Exit 4 is expected, about --timeout after the start.
log "init against a trickling Vault (--timeout 5s)"
control -X POST -d '{"kind":"trickle","path_prefix":"secret/data/","count":-1}' "$VAULT_ADDR/_test/faults" >/dev/null
trickle_start=$(date +%s%N)
trickle_code=0
"${agent_kv[@]}" --timeout 5s >"$work/trickle.out" 2>&1 || trickle_code=$?
trickle_ms=$((($(date +%s%N) - trickle_start) / 1000000))
control -X DELETE "$VAULT_ADDR/_test/faults" >/dev/null

# --- binary size ---------------------------------------------------------------------------
strip --strip-all -o "$work/cacerts-agent.stripped" "$agent"
size_stripped=$(stat -c %s "$work/cacerts-agent.stripped")
shared_libs=$(ldd "$agent" 2>/dev/null | grep -c '=>' || true)

# --- sidecar ---------------------------------------------------------------------------------
declare -A sc_pid sc_port
sidecar_available=no
if [ "$sidecar_mode" != off ] && "$agent" sidecar --help >/dev/null 2>&1; then
  sidecar_available=yes
fi

# start_sidecar NAME ARGS...: runs `cacerts-agent sidecar` on an ephemeral status port,
# without reload confirmation (no istiod here), and waits until it has published.
start_sidecar() {
  local name=$1 i port=""
  shift
  mkdir -p "$shm/$name"
  : >"$work/$name.log"
  # --rotate-min-interval 0s: the RSS row takes 100 forced rotations back to back.
  "${sidecar_binary:-$agent}" sidecar --dir "$shm/$name" --listen 127.0.0.1:0 --istiod-metrics-url "" \
    --rotate-min-interval 0s "$@" \
    2>"$work/$name.log" &
  sc_pid[$name]=$!
  pids+=("$!")
  for ((i = 0; i < 600; i++)); do
    port=$(sed -n 's/.*event=sidecar_started .* port=\([0-9]*\).*/\1/p' "$work/$name.log" | head -1)
    if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
      sc_port[$name]=$port
      return 0
    fi
    kill -0 "${sc_pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/$name.log" >&2
  echo "bench: sidecar $name did not become ready" >&2
  return 1
}
metrics_of() { curl -sf "http://127.0.0.1:${sc_port[$1]}/metrics"; }
# Sum of the samples whose line starts with the text in $2.
metric_sum() {
  metrics_of "$1" | awk -v p="$2" '$0 !~ /^#/ && index($0, p) == 1 {s += $NF} END {printf "%d\n", s}'
}
vault_requests() { metric_sum "$1" 'cacerts_agent_vault_requests_total'; }
# "pki_sign 1, pki_list_issuers 1": the sidecar's own count of Vault requests by operation.
vault_requests_by_op() {
  metrics_of "$1" | sed -n 's/^cacerts_agent_vault_requests_total{.*operation="\([^"]*\)".*} \([0-9.e+]*\)$/\1 \2/p' |
    awk '{n[$1] += $2} END {for (k in n) printf "%s %d\n", k, n[k]}' | sort
}
ops_diff() {  # ops_diff BEFORE AFTER: per-operation differences, "op N, op M"
  join -a2 -e 0 -o 0,1.2,2.2 <(echo "$1") <(echo "$2") |
    awk '$3 - $2 > 0 {printf "%s%s %d", (n++ ? ", " : ""), $1, $3 - $2} END {print ""}'
}
rotate_and_wait() {
  local name=$1 before i
  before=$(grep -c 'trigger=forced' "$work/$name.log" || true)
  curl -sf -X POST -d '' "http://127.0.0.1:${sc_port[$name]}/rotate" >/dev/null
  for ((i = 0; i < 600; i++)); do
    (($(grep -c 'trigger=forced' "$work/$name.log" || true) > before)) && return 0
    sleep 0.02
  done
  echo "bench: sidecar $name did not finish a forced rotation" >&2
  return 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ctx_switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches:/ {s += $2} END {print s}'; }
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

if [ "$sidecar_available" = yes ]; then
  pki_flags=(--source pki --pki-sign-path pki/root/sign-intermediate --common-name istiod-intermediate --ttl 720h
    --max-path-length 0 --key-type ec --key-bits 256)
  kv_flags=(--source kv --kv-cert "$kv_ref#ca-cert" --kv-key "$kv_ref#ca-key" --kv-chain "$kv_ref#cert-chain"
    --kv-root "$kv_ref#root-cert")
  log "sidecar: starting PKI and KV sidecars"
  start_sidecar sc-pki "${pki_flags[@]}"
  start_sidecar sc-kv "${kv_flags[@]}"
  start_sidecar sc-kv-fastpoll "${kv_flags[@]}" --kv-poll-interval 10s
  sc_rss_start=$(rss_kib "${sc_pid[sc-pki]}")

  # Requests per forced rotation, by the sidecars' own request counters.
  for name in sc-pki sc-kv; do
    before=$(vault_requests_by_op "$name")
    rotate_and_wait "$name"
    declare "rot_ops_${name//-/_}=$(ops_diff "$before" "$(vault_requests_by_op "$name")")"
  done

  log "sidecar: 100 forced rotations (PKI, ec-256)"
  for ((i = 0; i < 100; i++)); do rotate_and_wait sc-pki; done
  # Time per rotation from the sidecar's own log: request received -> new generation published.
  rot_ms=$(grep -E 'event=(rotate_requested|published trigger=forced)' "$work/sc-pki.log" |
    while read -r ts _ event _; do echo "$event $(date -d "$ts" +%s.%N)"; done |
    awk '$1 == "event=rotate_requested" {t = $2} $1 == "event=published" && t {print ($2 - t) * 1000; t = 0}' |
    tail -n 100 | median)
  rot_failures=$(metric_sum sc-pki 'cacerts_agent_rotations_total{result="failure"}')
  sc_rss_100=$(rss_kib "${sc_pid[sc-pki]}")
  sc_anon_100=$(awk '/^RssAnon:/ {print $2}' "/proc/${sc_pid[sc-pki]}/status")
  sc_hwm_100=$(awk '/^VmHWM:/ {print $2}' "/proc/${sc_pid[sc-pki]}/status")

  # The same with the image's binary (static: no shared libraries mapped beside it).
  if [ -n "$size_static" ]; then
    log "sidecar: 100 forced rotations with the static binary"
    sidecar_binary="$work/cacerts-agent.static" start_sidecar sc-static "${pki_flags[@]}"
    for ((i = 0; i < 100; i++)); do rotate_and_wait sc-static; done
    st_rss_100=$(rss_kib "${sc_pid[sc-static]}")
    st_anon_100=$(awk '/^RssAnon:/ {print $2}' "/proc/${sc_pid[sc-static]}/status")
    st_file_100=$(awk '/^RssFile:/ {print $2}' "/proc/${sc_pid[sc-static]}/status")
    st_threads=$(threads_of "${sc_pid[sc-static]}")
    kill "${sc_pid[sc-static]}" 2>/dev/null || true
  fi

  # Probes while 50 clients trickle or idle on the status port (the kubelet's timeout is 1 s).
  log "sidecar: probe latency with 50 slow clients connected"
  probe_line=$(python3 "$root/bench/probe_latency.py" "${sc_port[sc-pki]}" 50 200)
  probe_field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$probe_line"; }
  probe_p50=$(probe_field p50_ms)
  probe_p99=$(probe_field p99_ms)
  probe_max=$(probe_field max_ms)
  probe_failed=$(probe_field failed)

  log "sidecar: idle window of ${idle_seconds}s"
  declare -A idle_cpu0 idle_ctx0 idle_req0
  fast_ops0=$(vault_requests_by_op sc-kv-fastpoll)
  for name in sc-pki sc-kv sc-kv-fastpoll; do
    idle_cpu0[$name]=$(cpu_ticks "${sc_pid[$name]}")
    idle_ctx0[$name]=$(ctx_switches "${sc_pid[$name]}")
    idle_req0[$name]=$(vault_requests "$name")
  done
  sleep "$idle_seconds"
  declare -A idle_cpu_ms idle_ctx idle_req
  tick_ms=$((1000 / $(getconf CLK_TCK)))
  for name in sc-pki sc-kv sc-kv-fastpoll; do
    idle_cpu_ms[$name]=$((($(cpu_ticks "${sc_pid[$name]}") - idle_cpu0[$name]) * tick_ms))
    # The metrics scrape below is itself a wake-up; it comes after the second sample.
    idle_ctx[$name]=$(($(ctx_switches "${sc_pid[$name]}") - idle_ctx0[$name]))
    idle_req[$name]=$(($(vault_requests "$name") - idle_req0[$name]))
  done
  fast_ops=$(ops_diff "$fast_ops0" "$(vault_requests_by_op sc-kv-fastpoll)")
  sc_threads=$(threads_of "${sc_pid[sc-pki]}")
  fast_polls=$((idle_seconds / 10))
  per_poll=$(awk -v r="${idle_req[sc-kv-fastpoll]}" -v p="$fast_polls" 'BEGIN {printf "%.1f", (p > 0 ? r / p : 0)}')
  kv_per_hour=$(awk -v pp="$per_poll" 'BEGIN {printf "%.0f", pp * 12}')
  for name in sc-pki sc-kv sc-kv-fastpoll; do kill "${sc_pid[$name]}" 2>/dev/null || true; done
fi

# --- fleet: many sidecars with one-minute intermediates against one Vault -----------------
fleet_done=no
if [ "$sidecar_available" = yes ] && [ "$fleet_size" -gt 0 ]; then
  log "fleet: $fleet_size sidecars, --ttl 1m, for ${fleet_seconds}s"
  for ((i = 0; i < fleet_size; i++)); do
    mkdir -p "$shm/fleet-$i"
    "$agent" sidecar --dir "$shm/fleet-$i" --listen 127.0.0.1:0 --istiod-metrics-url "" --source pki \
      --pki-sign-path pki/root/sign-intermediate --common-name "istiod-fleet-$i" --ttl 1m --renew-before 20s --min-remaining 10s \
      --max-path-length 0 2>"$work/fleet-$i.log" &
    pids+=("$!")
    fleet_pids[i]=$!
  done
  # Vault's request rate, sampled every second from the test server's request log.
  clear_requests
  rates=()
  prev=0
  for ((t = 0; t < fleet_seconds; t++)); do
    sleep 1
    now_count=$(request_count)
    rates+=($((now_count - prev)))
    prev=$now_count
  done
  fleet_alive=0
  for p in "${fleet_pids[@]}"; do kill -0 "$p" 2>/dev/null && fleet_alive=$((fleet_alive + 1)); done
  for p in "${fleet_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${fleet_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  fleet_peak_rate=$(printf '%s\n' "${rates[@]}" | sort -n | tail -1)
  fleet_total_requests=$prev
  # Publish times per sidecar: the first (startup) and the scheduled renewals after it.
  : >"$work/fleet-times"
  for ((i = 0; i < fleet_size; i++)); do
    grep 'event=published' "$work/fleet-$i.log" | while read -r ts _ _ trigger _; do
      echo "$i ${trigger#trigger=} $(date -d "$ts" +%s.%N)"
    done >>"$work/fleet-times"
  done
  fleet_failures=$(cat "$work"/fleet-*.log | grep -c -E 'event=(renew_failed|publish_failed|poll_failed)' || true)
  fleet_renewals=$(awk '$2 == "scheduled"' "$work/fleet-times" | wc -l)
  # Spread of the start (the fleet starts at once) against the spread of the first renewal.
  spread() { sort -g | awk 'NR == 1 {min = $1} {max = $1} END {printf "%.1f", max - min}'; }
  fleet_start_spread=$(awk '$2 == "startup" {print $3}' "$work/fleet-times" | spread)
  fleet_first_renewal_spread=$(awk '$2 == "scheduled" && !seen[$1]++ {print $3}' "$work/fleet-times" | spread)
  fleet_max_per_second=$(awk '$2 == "scheduled" {print int($3)}' "$work/fleet-times" | sort | uniq -c |
    sort -n | tail -1 | awk '{print $1 + 0}')
  fleet_done=yes
fi

# --- rotation soak: scheduled renewals while a separate reader judges every read set -----------
soak_done=no
if [ "$sidecar_available" = yes ] && [ "$soak_rotations" -gt 0 ]; then
  log "rotation soak: $soak_rotations scheduled rotations (bench/soak.sh)"
  soak_status=pass
  soak_out=$(SOAK_BUILD_DIR="$build" SOAK_ROTATIONS="$soak_rotations" bash "$root/bench/soak.sh" 2>"$work/soak.err") ||
    soak_status=FAILED
  [ "$soak_status" = pass ] || cat "$work/soak.err" >&2
  soak_table=$(grep '^|' <<<"$soak_out" || true)
  soak_line=$(grep '^soak: ' <<<"$soak_out" || true)
  soak_done=yes
fi

# --- long fuzz run ---------------------------------------------------------------------------
fuzz_table=""
fuzz_result="not run (BENCH_FUZZ_SECONDS=0)"
if [ "$fuzz_seconds" -gt 0 ]; then
  log "fuzz: ${fuzz_seconds}s per target"
  if fuzz_out=$(FUZZ_SECONDS="$fuzz_seconds" FUZZ_BUILD_DIR="${BENCH_FUZZ_BUILD_DIR:-$root/build-fuzz}" \
      bash "$root/scripts/fuzz-smoke.sh" 2>"$work/fuzz.err"); then
    fuzz_result="no finding"
  else
    fuzz_result="FINDINGS (see scripts/fuzz-smoke.sh output)"
    cat "$work/fuzz.err" >&2
  fi
  fuzz_table=$(grep -E '^(target|kv_ref|vault_|pem|prom)' <<<"$fuzz_out" || true)
fi

# --- the report ----------------------------------------------------------------------------
goal() {  # goal VALUE OP LIMIT: "met" / "not met"
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {ok = (op == "<") ? v < l : v >= l; print (ok ? "met" : "NOT met")}'
}
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
kib_of() { awk -v v="$1" 'BEGIN {printf "%.0f KiB", v / 1024}'; }
not_measured="not measured"
[ "$sidecar_available" = yes ] || not_measured="not measured (\`cacerts-agent sidecar\` not available in this build)"

{
  echo "# Benchmarks"
  echo
  echo "Measured by \`bash bench/run.sh\` on $(date -u +%Y-%m-%d), all figures from one run on one machine."
  echo "Medians of $runs runs after 3 warm-up runs (wall time$(command -v hyperfine >/dev/null && echo ", hyperfine")) and of"
  echo "$rss_runs runs (peak RSS, \`/usr/bin/time\`). Vault is the project's Vault **test server** over TLS on"
  echo "loopback, seeded with the demo data (\`vault-test-server --seed-demo\`), not HashiCorp Vault: Vault's own"
  echo "latency is not part of these figures."
  echo
  echo "- Machine: ${cpu_model:-unknown CPU}, $(nproc) CPUs, Linux $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Build: $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt"), $("$cxx" --version 2>/dev/null | head -1), dynamically linked (OpenSSL, spdlog, fmt, cpp-httplib)"
  echo "- Baseline: \`bench/shell-recipe.sh\` (curl + jq + openssl, as in the Istio and Vault guides): same login,"
  echo "  KV read or key + CSR + sign, same four files; it validates nothing and does not publish atomically."
  echo
  echo "## init"
  echo
  echo "| | cacerts-agent | shell recipe | recipe / agent | goal |"
  echo "|---|---|---|---|---|"
  echo "| KV, wall time | $(fmt_ms "${wall[agent_kv]}") | $(fmt_ms "${wall[shell_kv]}") | $(ratio "${wall[shell_kv]}" "${wall[agent_kv]}") | < 15 ms: $(goal "${wall[agent_kv]}" "<" 15); ≥ 10×: $(goal "$(awk -v a="${wall[shell_kv]}" -v b="${wall[agent_kv]}" 'BEGIN {print a / b}')" ">=" 10) |"
  echo "| PKI ec-256, wall time | $(fmt_ms "${wall[agent_pki_ec]}") | $(fmt_ms "${wall[shell_pki_ec]}") | $(ratio "${wall[shell_pki_ec]}" "${wall[agent_pki_ec]}") | < 15 ms: $(goal "${wall[agent_pki_ec]}" "<" 15); ≥ 10×: $(goal "$(awk -v a="${wall[shell_pki_ec]}" -v b="${wall[agent_pki_ec]}" 'BEGIN {print a / b}')" ">=" 10) |"
  echo "| PKI rsa-3072, wall time | $(fmt_ms "${wall[agent_pki_rsa]}") | $(fmt_ms "${wall[shell_pki_rsa]}") | $(ratio "${wall[shell_pki_rsa]}" "${wall[agent_pki_rsa]}") | (RSA key generation dominates) |"
  if [ -n "$size_static" ]; then
    echo "| KV, wall time, static image binary | $(fmt_ms "${wall[agent_kv_static]}") | $(fmt_ms "${wall[shell_kv]}") | $(ratio "${wall[shell_kv]}" "${wall[agent_kv_static]}") | < 15 ms: $(goal "${wall[agent_kv_static]}" "<" 15) |"
    echo "| PKI ec-256, wall time, static image binary | $(fmt_ms "${wall[agent_pki_ec_static]}") | $(fmt_ms "${wall[shell_pki_ec]}") | $(ratio "${wall[shell_pki_ec]}" "${wall[agent_pki_ec_static]}") | < 15 ms: $(goal "${wall[agent_pki_ec_static]}" "<" 15); ≥ 10×: $(goal "$(awk -v a="${wall[shell_pki_ec]}" -v b="${wall[agent_pki_ec_static]}" 'BEGIN {print a / b}')" ">=" 10) |"
  fi
  echo "| process start and exit (\`cacerts-agent version\`), wall time | $(fmt_ms "$wall_version") | | | |"
  echo "| KV, \`--timeout 5s\`, Vault trickling one byte every 0.3 s: exit code; time to exit | exit $trickle_code; $(fmt_ms "$trickle_ms") | | | exit 4 within 8 s: $( [ "$trickle_code" = 4 ] && goal "$trickle_ms" "<" 8000 || echo "NOT met") |"
  echo "| KV, peak RSS | $(fmt_mib "${rss[agent_kv]}") | $(fmt_mib "${rss[shell_kv]}") | $(ratio "${rss[shell_kv]}" "${rss[agent_kv]}") | |"
  echo "| PKI ec-256, peak RSS | $(fmt_mib "${rss[agent_pki_ec]}") | $(fmt_mib "${rss[shell_pki_ec]}") | $(ratio "${rss[shell_pki_ec]}" "${rss[agent_pki_ec]}") | |"
  echo "| PKI rsa-3072, peak RSS | $(fmt_mib "${rss[agent_pki_rsa]}") | $(fmt_mib "${rss[shell_pki_rsa]}") | $(ratio "${rss[shell_pki_rsa]}" "${rss[agent_pki_rsa]}") | |"
  echo
  echo "Peak RSS of the shell recipe is that of its largest single process (curl, jq or openssl), not"
  echo "the sum of the processes it starts."
  echo
  echo "## Key types: init from KV and check"
  echo
  echo "The demo CA (EC P-256) and RSA roots and intermediates made by \`openssl\` as Istio's tooling makes them"
  echo "(root and intermediate of the same size), stored in KV. Goal: RSA within 1.5× of EC P-256."
  echo
  echo "| material | init from KV | vs ec-256 | check | vs ec-256 | goal |"
  echo "|---|---|---|---|---|---|"
  for name in ec-256 rsa-2048 rsa-4096; do
    i=${material_wall[init-$name]} c=${material_wall[check-$name]}
    ie=${material_wall[init-ec-256]} ce=${material_wall[check-ec-256]}
    worst=$(awk -v a="$i" -v b="$ie" -v c="$c" -v d="$ce" 'BEGIN {x = a / b; y = c / d; print (x > y ? x : y)}')
    echo "| $name | $(fmt_ms "$i") | $(ratio "$i" "$ie") | $(fmt_ms "$c") | $(ratio "$c" "$ce") | < 1.5×: $(goal "$worst" "<" 1.5) |"
  done
  echo
  echo "## Vault requests per init (counted by the Vault test server)"
  echo
  echo "| Source | cacerts-agent | shell recipe |"
  echo "|---|---|---|"
  echo "| KV | ${reqs[agent_kv]}: ${reqsum[agent_kv]} | ${reqs[shell_kv]}: ${reqsum[shell_kv]} |"
  echo "| PKI ec-256 | ${reqs[agent_pki_ec]}: ${reqsum[agent_pki_ec]} | ${reqs[shell_pki_ec]}: ${reqsum[shell_pki_ec]} |"
  echo "| PKI rsa-3072 | ${reqs[agent_pki_rsa]}: ${reqsum[agent_pki_rsa]} | ${reqs[shell_pki_rsa]}: ${reqsum[shell_pki_rsa]} |"
  echo
  echo "The agent's extra KV request is mount discovery (KV v1 or v2), its extra PKI requests build the trust"
  echo "bundle from every issuer of the mount; the recipe trusts whatever \`issuing_ca\` says."
  echo
  echo "## Size"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| \`cacerts-agent\`, this build, stripped | $(kib_of "$size_stripped") ($size_stripped bytes), $shared_libs shared libraries |"
  if [ -n "$size_static" ]; then
    echo "| \`cacerts-agent\`, static (the image's only file besides the base), stripped | $(kib_of "$size_static") ($size_static bytes) |"
  else
    echo "| \`cacerts-agent\`, static (the image's file set) | not measured: no static build here (the image test, \`ctest -R deploy.image\`, makes one) |"
  fi
  echo
  echo "## sidecar"
  echo
  if [ "$sidecar_available" = yes ]; then
    echo "| | measured | goal |"
    echo "|---|---|---|"
    echo "| RSS after start (PKI, ec-256) | $(fmt_mib "$sc_rss_start") | |"
    echo "| RSS after 100 forced rotations (PKI, ec-256); of it anonymous (heap, stacks); peak | $(fmt_mib "$sc_rss_100"); $(fmt_mib "$sc_anon_100"); $(fmt_mib "$sc_hwm_100") | < 6 MiB: $(goal "$sc_rss_100" "<" 6144) |"
    if [ -n "${st_rss_100:-}" ]; then
      echo "| the same with the static image binary: RSS; anonymous; file-backed (the binary's own pages); threads | $(fmt_mib "$st_rss_100"); $(fmt_mib "$st_anon_100"); $(fmt_mib "$st_file_100"); $st_threads | ≤ 4 MiB: $(goal "$st_rss_100" "<" 4097) |"
    else
      echo "| the same with the static image binary | not measured: no static build here (\`ctest -R deploy.image\` makes one) | ≤ 4 MiB |"
    fi
    echo "| 100 rotations: median time from request to published generation; failures | $(fmt_ms "$rot_ms"); $rot_failures | |"
    echo "| /healthz and /readyz with 50 slow or idle clients connected: p50; p99; max; probes failed (no 200 within 1 s) of 200 | $(fmt_ms "$probe_p50"); $(fmt_ms "$probe_p99"); $(fmt_ms "$probe_max"); $probe_failed | p99 < 100 ms: $(goal "$probe_p99" "<" 100) |"
    echo "| Vault requests per rotation, PKI | ${rot_ops_sc_pki:-none} | 1 sign + issuer reads |"
    echo "| Vault requests per forced renewal, KV | ${rot_ops_sc_kv:-none} | 1 read |"
    echo "| Idle ${idle_seconds}s, PKI sidecar: CPU time, context switches ($sc_threads threads), Vault requests | ${idle_cpu_ms[sc-pki]} ms, ${idle_ctx[sc-pki]}, ${idle_req[sc-pki]} | no wake-ups beyond the schedule |"
    echo "| Idle ${idle_seconds}s, KV sidecar (poll every 5m): CPU time, context switches, Vault requests | ${idle_cpu_ms[sc-kv]} ms, ${idle_ctx[sc-kv]}, ${idle_req[sc-kv]} | only the KV poll |"
    echo "| KV poll cost (sidecar polling every 10s for ${idle_seconds}s): requests per poll; CPU time | $per_poll (${fast_ops:-none}); ${idle_cpu_ms[sc-kv-fastpoll]} ms | |"
    echo "| Vault requests per hour at idle: PKI; KV at the default 5m poll | ${idle_req[sc-pki]}× $((3600 / idle_seconds)) = $((idle_req[sc-pki] * 3600 / idle_seconds)); 12 polls × $per_poll = $kv_per_hour | only the KV poll |"
    echo
    echo "\"Forced\" rotations are \`POST /rotate\` on the status port, so 100 of them take seconds rather than"
    echo "100 lifetimes; each one signs, validates and publishes a new generation exactly as a scheduled one does."
    echo "Context switches are summed over the process's threads from \`/proc\`, CPU time is user + system."
    echo "The image ships the static binary, linked $static_linker. The dynamic build also maps"
    echo "the shared OpenSSL, libstdc++ and C libraries' code around every page it touches, hence its larger RSS."
    echo
    echo "### Fleet"
    echo
    if [ "$fleet_done" = yes ]; then
      echo "$fleet_size sidecars, PKI ec-256, \`--ttl 1m\` (Vault backdates \`not_before\` by 30s), default renewal"
      echo "policy (renew at 66% of the lifetime, minus up to 5% jitter), against one Vault test server for ${fleet_seconds}s."
      echo
      echo "| | |"
      echo "|---|---|"
      echo "| sidecars alive at the end | $fleet_alive of $fleet_size |"
      echo "| scheduled renewals; failures logged | $fleet_renewals; $fleet_failures |"
      echo "| spread of the start-up publishes | ${fleet_start_spread} s |"
      echo "| spread of each sidecar's first scheduled renewal | ${fleet_first_renewal_spread} s |"
      echo "| most renewals in one second (whole run) | $fleet_max_per_second |"
      echo "| Vault requests: total; peak per second | $fleet_total_requests; $fleet_peak_rate |"
    else
      echo "$not_measured."
    fi
  else
    echo "| | |"
    echo "|---|---|"
    for row in "RSS after 100 rotations (goal < 6 MiB)" "idle CPU time and context switches per minute" \
      "Vault requests per rotation (PKI, KV)" "Vault requests per hour at idle" "fleet of 50: renewal spread, peak request rate, failures"; do
      echo "| $row | $not_measured |"
    done
  fi
  echo
  echo "## Rotation soak"
  echo
  if [ "$soak_done" = yes ]; then
    echo "\`bash bench/soak.sh\`: the sidecar (PKI ec-256, kubernetes auth, Vault test server over TLS) renews by"
    echo "schedule about once a second (\`--ttl ${SOAK_TTL:-6s} --renew-before ${SOAK_RENEW_BEFORE:-5s}\`) while \`cacerts-soak-reader\`, a"
    echo "separate process, reads the directory through istiod's four file names in a loop and judges every read"
    echo "set that provably came from one generation (\`..data\` unchanged around it): the key matches ca-cert.pem,"
    echo "cert-chain.pem starts with ca-cert.pem, and the chain verifies to root-cert.pem now (OpenSSL, not the"
    echo "agent's code). The reader also serves istiod's \`citadel_server_cert_chain_expiry_timestamp\`, which the"
    echo "sidecar polls to confirm each reload. Result: **$soak_status**."
    echo
    echo "$soak_table"
    echo
    echo '```'
    echo "$soak_line"
    echo '```'
  elif [ "$soak_rotations" -eq 0 ]; then
    echo "not run (SOAK_ROTATIONS=0)."
  else
    echo "$not_measured."
  fi
  echo
  echo "## Fuzzing"
  echo
  if [ -n "$fuzz_table" ]; then
    echo "\`scripts/fuzz-smoke.sh\` with ${fuzz_seconds}s per target (libFuzzer, ASan + UBSan, clang): $fuzz_result."
    echo
    echo '```'
    echo "$fuzz_table"
    echo '```'
  else
    echo "$fuzz_result."
  fi
  echo
  echo "## Reproduce"
  echo
  echo '```sh'
  echo 'apt-get install -y hyperfine jq time   # hyperfine is optional'
  echo 'bash bench/run.sh                      # BENCH_RUNS, BENCH_FUZZ_SECONDS, ... : see the header of bench/run.sh'
  echo 'bash bench/soak.sh                     # the rotation soak alone (SOAK_ROTATIONS=300 by default)'
  echo '```'
} >"$work/report.md"

cp "$work/report.md" "$report"
cat "$work/report.md"
log "wrote $report"
