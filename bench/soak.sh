#!/usr/bin/env bash
# Rotation soak: `cacerts-agent sidecar` with the PKI source and lifetimes of seconds renews by
# schedule about once a second for a few hundred rotations, against the Vault test server
# (`vault-test-server --seed-demo`, TLS, kubernetes auth), while `cacerts-soak-reader`, a
# separate process, reads the output directory the way istiod does and judges every read set
# that came from one generation (key matches cert, chain[0] is ca-cert, chain verifies to the
# roots). The reader also serves istiod's metrics, so every publish is reload-confirmed.
# Bounded by a deadline. Runs alone or from bench/run.sh.
#
#   bash bench/soak.sh
#
# Environment:
#   SOAK_BUILD_DIR     build directory (default: $BENCH_BUILD_DIR, else build); the three
#                      binaries are built there when needed
#   SOAK_ROTATIONS     scheduled rotations to wait for (default: 300)
#   SOAK_TTL           --ttl of each intermediate (default: 6s)
#   SOAK_RENEW_BEFORE  --renew-before (default: 5s; renewal about TTL - RENEW_BEFORE after each publish)
#   SOAK_DEADLINE      seconds before giving up (default: 60 + 3 per rotation)
#
# Prints a table on stdout and, last, one line "soak: key=value ..." for scripts. Exits 0 only
# when the rotations were reached with no failed publish, no unconfirmed reload, no
# inconsistent read, no private key in any log, and both processes exited cleanly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SOAK_BUILD_DIR:-${BENCH_BUILD_DIR:-$root/build}}
rotations=${SOAK_ROTATIONS:-300}
ttl=${SOAK_TTL:-6s}
renew_before=${SOAK_RENEW_BEFORE:-5s}
deadline_s=${SOAK_DEADLINE:-$((60 + 3 * rotations))}

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  "") ;;
  *)
    echo "soak: unknown argument $1 (see --help)" >&2
    exit 2
    ;;
esac
for n in "$rotations" "$deadline_s"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "soak: SOAK_ROTATIONS and SOAK_DEADLINE must be whole numbers" >&2; exit 2; }
done

log() { echo "soak: $*" >&2; }

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCACERTS_WERROR=ON >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target cacerts-agent vault-test-server cacerts-soak-reader >/dev/null
agent="$build/cacerts-agent"
server="$build/vault-test-server"
reader="$build/cacerts-soak-reader"

work=$(mktemp -d)
# The output directory on tmpfs, as in the pod.
out=$(mktemp -d /dev/shm/cacerts-soak-XXXXXX)
pids=()
# Created before the processes start, so that polling them never races their creation.
: >"$work/reader.log"
: >"$work/agent.log"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "$out"
}
trap cleanup EXIT

# wait_for_line FILE PATTERN PID: until FILE has a line matching PATTERN (10 s), while PID lives.
wait_for_line() {
  local i
  for ((i = 0; i < 200; i++)); do
    grep -q -- "$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || break
    sleep 0.05
  done
  grep -q -- "$2" "$1"
}

# --- Vault test server -----------------------------------------------------------------------
"$server" --listen 127.0.0.1:0 --seed-demo --ready-file "$work/port" --ca-out "$work/vault-ca.pem" \
  --jwt-out "$work/sa-token" 2>"$work/server.log" &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 1 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { cat "$work/server.log" >&2; log "the Vault test server did not start"; exit 1; }

# --- reader (also istiod's metrics endpoint) ---------------------------------------------------
"$reader" --dir "$out" --istiod-listen 127.0.0.1:0 >"$work/reader.out" 2>"$work/reader.log" &
reader_pid=$!
pids+=("$reader_pid")
wait_for_line "$work/reader.log" 'event=reader_started' "$reader_pid" ||
  { cat "$work/reader.log" >&2; log "the reader did not start"; exit 1; }
istiod_port=$(sed -n 's/.*event=reader_started istiod_port=\([0-9]*\).*/\1/p' "$work/reader.log" | head -1)

# --- sidecar -----------------------------------------------------------------------------------
log "sidecar: --ttl $ttl --renew-before $renew_before, waiting for $rotations scheduled rotations (deadline ${deadline_s}s)"
start_ns=$(date +%s%N)
"$agent" sidecar --dir "$out" --listen 127.0.0.1:0 --istiod-metrics-url "http://127.0.0.1:$istiod_port/metrics" \
  --vault-addr "https://127.0.0.1:$(cat "$work/port")" --vault-cacert "$work/vault-ca.pem" \
  --auth-method kubernetes --auth-role istiod --jwt-file "$work/sa-token" \
  --source pki --pki-sign-path pki/root/sign-intermediate --common-name istiod-soak --max-path-length 0 \
  --key-type ec --key-bits 256 --ttl "$ttl" --renew-before "$renew_before" --renew-fraction 0.99 --jitter 0 \
  --min-remaining 1s --retry-initial 200ms --retry-max 1s --confirm-timeout 2s 2>"$work/agent.log" &
agent_pid=$!
pids+=("$agent_pid")

scheduled() { grep -c 'event=published trigger=scheduled' "$work/agent.log" || true; }
count() { grep -c -E -- "$1" "$work/$2" || true; }
deadline=$((SECONDS + deadline_s))
reached=no
last_report=0
while ((SECONDS < deadline)); do
  done_now=$(scheduled)
  if ((done_now >= rotations)); then reached=yes; break; fi
  kill -0 "$agent_pid" 2>/dev/null || { log "the sidecar exited early"; break; }
  kill -0 "$reader_pid" 2>/dev/null || { log "the reader exited early"; break; }
  if ((done_now / 50 > last_report)); then
    last_report=$((done_now / 50))
    log "$done_now rotations"
  fi
  sleep 0.5
done
if [ "$reached" = no ] && ((SECONDS >= deadline)); then
  log "deadline of ${deadline_s}s reached after $(scheduled) of $rotations rotations"
fi
# A confirmation in flight when SIGTERM arrives is interrupted, not failed: let the last one land.
for _ in $(seq 1 40); do
  (($(count 'event=reload_confirmed' agent.log) >= $(count 'event=published ' agent.log))) && break
  sleep 0.05
done

kill -TERM "$agent_pid" 2>/dev/null || true
agent_exit=0
wait "$agent_pid" || agent_exit=$?
wall_ns=$(($(date +%s%N) - start_ns))
kill -TERM "$reader_pid" 2>/dev/null || true
reader_exit=0
wait "$reader_pid" || reader_exit=$?
kill -TERM "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
pids=()

# --- figures -----------------------------------------------------------------------------------
field() { sed -n "s/.*event=reader_summary.* $1=\([^ ]*\).*/\1/p" "$work/reader.out" | head -1; }
rotated=$(scheduled)
published=$(count 'event=published ' agent.log)
confirmed=$(count 'event=reload_confirmed' agent.log)
not_confirmed=$(count 'event=reload_not_confirmed' agent.log)
publish_failures=$(count 'event=(publish_failed|renew_failed|sidecar_failed)' agent.log)
reads=$(field reads)
straddled=$(field straddled)
inconsistent=$(field inconsistent)
generations=$(field generations_seen)
scrapes=$(field istiod_scrapes)
first_failure=$(field first_failure)
leaks=$(cat "$work/agent.log" "$work/reader.log" "$work/reader.out" | grep -c 'PRIVATE KEY' || true)
wall_s=$(awk -v n="$wall_ns" 'BEGIN {printf "%.1f", n / 1e9}')
# Seconds between consecutive scheduled publishes, from the sidecar's own timestamps.
intervals=$(grep 'event=published ' "$work/agent.log" | while read -r ts _; do date -d "$ts" +%s.%N; done |
  awk 'NR > 1 {print $1 - prev} {prev = $1}' | sort -g)
interval_median=$(awk '{v[NR] = $1} END {if (NR == 0) print "n/a"; else printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}' <<<"$intervals")
interval_max=$(awk 'END {if (NR == 0) print "n/a"; else printf "%.2f", $1}' <<<"$intervals")

result=pass
[ "$reached" = yes ] || result=FAIL
[ "$publish_failures" -eq 0 ] && [ "$not_confirmed" -eq 0 ] && [ "$leaks" -eq 0 ] || result=FAIL
[ "$agent_exit" -eq 0 ] && [ "$reader_exit" -eq 0 ] || result=FAIL
[ "${inconsistent:-x}" = 0 ] && [ "${reads:-0}" -gt 0 ] || result=FAIL

if [ "$result" != pass ]; then
  log "FAILED; the sidecar's and the reader's last lines:"
  tail -n 20 "$work/agent.log" >&2
  grep -E 'event=(inconsistent_read|reader_summary)' "$work/reader.log" | head -n 12 >&2 || true
fi

cat <<EOF
| Rotation soak | |
|---|---|
| scheduled rotations (goal $rotations; deadline ${deadline_s}s) | $rotated |
| publishes; reload confirmations; not confirmed | $published; $confirmed; $not_confirmed |
| failed publishes or renewals | $publish_failures |
| reader: read sets judged; straddled a swap (re-read); inconsistent | $reads; $straddled; $inconsistent |
| reader: generations seen; istiod metric scrapes | $generations; $scrapes |
| seconds between publishes: median; max | $interval_median; $interval_max |
| private keys in the logs | $leaks |
| exit codes: sidecar; reader | $agent_exit; $reader_exit |
| wall time | ${wall_s} s |
EOF
echo "soak: result=$result rotations=$rotated goal=$rotations publishes=$published confirmed=$confirmed" \
  "not_confirmed=$not_confirmed publish_failures=$publish_failures reads=${reads:-0} straddled=${straddled:-0}" \
  "inconsistent=${inconsistent:-unknown} first_failure=${first_failure:-unknown} generations_seen=${generations:-0}" \
  "istiod_scrapes=${scrapes:-0} interval_median_s=$interval_median interval_max_s=$interval_max leaks=$leaks" \
  "agent_exit=$agent_exit reader_exit=$reader_exit wall_s=$wall_s ttl=$ttl renew_before=$renew_before"
[ "$result" = pass ]
