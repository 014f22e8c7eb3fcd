#include "agent/config.h"

#include <arpa/inet.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "agent/ca_bundle.h"
#include "common/duration.h"
#include "common/time_text.h"

namespace cacerts {
namespace {

// Durations beyond this overflow nanosecond clocks in arithmetic downstream, and no
// setting of this agent means anything that far out.
constexpr Duration kMaxDuration = std::chrono::hours(24 * 365 * 10);
constexpr const char* kMaxDurationText = "87600h (10 years)";

template <class E>
struct Choice {
  std::string_view name;
  E value;
};

constexpr Choice<Command> kCommands[] = {{"init", Command::kInit},
                                         {"sidecar", Command::kSidecar},
                                         {"check", Command::kCheck},
                                         {"rotate", Command::kRotate},
                                         {"version", Command::kVersion}};
constexpr Choice<Source> kSources[] = {{"kv", Source::kKv}, {"pki", Source::kPki}};
constexpr Choice<Layout> kLayouts[] = {{"istio", Layout::kIstio}, {"tls", Layout::kTls}};
constexpr Choice<KeyType> kKeyTypes[] = {{"ec", KeyType::kEc}, {"rsa", KeyType::kRsa}};

template <class E, std::size_t N>
std::string_view nameOf(const Choice<E> (&choices)[N], E value) {
  for (const auto& c : choices) {
    if (c.value == value) return c.name;
  }
  return "?";
}

template <class E, std::size_t N>
Result<E> parseChoice(const Choice<E> (&choices)[N], const std::string& text) {
  std::string names;
  for (const auto& c : choices) {
    if (c.name == text) return c.value;
    names += (names.empty() ? "" : " or ") + std::string(c.name);
  }
  return Error{ErrorCode::kInvalidArgument, "must be " + names + " (got \"" + text + "\")"};
}

// Go's strconv.ParseBool, which the vault CLI uses for VAULT_SKIP_VERIFY.
std::optional<bool> parseGoBool(std::string_view s) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (s == t) return true;
  }
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (s == f) return false;
  }
  return std::nullopt;
}

Result<unsigned> parseOctalMode(const std::string& text) {
  const bool octal = !text.empty() && text.size() <= 4 &&
                     text.find_first_not_of("01234567") == std::string::npos;
  if (!octal) {
    return Error{ErrorCode::kInvalidArgument, "must be an octal file mode such as 0600 (got \"" + text + "\")"};
  }
  const unsigned long mode = std::strtoul(text.c_str(), nullptr, 8);
  if (mode > 0777) return Error{ErrorCode::kInvalidArgument, "must be at most 0777 (got \"" + text + "\")"};
  return static_cast<unsigned>(mode);
}

// "1.27" or "1.27.3" (a leading "v" allowed) -> 27, for the releases whose rules are known.
Result<int> parseIstioVersion(const std::string& text) {
  std::string_view v = text;
  if (v.starts_with("v")) v.remove_prefix(1);
  int minor = -1;
  if (v.starts_with("1.")) {
    v.remove_prefix(2);
    const std::size_t digits = v.find_first_not_of("0123456789");
    const std::string_view number = v.substr(0, digits);
    const std::string_view rest = digits == std::string_view::npos ? std::string_view() : v.substr(digits);
    const bool patch_ok = rest.empty() || (rest.size() > 1 && rest[0] == '.' &&
                                           rest.find_first_not_of("0123456789", 1) == std::string_view::npos);
    if (!number.empty() && number.size() <= 3 && patch_ok) minor = std::stoi(std::string(number));
  }
  if (minor < defaults::kOldestIstioMinor || minor > defaults::kIstioMinor) {
    return Error{ErrorCode::kInvalidArgument, "must be an Istio release from 1." + std::to_string(defaults::kOldestIstioMinor) +
                                                  " to 1." + std::to_string(defaults::kIstioMinor) + ", e.g. 1.27 (got \"" +
                                                  text + "\")"};
  }
  return minor;
}

// A comma-separated list of agent check names (see agentPolicyNames()).
Result<std::vector<std::string>> parsePolicyList(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string name = text.substr(start, end - start);
    const auto& known = agentPolicyNames();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return Error{ErrorCode::kInvalidArgument,
                   "names an unknown agent policy \"" + name + "\"; the policies this agent adds to istiod's rules are: " +
                       list + " (istiod's own rules cannot be relaxed)"};
    }
    out.push_back(name);
    start = end + 1;
  }
  return out;
}

std::string istioVersionText(int minor) { return "1." + std::to_string(minor); }

// The vault CLI's variable for --vault-* options (e.g. --vault-cacert <-> VAULT_CACERT),
// CACERTS_AGENT_<OPTION> for every other option, and for --vault-allow-http, which the
// vault CLI does not have.
std::string envNameFor(std::string_view flag) {
  std::string_view rest = flag.substr(2);
  std::string name = "CACERTS_AGENT_";
  if (rest.starts_with("vault-") && rest != "vault-allow-http") {
    name = "VAULT_";
    rest.remove_prefix(6);
  }
  for (char c : rest) name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

std::string octalText(unsigned mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode);
  return text;
}

std::string flagAndEnv(std::string_view flag) { return std::string(flag) + " (" + envNameFor(flag) + ")"; }

// Attaches the environment variable; the last occurrence wins, so a wrapper script can
// append an override to a base command line.
CLI::Option* withEnvironment(CLI::Option* o, const std::string& flag) {
  return o->envname(envNameFor(flag))->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

// Strings and numbers CLI11 converts itself.
template <class T>
CLI::Option* opt(CLI::App* app, const std::string& flag, T& into, const std::string& help) {
  return withEnvironment(app->add_option(flag, into, help), flag)->capture_default_str();
}

// A value CLI11 cannot convert: `parse` (text -> Result<T>) runs as the option's check,
// so a bad value is a usage error naming the option, and again to store the value.
template <class T, class Parse>
CLI::Option* typedOpt(CLI::App* app, const std::string& flag, T& into, Parse parse, std::string default_text,
                      const std::string& type_name, const std::string& help) {
  auto* o = app->add_option_function<std::string>(
      flag,
      [&into, parse](const std::string& text) {
        if (Result<T> value = parse(text)) into = *value;
      },
      help);
  o->check(CLI::Validator(
      [parse](std::string& text) {
        Result<T> value = parse(text);
        return value ? std::string() : value.error().message;
      },
      ""));
  return withEnvironment(o, flag)->default_str(std::move(default_text))->type_name(type_name);
}

CLI::Option* durationOpt(CLI::App* app, const std::string& flag, Duration& into, const std::string& help) {
  return typedOpt(app, flag, into, parseDuration, describeDuration(into), "DURATION", help);
}

template <class E, std::size_t N>
CLI::Option* choiceOpt(CLI::App* app, const std::string& flag, E& into, const Choice<E> (&choices)[N],
                       const std::string& help) {
  auto parse = [&choices](const std::string& text) { return parseChoice(choices, text); };
  return typedOpt(app, flag, into, parse, std::string(nameOf(choices, into)), "TEXT", help);
}

// A boolean flag: bare means true, --flag=<bool> sets either value, and the value (from
// the flag or the environment) must be one of Go's spellings; CLI11 alone would also take
// "yes", "on", "enable" or any integer.
CLI::Option* boolFlag(CLI::App* app, const std::string& flag, bool& into, const std::string& help) {
  const std::string where = "from " + flag + " or " + envNameFor(flag);
  auto* o = app->add_flag(flag, into, help);
  o->check(CLI::Validator(
      [where](std::string& text) {
        if (parseGoBool(text)) return std::string();
        return "expects a boolean: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false or False (got \"" + text +
               "\" " + where + ")";
      },
      ""));
  return withEnvironment(o, flag);
}

void addVaultOptions(CLI::App* app, Config& c) {
  opt(app, "--vault-addr", c.vault_addr, "Vault address, https://host:port (required)");
  opt(app, "--vault-namespace", c.vault_namespace, "Vault namespace, sent as X-Vault-Namespace");
  opt(app, "--vault-cacert", c.tls.ca_file, "PEM file of CAs that verify Vault's certificate");
  opt(app, "--vault-capath", c.tls.ca_path, "Directory of PEM CA files that verify Vault's certificate");
  opt(app, "--vault-client-cert", c.tls.client_cert, "PEM client certificate for TLS (and cert auth)");
  opt(app, "--vault-client-key", c.tls.client_key, "PEM client key for TLS (and cert auth)");
  opt(app, "--vault-tls-server-name", c.tls.server_name, "Name to verify in Vault's certificate (and SNI)");
  boolFlag(app, "--vault-skip-verify", c.tls.skip_verify,
           "Disable TLS verification of Vault (insecure; warns on every start)");
  boolFlag(app, "--vault-allow-http", c.vault_allow_http,
           "Allow a plain http:// Vault address that is not loopback (insecure; warns on every start)");
  opt(app, "--auth-method", c.auth.method, "kubernetes | approle | jwt | cert | token");
  opt(app, "--auth-mount", c.auth.mount, "Auth mount path, e.g. kube-c1-mesh-auth or auth/kube-c1-mesh-auth (default: the method name)");
  opt(app, "--auth-role", c.auth.role, "Role for kubernetes/jwt login (cert: certificate role name)");
  opt(app, "--jwt-file", c.auth.jwt_file, "Service-account token file, re-read at every login");
  opt(app, "--approle-role-id", c.auth.role_id, "AppRole role_id");
  opt(app, "--approle-role-id-file", c.auth.role_id_file, "File holding the AppRole role_id");
  opt(app, "--approle-secret-id-file", c.auth.secret_id_file, "File holding the AppRole secret_id");
  opt(app, "--token-file", c.auth.token_file, "File holding a Vault token (token auth; else VAULT_TOKEN)");
}

// Which istiod judges the material: its rules differ by release (ca-crl.pem from 1.27).
void addJudgementOptions(CLI::App* app, Config& c) {
  typedOpt(app, "--istio-version", c.istio_minor, parseIstioVersion, istioVersionText(c.istio_minor), "1.MINOR",
           "The istiod release whose rules apply, 1." + std::to_string(defaults::kOldestIstioMinor) + " to 1." +
               std::to_string(defaults::kIstioMinor));
}

void addSourceAndOutputOptions(CLI::App* app, Config& c) {
  choiceOpt(app, "--source", c.source, kSources, "kv | pki");
  opt(app, "--kv-cert", c.kv_cert, "Signing certificate: [vault:]<path>#<field>[#<version>]");
  opt(app, "--kv-key", c.kv_key, "Signing key: [vault:]<path>#<field>[#<version>]");
  opt(app, "--kv-chain", c.kv_chain, "Optional chain (signing cert first): [vault:]<path>#<field>[#<version>]");
  opt(app, "--kv-root", c.kv_root, "Optional root bundle: [vault:]<path>#<field>[#<version>]");
  opt(app, "--kv-crl", c.kv_crl,
      "Optional CRLs published as ca-crl.pem, one signed by each certificate of the chain: "
      "[vault:]<path>#<field>[#<version>] (istio layout, istiod 1.27+)");
  opt(app, "--pki-sign-path", c.pki.sign_path, "PKI endpoint that signs the intermediate: <mount>/root/sign-intermediate or <mount>/issuer/<ref>/sign-intermediate");
  opt(app, "--pki-root-mount", c.pki.root_mount, "PKI mount whose unexpired self-signed issuers are the trust bundle, e.g. pki when signing from pki_int (default: the signing mount)");
  opt(app, "--pki-generate-path", c.pki.generate_path, "Use <mount>/intermediate/generate/exported instead of a local key (not recommended)");
  choiceOpt(app, "--key-type", c.pki.key_type, kKeyTypes, "Intermediate key type: ec | rsa");
  withEnvironment(app->add_option("--key-bits", c.pki.key_bits, "Key size: ec 256 (default) or 384; rsa 2048, 3072 (default) or 4096"),
         "--key-bits");
  opt(app, "--common-name", c.pki.common_name, "Intermediate subject CN (default: istiod intermediate <pod name or hostname>)");
  opt(app, "--organization", c.pki.organization, "Intermediate subject O");
  durationOpt(app, "--ttl", c.pki_ttl, "Requested intermediate lifetime");
  opt(app, "--max-path-length", c.pki.max_path_length, "Requested path length constraint of the intermediate");
  opt(app, "--uri-sans", c.pki.uri_sans, "Comma-separated URI SANs for the intermediate (e.g. spiffe://cluster.local)");
  boolFlag(app, "--use-csr-values", c.pki.use_csr_values, "Ask Vault to take subject and extensions from the CSR");
  opt(app, "--dir", c.dir, "Output directory (a memory-backed emptyDir)");
  choiceOpt(app, "--layout", c.layout, kLayouts,
            "istio (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem) | tls (tls.crt, tls.key, ca.crt)");
  boolFlag(app, "--allow-non-tmpfs", c.allow_non_tmpfs, "Allow writing the key to a directory that is not on tmpfs");
  typedOpt(app, "--key-mode", c.key_mode, parseOctalMode, octalText(c.key_mode), "OCTAL",
           "Octal file mode of the private key file: 0600, 0400, 0640 or 0440");
  durationOpt(app, "--timeout", c.timeout, "How long init retries transient Vault failures before giving up");
  durationOpt(app, "--min-remaining", c.min_remaining, "Refuse material whose remaining lifetime is shorter than this");
  addJudgementOptions(app, c);
  typedOpt(app, "--relax-policy", c.relax_policy, parsePolicyList, "", "NAME[,NAME...]",
           "Agent policies (checks stricter than istiod) that do not refuse material, e.g. key_cert_sign");
}

void addLogOptions(CLI::App* app, Config& c) {
  opt(app, "--log-format", c.log_format, "text | json");
  opt(app, "--log-level", c.log_level, "trace | debug | info | warn | error");
}

// Root rotation timing: init needs it too, to sign under the root every replica signs under.
void addRootRotationOptions(CLI::App* app, Config& c) {
  SidecarSettings& s = c.sidecar;
  durationOpt(app, "--root-propagation", s.root_propagation,
              "Root rotation: a new root signs once it is this old (by its notBefore); until then the previous one does");
  durationOpt(app, "--root-retire", s.root_retire,
              "Root rotation: time after the switch before a root deleted from Vault leaves root-cert.pem");
}

void addSidecarOptions(CLI::App* app, Config& c) {
  SidecarSettings& s = c.sidecar;
  opt(app, "--listen", s.listen, "Address of /healthz, /readyz, /metrics and /rotate");
  opt(app, "--istiod-metrics-url", s.istiod_metrics_url, "istiod metrics URL for reload confirmation (empty disables)");
  boolFlag(app, "--istiod-multiroot", s.istiod_multiroot,
           "istiod runs with ISTIO_MULTIROOT_MESH=true (allows root changes)");
  durationOpt(app, "--renew-before", s.renew_before, "Renew at the latest this long before expiry");
  opt(app, "--renew-fraction", s.renew_fraction, "Renew at the latest at this fraction of the lifetime");
  opt(app, "--jitter", s.jitter, "Renew up to this fraction of the lifetime early, at random");
  durationOpt(app, "--retry-initial", s.retry_initial, "First retry delay after a failed renewal");
  durationOpt(app, "--retry-max", s.retry_max, "Largest retry delay");
  durationOpt(app, "--kv-poll-interval", s.kv_poll_interval, "How often the KV source checks for an out-of-band change");
  durationOpt(app, "--pki-poll-interval", s.pki_poll_interval,
              "How often the PKI source lists the trust mount's issuers for a new or deleted root (issues nothing)");
  durationOpt(app, "--confirm-timeout", s.confirm_timeout, "How long to wait for istiod to report the new certificate");
  durationOpt(app, "--rotate-min-interval", s.rotate_min_interval,
              "Forced renewals (SIGHUP, POST /rotate) start at most this often; requests in between are coalesced");
}

void addMigrationOptions(CLI::App* app, Config& c) {
  opt(app, "--migrate-from", c.migrate_from,
      "Adopt a running mesh: the old CA's Secret (istio-ca-secret or cacerts) mounted read-only here");
  auto parse = [](const std::string& text) -> Result<std::optional<SystemTime>> {
    ASSIGN_OR_RETURN(SystemTime t, parseRfc3339(text));
    return std::optional<SystemTime>(t);
  };
  typedOpt(app, "--migrate-switch-at", c.migrate_switch_at, parse, "", "RFC3339",
           "Adopt a running mesh: when every replica switches from the old CA to Vault, e.g. 2026-12-01T09:00:00Z");
  opt(app, "--migrate-mount", c.migrate_mount,
      "Where the install mounts an old CA for a migration; an old CA key there without --migrate-from refuses to "
      "start (the migration's settings went missing)");
}

// CLI11 2.1 takes the token after an option as its value even when that token is another
// option, so "--vault-addr --source pki" would connect to "--source" and then stumble
// over "pki". Refuse that form before CLI11 sees it.
void refuseOptionsAsValues(const CLI::App& command, int argc, const char* const* argv) {
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!arg.starts_with("--") || arg.find('=') != std::string::npos) continue;
    const CLI::Option* option = command.get_option_no_throw(arg);
    if (option == nullptr || option->get_items_expected_max() == 0) continue;  // unknown, or a flag
    if (i + 1 == argc || std::string_view(argv[i + 1]).starts_with("--")) {
      throw CLI::ArgumentMismatch(arg + " needs a value");
    }
    ++i;
  }
}

bool isLoopbackHost(std::string host) {
  for (char& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Status checkDuration(std::string_view flag, Duration value, bool zero_allowed) {
  if (value > kMaxDuration) {
    return Error{ErrorCode::kInvalidArgument, flagAndEnv(flag) + " must be at most " + kMaxDurationText + " (got " +
                                                  describeDuration(value) + ")"};
  }
  if (value < Duration::zero() || (!zero_allowed && value == Duration::zero())) {
    return Error{ErrorCode::kInvalidArgument, flagAndEnv(flag) + (zero_allowed ? " must not be negative" : " must be positive") };
  }
  return ok();
}

}  // namespace

std::string_view toString(Command command) { return nameOf(kCommands, command); }
std::string_view toString(Source source) { return nameOf(kSources, source); }
std::string_view toString(KeyType key_type) { return nameOf(kKeyTypes, key_type); }

ParsedCommandLine parseCommandLine(int argc, const char* const* argv) {
  ParsedCommandLine out;
  Config& c = out.config;

  CLI::App app{"cacerts-agent: publishes istiod's plugged-in CA from HashiCorp Vault into /etc/cacerts"};
  app.require_subcommand(1);
  std::map<std::string, CLI::App*> commands;
  for (const auto& [name, command] : kCommands) {
    (void)command;
    commands[std::string(name)] = app.add_subcommand(std::string(name));
  }
  commands["init"]->description("Fetch, validate and publish the CA once, then exit (init container)");
  commands["sidecar"]->description("Publish, then keep the CA renewed and confirm istiod reloaded");
  commands["check"]->description("Report whether istiod would accept a cacerts directory");
  commands["rotate"]->description("Ask the running sidecar to renew now");
  commands["version"]->description("Print the version");
  // Options are attached only to the subcommand named on the command line: CLI11 2.1 reads
  // the environment for every registered option, even of subcommands that were not
  // chosen, and would let an environment variable overwrite a flag bound to the same field.
  const std::string chosen = argc > 1 ? argv[1] : "";
  CLI::App* sub = commands.count(chosen) ? commands[chosen] : nullptr;
  if (chosen == "init" || chosen == "sidecar") {
    addVaultOptions(sub, c);
    addSourceAndOutputOptions(sub, c);
    addLogOptions(sub, c);
    addRootRotationOptions(sub, c);
  }
  if (chosen == "sidecar") addSidecarOptions(sub, c);
  if (chosen == "init" || chosen == "sidecar") addMigrationOptions(sub, c);
  if (chosen == "check") {
    opt(sub, "--dir", c.dir, "Directory to check");
    boolFlag(sub, "--json", c.json, "Print the report as JSON");
    durationOpt(sub, "--min-remaining", c.min_remaining, "Report material with less remaining lifetime as not acceptable");
    addJudgementOptions(sub, c);
    boolFlag(sub, "--policy", c.policy_fatal,
             "Fail (exit 7) also when only this agent's stricter policies refuse the directory");
    addLogOptions(sub, c);
  }
  if (chosen == "rotate") opt(sub, "--listen", c.sidecar.listen, "The sidecar's --listen address");

  try {
    if (sub != nullptr) refuseOptionsAsValues(*sub, argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    out.exit_now = e.get_exit_code() == 0 ? 0 : 2;
    return out;
  }
  for (auto* parsed : app.get_subcommands()) {
    if (Result<Command> command = parseChoice(kCommands, parsed->get_name())) c.command = *command;
  }
  // VAULT_TOKEN is read from the environment only: a token on the command line would be
  // visible to every process on the node.
  const char* token = std::getenv("VAULT_TOKEN");
  std::string token_text = token != nullptr ? token : "";
  c.auth.token = Secret::takeFrom(token_text);
  return out;
}

bool vaultTrafficLeavesHostInClear(const std::string& vault_addr) {
  constexpr std::string_view kHttp = "http://";
  if (!vault_addr.starts_with(kHttp)) return false;
  std::string authority = vault_addr.substr(kHttp.size());
  authority = authority.substr(0, authority.find('/'));
  std::string host;
  if (authority.starts_with("[")) {
    host = authority.substr(1, authority.find(']') - 1);
  } else {
    host = authority.substr(0, authority.rfind(':'));
  }
  return !isLoopbackHost(host);
}

Status validate(const Config& c) {
  auto bad = [](std::string m) { return Error{ErrorCode::kInvalidArgument, std::move(m)}; };
  const SidecarSettings& s = c.sidecar;

  // Ranges, for every command: options a command does not take keep their valid defaults.
  struct DurationRule {
    const char* flag;
    Duration value;
    bool zero_allowed;
  };
  for (const DurationRule& d : {DurationRule{"--timeout", c.timeout, false},
                                DurationRule{"--min-remaining", c.min_remaining, true},
                                DurationRule{"--ttl", c.pki_ttl, false},
                                DurationRule{"--renew-before", s.renew_before, true},
                                DurationRule{"--retry-initial", s.retry_initial, false},
                                DurationRule{"--retry-max", s.retry_max, false},
                                DurationRule{"--kv-poll-interval", s.kv_poll_interval, false},
                                DurationRule{"--pki-poll-interval", s.pki_poll_interval, false},
                                DurationRule{"--confirm-timeout", s.confirm_timeout, false},
                                DurationRule{"--root-propagation", s.root_propagation, false},
                                DurationRule{"--root-retire", s.root_retire, false},
                                DurationRule{"--rotate-min-interval", s.rotate_min_interval, true}}) {
    RETURN_IF_ERROR(checkDuration(d.flag, d.value, d.zero_allowed));
  }
  // Written so that NaN fails too: every comparison with NaN is false.
  if (!(s.renew_fraction > 0 && s.renew_fraction < 1)) {
    return bad(flagAndEnv("--renew-fraction") + " must be a number between 0 and 1, exclusive");
  }
  if (!(s.jitter >= 0 && s.jitter < 0.5)) return bad(flagAndEnv("--jitter") + " must be a number in [0, 0.5)");
  // Every replica must have seen a new root before any signs under it.
  if (c.command == Command::kSidecar && c.source == Source::kPki && s.root_propagation <= s.pki_poll_interval) {
    return bad("--root-propagation (" + describeDuration(s.root_propagation) + ") must exceed --pki-poll-interval (" +
               describeDuration(s.pki_poll_interval) + "): every replica must see a new root before any signs under it");
  }
  if (s.retry_initial > s.retry_max) {
    return bad("--retry-initial (" + describeDuration(s.retry_initial) + ") must not exceed --retry-max (" +
               describeDuration(s.retry_max) + ")");
  }

  // Values that reach an HTTP request line or header: a CR or LF would inject headers.
  const std::pair<const char*, const std::string&> request_values[] = {
      {"--vault-addr", c.vault_addr},          {"--vault-namespace", c.vault_namespace},
      {"--vault-tls-server-name", c.tls.server_name}, {"--auth-method", c.auth.method},
      {"--auth-mount", c.auth.mount},          {"--auth-role", c.auth.role},
      {"--approle-role-id", c.auth.role_id},   {"--kv-cert", c.kv_cert},
      {"--kv-key", c.kv_key},                  {"--kv-chain", c.kv_chain},
      {"--kv-root", c.kv_root},                {"--kv-crl", c.kv_crl},
      {"--pki-sign-path", c.pki.sign_path},
      {"--pki-generate-path", c.pki.generate_path}, {"--pki-root-mount", c.pki.root_mount},
      {"--common-name", c.pki.common_name},
      {"--organization", c.pki.organization},  {"--uri-sans", c.pki.uri_sans},
      {"--istiod-metrics-url", s.istiod_metrics_url}, {"--listen", s.listen}};
  for (const auto& [flag, value] : request_values) {
    for (unsigned char ch : value) {
      if (ch < 0x20 || ch == 0x7f) {
        char code[8];
        std::snprintf(code, sizeof code, "0x%02x", ch);
        return bad(flagAndEnv(flag) + " contains the control character " + code +
                   ", which would end up in an HTTP header or path");
      }
    }
  }

  if (c.command != Command::kInit && c.command != Command::kSidecar) return ok();
  if (c.migrate_from.empty() != !c.migrate_switch_at.has_value()) {
    const char* missing = c.migrate_from.empty() ? "--migrate-from" : "--migrate-switch-at";
    const char* given = c.migrate_from.empty() ? "--migrate-switch-at" : "--migrate-from";
    return bad(flagAndEnv(missing) + " is required with " + given +
               ": a migration needs both the old CA and the instant every replica switches to Vault");
  }
  if (!c.migrate_from.empty() && c.migrate_from.front() != '/') {
    return bad(flagAndEnv("--migrate-from") + " must be an absolute path (got \"" + c.migrate_from + "\")");
  }
  if (!c.migrate_mount.empty() && c.migrate_mount.front() != '/') {
    return bad(flagAndEnv("--migrate-mount") + " must be an absolute path (got \"" + c.migrate_mount + "\")");
  }
  if (c.vault_addr.empty()) return bad(flagAndEnv("--vault-addr") + " is required");
  if (vaultTrafficLeavesHostInClear(c.vault_addr) && !c.vault_allow_http) {
    return bad(flagAndEnv("--vault-addr") + " " + c.vault_addr +
               " is plain http to a host that is not loopback: the login credential and the CA key would cross the "
               "network in clear text. Use https://, or pass --vault-allow-http (" +
               envNameFor("--vault-allow-http") + ") to accept that");
  }
  if (c.dir.empty() || c.dir.front() != '/') return bad("--dir must be an absolute path (got \"" + c.dir + "\")");
  // Owner read, at most group read: istiod (same user, or its group) reads the key, and
  // nobody may change it.
  if ((c.key_mode & ~0640U) != 0 || (c.key_mode & 0400U) == 0) {
    return bad(flagAndEnv("--key-mode") + " " + octalText(c.key_mode) +
               " is refused for the CA key: use 0600, 0400, 0640 or 0440 (owner read, at most group read, "
               "nobody else, no write for group or others)");
  }
  if (!c.kv_crl.empty()) {
    // Each replica of a PKI source holds its own intermediate: a CRL set from one replica
    // would lack the others' signers, and istiod refuses a CRL set that misses a signer.
    if (c.source != Source::kKv) {
      return bad(flagAndEnv("--kv-crl") + " works with --source kv only: with --source pki every istiod replica "
                 "signs with its own intermediate, and no CRL set can name them all without shared state");
    }
    if (c.layout != Layout::kIstio) {
      return bad(flagAndEnv("--kv-crl") + " needs --layout istio: istiod reads ca-crl.pem only next to the *.pem files");
    }
    if (c.istio_minor < 27) {
      return bad(flagAndEnv("--kv-crl") + " needs istiod 1.27 or later (--istio-version " +
                 istioVersionText(c.istio_minor) + "): older releases never read ca-crl.pem");
    }
  }
  if (c.source == Source::kKv) {
    if (c.kv_cert.empty() || c.kv_key.empty()) return bad("--source kv needs --kv-cert and --kv-key");
    return ok();
  }
  if (c.pki.sign_path.empty()) return bad("--source pki needs --pki-sign-path");
  if (c.pki.key_type == KeyType::kEc && c.pki.key_bits != 0 && c.pki.key_bits != 256 && c.pki.key_bits != 384) {
    return bad("--key-bits for ec must be 256 or 384");
  }
  if (c.pki.key_type == KeyType::kRsa && c.pki.key_bits != 0 && c.pki.key_bits != 2048 && c.pki.key_bits != 3072 &&
      c.pki.key_bits != 4096) {
    return bad("--key-bits for rsa must be 2048, 3072 or 4096");
  }
  if (c.pki.max_path_length < -1) return bad("--max-path-length must be -1 or more");
  // Vault's organization field is a comma-separated list: "Acme, Inc." would become the two
  // values O=Acme and O=Inc., a subject nobody asked for.
  if (c.pki.organization.find(',') != std::string::npos) {
    return bad(flagAndEnv("--organization") + " \"" + c.pki.organization +
               "\" contains a comma; Vault splits the organization at commas into several O= values, so the "
               "intermediate's subject would not be the one asked for. Use a value without commas");
  }
  if (c.command == Command::kSidecar && s.renew_before >= c.pki_ttl) {
    return bad("--renew-before (" + describeDuration(s.renew_before) + ") must be shorter than the requested --ttl (" +
               describeDuration(c.pki_ttl) + "): every intermediate would be due for renewal as soon as it is issued");
  }
  return ok();
}

}  // namespace cacerts
