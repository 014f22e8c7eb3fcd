#include "agent/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "common/duration.h"

namespace cacerts {
namespace {

// Go's strconv.ParseBool, as the vault CLI accepts for VAULT_SKIP_VERIFY.
std::optional<bool> parseGoBool(const std::string& s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False" || s.empty()) return false;
  return std::nullopt;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct RawOptions {
  std::string skip_verify, key_mode = "0600", timeout = "5m", min_remaining = "24h";
  std::string renew_before = "168h", retry_initial = "5s", retry_max = "5m", kv_poll_interval = "5m",
              confirm_timeout = "10s", root_propagation = "24h", root_retire = "24h", istiod_multiroot = "false",
              rotate_min_interval = "10s";
};

CLI::Option* opt(CLI::App* app, const std::string& flag, std::string& into, const std::string& help,
                 const std::string& env_name = "") {
  std::string name = env_name;
  if (name.empty()) {
    name = "CACERTS_AGENT_";
    for (char c : flag.substr(2)) name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  // Last one wins, so a wrapper script can append an override to a base command line.
  return app->add_option(flag, into, help)
      ->envname(name)
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

void addVaultOptions(CLI::App* app, Config& c, RawOptions& raw) {
  opt(app, "--vault-addr", c.vault_addr, "Vault address, https://host:port (required)", "VAULT_ADDR");
  opt(app, "--vault-namespace", c.vault_namespace, "Vault namespace, sent as X-Vault-Namespace", "VAULT_NAMESPACE");
  opt(app, "--vault-cacert", c.tls.ca_file, "PEM file of CAs that verify Vault's certificate", "VAULT_CACERT");
  opt(app, "--vault-capath", c.tls.ca_path, "Directory of PEM CA files that verify Vault's certificate", "VAULT_CAPATH");
  opt(app, "--vault-client-cert", c.tls.client_cert, "PEM client certificate for TLS (and cert auth)", "VAULT_CLIENT_CERT");
  opt(app, "--vault-client-key", c.tls.client_key, "PEM client key for TLS (and cert auth)", "VAULT_CLIENT_KEY");
  opt(app, "--vault-tls-server-name", c.tls.server_name, "Name to verify in Vault's certificate (and SNI)", "VAULT_TLS_SERVER_NAME");
  opt(app, "--vault-skip-verify", raw.skip_verify, "Disable TLS verification of Vault (insecure; warns on every start)", "VAULT_SKIP_VERIFY");
  opt(app, "--auth-method", c.auth.method, "kubernetes | approle | jwt | cert | token");
  opt(app, "--auth-mount", c.auth.mount, "Auth mount path, e.g. kube-c1-mesh-auth or auth/kube-c1-mesh-auth (default: the method name)");
  opt(app, "--auth-role", c.auth.role, "Role for kubernetes/jwt login (cert: certificate role name)");
  opt(app, "--jwt-file", c.auth.jwt_file, "Service-account token file, re-read at every login");
  opt(app, "--approle-role-id", c.auth.role_id, "AppRole role_id");
  opt(app, "--approle-role-id-file", c.auth.role_id_file, "File holding the AppRole role_id");
  opt(app, "--approle-secret-id-file", c.auth.secret_id_file, "File holding the AppRole secret_id");
  opt(app, "--token-file", c.auth.token_file, "File holding a Vault token (token auth; else VAULT_TOKEN)");
}

void addSourceAndOutputOptions(CLI::App* app, Config& c, RawOptions& raw) {
  opt(app, "--source", c.source, "kv | pki");
  opt(app, "--kv-cert", c.kv_cert, "Signing certificate: [vault:]<path>#<field>[#<version>]");
  opt(app, "--kv-key", c.kv_key, "Signing key: [vault:]<path>#<field>[#<version>]");
  opt(app, "--kv-chain", c.kv_chain, "Optional chain (signing cert first): [vault:]<path>#<field>[#<version>]");
  opt(app, "--kv-root", c.kv_root, "Optional root bundle: [vault:]<path>#<field>[#<version>]");
  opt(app, "--pki-sign-path", c.pki.sign_path, "PKI endpoint that signs the intermediate: <mount>/root/sign-intermediate or <mount>/issuer/<ref>/sign-intermediate");
  opt(app, "--pki-generate-path", c.pki.generate_path, "Use <mount>/intermediate/generate/exported instead of a local key (not recommended)");
  opt(app, "--key-type", c.pki.key_type, "Intermediate key type: ec | rsa");
  app->add_option("--key-bits", c.pki.key_bits, "Key size: ec 256 (default) or 384; rsa 2048, 3072 (default) or 4096")
      ->envname("CACERTS_AGENT_KEY_BITS");
  opt(app, "--common-name", c.pki.common_name, "Intermediate subject CN (default: istiod intermediate <pod name or hostname>)");
  opt(app, "--organization", c.pki.organization, "Intermediate subject O");
  opt(app, "--ttl", c.pki.ttl_text, "Requested intermediate lifetime");
  app->add_option("--max-path-length", c.pki.max_path_length, "Requested path length constraint of the intermediate")
      ->envname("CACERTS_AGENT_MAX_PATH_LENGTH")->capture_default_str();
  opt(app, "--uri-sans", c.pki.uri_sans, "Comma-separated URI SANs for the intermediate (e.g. spiffe://cluster.local)");
  app->add_flag("--use-csr-values", c.pki.use_csr_values, "Ask Vault to take subject and extensions from the CSR")
      ->envname("CACERTS_AGENT_USE_CSR_VALUES");
  opt(app, "--dir", c.dir, "Output directory (a memory-backed emptyDir)");
  opt(app, "--layout", c.layout, "istio (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem) | tls (tls.crt, tls.key, ca.crt)");
  app->add_flag("--allow-non-tmpfs", c.allow_non_tmpfs, "Allow writing the key to a directory that is not on tmpfs")
      ->envname("CACERTS_AGENT_ALLOW_NON_TMPFS");
  opt(app, "--key-mode", raw.key_mode, "Octal file mode of the private key file");
  opt(app, "--timeout", raw.timeout, "How long init retries transient Vault failures before giving up");
  opt(app, "--min-remaining", raw.min_remaining, "Refuse material whose remaining lifetime is shorter than this");
}

void addLogOptions(CLI::App* app, Config& c) {
  opt(app, "--log-format", c.log_format, "text | json");
  opt(app, "--log-level", c.log_level, "trace | debug | info | warn | error");
}

void addSidecarOptions(CLI::App* app, Config& c, RawOptions& raw) {
  opt(app, "--listen", c.sidecar.listen, "Address of /healthz, /readyz, /metrics and /rotate");
  opt(app, "--istiod-metrics-url", c.sidecar.istiod_metrics_url, "istiod metrics URL for reload confirmation (empty disables)");
  opt(app, "--istiod-multiroot", raw.istiod_multiroot, "Whether istiod runs with ISTIO_MULTIROOT_MESH=true (allows root changes)");
  opt(app, "--renew-before", raw.renew_before, "Renew at the latest this long before expiry");
  app->add_option("--renew-fraction", c.sidecar.renew_fraction, "Renew at the latest at this fraction of the lifetime")
      ->envname("CACERTS_AGENT_RENEW_FRACTION")->capture_default_str();
  app->add_option("--jitter", c.sidecar.jitter, "Renew up to this fraction of the lifetime early, at random")
      ->envname("CACERTS_AGENT_JITTER")->capture_default_str();
  opt(app, "--retry-initial", raw.retry_initial, "First retry delay after a failed renewal");
  opt(app, "--retry-max", raw.retry_max, "Largest retry delay");
  opt(app, "--kv-poll-interval", raw.kv_poll_interval, "How often the KV source checks for an out-of-band change");
  opt(app, "--confirm-timeout", raw.confirm_timeout, "How long to wait for istiod to report the new certificate");
  opt(app, "--rotate-min-interval", raw.rotate_min_interval, "Forced renewals (SIGHUP, POST /rotate) start at most this often");
  opt(app, "--root-propagation", raw.root_propagation, "Root rotation: time between publishing old+new roots and switching the intermediate");
  opt(app, "--root-retire", raw.root_retire, "Root rotation: time after the switch before the old root is dropped");
}

Status parseDurations(Config& c, const RawOptions& raw) {
  struct Item {
    const std::string& text;
    Duration& into;
    const char* option;
  };
  for (Item item : {Item{raw.timeout, c.timeout, "--timeout"}, Item{raw.min_remaining, c.min_remaining, "--min-remaining"},
                    Item{c.pki.ttl_text, c.pki_ttl, "--ttl"}, Item{raw.renew_before, c.sidecar.renew_before, "--renew-before"},
                    Item{raw.retry_initial, c.sidecar.retry_initial, "--retry-initial"},
                    Item{raw.retry_max, c.sidecar.retry_max, "--retry-max"},
                    Item{raw.kv_poll_interval, c.sidecar.kv_poll_interval, "--kv-poll-interval"},
                    Item{raw.confirm_timeout, c.sidecar.confirm_timeout, "--confirm-timeout"},
                    Item{raw.rotate_min_interval, c.sidecar.rotate_min_interval, "--rotate-min-interval"},
                    Item{raw.root_propagation, c.sidecar.root_propagation, "--root-propagation"},
                    Item{raw.root_retire, c.sidecar.root_retire, "--root-retire"}}) {
    Result<Duration> d = parseDuration(item.text);
    if (!d) return withContext(d.error(), item.option);
    item.into = *d;
  }
  return ok();
}

}  // namespace

ParsedCommandLine parseCommandLine(int argc, const char* const* argv) {
  ParsedCommandLine out;
  Config& c = out.config;
  c.auth.method = "kubernetes";
  c.auth.jwt_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  RawOptions raw;

  CLI::App app{"cacerts-agent: publishes istiod's plugged-in CA from HashiCorp Vault into /etc/cacerts"};
  app.require_subcommand(1);
  auto* init = app.add_subcommand("init", "Fetch, validate and publish the CA once, then exit (init container)");
  auto* sidecar = app.add_subcommand("sidecar", "Publish, then keep the CA renewed and confirm istiod reloaded");
  auto* check = app.add_subcommand("check", "Report whether istiod would accept a cacerts directory");
  auto* rotate = app.add_subcommand("rotate", "Ask the running sidecar to renew now");
  app.add_subcommand("version", "Print the version");
  // Options are attached only to the subcommand named on the command line: CLI11 2.1 reads
  // the environment for every registered option, even of subcommands that were not
  // chosen, and would let an environment variable overwrite a flag bound to the same field.
  const std::string chosen = argc > 1 ? argv[1] : "";
  for (auto* sub : {init, sidecar}) {
    if (sub->get_name() != chosen) continue;
    addVaultOptions(sub, c, raw);
    addSourceAndOutputOptions(sub, c, raw);
    addLogOptions(sub, c);
  }
  if (chosen == "sidecar") addSidecarOptions(sidecar, c, raw);
  if (chosen == "check") {
    opt(check, "--dir", c.dir, "Directory to check");
    check->add_flag("--json", c.json, "Print the report as JSON");
    opt(check, "--min-remaining", raw.min_remaining, "Report material with less remaining lifetime as not acceptable");
    addLogOptions(check, c);
  }
  if (chosen == "rotate") opt(rotate, "--listen", c.sidecar.listen, "The sidecar's --listen address");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    out.exit_now = e.get_exit_code() == 0 ? 0 : 2;
    (void)code;
    return out;
  }
  for (auto* sub : app.get_subcommands()) c.command = sub->get_name();

  const Status durations = parseDurations(c, raw);
  if (!durations) {
    std::fprintf(stderr, "error: %s\n", durations.error().message.c_str());
    out.exit_now = 2;
    return out;
  }
  const auto skip = parseGoBool(raw.skip_verify);
  const auto multiroot = parseGoBool(raw.istiod_multiroot);
  if (!skip || !multiroot) {
    std::fprintf(stderr, "error: %s must be a boolean (true/false/1/0)\n",
                 !skip ? "--vault-skip-verify (VAULT_SKIP_VERIFY)" : "--istiod-multiroot");
    out.exit_now = 2;
    return out;
  }
  c.tls.skip_verify = *skip;
  c.sidecar.istiod_multiroot = *multiroot;
  char* end = nullptr;
  const unsigned long mode = std::strtoul(raw.key_mode.c_str(), &end, 8);
  if (end == nullptr || *end != '\0' || mode > 0777 || raw.key_mode.empty()) {
    std::fprintf(stderr, "error: --key-mode must be an octal file mode such as 0600 (got \"%s\")\n", raw.key_mode.c_str());
    out.exit_now = 2;
    return out;
  }
  c.key_mode = static_cast<unsigned>(mode);
  // VAULT_TOKEN is read from the environment only: a token on the command line would be
  // visible to every process on the node.
  std::string token = env("VAULT_TOKEN");
  c.auth.token = Secret::takeFrom(token);
  return out;
}

Status validate(const Config& c) {
  auto bad = [](std::string m) { return Error{ErrorCode::kInvalidArgument, std::move(m)}; };
  if (c.command != "init" && c.command != "sidecar") return ok();
  if (c.vault_addr.empty()) return bad("--vault-addr (VAULT_ADDR) is required");
  if (c.layout != "istio" && c.layout != "tls") return bad("--layout must be istio or tls (got \"" + c.layout + "\")");
  if (c.dir.empty() || c.dir.front() != '/') return bad("--dir must be an absolute path (got \"" + c.dir + "\")");
  if (c.source == "kv") {
    if (c.kv_cert.empty() || c.kv_key.empty()) return bad("--source kv needs --kv-cert and --kv-key");
  } else if (c.source == "pki") {
    if (c.pki.sign_path.empty()) return bad("--source pki needs --pki-sign-path");
    if (c.pki.key_type != "ec" && c.pki.key_type != "rsa") return bad("--key-type must be ec or rsa");
    if (c.pki.key_type == "ec" && c.pki.key_bits != 0 && c.pki.key_bits != 256 && c.pki.key_bits != 384) {
      return bad("--key-bits for ec must be 256 or 384");
    }
    if (c.pki.key_type == "rsa" && c.pki.key_bits != 0 && c.pki.key_bits != 2048 && c.pki.key_bits != 3072 &&
        c.pki.key_bits != 4096) {
      return bad("--key-bits for rsa must be 2048, 3072 or 4096");
    }
    if (c.pki.max_path_length < -1) return bad("--max-path-length must be -1 or more");
  } else {
    return bad("--source must be kv or pki (got \"" + c.source + "\")");
  }
  if (c.sidecar.renew_fraction <= 0 || c.sidecar.renew_fraction >= 1) return bad("--renew-fraction must be between 0 and 1");
  if (c.sidecar.jitter < 0 || c.sidecar.jitter >= 0.5) return bad("--jitter must be in [0, 0.5)");
  if (c.sidecar.rotate_min_interval < Duration::zero()) return bad("--rotate-min-interval must not be negative");
  return ok();
}

}  // namespace cacerts
