#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs the whole test suite.
# This is what CI runs (.ci/run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh" "$build"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 600

# The libFuzzer smoke run needs a clang build of its own (about 2.5 minutes on 2 cores,
# 5 seconds per target); opt in with CACERTS_FUZZ_SMOKE=1. The corpus replay (ctest -L fuzz)
# runs above either way.
if [ "${CACERTS_FUZZ_SMOKE:-0}" = 1 ]; then
  bash "$root/scripts/fuzz-smoke.sh"
fi
