// VaultTestServer: a TEST DOUBLE of HashiCorp Vault (not Vault) for tests and demos. It
// serves the subset of the HTTP API in the project's Vault reference over real HTTPS on
// loopback, with a server certificate from an in-process CA (caPem()).
//
// TLS client certificates are requested but never required, and any presented chain is
// accepted at the TLS layer: cert auth (auth/<mount>/login) judges it against its roles,
// every other endpoint ignores it. So one listener serves clients with and without certs.
//
// The process hosting the server ignores SIGPIPE (set by start()): dropped-connection faults
// make the server write into a reset socket.
//
// Protocol state and setup calls come from VaultCore. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "tests/vault_server/faults.h"
#include "tests/vault_server/vault_core.h"

namespace httplib {
class SSLServer;
struct Request;
struct Response;
}  // namespace httplib

namespace cacerts::testing {

struct VaultTestServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                         // 0: ephemeral
  std::string root_token{};               // empty: random
  bool require_request_header = true;   // 412 without "X-Vault-Request: true"
  bool control_api = false;             // /_test/... endpoints, guarded by the root token
  VaultBehaviour behaviour{};
  // Standby mode (HA Vault): non-empty, every /v1/ request is answered 307 with Location
  // set to this base address plus the request's path and query, as a standby that cannot
  // forward does (Vault's respondStandby). e.g. "https://127.0.0.1:8200". Injected faults
  // act before the redirect: they are what the node answers itself (a rate-limit quota).
  std::string standby_of{};
  // The CA that issues this server's TLS certificate; empty: a fresh one. An HA cluster's
  // nodes share one, so that one --vault-cacert verifies both the standby and the active.
  std::optional<TestCa> ca{};
};

struct RecordedRequest {
  std::string method{};            // as received
  std::string path{};              // "/v1/...", without the query
  std::string query{};             // raw text after '?', or ""
  std::string namespace_header{};  // X-Vault-Namespace
  bool token_sent = false;       // X-Vault-Token or Authorization: Bearer
  bool request_header_sent = false;
  bool client_cert_sent = false;
  std::string body{};
  int status = 0;  // the status answered; 0 when the connection was dropped
};

class VaultTestServer : public VaultCore {
 public:
  // Listens on options.host:options.port. Fails (kUnavailable) when the port is taken.
  static Result<std::unique_ptr<VaultTestServer>> start(VaultTestServerOptions options = {});
  ~VaultTestServer();
  VaultTestServer(const VaultTestServer&) = delete;
  VaultTestServer& operator=(const VaultTestServer&) = delete;

  int port() const { return port_; }
  std::string addr() const;             // "https://127.0.0.1:<port>"
  std::string caPem() const { return ca_.cert.pem(); }
  const TestCa& ca() const { return ca_; }
  // Writes caPem() to <dir>/vault-ca.pem and returns that path.
  Result<std::string> writeCaFile(const std::string& dir) const;

  // Standby mode (see VaultTestServerOptions::standby_of); "" makes this node active again.
  // A standby pointed at itself or at another standby makes a redirect loop.
  void setStandbyOf(std::string base);

  void injectFault(Fault fault) { faults_.add(std::move(fault)); }
  void clearFaults() { faults_.clear(); }

  std::vector<RecordedRequest> requests() const;
  void clearRequests();

  // "Down" mode: close the listening socket (clients get connection refused) and later
  // listen again on the same port.
  void stopListening();
  Status resumeListening();
  // Stops listening now and resumes after `d` in the background. One down period at a
  // time: a new call replaces the pending resume.
  void downFor(Duration d);

  void stop();

 private:
  VaultTestServer(VaultTestServerOptions options, TestCa ca, TestCa server);
  Status listen();
  void onRequest(const httplib::Request& req, httplib::Response& res);
  void onControl(const httplib::Request& req, httplib::Response& res);
  void startDown(Duration d, bool stop_now);
  std::size_t record(RecordedRequest r);
  void setStatus(std::size_t index, int status);

  VaultTestServerOptions options_;
  TestCa ca_;
  TestCa server_;
  std::atomic<int> port_{0};
  FaultQueue faults_;
  mutable std::mutex standby_mu_;
  std::string standby_of_;

  mutable std::mutex log_mu_;
  std::vector<RecordedRequest> log_;

  std::mutex listen_mu_;
  std::unique_ptr<httplib::SSLServer> http_;
  std::thread listen_thread_;

  std::mutex down_mu_;
  std::condition_variable down_cv_;
  bool stopping_ = false;
  std::uint64_t down_generation_ = 0;
  std::thread down_thread_;
};

}  // namespace cacerts::testing
