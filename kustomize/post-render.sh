#!/usr/bin/env bash
# Helm post-renderer that adds cacerts-agent to the istiod Deployment.
#
# Reads rendered manifests on stdin, writes them on stdout with every Deployment labelled
# app=istiod patched by the kustomize components beside this script; every other document
# passes through unchanged. Works from any current directory and removes its temporary
# files on exit.
#
#   helm upgrade --install istiod istio/istiod -n istio-system \
#     --post-renderer ./kustomize/post-render.sh [--post-renderer-args native-sidecar ...]
#   istioctl manifest generate ... | ./kustomize/post-render.sh | kubectl apply -f -
#
# Arguments: at most one variant, then options.
#   sidecar          init container + sidecar container (default; any Kubernetes version)
#   native-sidecar   one restartable init container (Kubernetes 1.29+)
#   init-only        init container only; rotation by restarting istiod
#   multiroot        also set ISTIO_MULTIROOT_MESH=true on discovery (not with init-only)
#   vault-ca-secret  read Vault's CA from Secret cacerts-agent-vault-ca, not the ConfigMap
#
# Exit status: 0 patched; 1 nothing to patch or kustomize failed; 2 bad arguments;
# 127 neither kubectl nor kustomize found.
set -euo pipefail

readonly kMarker='cacerts-agent-vault-token'

die() {
  local status=$1
  shift
  printf 'post-render.sh: %s\n' "$*" >&2
  exit "$status"
}

usage() {
  # The header comment above is the help text.
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}"
}

variant=''
multiroot=false
vault_ca_secret=false
for arg in "$@"; do
  case "$arg" in
    sidecar | native-sidecar | init-only)
      [[ -z "$variant" ]] || die 2 "choose one variant, got '$variant' and '$arg'"
      variant=$arg
      ;;
    multiroot) multiroot=true ;;
    vault-ca-secret) vault_ca_secret=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die 2 "unknown argument '$arg' (expected sidecar, native-sidecar, init-only, multiroot, vault-ca-secret)" ;;
  esac
done
variant=${variant:-sidecar}

components=("components/$variant")
if [[ "$multiroot" == true ]]; then
  case "$variant" in
    sidecar) components+=("components/multiroot") ;;
    native-sidecar) components+=("components/native-sidecar-multiroot") ;;
    *) die 2 "multiroot needs a running agent (sidecar or native-sidecar); init-only rotates roots by restarting istiod" ;;
  esac
fi
if [[ "$vault_ca_secret" == true ]]; then
  components+=("components/vault-ca-secret")
fi

if command -v kubectl >/dev/null 2>&1; then
  kustomize_cmd=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
  kustomize_cmd=(kustomize build)
else
  die 127 "needs kubectl (with its built-in kustomize) or kustomize on PATH; found neither"
fi

# Resolve a symlinked script to the real directory (readlink -f: GNU, macOS 12.3+).
script=${BASH_SOURCE[0]}
if resolved=$(readlink -f -- "$script" 2>/dev/null); then
  script=$resolved
fi
here=$(cd -- "$(dirname -- "$script")" && pwd -P)
[[ -d "$here/components/$variant" ]] || die 1 "missing $here/components/$variant"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cacerts-agent-render.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT

# kustomize only loads files inside the kustomization's directory tree, so the
# components are copied next to the rendered input.
cp -R -- "$here/components" "$tmp/components"
cat >"$tmp/rendered.yaml"
[[ -s "$tmp/rendered.yaml" ]] || die 1 "no manifests on stdin"

{
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
  printf 'resources:\n- rendered.yaml\ncomponents:\n'
  printf -- '- %s\n' "${components[@]}"
} >"$tmp/kustomization.yaml"

"${kustomize_cmd[@]}" "$tmp" >"$tmp/patched.yaml" || die 1 "${kustomize_cmd[*]} failed (see above)"

# A label selector that matches nothing is not an error for kustomize; it is for us.
before=$(grep -c -- "$kMarker" "$tmp/rendered.yaml" || true)
after=$(grep -c -- "$kMarker" "$tmp/patched.yaml" || true)
if ((after <= before)); then
  die 1 "no Deployment labelled app=istiod in the input; nothing was patched"
fi

cat -- "$tmp/patched.yaml"
