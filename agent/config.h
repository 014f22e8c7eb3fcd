// Config: every option of every subcommand, from flags or environment variables. This is
// the only place the command line and the environment are read. Vault connection options
// use the vault CLI's variables (VAULT_ADDR, VAULT_CACERT, ...); every other option
// has CACERTS_AGENT_<OPTION_NAME>, e.g. --auth-role <-> CACERTS_AGENT_AUTH_ROLE.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/http.h"
#include "common/result.h"
#include "common/vault_auth.h"

namespace cacerts {

struct PkiSettings {
  std::string sign_path;        // <mount>/root/sign-intermediate | <mount>/issuer/<ref>/sign-intermediate
  std::string generate_path;    // optional <mount>/intermediate/generate/exported
  std::string key_type = "ec";  // ec | rsa
  int key_bits = 0;             // 0: 256 for ec, 3072 for rsa
  std::string common_name;      // default "istiod intermediate <pod name or hostname>"
  std::string organization;
  std::string ttl_text = "720h";
  int max_path_length = 0;
  std::string uri_sans;         // comma-separated
  bool use_csr_values = false;  // let Vault take subject and extensions from the CSR
};

struct SidecarSettings {
  std::string listen = ":9797";
  std::string istiod_metrics_url = "http://127.0.0.1:15014/metrics";
  bool istiod_multiroot = false;
  Duration renew_before = std::chrono::hours(24 * 7);
  double renew_fraction = 0.66;
  double jitter = 0.05;
  Duration retry_initial = std::chrono::seconds(5);
  Duration retry_max = std::chrono::minutes(5);
  Duration kv_poll_interval = std::chrono::minutes(5);
  Duration confirm_timeout = std::chrono::seconds(10);
  Duration rotate_min_interval = std::chrono::seconds(10);
  Duration root_propagation = std::chrono::hours(24);
  Duration root_retire = std::chrono::hours(24);
};

struct Config {
  std::string command;  // init | sidecar | check | rotate | version

  std::string vault_addr;
  std::string vault_namespace;
  TlsOptions tls;
  AuthSettings auth;

  std::string source = "kv";  // kv | pki
  std::string kv_cert, kv_key, kv_chain, kv_root;
  PkiSettings pki;

  std::string dir = "/etc/cacerts";
  std::string layout = "istio";  // istio | tls
  bool allow_non_tmpfs = false;
  unsigned key_mode = 0600;
  Duration timeout = std::chrono::minutes(5);
  Duration min_remaining = std::chrono::hours(24);
  Duration pki_ttl = std::chrono::hours(720);
  std::string log_format = "text";
  std::string log_level = "info";

  bool json = false;  // check --json
  SidecarSettings sidecar;
};

struct ParsedCommandLine {
  Config config;
  std::optional<int> exit_now;  // set for --help (0) or usage errors (2); output already printed
};

// Parses argv and the environment. Usage errors print CLI11's message plus a hint and set
// exit_now = 2; semantic errors (bad durations, missing required options) are reported by
// validate().
ParsedCommandLine parseCommandLine(int argc, const char* const* argv);

// Checks cross-option rules for the chosen command; kInvalidArgument names the option.
Status validate(const Config& config);

}  // namespace cacerts
