#include "agent/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <functional>

#include "tests/support/process.h"

namespace cacerts {
namespace {

// What parseCommandLine returned, and what it printed to stderr (CLI11 prints usage
// errors itself).
struct Parsed {
  ParsedCommandLine result;
  std::string err;
  int exitNow() const { return result.exit_now.value_or(-1); }
  const Config& config() const { return result.config; }
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "cacerts-agent");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::fflush(stderr);
  std::FILE* capture = std::tmpfile();
  REQUIRE(capture != nullptr);
  const int saved = ::dup(2);
  ::dup2(::fileno(capture), 2);
  Parsed out{parseCommandLine(static_cast<int>(argv.size()), argv.data()), ""};
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::rewind(capture);
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, capture)) > 0) out.err.append(buffer, n);
  std::fclose(capture);
  return out;
}

// Parses and validates a command that is expected to parse.
Status parseAndValidate(const std::vector<std::string>& args) {
  const Parsed p = parse(args);
  INFO("stderr: " << p.err);
  REQUIRE_FALSE(p.result.exit_now);
  return validate(p.config());
}

// Sets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) : vars_(std::move(vars)) {
    for (const auto& [k, v] : vars_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ScopedEnv(const char* name, const std::string& value) : ScopedEnv({std::make_pair(std::string(name), value)}) {}
  ~ScopedEnv() {
    for (const auto& [k, v] : vars_) ::unsetenv(k.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

const std::vector<std::string> kKv = {"--vault-addr", "https://vault.example:8200", "--kv-cert", "secret/ca#cert",
                                      "--kv-key", "secret/ca#key"};

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct BoolOption {
  const char* flag;
  const char* env;
  std::vector<const char*> commands;
  std::function<bool(const Config&)> value;
  const char* next_option;  // an option of every listed command that takes a value
};

const std::vector<BoolOption>& boolOptions() {
  static const std::vector<BoolOption> options = {
      {"--vault-skip-verify", "VAULT_SKIP_VERIFY", {"init", "sidecar"},
       [](const Config& c) { return c.tls.skip_verify; }, "--source"},
      {"--vault-allow-http", "CACERTS_AGENT_VAULT_ALLOW_HTTP", {"init", "sidecar"},
       [](const Config& c) { return c.vault_allow_http; }, "--source"},
      {"--use-csr-values", "CACERTS_AGENT_USE_CSR_VALUES", {"init", "sidecar"},
       [](const Config& c) { return c.pki.use_csr_values; }, "--source"},
      {"--allow-non-tmpfs", "CACERTS_AGENT_ALLOW_NON_TMPFS", {"init", "sidecar"},
       [](const Config& c) { return c.allow_non_tmpfs; }, "--source"},
      {"--istiod-multiroot", "CACERTS_AGENT_ISTIOD_MULTIROOT", {"sidecar"},
       [](const Config& c) { return c.sidecar.istiod_multiroot; }, "--source"},
      {"--json", "CACERTS_AGENT_JSON", {"check"}, [](const Config& c) { return c.json; }, "--dir"},
      {"--policy", "CACERTS_AGENT_POLICY", {"check"}, [](const Config& c) { return c.policy_fatal; }, "--dir"},
  };
  return options;
}

const std::vector<std::pair<std::string, bool>> kGoBools = {
    {"1", true},  {"t", true},  {"T", true},  {"TRUE", true},   {"true", true},   {"True", true},
    {"0", false}, {"f", false}, {"F", false}, {"FALSE", false}, {"false", false}, {"False", false}};

}  // namespace

TEST_CASE("environment variables configure every option", "[config]") {
  ScopedEnv env({{"VAULT_ADDR", "https://vault.example:8200"},
                 {"VAULT_NAMESPACE", "team-a/"},
                 {"CACERTS_AGENT_AUTH_ROLE", "istiod"},
                 {"CACERTS_AGENT_TIMEOUT", "90s"},
                 {"CACERTS_AGENT_KEY_MODE", "0640"},
                 {"CACERTS_AGENT_SOURCE", "pki"},
                 {"CACERTS_AGENT_LAYOUT", "tls"},
                 {"CACERTS_AGENT_KEY_TYPE", "rsa"},
                 {"VAULT_SKIP_VERIFY", "1"}});
  const Parsed p = parse({"init"});
  REQUIRE_FALSE(p.result.exit_now);
  const Config& c = p.config();
  CHECK(c.command == Command::kInit);
  CHECK(c.vault_addr == "https://vault.example:8200");
  CHECK(c.vault_namespace == "team-a/");
  CHECK(c.auth.role == "istiod");
  CHECK(c.timeout == std::chrono::seconds(90));
  CHECK(c.key_mode == 0640);
  CHECK(c.source == Source::kPki);
  CHECK(c.layout == Layout::kTls);
  CHECK(c.pki.key_type == KeyType::kRsa);
  CHECK(c.tls.skip_verify);
  CHECK(c.auth.method == "kubernetes");
  CHECK(c.dir == "/etc/cacerts");
}

TEST_CASE("a flag overrides the environment variable of the same option", "[config]") {
  ScopedEnv env({{"VAULT_ADDR", "https://wrong:1"}, {"CACERTS_AGENT_AUTH_METHOD", "approle"}});
  for (const char* command : {"init", "sidecar"}) {
    const Parsed p = parse({command, "--vault-addr", "https://right:8200", "--auth-method", "token"});
    INFO(command);
    REQUIRE_FALSE(p.result.exit_now);
    CHECK(p.config().vault_addr == "https://right:8200");
    CHECK(p.config().auth.method == "token");
  }
}

TEST_CASE("each subcommand parses to its command", "[config]") {
  CHECK(parse({"init"}).config().command == Command::kInit);
  CHECK(parse({"sidecar"}).config().command == Command::kSidecar);
  CHECK(parse({"check"}).config().command == Command::kCheck);
  CHECK(parse({"rotate"}).config().command == Command::kRotate);
  CHECK(parse({"version"}).config().command == Command::kVersion);
  CHECK(parse({"bogus"}).exitNow() == 2);
}

TEST_CASE("sources, layouts and key types parse to enums and refuse other words", "[config]") {
  const Parsed p = parse({"init", "--source", "pki", "--layout", "tls", "--key-type", "rsa"});
  REQUIRE_FALSE(p.result.exit_now);
  CHECK(p.config().source == Source::kPki);
  CHECK(p.config().layout == Layout::kTls);
  CHECK(p.config().pki.key_type == KeyType::kRsa);
  const Parsed defaults = parse({"sidecar"});
  CHECK(defaults.config().source == Source::kKv);
  CHECK(defaults.config().layout == Layout::kIstio);
  CHECK(defaults.config().pki.key_type == KeyType::kEc);
  for (const auto& [flag, word] : std::vector<std::pair<std::string, std::string>>{
           {"--source", "vault"}, {"--layout", "both"}, {"--key-type", "dsa"}, {"--source", "KV"}}) {
    INFO(flag << " " << word);
    const Parsed bad = parse({"init", flag, word});
    CHECK(bad.exitNow() == 2);
    CHECK_THAT(bad.err, Catch::Contains(flag) && Catch::Contains(word));
  }
  CHECK(toString(Source::kPki) == "pki");
  CHECK(toString(Layout::kTls) == "tls");
  CHECK(toString(KeyType::kRsa) == "rsa");
  CHECK(toString(Command::kSidecar) == "sidecar");
}

TEST_CASE("boolean options are flags: bare means true and the next option stays an option", "[config]") {
  for (const BoolOption& o : boolOptions()) {
    for (const char* command : o.commands) {
      INFO(command << " " << o.flag);
      const Parsed unset = parse({command});
      REQUIRE_FALSE(unset.result.exit_now);
      CHECK_FALSE(o.value(unset.config()));

      const Parsed bare = parse({command, o.flag, o.next_option, o.next_option == std::string("--dir") ? "/x" : "pki"});
      INFO("stderr: " << bare.err);
      REQUIRE_FALSE(bare.result.exit_now);
      CHECK(o.value(bare.config()));
      if (o.next_option == std::string("--dir")) CHECK(bare.config().dir == "/x");
      else CHECK(bare.config().source == Source::kPki);

      const Parsed last = parse({command, o.next_option, o.next_option == std::string("--dir") ? "/x" : "pki", o.flag});
      REQUIRE_FALSE(last.result.exit_now);
      CHECK(o.value(last.config()));
    }
  }
}

TEST_CASE("boolean options take every Go spelling after = and refuse others", "[config]") {
  for (const BoolOption& o : boolOptions()) {
    for (const char* command : o.commands) {
      for (const auto& [spelling, expected] : kGoBools) {
        INFO(command << " " << o.flag << "=" << spelling);
        const Parsed p = parse({command, std::string(o.flag) + "=" + spelling});
        INFO("stderr: " << p.err);
        REQUIRE_FALSE(p.result.exit_now);
        CHECK(o.value(p.config()) == expected);
      }
      for (const char* wrong : {"yes", "on", "2", "tRUE", "maybe"}) {
        INFO(command << " " << o.flag << "=" << wrong);
        const Parsed p = parse({command, std::string(o.flag) + "=" + wrong});
        CHECK(p.exitNow() == 2);
        CHECK_THAT(p.err, Catch::Contains(o.flag) && Catch::Contains(o.env));
      }
    }
  }
}

TEST_CASE("boolean environment variables accept exactly Go's ParseBool spellings", "[config]") {
  for (const BoolOption& o : boolOptions()) {
    for (const char* command : o.commands) {
      for (const auto& [spelling, expected] : kGoBools) {
        INFO(command << " " << o.env << "=" << spelling);
        ScopedEnv env(o.env, spelling);
        const Parsed p = parse({command});
        INFO("stderr: " << p.err);
        REQUIRE_FALSE(p.result.exit_now);
        CHECK(o.value(p.config()) == expected);
      }
      for (const char* wrong : {"yes", "perhaps", "on", "2", "tRUE"}) {
        INFO(command << " " << o.env << "=" << wrong);
        ScopedEnv env(o.env, wrong);
        const Parsed p = parse({command});
        CHECK(p.exitNow() == 2);
        CHECK_THAT(p.err, Catch::Contains(o.flag) && Catch::Contains(o.env) && Catch::Contains(wrong));
      }
      {
        INFO(command << ": the flag overrides the environment");
        ScopedEnv env(o.env, "true");
        const Parsed p = parse({command, std::string(o.flag) + "=false"});
        REQUIRE_FALSE(p.result.exit_now);
        CHECK_FALSE(o.value(p.config()));
      }
    }
  }
}

TEST_CASE("the two reported boolean reproductions parse", "[config]") {
  const Parsed multiroot = parse({"sidecar", "--istiod-multiroot", "--root-propagation", "10s"});
  INFO("stderr: " << multiroot.err);
  REQUIRE_FALSE(multiroot.result.exit_now);
  CHECK(multiroot.config().sidecar.istiod_multiroot);
  CHECK(multiroot.config().sidecar.root_propagation == std::chrono::seconds(10));

  const Parsed skip = parse({"init", "--vault-skip-verify", "--source", "pki"});
  INFO("stderr: " << skip.err);
  REQUIRE_FALSE(skip.result.exit_now);
  CHECK(skip.config().tls.skip_verify);
  CHECK(skip.config().source == Source::kPki);
}

TEST_CASE("no option takes another option as its value", "[config]") {
  const std::vector<std::vector<std::string>> cases = {
      {"init", "--vault-addr", "--source", "pki"},
      {"init", "--source", "--vault-skip-verify"},
      {"init", "--timeout", "--dir", "/x"},
      {"init", "--key-mode", "--allow-non-tmpfs"},
      {"sidecar", "--renew-before", "--istiod-multiroot"},
      {"sidecar", "--renew-fraction", "--jitter", "0.1"},
      {"check", "--dir", "--json"},
      {"check", "--min-remaining", "--dir", "/x"},
      {"rotate", "--listen", "--"},
  };
  for (const auto& args : cases) {
    INFO(args[0] << " " << args[1] << " " << args[2]);
    const Parsed p = parse(args);
    CHECK(p.exitNow() == 2);
    CHECK_THAT(p.err, Catch::Contains(args[1] + " needs a value"));
  }
  SECTION("a missing value at the end names the option") {
    const Parsed p = parse({"init", "--source", "pki", "--vault-addr"});
    CHECK(p.exitNow() == 2);
    CHECK_THAT(p.err, Catch::Contains("--vault-addr needs a value"));
  }
  SECTION("values with a single dash are still values") {
    const Parsed p = parse({"init", "--max-path-length", "-1", "--vault-addr", "https://v:8200"});
    REQUIRE_FALSE(p.result.exit_now);
    CHECK(p.config().pki.max_path_length == -1);
    CHECK(p.config().vault_addr == "https://v:8200");
  }
}

TEST_CASE("durations parse into Duration fields and refuse other text naming the option", "[config]") {
  const Parsed p = parse({"sidecar", "--timeout", "5m", "--ttl", "2h", "--renew-before", "1h30m", "--retry-initial",
                          "250ms", "--retry-max", "90", "--kv-poll-interval", "7d", "--confirm-timeout", "3s",
                          "--root-propagation", "1h", "--root-retire", "2h", "--min-remaining", "0s"});
  INFO("stderr: " << p.err);
  REQUIRE_FALSE(p.result.exit_now);
  using namespace std::chrono;
  const Config& c = p.config();
  CHECK(c.timeout == minutes(5));
  CHECK(c.pki_ttl == hours(2));
  CHECK(c.sidecar.renew_before == minutes(90));
  CHECK(c.sidecar.retry_initial == milliseconds(250));
  CHECK(c.sidecar.retry_max == seconds(90));
  CHECK(c.sidecar.kv_poll_interval == hours(168));
  CHECK(c.sidecar.confirm_timeout == seconds(3));
  CHECK(c.sidecar.root_propagation == hours(1));
  CHECK(c.sidecar.root_retire == hours(2));
  CHECK(c.min_remaining == Duration::zero());
  for (const char* flag : {"--timeout", "--ttl", "--renew-before", "--retry-initial", "--kv-poll-interval",
                           "--min-remaining", "--root-retire"}) {
    INFO(flag);
    const Parsed bad = parse({"sidecar", flag, "soon"});
    CHECK(bad.exitNow() == 2);
    CHECK_THAT(bad.err, Catch::Contains(flag) && Catch::Contains("soon"));
  }
  const Parsed check = parse({"check", "--min-remaining", "-5m"});
  CHECK(check.exitNow() == 2);
  CHECK_THAT(check.err, Catch::Contains("--min-remaining"));
}

TEST_CASE("help prints each default once, from the Config", "[config]") {
  // CLI11 prints help to stdout; the defaults shown must be those of a default Config.
  const Config defaults;
  CHECK(defaults.sidecar.renew_before == std::chrono::hours(168));
  CHECK(defaults.min_remaining == std::chrono::hours(24));
  const auto r = testing::runAgent({"sidecar", "--help"});
  REQUIRE(r.exit_code == 0);
  auto count = [&](const std::string& needle) {
    std::size_t n = 0;
    for (auto at = r.out.find(needle); at != std::string::npos; at = r.out.find(needle, at + 1)) ++n;
    return n;
  };
  CHECK(count("168h0m0s") == 1);         // --renew-before
  CHECK(count("DURATION=168h0m0s") == 1);
  CHECK(count("720h0m0s") == 1);         // --ttl
  CHECK(count("OCTAL=0600") == 1);       // --key-mode
  CHECK(count("--vault-allow-http") == 1);
}

TEST_CASE("every duration option is bounded by ten years and positive where zero makes no sense", "[config]") {
  const std::vector<std::string> base = concat({"sidecar"}, kKv);
  for (const char* flag : {"--timeout", "--ttl", "--renew-before", "--retry-initial", "--retry-max",
                           "--kv-poll-interval", "--confirm-timeout", "--root-propagation", "--root-retire",
                           "--min-remaining"}) {
    INFO(flag);
    // The largest allowed value; --retry-initial may not exceed --retry-max.
    std::vector<std::string> at_limit = concat(base, {flag, "87600h"});
    if (flag == std::string("--retry-initial")) at_limit = concat(at_limit, {"--retry-max", "87600h"});
    CHECK(parseAndValidate(at_limit));
    for (const char* huge : {"87601h", "2100000h"}) {
      const Status v = parseAndValidate(concat(base, {flag, huge}));
      REQUIRE_FALSE(v);
      CHECK_THAT(v.error().message, Catch::Contains(flag) && Catch::Contains("10 years"));
    }
  }
  for (const char* flag : {"--timeout", "--ttl", "--retry-initial", "--retry-max", "--kv-poll-interval",
                           "--confirm-timeout", "--root-propagation", "--root-retire"}) {
    INFO(flag);
    const Status v = parseAndValidate(concat(base, {flag, "0s"}));
    REQUIRE_FALSE(v);
    CHECK_THAT(v.error().message, Catch::Contains(flag) && Catch::Contains("positive"));
  }
  // Zero means "any valid material" and "by the renew fraction only".
  CHECK(parseAndValidate(concat(base, {"--min-remaining", "0s", "--renew-before", "0s"})));
  SECTION("check bounds its --min-remaining too") {
    const Status v = parseAndValidate({"check", "--min-remaining", "2100000h"});
    REQUIRE_FALSE(v);
    CHECK_THAT(v.error().message, Catch::Contains("--min-remaining"));
  }
}

TEST_CASE("a PKI sidecar refuses a --renew-before not shorter than the requested --ttl", "[config]") {
  const std::vector<std::string> pki = {"--vault-addr", "https://v:8200", "--source", "pki", "--pki-sign-path",
                                        "pki/root/sign-intermediate"};
  Status v = parseAndValidate(concat(concat({"sidecar"}, pki), {"--ttl", "1h"}));  // default --renew-before 168h
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message, Catch::Contains("--renew-before") && Catch::Contains("--ttl"));
  v = parseAndValidate(concat(concat({"sidecar"}, pki), {"--ttl", "1h", "--renew-before", "1h"}));
  REQUIRE_FALSE(v);
  CHECK(parseAndValidate(concat(concat({"sidecar"}, pki), {"--ttl", "1h", "--renew-before", "59m"})));
  CHECK(parseAndValidate(concat(concat({"sidecar"}, pki), {})));  // 168h < 720h
  CHECK(parseAndValidate(concat(concat({"init"}, pki), {"--ttl", "1h"})));  // init never renews
}

TEST_CASE("the first retry delay (--retry-initial) may not exceed --retry-max", "[config]") {
  const Status v = parseAndValidate(concat({"sidecar", "--retry-initial", "10m", "--retry-max", "5m"}, kKv));
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message, Catch::Contains("--retry-initial") && Catch::Contains("--retry-max"));
  CHECK(parseAndValidate(concat({"sidecar", "--retry-initial", "5m", "--retry-max", "5m"}, kKv)));
}

TEST_CASE("fractions refuse NaN, infinity and values out of range", "[config]") {
  const std::vector<std::string> base = concat({"sidecar"}, kKv);
  const std::vector<std::pair<std::string, std::vector<std::string>>> refused = {
      {"--renew-fraction", {"nan", "NaN", "inf", "-inf", "infinity", "0", "1", "-0.1", "1.5"}},
      {"--jitter", {"nan", "inf", "-inf", "0.5", "-0.01"}}};
  for (const auto& [flag, values] : refused) {
    for (const std::string& value : values) {
      INFO(flag << " " << value);
      const Parsed p = parse(concat(base, {flag, value}));
      if (p.result.exit_now) {  // refused by the parser already
        CHECK(p.exitNow() == 2);
        CHECK_THAT(p.err, Catch::Contains(flag));
        continue;
      }
      const Status v = validate(p.config());
      REQUIRE_FALSE(v);
      CHECK_THAT(v.error().message, Catch::Contains(flag));
    }
  }
  SECTION("nan really reaches validate: the parse accepts it as a double") {
    const Parsed p = parse(concat(base, {"--renew-fraction", "nan", "--jitter", "nan"}));
    REQUIRE_FALSE(p.result.exit_now);
    CHECK(std::isnan(p.config().sidecar.renew_fraction));
    CHECK_FALSE(validate(p.config()));
  }
  CHECK(parseAndValidate(concat(base, {"--renew-fraction", "0.5", "--jitter", "0"})));
}

TEST_CASE("the key mode allows owner read and at most group read", "[config]") {
  const std::vector<std::string> base = concat({"init"}, kKv);
  for (const char* mode : {"0600", "0400", "0640", "0440", "600"}) {
    INFO(mode);
    CHECK(parseAndValidate(concat(base, {"--key-mode", mode})));
  }
  for (const char* mode : {"0666", "0777", "0644", "0604", "0620", "0602", "0660", "0700", "0200", "0000", "0040"}) {
    INFO(mode);
    const Status v = parseAndValidate(concat(base, {"--key-mode", mode}));
    REQUIRE_FALSE(v);
    CHECK_THAT(v.error().message, Catch::Contains("--key-mode") && Catch::Contains("0600"));
  }
  for (const char* mode : {"rw", "0800", "01777", "", "-600"}) {
    INFO(mode);
    const Parsed p = parse(concat(base, {std::string("--key-mode=") + mode}));
    CHECK(p.exitNow() == 2);
    CHECK_THAT(p.err, Catch::Contains("--key-mode"));
  }
}

TEST_CASE("plain http Vault is refused unless loopback or explicitly allowed", "[config]") {
  const std::vector<std::string> kv = {"--kv-cert", "a#b", "--kv-key", "a#c"};
  for (const char* addr : {"http://vault.example:8200", "http://10.0.0.5:8200", "http://[2001:db8::1]:8200",
                           "http://vault.example", "http://0.0.0.0:8200"}) {
    INFO(addr);
    CHECK(vaultTrafficLeavesHostInClear(addr));
    for (const char* command : {"init", "sidecar"}) {
      const Status v = parseAndValidate(concat({command, "--vault-addr", addr}, kv));
      REQUIRE_FALSE(v);
      CHECK_THAT(v.error().message, Catch::Contains("--vault-allow-http") && Catch::Contains(addr));
      CHECK(parseAndValidate(concat({command, "--vault-addr", addr, "--vault-allow-http"}, kv)));
      ScopedEnv env("CACERTS_AGENT_VAULT_ALLOW_HTTP", "1");
      CHECK(parseAndValidate(concat({command, "--vault-addr", addr}, kv)));
    }
  }
  for (const char* addr : {"http://127.0.0.1:8200", "http://127.1.2.3:8200", "http://localhost:8200",
                           "http://LOCALHOST", "http://[::1]:8200", "https://vault.example:8200"}) {
    INFO(addr);
    CHECK_FALSE(vaultTrafficLeavesHostInClear(addr));
    CHECK(parseAndValidate(concat({"init", "--vault-addr", addr}, kv)));
  }
}

TEST_CASE("control characters are refused in every value that reaches an HTTP request", "[config]") {
  const std::vector<std::string> flags = {
      "--vault-addr",   "--vault-namespace", "--vault-tls-server-name", "--auth-method", "--auth-mount",
      "--auth-role",    "--kv-cert",         "--kv-key",                "--kv-chain",    "--kv-root",
      "--pki-sign-path", "--pki-generate-path", "--common-name",        "--organization", "--uri-sans",
      "--istiod-metrics-url", "--listen", "--approle-role-id"};
  for (const std::string& flag : flags) {
    for (const char* injected : {"a\r\nX-Injected: 1", "a\nb", "a\tb", "a\x7f"}) {
      INFO(flag);
      const Status v = parseAndValidate(concat(concat({"sidecar"}, kKv), {flag, injected}));
      REQUIRE_FALSE(v);
      CHECK_THAT(v.error().message, Catch::Contains(flag) && Catch::Contains("control character"));
    }
  }
  SECTION("from the environment, naming the variable") {
    ScopedEnv env("VAULT_NAMESPACE", "team\r\nX-Vault-Token: stolen");
    const Status v = parseAndValidate(concat({"init"}, kKv));
    REQUIRE_FALSE(v);
    CHECK_THAT(v.error().message, Catch::Contains("VAULT_NAMESPACE"));
    CHECK_THAT(v.error().message, !Catch::Contains("stolen"));
  }
}

TEST_CASE("configuration errors name the option", "[config]") {
  CHECK(parse({"init", "--timeout", "soon"}).exitNow() == 2);
  CHECK(parse({"init", "--key-mode", "rw"}).exitNow() == 2);
  {
    ScopedEnv env("VAULT_SKIP_VERIFY", "perhaps");
    const Parsed p = parse({"init"});
    CHECK(p.exitNow() == 2);
    CHECK_THAT(p.err, Catch::Contains("VAULT_SKIP_VERIFY"));
  }
  Status v = parseAndValidate({"init", "--vault-addr", "https://v:8200", "--source", "pki"});
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message, Catch::Contains("--pki-sign-path"));
  v = parseAndValidate({"init"});
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message, Catch::Contains("--vault-addr") && Catch::Contains("VAULT_ADDR"));
  const Parsed layout = parse(concat({"init", "--layout", "both"}, kKv));
  CHECK(layout.exitNow() == 2);
  CHECK_THAT(layout.err, Catch::Contains("--layout"));
}

// The real binary: usage errors exit 2 and say what to fix on stderr.
TEST_CASE("cacerts-agent accepts bare boolean flags followed by other options", "[config][config-e2e]") {
  // Parsing succeeds; validation then stops at the first missing setting, which proves
  // that the option after the flag was read as an option.
  const auto multiroot = testing::runAgent({"sidecar", "--istiod-multiroot", "--root-propagation", "10s"});
  CHECK(multiroot.exit_code == 2);
  CHECK_THAT(multiroot.err, !Catch::Contains("not expected") && Catch::Contains("--vault-addr"));

  const auto skip = testing::runAgent({"init", "--vault-addr", "https://127.0.0.1:1", "--vault-skip-verify",
                                       "--source", "pki"});
  CHECK(skip.exit_code == 2);
  CHECK_THAT(skip.err, !Catch::Contains("not expected") && Catch::Contains("--source pki needs --pki-sign-path"));
}

TEST_CASE("cacerts-agent refuses an option as the value of another", "[config][config-e2e]") {
  const auto r = testing::runAgent({"init", "--vault-addr", "--source", "pki"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--vault-addr needs a value"));
}

TEST_CASE("cacerts-agent refuses plain http to a remote Vault, and warns when allowed", "[config][config-e2e]") {
  const std::vector<std::string> args = {"init", "--vault-addr", "http://vault.example:8200", "--kv-cert", "a#b",
                                         "--kv-key", "a#c"};
  const auto refused = testing::runAgent(args);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err, Catch::Contains("--vault-allow-http") && Catch::Contains("clear text"));

  // 0.0.0.0 is not loopback by its name but refuses at once on this host: the run fails
  // fast after the warning.
  const testing::TempDir out;
  const auto allowed = testing::runAgent({"init", "--vault-addr", "http://0.0.0.0:1", "--vault-allow-http", "--kv-cert",
                                          "a#b", "--kv-key", "a#c", "--dir", out.path(), "--timeout", "1s",
                                          "--auth-method", "token", "--token-file", out.file("missing")});
  CHECK(allowed.exit_code != 0);
  CHECK_THAT(allowed.err, Catch::Contains("event=insecure_http"));
}

TEST_CASE("the istiod release option takes 1.20 to the newest known release, and the relax option only agent policies",
          "[config]") {
  CHECK(parse({"check"}).config().istio_minor == defaults::kIstioMinor);
  CHECK(parse({"check", "--istio-version", "1.27"}).config().istio_minor == 27);
  CHECK(parse({"check", "--istio-version", "v1.24.3"}).config().istio_minor == 24);
  for (const char* bad : {"1.19", "1.32", "2.1", "1.", "1.27.", "1.27.x", "27", "", "1.2a"}) {
    INFO(bad);
    const Parsed p = parse({"check", "--istio-version", bad});
    CHECK(p.exitNow() == 2);
    CHECK_THAT(p.err, Catch::Contains("--istio-version"));
  }
  const Parsed relaxed = parse({"init", "--relax-policy", "key_cert_sign,crl_current"});
  CHECK(relaxed.config().relax_policy == std::vector<std::string>{"key_cert_sign", "crl_current"});
  for (const char* bad : {"key_matches_cert", "key_cert_sign,", "nonsense"}) {
    INFO(bad);
    CHECK(parse({"init", "--relax-policy", bad}).exitNow() == 2);
  }
}

TEST_CASE("CRL publishing needs the KV source, the istio layout and istiod 1.27+", "[config]") {
  const std::vector<std::string> base = {"init", "--vault-addr", "https://vault:8200", "--kv-cert", "s/x#c",
                                         "--kv-key", "s/x#k", "--kv-crl", "s/x#crl"};
  CHECK(parseAndValidate(base));
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return parseAndValidate(args);
  };
  const Status pki = with({"--source", "pki", "--pki-sign-path", "pki/root/sign-intermediate"});
  REQUIRE_FALSE(pki);
  CHECK_THAT(pki.error().message, Catch::Contains("--kv-crl") && Catch::Contains("its own intermediate"));
  const Status tls = with({"--layout", "tls"});
  REQUIRE_FALSE(tls);
  CHECK_THAT(tls.error().message, Catch::Contains("--layout istio"));
  const Status old = with({"--istio-version", "1.26"});
  REQUIRE_FALSE(old);
  CHECK_THAT(old.error().message, Catch::Contains("1.27"));
}

TEST_CASE("migration takes --migrate-from and --migrate-switch-at together, from flags or environment", "[config]") {
  const std::vector<std::string> init = concat({"init"}, kKv);
  SECTION("both flags; init takes --root-retire for the phase too") {
    const Parsed p = parse(concat(init, {"--migrate-from", "/etc/old-ca", "--migrate-switch-at",
                                         "2026-12-01T10:00:00+01:00", "--root-retire", "48h"}));
    REQUIRE_FALSE(p.result.exit_now);
    CHECK(validate(p.config()));
    CHECK(p.config().migrate_from == "/etc/old-ca");
    REQUIRE(p.config().migrate_switch_at);
    CHECK(formatTime(*p.config().migrate_switch_at) == "2026-12-01T09:00:00Z");
    CHECK(p.config().sidecar.root_retire == std::chrono::hours(48));
  }
  SECTION("environment, sidecar") {
    ScopedEnv env({{"CACERTS_AGENT_MIGRATE_FROM", "/etc/old-ca"},
                   {"CACERTS_AGENT_MIGRATE_SWITCH_AT", "2026-12-01T09:00:00Z"}});
    const Parsed p = parse(concat({"sidecar"}, kKv));
    REQUIRE_FALSE(p.result.exit_now);
    CHECK(validate(p.config()));
    CHECK(p.config().migrate_from == "/etc/old-ca");
    REQUIRE(p.config().migrate_switch_at);
    CHECK(formatTime(*p.config().migrate_switch_at) == "2026-12-01T09:00:00Z");
  }
  SECTION("one without the other names the missing flag") {
    const Status only_dir = parseAndValidate(concat(init, {"--migrate-from", "/etc/old-ca"}));
    REQUIRE_FALSE(only_dir);
    CHECK(exitCodeFor(only_dir.error().code) == 2);
    CHECK_THAT(only_dir.error().message, Catch::StartsWith("--migrate-switch-at (CACERTS_AGENT_MIGRATE_SWITCH_AT)"));
    const Status only_time = parseAndValidate(concat(init, {"--migrate-switch-at", "2026-12-01T09:00:00Z"}));
    REQUIRE_FALSE(only_time);
    CHECK_THAT(only_time.error().message, Catch::StartsWith("--migrate-from (CACERTS_AGENT_MIGRATE_FROM)"));
  }
  SECTION("a relative directory is refused") {
    const Status relative =
        parseAndValidate(concat(init, {"--migrate-from", "old-ca", "--migrate-switch-at", "2026-12-01T09:00:00Z"}));
    REQUIRE_FALSE(relative);
    CHECK_THAT(relative.error().message, Catch::Contains("absolute"));
    const Status relative_mount = parseAndValidate(concat(init, {"--migrate-mount", "old-ca"}));
    REQUIRE_FALSE(relative_mount);
    CHECK_THAT(relative_mount.error().message, Catch::StartsWith("--migrate-mount (CACERTS_AGENT_MIGRATE_MOUNT)") &&
                                                   Catch::Contains("absolute"));
  }
  SECTION("--migrate-mount alone is no migration, from flag or environment") {
    const Parsed flag = parse(concat(init, {"--migrate-mount", "/etc/cacerts-agent/migrate-from"}));
    REQUIRE_FALSE(flag.result.exit_now);
    CHECK(validate(flag.config()));
    CHECK(flag.config().migrate_mount == "/etc/cacerts-agent/migrate-from");
    CHECK(flag.config().migrate_from.empty());
    ScopedEnv env("CACERTS_AGENT_MIGRATE_MOUNT", "/etc/cacerts-agent/migrate-from");
    const Parsed from_env = parse(concat({"sidecar"}, kKv));
    REQUIRE_FALSE(from_env.result.exit_now);
    CHECK(from_env.config().migrate_mount == "/etc/cacerts-agent/migrate-from");
  }
  SECTION("an unparsable instant is a usage error naming the option") {
    for (const char* text : {"tomorrow", "2026-12-01", "2026-12-01T09:00:00", "2026-13-01T09:00:00Z",
                             "2026-02-30T09:00:00Z", "2026-12-01T09:00:60Z", "2026-12-01T09:00:00Zjunk"}) {
      INFO(text);
      const Parsed p = parse(concat(init, {"--migrate-from", "/etc/old-ca", "--migrate-switch-at", text}));
      CHECK(p.exitNow() == 2);
      CHECK_THAT(p.err, Catch::Contains("--migrate-switch-at") && Catch::Contains("RFC 3339"));
    }
  }
}

}  // namespace cacerts
