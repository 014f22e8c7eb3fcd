#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan + UBSan) and runs each for a few
# seconds on its seed corpus plus freshly generated key seeds. Exits non-zero when any
# target crashes, leaks, hits undefined behaviour or times out; the crashing input is kept
# under <build-dir>/fuzz-artifacts/ and its path printed.
#
# Environment:
#   FUZZ_BUILD_DIR  build directory (default: build-fuzz in the repository root)
#   FUZZ_SECONDS    seconds per target (default: 5)
#   FUZZ_TARGETS    space-separated subset of: kv_ref vault_login vault_kv vault_pki pem prom
#   FUZZ_JOBS       parallel build jobs (default: nproc)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-5}
targets=${FUZZ_TARGETS:-kv_ref vault_login vault_kv vault_pki pem prom}
jobs=${FUZZ_JOBS:-$(nproc)}

for tool in clang++ openssl python3; do
  command -v "$tool" >/dev/null || { echo "fuzz-smoke: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 2; }
done

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCACERTS_FUZZ=ON -DCACERTS_BUILD_TESTS=OFF >/dev/null
build_targets=()
for t in $targets; do build_targets+=("fuzz_$t"); done
cmake --build "$build" -j "$jobs" --target "${build_targets[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Seeds with private keys are generated here rather than committed.
python3 "$root/fuzz/gen_key_seeds.py" "$work/seeds"

artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
failed=()
printf '%-12s %8s %10s %8s  %s\n' target seconds execs corpus result
for t in $targets; do
  corpus_dirs=("$work/new/$t" "$root/fuzz/corpus/$t")
  [ -d "$work/seeds/$t" ] && corpus_dirs+=("$work/seeds/$t")
  mkdir -p "$work/new/$t"
  case $t in
    vault_*) dict=vault ;;
    *) dict=$t ;;
  esac
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$artifacts/$t-")
  [ -f "$root/fuzz/dict/$dict.dict" ] && options+=(-dict="$root/fuzz/dict/$dict.dict")
  log="$work/$t.log"
  start=$(date +%s)
  # The first corpus directory receives new inputs: a scratch one, so the repository stays clean.
  if "$build/fuzz/fuzz_$t" "${options[@]}" "${corpus_dirs[@]}" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    failed+=("$t")
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  units=$(find "$work/new/$t" -type f | wc -l)
  printf '%-12s %8s %10s %8s  %s\n' "$t" "$(($(date +%s) - start))" "${execs:-?}" "+$units" "$result"
  if [ "$result" != ok ]; then
    echo "---- fuzz_$t output (last 60 lines) ----" >&2
    tail -n 60 "$log" >&2
    echo "---- reproduce: $build/fuzz/fuzz_$t <artifact from $artifacts> ----" >&2
  fi
done

if ((${#failed[@]})); then
  echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz-smoke: all targets ran ${seconds}s without a finding"
