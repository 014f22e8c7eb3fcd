#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs the whole test suite:
#   1. every test under ctest (unit, end-to-end over TLS, fault matrix, short rotation soak,
#      deployment, fuzz-corpus replay, and the log scan over all captured output);
#   2. the unit and end-to-end tests again under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. a libFuzzer smoke run of every fuzz target (clang, a few seconds each).
# This is what CI runs (.ci/run). For a quicker local loop, CACERTS_QUICK=1 runs step 1 only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}

# --cross arm64: the arm64 image is cross-built and run under qemu-user (deploy.image-arm64).
bash "$root/scripts/install-deps.sh" --cross arm64
bash "$root/scripts/build.sh" "$build"
status=0
tables="$build/fault-matrix"
mkdir -p "$tables"
CACERTS_FAULT_MATRIX_DIR="$tables" ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 600 \
  || status=$?
for table in "$tables/init.md" "$tables/sidecar.md" "$tables/ha.md"; do
  [ -f "$table" ] && { echo; cat "$table"; }
done
[ "$status" -eq 0 ] || exit "$status"

if [ "${CACERTS_QUICK:-0}" = 1 ]; then
  echo "test: CACERTS_QUICK=1: sanitizer run and fuzz smoke skipped" >&2
  exit 0
fi
bash "$root/scripts/sanitize.sh" "${build}-asan"
bash "$root/scripts/fuzz-smoke.sh"
