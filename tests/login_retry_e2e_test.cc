// End-to-end: kubernetes login answered 403 because Vault could not review the token
// (vault-plugin-auth-kubernetes answers a failed TokenReview call with 403, like a
// credential its role does not accept).
#include <catch2/catch.hpp>

#include <chrono>

#include "tests/support/e2e.h"
#include "tests/support/sidecar_harness.h"

namespace cacerts::testing {
namespace {

std::vector<std::string> kubernetesInit(E2eVault& v, const TempDir& out, const std::string& timeout) {
  v.enableKubernetesIstiodRole({"reader"});
  return concat(concat(concat({"init", "--dir", out.path()}, v.connectArgs()),
                       {"--timeout", timeout, "--auth-method", "kubernetes", "--auth-role", "istiod", "--jwt-file",
                        v.jwtFile()}),
                E2eVault::kvArgs());
}

}  // namespace

TEST_CASE("init logs in after transient TokenReview failures (403)", "[login-retry-e2e]") {
  E2eVault v;
  TempDir out;
  const auto args = kubernetesInit(v, out, "20s");
  REQUIRE(v.server().failKubernetesTokenReviews("", "kubernetes", 3));
  const auto r = v.run(args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(readFile(out.file("ca-cert.pem")) == v.intermediate().cert.pem());
  CHECK(countRequests(v.server(), "POST", "auth/kubernetes/login", 403) == 3);
  CHECK(countRequests(v.server(), "POST", "auth/kubernetes/login", 200) == 1);
  CHECK_THAT(r.err, Catch::Contains("event=vault_login_retry"));
  v.scanForSecrets();
}

TEST_CASE("init exits 3 within --timeout when every TokenReview fails, naming both causes", "[login-retry-e2e]") {
  E2eVault v;
  TempDir out;
  const auto args = kubernetesInit(v, out, "3s");
  REQUIRE(v.server().failKubernetesTokenReviews("", "kubernetes", -1));
  const auto started = std::chrono::steady_clock::now();
  const auto r = v.run(args);
  const auto took = std::chrono::steady_clock::now() - started;
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.err, Catch::Contains("kubernetes login at auth/kubernetes (role istiod) refused"));
  CHECK_THAT(r.err, Catch::Contains("role does not bind this service account"));
  CHECK_THAT(r.err, Catch::Contains("Vault could not review the token"));
  // Retried, but not past --timeout (3 s; the bound is loose: two shared cores).
  CHECK(countRequests(v.server(), "POST", "auth/kubernetes/login", 403) >= 2);
  CHECK(took < std::chrono::seconds(12));
  v.scanForSecrets();
}

}  // namespace cacerts::testing
