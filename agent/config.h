// Config: every option of every subcommand, from flags or environment variables. This is
// the only place the command line and the environment are read. Vault connection options
// use the vault CLI's variables (VAULT_ADDR, VAULT_CACERT, ...); every other option
// has CACERTS_AGENT_<OPTION_NAME>, e.g. --auth-role <-> CACERTS_AGENT_AUTH_ROLE.
//
// Every default is written once, as the initialiser of its field below; --help prints it
// from there. Other structs that carry the same settings (RotatorSettings, RenewalPolicy,
// RootPolicy, ValidationOptions) are filled from a Config by the modes, never relied on
// for their own defaults.
//
// Boolean options are flags: a bare --flag means true, --flag=<bool> sets either value,
// and the environment variable accepts exactly Go's strconv.ParseBool spellings (1, t, T,
// TRUE, true, True, 0, f, F, FALSE, false, False), as the vault CLI does.
// No option takes a token that starts with "--" as its value.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/defaults.h"
#include "agent/layout.h"
#include "common/clock.h"
#include "common/http.h"
#include "common/result.h"
#include "common/vault_auth.h"
#include "common/x509.h"

namespace cacerts {

enum class Command { kInit, kSidecar, kCheck, kRotate, kVersion };
enum class Source { kKv, kPki };

// The spelling on the command line, for messages and logs.
std::string_view toString(Command command);
std::string_view toString(Source source);
std::string_view toString(KeyType key_type);

struct PkiSettings {
  std::string sign_path;              // <mount>/root/sign-intermediate | <mount>/issuer/<ref>/sign-intermediate
  std::string generate_path;          // optional <mount>/intermediate/generate/exported
  std::string root_mount;             // mount whose self-signed issuers are the trust bundle; empty: the signing mount
  KeyType key_type = KeyType::kEc;
  int key_bits = 0;                   // 0: 256 for ec, 3072 for rsa
  std::string common_name;            // default "istiod intermediate <pod name or hostname>"
  std::string organization;
  int max_path_length = 0;
  std::string uri_sans;               // comma-separated
  bool use_csr_values = false;        // let Vault take subject and extensions from the CSR
  // --root-propagation, copied from SidecarSettings: with the default issuer the signing
  // root is chosen by agent/root_plan.h.
  Duration root_propagation = defaults::kRootPropagation;
};

struct SidecarSettings {
  std::string listen = ":9797";
  std::string istiod_metrics_url = defaults::kIstiodMetricsUrl;
  bool istiod_multiroot = false;
  Duration renew_before = defaults::kRenewBefore;
  double renew_fraction = defaults::kRenewFraction;
  double jitter = defaults::kJitter;
  Duration retry_initial = defaults::kRetryInitial;
  Duration retry_max = defaults::kRetryMax;
  Duration kv_poll_interval = defaults::kKvPollInterval;
  Duration pki_poll_interval = defaults::kPkiPollInterval;
  Duration confirm_timeout = defaults::kConfirmTimeout;
  Duration rotate_min_interval = defaults::kRotateMinInterval;
  Duration root_propagation = defaults::kRootPropagation;
  Duration root_retire = defaults::kRootRetire;
};

// AuthSettings (common/) has no policy defaults; these are the agent's, for a pod.
inline AuthSettings defaultAuthSettings() {
  AuthSettings auth;
  auth.method = "kubernetes";
  auth.jwt_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  return auth;
}

struct Config {
  Command command = Command::kVersion;

  std::string vault_addr;
  std::string vault_namespace;
  bool vault_allow_http = false;  // plain http:// to a non-loopback Vault
  TlsOptions tls;
  AuthSettings auth = defaultAuthSettings();

  Source source = Source::kKv;
  std::string kv_cert, kv_key, kv_chain, kv_root;
  std::string kv_crl;  // optional ca-crl.pem (KV source, istio layout, istiod 1.27+)
  PkiSettings pki;
  Duration pki_ttl = defaults::kPkiTtl;  // --ttl

  std::string dir = "/etc/cacerts";
  Layout layout = Layout::kIstio;
  bool allow_non_tmpfs = false;
  unsigned key_mode = 0600;
  Duration timeout = defaults::kTimeout;
  Duration min_remaining = defaults::kMinRemaining;
  std::string log_format = "text";
  std::string log_level = "info";

  int istio_minor = defaults::kIstioMinor;  // --istio-version 1.<minor>
  std::vector<std::string> relax_policy;   // agent checks that do not refuse (init, sidecar)
  bool json = false;          // check --json
  bool policy_fatal = false;  // check --policy: agent policy failures fail the check (exit 7)
  SidecarSettings sidecar;
  // Adopting a running mesh (agent/migration_source.h): the old CA's Secret as mounted,
  // and the one instant every replica switches to Vault. Both or neither (init, sidecar).
  std::string migrate_from;
  // Where the install mounts an old CA for a migration (each variant sets it); guards
  // against the migration's settings going missing while the old CA is still mounted.
  std::string migrate_mount;
  std::optional<SystemTime> migrate_switch_at;
};

struct ParsedCommandLine {
  Config config;
  std::optional<int> exit_now;  // set for --help (0) or usage errors (2); output already printed
};

// Parses argv and the environment. Usage errors (unknown options, a missing value, a value
// that is not a duration, boolean, octal mode or one of the listed choices) print a message
// naming the option plus a hint to stderr and set exit_now = 2. Range and cross-option
// rules are left to validate().
ParsedCommandLine parseCommandLine(int argc, const char* const* argv);

// Checks ranges and cross-option rules for the chosen command; kInvalidArgument whose
// message names the option (and its environment variable where that is how it is
// usually set).
Status validate(const Config& config);

// True when the Vault address is plain http:// to a host other than a loopback address
// (127.0.0.0/8, ::1, localhost): then the login credential and the CA key cross the
// network in clear text. validate() refuses this unless vault_allow_http is set.
bool vaultTrafficLeavesHostInClear(const std::string& vault_addr);

}  // namespace cacerts
