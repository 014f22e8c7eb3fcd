// vault-test-server: the Vault TEST DOUBLE as a standalone process, for demos and manual
// experiments. It is not HashiCorp Vault. It runs until SIGTERM or SIGINT.
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "tests/vault_server/vault_test_server.h"

using namespace cacerts;
using namespace cacerts::testing;

namespace {

// Writes via a temporary name and rename so a watcher never reads a partial file.
bool writeFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

Status check(Status s, const char* what) {
  if (!s) return Error{s.error().code, std::string(what) + ": " + s.error().message};
  return s;
}

// The demo layout used by the README: KV v2 "secret" with istiod's CA, kubernetes auth with
// role "istiod", and a "pki" mount with a root.
Status seedDemo(VaultTestServer& vault) {
  RETURN_IF_ERROR(check(vault.enableKv("", "secret", 2), "enable kv"));
  RETURN_IF_ERROR(check(vault.setPolicy("", "istio-ca-reader", {{"secret/data/istio/*", {"read"}},
                                                              {"secret/metadata/istio/*", {"read", "list"}}}),
                        "policy istio-ca-reader"));
  RETURN_IF_ERROR(check(vault.setPolicy("", "istio-ca-signer", {{"pki/root/sign-intermediate", {"update"}},
                                                              {"pki/issuer/+/sign-intermediate", {"update"}},
                                                              {"pki/issuers", {"read", "list"}},
                                                              {"pki/issuer/*", {"read"}}}),
                        "policy istio-ca-signer"));
  RETURN_IF_ERROR(check(vault.enableAuth("", "kubernetes", "kubernetes"), "enable kubernetes auth"));
  KubernetesRole role;
  role.name = "istiod";
  role.bound_service_account_names = {"istiod"};
  role.bound_service_account_namespaces = {"istio-system"};
  role.policies = {"istio-ca-reader", "istio-ca-signer"};
  RETURN_IF_ERROR(check(vault.addKubernetesRole("", "kubernetes", role), "kubernetes role"));

  const auto now = std::chrono::system_clock::now();
  const TestCa root = makeRoot("Demo Root CA", now - std::chrono::hours(1), now + std::chrono::hours(24 * 3650));
  CertSpec spec;
  spec.path_len = 0;
  spec.organization = "cacerts-agent demo";
  spec.not_after = now + std::chrono::hours(24 * 365);
  const TestCa inter = makeIntermediate(root, "Demo istiod Intermediate CA", spec);
  if (root.cert.empty() || inter.cert.empty()) return Error{ErrorCode::kInternal, "demo CA generation failed"};
  auto put = vault.kvPut("", "secret", "istio/cacerts",
                         {{"ca-cert", inter.cert.pem()},
                          {"ca-key", inter.key.traditionalPem()},
                          {"cert-chain", inter.cert.pem() + root.cert.pem()},
                          {"root-cert", root.cert.pem()}});
  if (!put) return put.error();

  RETURN_IF_ERROR(check(vault.enablePki("", "pki", std::chrono::hours(87600)), "enable pki"));
  auto pki_root = vault.pkiGenerateRoot("", "pki", {{"common_name", "Demo PKI Root CA"},
                                                    {"ttl", "87600h"},
                                                    {"key_type", "ec"},
                                                    {"issuer_name", "demo-root"}});
  if (!pki_root) return pki_root.error();
  return ok();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vault-test-server: a TEST DOUBLE of HashiCorp Vault for tests and demos (not Vault)"};
  std::string listen = "127.0.0.1:8200", ca_out, root_token, token_out, ready_file, jwt_out, standby_of;
  bool seed = false, no_request_header = false;
  app.add_option("--listen", listen, "host:port to listen on (port 0: ephemeral)");
  app.add_option("--ca-out", ca_out, "write the server's CA certificate (PEM) to this file");
  app.add_option("--root-token", root_token, "root token to use (default: random)");
  app.add_option("--token-out", token_out, "write the root token to this file (mode 0600)");
  app.add_flag("--seed-demo", seed, "create the demo mounts, roles, policies and CA material");
  app.add_option("--jwt-out", jwt_out,
                 "write an unsigned demo service-account JWT for istio-system/istiod to this file");
  app.add_option("--ready-file", ready_file, "write the listening port to this file once ready");
  app.add_flag("--no-request-header-check", no_request_header,
               "accept requests without X-Vault-Request: true");
  app.add_option("--standby-of", standby_of,
                 "HA standby: answer every /v1/ request with 307 and Location <URL><path>?<query>, "
                 "e.g. https://127.0.0.1:8200 (this node has its own CA: concatenate both --ca-out files)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  const auto colon = listen.rfind(':');
  VaultTestServerOptions options;
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no port");
    options.host = listen.substr(0, colon);
    options.port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    std::cerr << "vault-test-server: --listen must be host:port, got \"" << listen << "\"\n";
    return 2;
  }
  options.root_token = root_token;
  options.require_request_header = !no_request_header;
  options.control_api = true;
  options.standby_of = standby_of;

  // Block the stop signals before any thread starts so that only sigwait() sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::cerr << "*** vault-test-server is a TEST DOUBLE of HashiCorp Vault, NOT Vault. ***\n"
               "*** It keeps everything in memory, checks no JWT signatures, and exists for  ***\n"
               "*** tests and demos only. Never point production workloads at it.           ***\n";

  auto started = VaultTestServer::start(options);
  if (!started) {
    std::cerr << "vault-test-server: " << started.error().message << "\n";
    return 4;
  }
  auto& vault = *started.value();
  if (seed) {
    if (auto s = seedDemo(vault); !s) {
      std::cerr << "vault-test-server: seeding the demo failed: " << s.error().message << "\n";
      return 1;
    }
  }
  if (!ca_out.empty() && !writeFileAtomically(ca_out, vault.caPem())) {
    std::cerr << "vault-test-server: cannot write --ca-out " << ca_out << "\n";
    return 6;
  }
  if (!token_out.empty()) {
    const mode_t old = umask(077);
    const bool written = writeFileAtomically(token_out, vault.rootToken() + "\n");
    umask(old);
    if (!written) {
      std::cerr << "vault-test-server: cannot write --token-out " << token_out << "\n";
      return 6;
    }
  }
  if (!jwt_out.empty()) {
    const json claims = {{"iss", "kubernetes/serviceaccount"},
                         {"sub", "system:serviceaccount:istio-system:istiod"},
                         {"kubernetes.io", {{"namespace", "istio-system"},
                                            {"serviceaccount", {{"name", "istiod"}, {"uid", newUuid()}}}}}};
    if (!writeFileAtomically(jwt_out, makeUnsignedJwt(claims))) {
      std::cerr << "vault-test-server: cannot write --jwt-out " << jwt_out << "\n";
      return 6;
    }
  }
  std::cerr << "vault-test-server: listening on " << vault.addr() << (seed ? " (demo data seeded)" : "")
            << (token_out.empty() && root_token.empty() ? "; root token not shown (use --token-out)" : "")
            << "\n";
  if (!ready_file.empty() && !writeFileAtomically(ready_file, std::to_string(vault.port()) + "\n")) {
    std::cerr << "vault-test-server: cannot write --ready-file " << ready_file << "\n";
    return 6;
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "vault-test-server: stopping on signal " << sig << "\n";
  vault.stop();
  return 0;
}
