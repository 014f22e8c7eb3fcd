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
#   helm get manifest istiod -n istio-system | ./kustomize/post-render.sh --verify >/dev/null
#
# Arguments: at most one variant, then options.
#   sidecar          init container + sidecar container (default; any Kubernetes version)
#   native-sidecar   one restartable init container (Kubernetes 1.29+)
#   init-only        init container only; rotation by restarting istiod
#   multiroot        also set ISTIO_MULTIROOT_MESH=true on discovery (not with init-only)
#   vault-ca-secret  read Vault's CA from Secret cacerts-agent-vault-ca, not the ConfigMap
#   migrate-from-istio-ca-secret | migrate-from-cacerts
#                    adopt a running mesh (docs/migration.md): mount the old CA's Secret
#                    (istiod's own `istio-ca-secret`, or a plugged-in `cacerts`) read-only into
#                    the agent containers only; works with every variant
#   --migrate-switch-at TIME
#                    the migration's switch instant, RFC 3339 (e.g. 2026-12-10T09:00:00Z);
#                    default: the component's migration.env, a placeholder that never switches
#   --image REF      the agent image, e.g. registry.example/cacerts-agent@sha256:<digest>
#                    (default: $CACERTS_AGENT_IMAGE, else the components' image)
#   --config DIR     also generate the agent's ConfigMap from the component DIR (e.g.
#                    kustomize/config/pki) with a content hash in its name, so that a change
#                    to DIR/agent.env rolls istiod on the next upgrade
#   --verify         patch nothing: check that every istiod Deployment on stdin already has
#                    the agent wired correctly and pass the input through unchanged; fail
#                    otherwise (also usable as a post-renderer, e.g. with the values files)
#
# Every patched output is verified the same way before it is written.
#
# Exit status: 0 patched (or verified); 1 nothing to patch, kustomize failed, or the
# verification failed (every problem is named on stderr); 2 bad arguments;
# 127 kubectl not found.
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
verify_only=false
image=''
config=''
migrate_from=''
switch_at=''
expect=''
for arg in "$@"; do
  case "$expect" in
    --image) image=$arg ;;
    --config) config=$arg ;;
    --migrate-switch-at) switch_at=$arg ;;
  esac
  if [[ -n "$expect" ]]; then
    expect=''
    continue
  fi
  case "$arg" in
    sidecar | native-sidecar | init-only)
      [[ -z "$variant" ]] || die 2 "choose one variant, got '$variant' and '$arg'"
      variant=$arg
      ;;
    multiroot) multiroot=true ;;
    vault-ca-secret) vault_ca_secret=true ;;
    migrate-from-istio-ca-secret | migrate-from-cacerts)
      [[ -z "$migrate_from" ]] || die 2 "choose one old CA, got '$migrate_from' and '$arg'"
      migrate_from=$arg
      ;;
    --verify) verify_only=true ;;
    --image | --config | --migrate-switch-at) expect=$arg ;;
    --image=*) image=${arg#--image=} ;;
    --config=*) config=${arg#--config=} ;;
    --migrate-switch-at=*) switch_at=${arg#--migrate-switch-at=} ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die 2 "unknown argument '$arg' (expected sidecar, native-sidecar, init-only, multiroot, vault-ca-secret, migrate-from-istio-ca-secret, migrate-from-cacerts, --image REF, --config DIR, --migrate-switch-at TIME, --verify)" ;;
  esac
done
[[ -z "$expect" ]] || die 2 "$expect needs a value"
if [[ "$verify_only" == true ]] && [[ -n "$variant$image$config$migrate_from$switch_at" || "$multiroot$vault_ca_secret" != falsefalse ]]; then
  die 2 "--verify patches nothing; it takes no variant, option, image or config"
fi
# The environment's image applies to patching only, so that an exported CACERTS_AGENT_IMAGE
# does not stop `--verify`.
image=${image:-${CACERTS_AGENT_IMAGE:-}}
if [[ -n "$config" ]] && ! grep -qs '^kind: Component' "$config/kustomization.yaml"; then
  die 2 "--config '$config' is not a kustomize component directory such as kustomize/config/pki"
fi
variant=${variant:-sidecar}
if [[ -n "$switch_at" ]]; then
  [[ -n "$migrate_from" ]] || die 2 "--migrate-switch-at needs migrate-from-istio-ca-secret or migrate-from-cacerts"
  # The agent parses the instant itself (exit 2 on anything else); this only keeps a typo
  # from reaching every replica of istiod.
  [[ "$switch_at" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt\ ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$ ]] ||
    die 2 "--migrate-switch-at '$switch_at' is not an RFC 3339 instant such as 2026-12-10T09:00:00Z"
fi

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
# After the variant: it replaces the placeholder volume the variant defines.
[[ -z "$migrate_from" ]] || components+=("components/$migrate_from")

# The image the components name; --image / CACERTS_AGENT_IMAGE replace it through kustomize's
# images transformer, so every agent container gets the same reference.
readonly kComponentImage='ghcr.io/cacerts-agent/cacerts-agent'
image_entry=''
if [[ -n "$image" ]]; then
  [[ "$image" =~ ^[a-z0-9][a-z0-9._/:-]*[a-z0-9]((:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?)$ ]] ||
    die 2 "--image '$image' is not an image reference (name[:tag][@sha256:digest])"
  name=${image%@*}
  digest=''
  [[ "$image" != *@* ]] || digest=${image#*@}
  tag=''
  if [[ "${name##*/}" == *:* ]]; then
    tag=${name##*:}
    name=${name%:*}
  fi
  image_entry="images:
- name: $kComponentImage
  newName: $name"
  [[ -z "$tag" ]] || image_entry+="
  newTag: \"$tag\""
  [[ -z "$digest" ]] || image_entry+="
  digest: $digest"
fi

command -v kubectl >/dev/null 2>&1 ||
  die 127 "needs kubectl 1.21+ on PATH (its built-in kustomize patches, its go-template output verifies); not found"

# The facts verify() judges, one tab-separated line each, for every istiod Deployment:
#   D  namespace/name
#   V  volume  sources,  emptyDir-medium
#   I  (init container) or C (container): name restartPolicy startupProbe args[0]
#      CACERTS_AGENT_DIR ROOT_CA_DIR image
#   M  container volume mountPath ro|rw
# "-" stands for absent.
# shellcheck disable=SC2016 # a Go template, not shell
readonly kFacts='{{- define "c" }}{{ .name }}	{{ with .restartPolicy }}{{ . }}{{ else }}-{{ end }}	{{ if .startupProbe }}startupProbe{{ else }}-{{ end }}	{{ with .args }}{{ index . 0 }}{{ else }}-{{ end }}	{{ $a := "-" }}{{ $r := "-" }}{{ range .env }}{{ if eq .name "CACERTS_AGENT_DIR" }}{{ if .valueFrom }}{{ $a = "valueFrom" }}{{ else }}{{ $a = .value }}{{ end }}{{ end }}{{ if eq .name "ROOT_CA_DIR" }}{{ if .valueFrom }}{{ $r = "valueFrom" }}{{ else }}{{ $r = .value }}{{ end }}{{ end }}{{ end }}{{ $a }}	{{ $r }}	{{ with .image }}{{ . }}{{ else }}-{{ end }}
{{ $n := .name }}{{ range .volumeMounts }}M	{{ $n }}	{{ .name }}	{{ .mountPath }}	{{ if .readOnly }}ro{{ else }}rw{{ end }}
{{ end }}{{ end -}}
{{- if eq .kind "Deployment" }}{{ $app := "" }}{{ with .metadata.labels }}{{ with .app }}{{ $app = . }}{{ end }}{{ end }}{{ if eq $app "istiod" -}}
D	{{ with .metadata.namespace }}{{ . }}{{ else }}-{{ end }}/{{ .metadata.name }}
{{ with .spec.template.spec }}{{ range .volumes }}V	{{ .name }}	{{ range $k, $v := . }}{{ if ne $k "name" }}{{ $k }},{{ end }}{{ end }}	{{ with .emptyDir }}{{ with .medium }}{{ . }}{{ else }}-{{ end }}{{ else }}-{{ end }}
{{ end }}{{ range .initContainers }}I	{{ template "c" . }}{{ end }}{{ range .containers }}C	{{ template "c" . }}{{ end }}{{ end }}{{ end }}{{ end -}}'

# Exits non-zero, naming every problem on stderr, unless file $1 holds at least one istiod
# Deployment and each has the agent wired as every install path promises: istiod's CA
# directory (ROOT_CA_DIR, default /etc/cacerts) mounted read-only in `discovery` from a
# memory emptyDir with no other source (no Secret); the agent as an init container
# (`init`, or `sidecar` with restartPolicy Always and a startupProbe) ahead of `discovery`,
# writing that same volume at its CACERTS_AGENT_DIR; a running `cacerts-agent` container,
# if any, writing it too; no volume with two sources; and the old CA of a migration
# (volume cacerts-agent-migrate-from) mounted into agent containers only.
verify() {
  local facts
  facts=$(kubectl annotate --local -f "$1" -o go-template="$kFacts" cacerts-agent.io/verified=true) ||
    die 1 "kubectl could not read the manifests (see above)"
  awk -F '\t' '
    function problem(msg) { printf "post-render.sh: verify: %s: %s\n", dep, msg > "/dev/stderr"; bad++ }
    function judge(   dir, vol, agent, k, n, key, parts) {
      if (dep == "") return
      checked++
      # sources[] ends in a comma: "emptyDir," splits into two fields, two sources into three.
      for (vol in sources) if (split(sources[vol], parts, ",") > 2)
        problem("volume " vol " has several sources (" sources[vol] "); a migrate-from-* component must come after the variant")
      for (key in mountvol) if (mountvol[key] == "cacerts-agent-migrate-from") {
        split(key, parts, SUBSEP)
        if (parts[1] != "cacerts-init" && parts[1] != "cacerts-agent") problem(parts[1] " mounts cacerts-agent-migrate-from (the old CA of a migration); only the agent containers may")
      }
      dir = root["discovery"]
      if (!("discovery" in root)) { problem("no container named discovery"); return }
      if (dir == "valueFrom") { problem("ROOT_CA_DIR of discovery comes from valueFrom; cannot verify it"); return }
      if (dir == "-") dir = "/etc/cacerts"
      sub(/^\.\//, "/", dir); sub(/\/+$/, "", dir)
      vol = mountvol["discovery", dir]
      if (vol == "") { problem("discovery mounts nothing at its CA directory " dir " (ROOT_CA_DIR); istiod would fall back to a self-signed CA"); return }
      if (mountmode["discovery", dir] != "ro") problem("discovery mounts " vol " at " dir " read-write; it must be read-only")
      if (!(vol in sources)) problem("volume " vol " (mounted at " dir ") is not defined")
      else if (sources[vol] != "emptyDir,") problem("volume " vol " at " dir " has source(s) " sources[vol] " not only emptyDir (a Secret source would override the agent)")
      else if (medium[vol] != "Memory") problem("emptyDir " vol " at " dir " is not medium: Memory; the CA key would reach the node disk")
      agent = ""
      for (k = 1; k <= ninit; k++) if (initname[k] == "cacerts-init" || initname[k] == "cacerts-agent") { agent = initname[k]; break }
      if (agent == "") { problem("no agent init container (cacerts-init or cacerts-agent) in initContainers; istiod would start without its CA"); return }
      if (arg0[agent] == "init") {
        if (policy[agent] != "-") problem("init container " agent " runs init but has restartPolicy " policy[agent])
      } else if (arg0[agent] == "sidecar") {
        if (policy[agent] != "Always") problem("init container " agent " runs sidecar without restartPolicy: Always; discovery would never start")
        if (probe[agent] != "startupProbe") problem("native sidecar " agent " has no startupProbe; discovery could start before the CA is published")
      } else problem("init container " agent " runs " arg0[agent] ", not init or sidecar")
      check_writer(agent, vol)
      for (n in kindof) if (kindof[n] == "C" && n == "cacerts-agent") check_writer(n, vol)
    }
    function check_writer(c, vol,   d) {
      d = agentdir[c]
      if (image[c] == "-") problem(c " has no image")
      if (d == "-" || d == "valueFrom") { problem(c " has no literal CACERTS_AGENT_DIR"); return }
      sub(/\/+$/, "", d)
      if (mountvol[c, d] != vol) problem(c " writes " d " but does not mount volume " vol " (istiod'"'"'s CA directory) there")
      else if (mountmode[c, d] != "rw") problem(c " mounts " vol " at " d " read-only; it cannot publish")
    }
    function reset() { dep = ""; ninit = 0; split("", sources); split("", medium); split("", root); split("", mountvol); split("", mountmode); split("", initname); split("", kindof); split("", policy); split("", probe); split("", arg0); split("", agentdir); split("", image) }
    BEGIN { reset() }
    $1 == "D" { judge(); reset(); dep = $2; next }
    $1 == "V" { sources[$2] = $3; medium[$2] = $4; next }
    $1 == "I" || $1 == "C" {
      kindof[$2] = $1; policy[$2] = $3; probe[$2] = $4; arg0[$2] = $5; agentdir[$2] = $6; root[$2] = $7; image[$2] = $8
      if ($1 == "I") initname[++ninit] = $2
      next
    }
    $1 == "M" { p = $4; sub(/\/+$/, "", p); mountvol[$2, p] = $3; mountmode[$2, p] = $5; next }
    END {
      judge()
      if (checked == 0) { print "post-render.sh: verify: no Deployment labelled app=istiod in the input" > "/dev/stderr"; exit 1 }
      if (bad) exit 1
      printf "post-render.sh: verify: %d istiod Deployment(s) wired to cacerts-agent\n", checked > "/dev/stderr"
    }' <<<"$facts"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cacerts-agent-render.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
cat >"$tmp/rendered.yaml"
[[ -s "$tmp/rendered.yaml" ]] || die 1 "no manifests on stdin"

if [[ "$verify_only" == true ]]; then
  verify "$tmp/rendered.yaml" || die 1 "the input does not install cacerts-agent correctly (problems above)"
  cat -- "$tmp/rendered.yaml"
  exit 0
fi

# Resolve a symlinked script to the real directory (readlink -f: GNU, macOS 12.3+).
script=${BASH_SOURCE[0]}
if resolved=$(readlink -f -- "$script" 2>/dev/null); then
  script=$resolved
fi
here=$(cd -- "$(dirname -- "$script")" && pwd -P)
[[ -d "$here/components/$variant" ]] || die 1 "missing $here/components/$variant"

# kustomize only loads files inside the kustomization's directory tree, so the
# components are copied next to the rendered input.
cp -R -- "$here/components" "$tmp/components"
if [[ -n "$switch_at" ]]; then
  # Both layouts' components take their settings from this file.
  env_file="$tmp/components/migrate-from-istio-ca-secret/migration.env"
  grep -v '^CACERTS_AGENT_MIGRATE_SWITCH_AT=' -- "$env_file" >"$tmp/migration.env"
  printf 'CACERTS_AGENT_MIGRATE_SWITCH_AT=%s\n' "$switch_at" >>"$tmp/migration.env"
  mv -- "$tmp/migration.env" "$env_file"
fi
if [[ -n "$config" ]]; then
  cp -R -- "$config" "$tmp/config"
  components+=("config")
fi
{
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
  printf 'resources:\n- rendered.yaml\ncomponents:\n'
  printf -- '- %s\n' "${components[@]}"
  [[ -z "$image_entry" ]] || printf '%s\n' "$image_entry"
} >"$tmp/kustomization.yaml"

kubectl kustomize "$tmp" >"$tmp/patched.yaml" || die 1 "kubectl kustomize failed (see above)"

# A label selector that matches nothing is not an error for kustomize; it is for us.
before=$(grep -c -- "$kMarker" "$tmp/rendered.yaml" || true)
after=$(grep -c -- "$kMarker" "$tmp/patched.yaml" || true)
if ((after <= before)); then
  die 1 "no Deployment labelled app=istiod in the input; nothing was patched"
fi
verify "$tmp/patched.yaml" || die 1 "the patched output failed verification (problems above)"

cat -- "$tmp/patched.yaml"
