// End-to-end fixture: an in-process Vault test server over TLS, seeded with a CA in KV and
// an auth method, a tmpfs output directory, and helpers to run the real cacerts-agent
// against it and to keep every line it printed for the secret-leak scan.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/test_pki.h"
#include "tests/vault_server/vault_test_server.h"

namespace cacerts::testing {

// Marker values planted in every credential: no agent output may ever contain them.
inline constexpr const char* kTokenMarker = "hvs.MARKERTOKEN7f3a";
inline constexpr const char* kSecretIdMarker = "MARKERSECRETID9c1e";
inline constexpr const char* kJwtMarkerClaim = "MARKERJWTCLAIM4b2d";

class E2eVault {
 public:
  E2eVault();  // starts the server; throws std::runtime_error when it cannot

  VaultTestServer& server() { return *server_; }
  const std::string& caFile() const { return ca_file_; }
  const std::string& workDir() const { return work_.path(); }
  std::string addr() const { return server_->addr(); }

  // A good CA: root + intermediate (pathlen 0), valid for a year.
  const TestCa& root() const { return root_; }
  const TestCa& intermediate() const { return inter_; }
  // Stores material under kv mount/path (KV v2 "secret" unless told otherwise).
  void putCa(const std::string& path, const std::string& cert, const std::string& key, const std::string& chain,
             const std::string& root, const std::string& mount = "secret", const std::string& ns = "");
  // A reader token whose id carries kTokenMarker, written to a file; returns the file.
  std::string tokenFile(const std::vector<std::string>& policies = {"reader"});
  // A kubernetes service-account JWT for sa/ns, carrying kJwtMarkerClaim, written to a file.
  std::string jwtFile(const std::string& sa = "istiod", const std::string& ns = "istio-system");

  // Kubernetes auth enabled at `mount` in namespace ns, with role "istiod" bound to
  // istio-system/istiod (what jwtFile() writes) granting `policies`. REQUIREs success.
  void enableKubernetesIstiodRole(const std::vector<std::string>& policies, const std::string& ns = "",
                                  const std::string& mount = "kubernetes");

  // Vault connection + token auth arguments.
  std::vector<std::string> connectArgs() const;
  // KV source arguments for secret/data/<path>.
  static std::vector<std::string> kvArgs(const std::string& path = "istio/cacerts", const std::string& mount = "secret");

  // Runs the agent and records its output for scanForSecrets().
  ProcessResult run(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});
  // Asserts (REQUIRE) that no recorded output contains a marker, a private key block or the
  // base64 body of the test CA's key.
  void scanForSecrets() const;
  const std::vector<ProcessResult>& runs() const { return runs_; }

 private:
  TempDir work_{false};
  std::unique_ptr<VaultTestServer> server_;
  std::string ca_file_;
  TestCa root_, inter_;
  std::vector<ProcessResult> runs_;
  int files_ = 0;
};

// "-----BEGIN X" or "-----END X" with X an upper-case letter: a PEM boundary line, as
// opposed to an error message that merely names the syntax ("-----BEGIN/-----END blocks").
bool containsPemArmour(const std::string& text);

// The first base64 line of a PEM key's body: finding it in output means the key leaked.
std::string keyBodyLine(const std::string& key_pem);

// istiod's own CA as its Secret istio-ca-secret projects it into a directory: ca-cert.pem
// and ca-key.pem, with cert-chain.pem and root-cert.pem present but empty.
void writeIstioCaSecret(const TempDir& dir, const TestCa& ca);

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b);

}  // namespace cacerts::testing
