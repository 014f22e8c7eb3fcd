// End-to-end bad-input matrix: each failure exits with its documented code, names what to
// fix, and leaves the previously published generation byte-identical.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/background_process.h"
#include "tests/support/e2e.h"
#include "tests/vault_server/auth_engines.h"

namespace cacerts::testing {
namespace {

struct Published {
  E2eVault vault;
  TempDir out;
  std::string token_file;
  std::map<std::string, std::string> before;

  Published() : token_file(vault.tokenFile()) {
    const auto r = vault.run(concat(args(), E2eVault::kvArgs()));
    if (r.exit_code != 0) FAIL("initial publish failed: " << r.err);
    before = snapshotTree(out.path());
    REQUIRE(before.size() > 4);
  }
  std::vector<std::string> args() {
    return concat(concat({"init", "--dir", out.path()}, vault.connectArgs()),
                  {"--auth-method", "token", "--token-file", token_file});
  }
  // Runs a failing init and checks code, message and the untouched directory.
  void expectFailure(const std::vector<std::string>& extra, int code, const std::string& message) {
    const auto r = vault.run(concat(args(), extra));
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == code);
    CHECK_THAT(r.err, Catch::Contains(message));
    CHECK(snapshotTree(out.path()) == before);
  }
  void storeBad(const std::string& cert, const std::string& key, const std::string& chain, const std::string& root) {
    vault.putCa("istio/bad", cert, key, chain, root);
  }
};

CertSpec validFor(std::chrono::hours from, std::chrono::hours to) {
  const auto now = std::chrono::system_clock::now();
  CertSpec spec;
  spec.path_len = 0;
  spec.not_before = now + from;
  spec.not_after = now + to;
  return spec;
}

}  // namespace

TEST_CASE("init refuses Vault-side configuration errors with exit 2 or 3", "[init-e2e-failures]") {
  Published p;
  SECTION("policy denies the path: exit 3 naming the path and the capability") {
    p.vault.putCa("other/ca", p.vault.intermediate().cert.pem(), p.vault.intermediate().key.pkcs8Pem(), "", "");
    p.expectFailure(E2eVault::kvArgs("other/ca"), 3, "\"read\" on secret/data/other/ca");
  }
  SECTION("no policy inside the mount at all: exit 3 naming the mount") {
    REQUIRE(p.vault.server().enableKv("", "team-secrets", 2));
    p.vault.putCa("ca", p.vault.intermediate().cert.pem(), p.vault.intermediate().key.pkcs8Pem(), "", "", "team-secrets");
    p.expectFailure(E2eVault::kvArgs("ca", "team-secrets"), 3, "no access to the KV mount of team-secrets/data/ca");
  }
  SECTION("missing secret: exit 2 naming the path") {
    p.expectFailure(E2eVault::kvArgs("istio/nothing-here"), 2, "no secret at secret/data/istio/nothing-here");
  }
  SECTION("missing field: exit 2 naming the field and the fields present") {
    const std::string ref = "vault:secret/data/istio/cacerts";
    p.expectFailure({"--source", "kv", "--kv-cert", ref + "#certificate", "--kv-key", ref + "#ca-key"}, 2,
                    "field \"certificate\" not found");
  }
  SECTION("soft-deleted version: exit 2 saying it is deleted") {
    p.storeBad(p.vault.intermediate().cert.pem(), p.vault.intermediate().key.pkcs8Pem(), "", p.vault.root().cert.pem());
    REQUIRE(p.vault.server().kvDeleteVersion("", "secret", "istio/bad", 1));
    p.expectFailure(E2eVault::kvArgs("istio/bad"), 2, "is deleted");
  }
  SECTION("wrong kubernetes role: exit 3 naming the role") {
    REQUIRE(p.vault.server().enableAuth("", "kubernetes", "kubernetes"));
    const auto r = p.vault.run(concat(concat({"init", "--dir", p.out.path()}, p.vault.connectArgs()),
                                      concat({"--auth-role", "no-such-role", "--jwt-file", p.vault.jwtFile()},
                                             E2eVault::kvArgs())));
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.err, Catch::Contains("role no-such-role"));
    CHECK(snapshotTree(p.out.path()) == p.before);
  }
  SECTION("bad reference syntax: exit 2 naming the option") {
    p.expectFailure({"--source", "kv", "--kv-cert", "secret/x", "--kv-key", "secret/x#k"}, 2, "--kv-cert");
  }
  SECTION("TLS with the wrong CA: exit 2 naming the CA option") {
    const TestCa other = makeRoot("Not Vault's CA");
    const std::string wrong = p.vault.workDir() + "/wrong-ca.pem";
    writeFile(wrong, other.cert.pem());
    p.expectFailure(concat({"--vault-cacert", wrong}, E2eVault::kvArgs()), 2, "--vault-cacert");
  }
  p.vault.scanForSecrets();
}

TEST_CASE("init rejects material istiod would reject with exit 5 naming the check", "[init-e2e-failures]") {
  Published p;
  E2eVault& v = p.vault;
  const std::string root = v.root().cert.pem();
  const std::string ref = "vault:secret/data/istio/bad";
  const std::vector<std::string> bad = {"--source", "kv", "--kv-cert", ref + "#ca-cert", "--kv-key", ref + "#ca-key",
                                        "--kv-root", ref + "#root-cert"};
  SECTION("key does not match the certificate") {
    p.storeBad(v.intermediate().cert.pem(), makeKey().pkcs8Pem(), "", root);
    p.expectFailure(bad, 5, "match");
  }
  SECTION("expired certificate") {
    const TestCa expired = makeIntermediate(v.root(), "Expired", validFor(std::chrono::hours(-48), std::chrono::hours(-1)));
    p.storeBad(expired.cert.pem(), expired.key.pkcs8Pem(), "", root);
    p.expectFailure(bad, 5, "expired");
  }
  SECTION("not yet valid certificate") {
    const TestCa future = makeIntermediate(v.root(), "Future", validFor(std::chrono::hours(2), std::chrono::hours(2000)));
    p.storeBad(future.cert.pem(), future.key.pkcs8Pem(), "", root);
    p.expectFailure(bad, 5, "not valid before");
  }
  SECTION("non-CA certificate") {
    CertSpec spec = validFor(std::chrono::hours(-1), std::chrono::hours(2000));
    spec.is_ca = false;
    spec.key_cert_sign = false;
    spec.path_len = -1;
    const TestCa leaf = makeIntermediate(v.root(), "Leaf", spec);
    p.storeBad(leaf.cert.pem(), leaf.key.pkcs8Pem(), "", root);
    p.expectFailure(bad, 5, "CA");
  }
  SECTION("intermediate with EKU clientAuth only") {
    CertSpec spec = validFor(std::chrono::hours(-1), std::chrono::hours(2000));
    spec.ext_key_usage = {"clientAuth"};
    const TestCa eku = makeIntermediate(v.root(), "Client only", spec);
    p.storeBad(eku.cert.pem(), eku.key.pkcs8Pem(), "", root);
    p.expectFailure(bad, 5, "serverAuth");
  }
  SECTION("chain that does not reach the root") {
    const TestCa other_root = makeRoot("Other Root");
    p.storeBad(v.intermediate().cert.pem(), v.intermediate().key.traditionalPem(), "", other_root.cert.pem());
    p.expectFailure(bad, 5, "chain");
  }
  SECTION("remaining lifetime below --min-remaining") {
    const TestCa short_lived = makeIntermediate(v.root(), "Short", validFor(std::chrono::hours(-1), std::chrono::hours(5)));
    p.storeBad(short_lived.cert.pem(), short_lived.key.pkcs8Pem(), "", root);
    p.expectFailure(bad, 5, "min-remaining");
  }
  SECTION("garbage PEM in the key, with a marker that must not be echoed") {
    p.storeBad(v.intermediate().cert.pem(),
               std::string("-----BEGIN PRIVATE KEY-----\n") + kSecretIdMarker + "garbage\n-----END PRIVATE KEY-----\n", "",
               root);
    p.expectFailure(bad, 5, "ca-key");
  }
  SECTION("garbage instead of a certificate") {
    p.storeBad("this is not a certificate", v.intermediate().key.pkcs8Pem(), "", root);
    p.expectFailure(bad, 5, "ca-cert");
  }
  v.scanForSecrets();
}

TEST_CASE("init retries transient Vault failures until --timeout, then exits 4", "[init-e2e-failures]") {
  Published p;
  E2eVault& v = p.vault;
  const auto kv = E2eVault::kvArgs();
  using Kind = Fault::Kind;
  auto persistent = [&](Kind kind, int status = 0) {
    Fault f;
    f.kind = kind;
    f.path_prefix = "secret/data/";
    f.count = -1;
    f.status = status;
    v.server().injectFault(f);
  };
  SECTION("malformed JSON body") {
    persistent(Kind::kMalformedJson);
    p.expectFailure(kv, 4, "malformed JSON");
  }
  SECTION("truncated body") {
    persistent(Kind::kTruncate);
    p.expectFailure(kv, 4, "--timeout");
  }
  SECTION("huge body") {
    persistent(Kind::kHugeBody);
    p.expectFailure(kv, 4, "larger than");
  }
  SECTION("500 errors") {
    persistent(Kind::kStatus, 500);
    p.expectFailure(kv, 4, "(500)");
  }
  SECTION("Vault sealed") {
    v.server().seal(true);
    p.expectFailure(kv, 4, "sealed");
  }
  SECTION("Vault down for longer than the timeout") {
    v.server().stopListening();
    p.expectFailure(kv, 4, "connection failed");
    REQUIRE(v.server().resumeListening());
  }
  SECTION("Vault down, then back before the timeout: published") {
    v.server().downFor(std::chrono::milliseconds(1500));
    TempDir fresh;
    const auto r = v.run(concat(concat({"init", "--dir", fresh.path()}, v.connectArgs()),
                                concat({"--timeout", "20s", "--auth-method", "token", "--token-file", p.token_file}, kv)));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("event=vault_retry"));
  }
  SECTION("a few transient errors, then success: published after retries") {
    Fault f;
    f.kind = Kind::kStatus;
    f.status = 503;
    f.path_prefix = "secret/data/";
    f.count = 2;
    v.server().injectFault(f);
    Fault drop;
    drop.kind = Kind::kDrop;
    drop.path_prefix = "secret/data/";
    drop.count = 1;
    v.server().injectFault(drop);
    TempDir fresh;
    const auto r = v.run(concat(concat({"init", "--dir", fresh.path()}, v.connectArgs()),
                                concat({"--timeout", "20s", "--auth-method", "token", "--token-file", p.token_file}, kv)));
    INFO(r.err);
    CHECK(r.exit_code == 0);
  }
  v.scanForSecrets();
}

TEST_CASE("init against a Vault that trickles its answers exits 4 about when --timeout runs out",
          "[init-e2e-failures]") {
  // One byte every 0.3 s: each restarts the 30 s read timeout, so without an overall
  // deadline per request this run would last for minutes.
  Published p;
  Fault trickle;
  trickle.kind = Fault::Kind::kTrickle;
  trickle.path_prefix = "secret/data/";
  trickle.count = -1;
  p.vault.server().injectFault(trickle);
  const auto started = std::chrono::steady_clock::now();
  const auto r = p.vault.run(concat(p.args(), concat({"--timeout", "5s"}, E2eVault::kvArgs())));
  const auto took = std::chrono::steady_clock::now() - started;
  INFO("took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms; stderr: " << r.err);
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.err, Catch::Contains("--timeout"));
  CHECK_THAT(r.err, Catch::Contains("time budget"));
  CHECK(took < std::chrono::seconds(8));
  CHECK(snapshotTree(p.out.path()) == p.before);
  p.vault.scanForSecrets();
}

TEST_CASE("init refuses a non-tmpfs directory unless allowed", "[init-e2e-failures]") {
  E2eVault v;
  TempDir disk(/*on_tmpfs=*/false);
  const auto base = concat(concat({"init", "--dir", disk.path()}, v.connectArgs()),
                           concat({"--auth-method", "token", "--token-file", v.tokenFile()}, E2eVault::kvArgs()));
  const auto refused = v.run(base);
  CHECK(refused.exit_code == 6);
  CHECK_THAT(refused.err, Catch::Contains("not on tmpfs"));
  CHECK(snapshotTree(disk.path()).empty());
  const auto allowed = v.run(concat(base, {"--allow-non-tmpfs"}));
  INFO(allowed.err);
  CHECK(allowed.exit_code == 0);
  v.scanForSecrets();
}

TEST_CASE("init refuses a credential file that is a FIFO or a device instead of hanging on it",
          "[init-e2e-failures]") {
  E2eVault v;
  TempDir out;
  const std::string fifo = v.workDir() + "/token-fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const std::string& file : {fifo, std::string("/dev/zero")}) {
    INFO(file);
    const auto started = std::chrono::steady_clock::now();
    const auto r = v.run(concat(concat({"init", "--dir", out.path(), "--timeout", "5s"}, v.connectArgs()),
                                concat({"--auth-method", "token", "--token-file", file}, E2eVault::kvArgs())));
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--token-file") && Catch::Contains("is not a regular file"));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
    CHECK(snapshotTree(out.path()).empty());
  }
  v.scanForSecrets();
}

TEST_CASE("init reports usage errors with exit 2", "[init-e2e-failures]") {
  CHECK(runAgent({"init"}).exit_code == 2);
  CHECK(runAgent({"bogus"}).exit_code == 2);
  const auto r = runAgent({"init", "--vault-addr", "https://127.0.0.1:1", "--kv-cert", "a#b", "--kv-key", "a#c",
                           "--timeout", "soon"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--timeout"));
  CHECK(runAgent({"version"}).exit_code == 0);
}


TEST_CASE("the real binary refuses injected, huge and non-finite option values with exit 2, from a flag or "
          "the environment, before it touches the directory",
          "[init-e2e-failures][bad-config]") {
  Published p;
  struct Bad {
    std::string flag, env, value;
    bool sidecar_only;  // init does not take the option
  };
  const std::vector<Bad> values = {
      // CR/LF in anything that reaches a request line or header.
      {"--vault-namespace", "VAULT_NAMESPACE", "team\r\nX-Vault-Token: injected", false},
      {"--vault-addr", "VAULT_ADDR", p.vault.addr() + "\r\nX-Injected: 1", false},
      {"--auth-mount", "CACERTS_AGENT_AUTH_MOUNT", "token\nX-Injected: 1", false},
      {"--kv-cert", "CACERTS_AGENT_KV_CERT", "vault:secret/data/istio/cacerts\r\n#ca-cert", false},
      // Durations that overflow nanosecond time.
      {"--timeout", "CACERTS_AGENT_TIMEOUT", "2600000h", false},
      {"--kv-poll-interval", "CACERTS_AGENT_KV_POLL_INTERVAL", "2100000h", true},
      // Numbers every range check lets through unless written for them.
      {"--renew-fraction", "CACERTS_AGENT_RENEW_FRACTION", "nan", true},
      {"--renew-fraction", "CACERTS_AGENT_RENEW_FRACTION", "inf", true},
      {"--jitter", "CACERTS_AGENT_JITTER", "nan", true},
      {"--jitter", "CACERTS_AGENT_JITTER", "inf", true},
  };
  // The arguments of a good run, without `flag` and its value (a flag would win over the
  // environment).
  const auto goodArgs = [&](const std::string& command, const std::string& flag) {
    std::vector<std::string> args = concat(p.args(), E2eVault::kvArgs());
    args[0] = command;
    if (command == "sidecar") args = concat(args, {"--listen", "127.0.0.1:0"});
    for (auto at = args.begin(); at != args.end();) {
      at = *at == flag ? args.erase(at, at + 2) : at + 1;
    }
    return args;
  };
  int runs = 0;
  for (const Bad& bad : values) {
    for (const std::string command : {"init", "sidecar"}) {
      if (bad.sidecar_only && command == "init") continue;
      for (const bool from_env : {false, true}) {
        INFO(command << " " << (from_env ? bad.env : bad.flag) << " " << bad.value);
        const std::vector<std::string> args =
            from_env ? goodArgs(command, bad.flag) : concat(goodArgs(command, bad.flag), {bad.flag, bad.value});
        const std::map<std::string, std::string> env =
            from_env ? std::map<std::string, std::string>{{bad.env, bad.value}} : std::map<std::string, std::string>{};
        const auto r = p.vault.run(args, env);
        INFO("stderr: " << r.err);
        CHECK(r.exit_code == 2);
        CHECK_THAT(r.err, Catch::Contains(bad.flag));
        if (from_env) CHECK_THAT(r.err, Catch::Contains(bad.env));
        // The injected header never appears as a line of its own.
        CHECK_THAT(r.err, !Catch::Contains("\nX-"));
        CHECK(snapshotTree(p.out.path()) == p.before);
        ++runs;
      }
    }
  }
  CHECK(runs == 30);
  // The controls: the same arguments without a bad value publish, and start a sidecar.
  const auto good = p.vault.run(goodArgs("init", ""));
  INFO("stderr: " << good.err);
  CHECK(good.exit_code == 0);
  auto sidecar = startAgent(goodArgs("sidecar", ""));
  INFO("sidecar stderr: " << sidecar->err());
  CHECK(sidecar->waitForErr("event=sidecar_started", std::chrono::seconds(20)));
  sidecar->signal(SIGTERM);
  CHECK(sidecar->wait(std::chrono::seconds(20)) == 0);
  p.vault.scanForSecrets();
}

}  // namespace cacerts::testing
