#!/usr/bin/env bash
# Fleet-wide root rotation: runs the fleet end-to-end tests (tests/fleet_rotation_e2e_test.cc)
# FLEET_RUNS times. Each run rotates one root through a fleet of four replicas (three PKI
# sidecars with different renewal times, and a replica whose init starts during the
# propagation window) against the Vault test server, while cacerts-fleet-checker, a separate
# process, verifies every replica's chain against every replica's root-cert.pem, every 20 ms.
#
#   bash bench/fleet.sh
#
# Environment:
#   FLEET_BUILD_DIR  build directory (default: $BENCH_BUILD_DIR, else build); agent_tests and
#                    the binaries it runs are built there when needed
#   FLEET_RUNS       runs of each layout (default: 3)
#   FLEET_TESTS      Catch2 test spec (default: [fleet][e2e], both layouts)
#
# Prints a Markdown table (one row per layout, summed over the runs) and, last, one line
# "fleet: key=value ..." for scripts. Exits 0 only when every run passed with no violation.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FLEET_BUILD_DIR:-${BENCH_BUILD_DIR:-$root/build}}
runs=${FLEET_RUNS:-3}
spec=${FLEET_TESTS:-[fleet][e2e]}

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  "") ;;
  *)
    echo "fleet: unknown argument $1 (see --help)" >&2
    exit 2
    ;;
esac
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs == 0)); then
  echo "fleet: FLEET_RUNS must be a positive whole number" >&2
  exit 2
fi

log() { echo "fleet: $*" >&2; }

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCACERTS_WERROR=ON >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target agent_tests >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
report="$work/report.jsonl"
: >"$report"
failed=0
for ((i = 1; i <= runs; i++)); do
  log "run $i of $runs"
  CACERTS_FLEET_REPORT="$report" CACERTS_TEST_OUTPUT_DIR="$work/output" "$build/agent_tests" "$spec" \
    >"$work/run-$i.log" 2>&1 || { failed=$((failed + 1)); tail -40 "$work/run-$i.log" >&2; log "run $i FAILED"; }
done

python3 - "$report" "$runs" "$failed" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs, failed = int(sys.argv[2]), int(sys.argv[3])
print("| layout | runs completed | replicas | root rotations | publishes | invariant checks | violations | seconds per run |")
print("|---|---|---|---|---|---|---|---|")
total_checks = total_violations = 0
for layout in sorted({r["layout"] for r in rows}):
    rs = [r for r in rows if r["layout"] == layout]
    checks = sum(r["checks"] for r in rs)
    violations = sum(r["violations"] for r in rs)
    total_checks += checks
    total_violations += violations
    secs = sorted(r["seconds"] for r in rs)
    print(f"| {layout} | {len(rs)} of {runs} | {rs[0]['replicas']} | {sum(r['root_rotations'] for r in rs)} | "
          f"{sum(r['publishes'] for r in rs)} | {checks} | {violations} | {secs[len(secs) // 2]:.1f} (median) |")
print(f"fleet: runs={runs} failed_runs={failed} reported_runs={len(rows)} checks={total_checks} "
      f"violations={total_violations}")
PY
[ "$failed" -eq 0 ]
