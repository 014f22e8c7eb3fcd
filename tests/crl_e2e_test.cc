// End-to-end: ca-crl.pem published from Vault KV by the real binary (--kv-crl), judged by
// istiod's CRL rule before it is written, and a foreign ca-crl.pem refused.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/x509.h"
#include "tests/support/e2e.h"
#include "tests/support/process.h"

namespace cacerts::testing {
namespace {

std::vector<std::string> initArgs(E2eVault& v, const TempDir& out) {
  return concat(concat({"init", "--dir", out.path()}, v.connectArgs()),
                {"--auth-method", "token", "--token-file", v.tokenFile()});
}

// Stores the CRL text at secret/istio/crls#ca-crl.
void putCrls(E2eVault& v, const std::string& crls) {
  REQUIRE(v.server().kvPut("", "secret", "istio/crls", nlohmann::json{{"ca-crl", crls}}));
}

const std::vector<std::string> kCrlArgs = {"--kv-crl", "vault:secret/data/istio/crls#ca-crl"};

}  // namespace

TEST_CASE("init --kv-crl publishes ca-crl.pem with the chain it covers, and check accepts it", "[crl-e2e]") {
  E2eVault v;
  // The published chain is intermediate + root: both must have issued a CRL.
  const std::string crls = makeCrl(v.intermediate()) + makeCrl(v.root());
  putCrls(v, crls);
  TempDir out;
  const auto r = v.run(concat(concat(initArgs(v, out), E2eVault::kvArgs()), kCrlArgs));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  namespace fs = std::filesystem;
  REQUIRE(fs::is_symlink(out.file("ca-crl.pem")));
  CHECK(fs::read_symlink(out.file("ca-crl.pem")).string() == "..data/ca-crl.pem");
  Result<std::vector<Crl>> published = parseCrls(readFile(out.file("ca-crl.pem")), "ca-crl.pem");
  REQUIRE(published);
  CHECK(published->size() == 2);

  const auto check = runAgent({"check", "--dir", out.path(), "--policy"});
  INFO(check.out);
  CHECK(check.exit_code == 0);
  CHECK_THAT(check.out, Catch::Contains("[ok  ] crl_covers_chain (istiod rule)"));
  CHECK_THAT(check.out, Catch::Contains("[ok  ] crl_current (agent rule)"));
  v.scanForSecrets();
}

TEST_CASE("init --kv-crl refuses a CRL set istiod would refuse and keeps the published generation", "[crl-e2e]") {
  E2eVault v;
  TempDir out;
  // A good generation first, without CRLs.
  REQUIRE(v.run(concat(initArgs(v, out), E2eVault::kvArgs())).exit_code == 0);
  const auto before = snapshotTree(out.path());

  SECTION("the root issued no CRL") {
    putCrls(v, makeCrl(v.intermediate()));
    const auto r = v.run(concat(concat(initArgs(v, out), E2eVault::kvArgs()), kCrlArgs));
    INFO(r.err);
    CHECK(r.exit_code == 5);
    CHECK_THAT(r.err, Catch::Contains("check crl_covers_chain failed") &&
                          Catch::Contains(v.root().cert.commonName()));
  }
  SECTION("a CRL that expired") {
    CrlSpec expired;
    expired.this_update = std::chrono::system_clock::now() - std::chrono::hours(48);
    expired.next_update = std::chrono::system_clock::now() - std::chrono::hours(1);
    putCrls(v, makeCrl(v.intermediate(), expired) + makeCrl(v.root()));
    const auto r = v.run(concat(concat(initArgs(v, out), E2eVault::kvArgs()), kCrlArgs));
    INFO(r.err);
    CHECK(r.exit_code == 5);
    CHECK_THAT(r.err, Catch::Contains("check crl_current failed") && Catch::Contains("--relax-policy crl_current"));
  }
  SECTION("a field that holds a certificate instead of CRLs") {
    putCrls(v, v.root().cert.pem());
    const auto r = v.run(concat(concat(initArgs(v, out), E2eVault::kvArgs()), kCrlArgs));
    INFO(r.err);
    CHECK(r.exit_code == 5);
    CHECK_THAT(r.err, Catch::Contains("is not a certificate revocation list"));
    CHECK_FALSE(containsPemArmour(r.err));
  }
  CHECK(snapshotTree(out.path()) == before);
  v.scanForSecrets();
}

TEST_CASE("init refuses to publish next to a ca-crl.pem another tool put there", "[crl-e2e]") {
  E2eVault v;
  TempDir out;
  // As left by a cacerts Secret mounted before the migration: istiod would judge the new
  // chain against these CRLs, which the agent's intermediate never signed.
  const std::string foreign = makeCrl(v.root());
  writeFile(out.file("ca-crl.pem"), foreign);
  const auto r = v.run(concat(initArgs(v, out), E2eVault::kvArgs()));
  INFO(r.err);
  CHECK(r.exit_code == 6);
  CHECK_THAT(r.err, Catch::Contains("ca-crl.pem exists and is not a link into ..data/"));
  CHECK(readFile(out.file("ca-crl.pem")) == foreign);
  CHECK_FALSE(std::filesystem::exists(out.file("ca-cert.pem")));
}

TEST_CASE("init refuses CRL publishing with the PKI source, naming why", "[crl-e2e]") {
  E2eVault v;
  TempDir out;
  const auto r = v.run(concat(initArgs(v, out), concat({"--source", "pki", "--pki-sign-path", "pki/root/sign-intermediate"},
                                                       kCrlArgs)));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--kv-crl") && Catch::Contains("its own intermediate"));
}

}  // namespace cacerts::testing
