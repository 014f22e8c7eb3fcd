#!/usr/bin/env bash
# Configures and builds cacerts-agent, the Vault test server and the tests.
# Usage: scripts/build.sh [build-dir] [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCACERTS_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
