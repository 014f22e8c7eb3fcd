#include "agent/config.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

namespace cacerts {
namespace {

ParsedCommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "cacerts-agent");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parseCommandLine(static_cast<int>(argv.size()), argv.data());
}

// Sets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) : vars_(std::move(vars)) {
    for (const auto& [k, v] : vars_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : vars_) ::unsetenv(k.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

}  // namespace

TEST_CASE("environment variables configure every option", "[config]") {
  ScopedEnv env({{"VAULT_ADDR", "https://vault.example:8200"},
                 {"VAULT_NAMESPACE", "team-a/"},
                 {"CACERTS_AGENT_AUTH_ROLE", "istiod"},
                 {"CACERTS_AGENT_TIMEOUT", "90s"},
                 {"CACERTS_AGENT_KEY_MODE", "0640"},
                 {"VAULT_SKIP_VERIFY", "1"}});
  const auto p = parse({"init"});
  REQUIRE_FALSE(p.exit_now);
  CHECK(p.config.vault_addr == "https://vault.example:8200");
  CHECK(p.config.vault_namespace == "team-a/");
  CHECK(p.config.auth.role == "istiod");
  CHECK(p.config.timeout == std::chrono::seconds(90));
  CHECK(p.config.key_mode == 0640);
  CHECK(p.config.tls.skip_verify);
  CHECK(p.config.auth.method == "kubernetes");
  CHECK(p.config.dir == "/etc/cacerts");
}

TEST_CASE("a flag overrides the environment variable of the same option", "[config]") {
  ScopedEnv env({{"VAULT_ADDR", "https://wrong:1"}, {"CACERTS_AGENT_AUTH_METHOD", "approle"}});
  for (const char* command : {"init", "sidecar"}) {
    const auto p = parse({command, "--vault-addr", "https://right:8200", "--auth-method", "token"});
    INFO(command);
    REQUIRE_FALSE(p.exit_now);
    CHECK(p.config.vault_addr == "https://right:8200");
    CHECK(p.config.auth.method == "token");
  }
}

TEST_CASE("configuration errors name the option", "[config]") {
  CHECK(parse({"init", "--timeout", "soon"}).exit_now == 2);
  CHECK(parse({"init", "--key-mode", "rw"}).exit_now == 2);
  {
    ScopedEnv env({std::pair<std::string, std::string>{"VAULT_SKIP_VERIFY", "perhaps"}});
    CHECK(parse({"init"}).exit_now == 2);
  }
  auto p = parse({"init", "--vault-addr", "https://v:8200", "--source", "pki"});
  REQUIRE_FALSE(p.exit_now);
  auto v = validate(p.config);
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message, Catch::Contains("--pki-sign-path"));
  p = parse({"init", "--vault-addr", "https://v:8200", "--kv-cert", "a#b", "--kv-key", "a#c", "--layout", "both"});
  v = validate(p.config);
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message, Catch::Contains("--layout"));
}

}  // namespace cacerts
