#!/usr/bin/env bash
# Builds everything the container image ships, for one target architecture: the static,
# stripped cacerts-agent, and beside it doc/ with the license notices of everything linked
# into it and its SPDX SBOM (scripts/image-sbom.py). The Dockerfile's build stage runs it, and
# tests/deploy/test_image.py runs the same line from the Dockerfile, so both build alike.
#
# Usage: scripts/build-image.sh [--arch ARCH] --httplib DIR [--base-image REF]... BUILD_DIR OUT_DIR
#   ARCH     Debian architecture of the binary (default: this machine's). Another one is
#            cross-compiled with cmake/debian-cross.cmake; scripts/install-deps.sh --image ARCH
#            installs what that needs.
#   DIR      holds the full single-header httplib.h (Debian's source package)
#   REF      base image references of the image build, recorded in the SBOM
# Writes OUT_DIR/cacerts-agent and OUT_DIR/doc/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
native=$(dpkg --print-architecture)
arch=$native httplib='' base=()
while (($#)); do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --httplib) httplib=$2; shift 2 ;;
    --base-image) base+=(--base-image "$2"); shift 2 ;;
    -*) echo "build-image.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[[ $# -eq 2 && -n $httplib ]] || {
  echo "usage: build-image.sh [--arch ARCH] --httplib DIR [--base-image REF]... BUILD_DIR OUT_DIR" >&2
  exit 2
}
build=$1 out=$2

cross=() strip=strip
if [[ $arch != "$native" ]]; then
  triplet=$(dpkg-architecture -a "$arch" -qDEB_HOST_MULTIARCH 2>/dev/null)
  cross=(-DCMAKE_TOOLCHAIN_FILE="$root/cmake/debian-cross.cmake" -DCACERTS_CROSS_TRIPLET="$triplet")
  strip=$triplet-strip
fi
bash "$root/scripts/build.sh" "$build" -DCACERTS_STATIC=ON -DCACERTS_BUILD_TESTS=OFF \
  -DCACERTS_HTTPLIB_SINGLE_HEADER_DIR="$httplib" "${cross[@]}"
mkdir -p "$out/doc"
"$strip" --strip-all -o "$out/cacerts-agent" "$build/cacerts-agent"
python3 "$root/scripts/image-sbom.py" --build-dir "$build" --binary "$out/cacerts-agent" \
  --httplib-header "$httplib/httplib.h" "${base[@]}" "$out/doc"
