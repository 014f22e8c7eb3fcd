#!/usr/bin/env bash
# The baseline for bench/run.sh: what the Istio and Vault guides do by hand, as one script.
# curl logs in with the Kubernetes auth method, then either reads istiod's CA from Vault KV
# or has openssl make a key and CSR that Vault PKI signs; jq picks the fields and the shell
# writes the four files istiod reads. It validates nothing and is not atomic: it is the
# cost floor of "the same requests and file writes", not a substitute for the agent.
#
# Usage:
#   shell-recipe.sh kv  OUT_DIR
#   shell-recipe.sh pki OUT_DIR [ec-256|rsa-3072]
# Environment: VAULT_ADDR, VAULT_CACERT, JWT_FILE (service-account token), and optionally
# VAULT_ROLE (default istiod), VAULT_AUTH_MOUNT (kubernetes), KV_PATH
# (secret/data/istio/cacerts), PKI_SIGN_PATH (pki/root/sign-intermediate).
set -euo pipefail

mode=${1:?usage: shell-recipe.sh kv|pki OUT_DIR [ec-256|rsa-3072]}
out=${2:?usage: shell-recipe.sh kv|pki OUT_DIR [ec-256|rsa-3072]}
key_spec=${3:-ec-256}
: "${VAULT_ADDR:?}" "${VAULT_CACERT:?}" "${JWT_FILE:?}"
role=${VAULT_ROLE:-istiod}
auth_mount=${VAULT_AUTH_MOUNT:-kubernetes}
kv_path=${KV_PATH:-secret/data/istio/cacerts}
sign_path=${PKI_SIGN_PATH:-pki/root/sign-intermediate}

vault_curl() {
  curl --silent --show-error --fail --cacert "$VAULT_CACERT" -H "X-Vault-Request: true" "$@"
}

token=$(jq -n --arg role "$role" --rawfile jwt "$JWT_FILE" '{role: $role, jwt: ($jwt | rtrimstr("\n"))}' |
  vault_curl -X POST --data @- "$VAULT_ADDR/v1/auth/$auth_mount/login" | jq -r '.auth.client_token')

mkdir -p "$out"
umask 077
case "$mode" in
  kv)
    secret=$(vault_curl -H "X-Vault-Token: $token" "$VAULT_ADDR/v1/$kv_path")
    for field in ca-cert ca-key cert-chain root-cert; do
      jq -r --arg f "$field" '.data.data[$f]' <<<"$secret" >"$out/$field.pem"
    done
    ;;
  pki)
    case "$key_spec" in
      ec-256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ca-key.pem" 2>/dev/null ;;
      rsa-3072) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$out/ca-key.pem" 2>/dev/null ;;
      *) echo "shell-recipe.sh: key type must be ec-256 or rsa-3072" >&2; exit 2 ;;
    esac
    csr=$(openssl req -new -key "$out/ca-key.pem" -subj "/CN=istiod intermediate" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign")
    signed=$(jq -n --arg csr "$csr" \
      '{csr: $csr, common_name: "istiod intermediate", ttl: "720h", max_path_length: 0, format: "pem"}' |
      vault_curl -H "X-Vault-Token: $token" -X POST --data @- "$VAULT_ADDR/v1/$sign_path")
    jq -r '.data.certificate' <<<"$signed" >"$out/ca-cert.pem"
    jq -r '.data.certificate, .data.issuing_ca' <<<"$signed" >"$out/cert-chain.pem"
    jq -r '.data.issuing_ca' <<<"$signed" >"$out/root-cert.pem"
    ;;
  *)
    echo "shell-recipe.sh: mode must be kv or pki" >&2
    exit 2
    ;;
esac
