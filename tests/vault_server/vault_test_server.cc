#include "tests/vault_server/vault_test_server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <fstream>

#include "common/openssl_ptr.h"
#include "tests/vault_server/connection_reset.h"

namespace cacerts::testing {
namespace {

constexpr std::size_t kMaxRequestBody = 32 * 1024 * 1024;  // Vault's default listener limit

void writeReply(const Reply& r, httplib::Response& res) {
  res.status = r.status;
  for (const auto& [k, v] : r.headers) res.set_header(k, v);
  if (r.status != 204 && !r.body.empty()) res.set_content(r.body, r.content_type.c_str());
}

std::string tokenOf(const httplib::Request& req) {
  if (req.has_header("X-Vault-Token")) return req.get_header_value("X-Vault-Token");
  const std::string auth = req.get_header_value("Authorization");
  return auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : std::string();
}

std::vector<TestCert> peerChain(const httplib::Request& req) {
  std::vector<TestCert> out;
  if (!req.ssl) return out;
  auto own = [](X509* x) {
    X509_up_ref(x);
    return TestCert{std::shared_ptr<X509>(x, OpenSslFree{})};
  };
  X509* leaf = SSL_get0_peer_certificate(req.ssl);
  if (!leaf) return out;
  out.push_back(own(leaf));
  // On the server side the peer chain excludes the leaf.
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(req.ssl)) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      X509* x = sk_X509_value(chain, i);
      if (X509_cmp(x, leaf) != 0) out.push_back(own(x));
    }
  }
  return out;
}

// Without a byte sent.
void dropConnection(const httplib::Request& req) { resetConnection(req.ssl); }

// An RST discards whatever still sits in the send queue; wait (bounded) until the peer has
// acknowledged the bytes already written, so that it really sees them before the reset.
void waitSendQueueEmpty(const SSL* ssl) {
  const int fd = ssl == nullptr ? -1 : SSL_get_fd(ssl);
  if (fd < 0) return;
  for (int i = 0; i < 200; ++i) {
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string percentDecode(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// Query parameters from the request target only: httplib also folds form-encoded bodies
// into Request::params, and curl sends JSON bodies with that content type by default.
std::vector<std::pair<std::string, std::string>> queryOf(const std::string& target) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto q = target.find('?');
  if (q == std::string::npos) return out;
  std::size_t start = q + 1;
  while (start < target.size()) {
    auto end = target.find('&', start);
    if (end == std::string::npos) end = target.size();
    const std::string pair = target.substr(start, end - start);
    const auto eq = pair.find('=');
    if (!pair.empty()) {
      out.emplace_back(percentDecode(pair.substr(0, eq)),
                       eq == std::string::npos ? std::string() : percentDecode(pair.substr(eq + 1)));
    }
    start = end + 1;
  }
  return out;
}

json recordToJson(const RecordedRequest& r) {
  return {{"method", r.method}, {"path", r.path}, {"query", r.query},
          {"namespace_header", r.namespace_header}, {"token_sent", r.token_sent},
          {"request_header_sent", r.request_header_sent}, {"client_cert_sent", r.client_cert_sent},
          {"body", r.body}, {"status", r.status}};
}

}  // namespace

VaultTestServer::VaultTestServer(VaultTestServerOptions options, TestCa ca, TestCa server)
    : VaultCore(options.behaviour, options.root_token, options.require_request_header),
      options_(std::move(options)),
      ca_(std::move(ca)),
      server_(std::move(server)) {
  port_ = options_.port;
  standby_of_ = options_.standby_of;
}

void VaultTestServer::setStandbyOf(std::string base) {
  std::lock_guard<std::mutex> lock(standby_mu_);
  standby_of_ = std::move(base);
}

Result<std::unique_ptr<VaultTestServer>> VaultTestServer::start(VaultTestServerOptions options) {
  std::signal(SIGPIPE, SIG_IGN);
  TestCa ca = options.ca ? *options.ca : makeRoot("Vault Test Server CA");
  CertSpec spec;
  spec.common_name = "vault.test";
  spec.is_ca = false;
  spec.key_cert_sign = spec.crl_sign = false;
  spec.digital_signature = true;
  spec.ext_key_usage = {"serverAuth"};
  spec.dns_sans = {"localhost", "vault.test"};
  spec.ip_sans = {"127.0.0.1"};
  TestCa server;
  server.key = makeKey("ec", 256);
  server.cert = issueCert(spec, server.key, &ca.cert, ca.key);
  if (ca.cert.empty() || server.cert.empty()) {
    return Error{ErrorCode::kInternal, "vault test server: could not mint its TLS certificate"};
  }
  std::unique_ptr<VaultTestServer> s(new VaultTestServer(std::move(options), std::move(ca), std::move(server)));
  RETURN_IF_ERROR(s->listen());
  return s;
}

VaultTestServer::~VaultTestServer() { stop(); }

std::string VaultTestServer::addr() const {
  return "https://" + options_.host + ":" + std::to_string(port_.load());
}

Result<std::string> VaultTestServer::writeCaFile(const std::string& dir) const {
  const std::string path = dir + "/vault-ca.pem";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << caPem();
  out.close();
  if (!out) return Error{ErrorCode::kOutput, "cannot write " + path};
  return path;
}

Status VaultTestServer::listen() {
  std::lock_guard<std::mutex> lock(listen_mu_);
  if (http_) return ok();
  auto http = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate(&ctx, server_.cert.x509.get()) != 1 ||
        SSL_CTX_use_PrivateKey(&ctx, server_.key.pkey.get()) != 1 ||
        SSL_CTX_check_private_key(&ctx) != 1) {
      return false;
    }
    // Ask for a client certificate, never require one, accept any chain (see header).
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    static const unsigned char kSessionContext[] = "vault-test-server";
    SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof(kSessionContext) - 1);
    return true;
  });
  if (!http->is_valid()) return Error{ErrorCode::kInternal, "vault test server: TLS setup failed"};
  auto handler = [this](const httplib::Request& req, httplib::Response& res) { onRequest(req, res); };
  http->Get(".*", handler);
  http->Post(".*", handler);
  http->Put(".*", handler);
  http->Delete(".*", handler);
  http->Patch(".*", handler);
  http->set_payload_max_length(kMaxRequestBody);
  // Like Vault (Go sets TCP_NODELAY on every connection): httplib writes headers and body
  // separately, and on a kept-alive connection Nagle's algorithm would hold the body until
  // the client's delayed ACK, adding 40 ms to each response.
  http->set_tcp_nodelay(true);

  const int wanted = port_.load();
  const int bound = wanted == 0 ? http->bind_to_any_port(options_.host)
                                : (http->bind_to_port(options_.host, wanted) ? wanted : -1);
  if (bound <= 0) {
    return Error{ErrorCode::kUnavailable,
                 "vault test server: cannot listen on " + options_.host + ":" + std::to_string(wanted)};
  }
  port_ = bound;
  httplib::SSLServer* raw = http.get();
  listen_thread_ = std::thread([raw] { raw->listen_after_bind(); });
  // Wait for the accept loop so that an immediate stop() is not lost.
  while (!raw->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_ = std::move(http);
  return ok();
}

void VaultTestServer::stopListening() {
  std::lock_guard<std::mutex> lock(listen_mu_);
  if (!http_) return;
  http_->stop();
  if (listen_thread_.joinable()) listen_thread_.join();
  http_.reset();
}

Status VaultTestServer::resumeListening() { return listen(); }

void VaultTestServer::downFor(Duration d) { startDown(d, true); }

void VaultTestServer::startDown(Duration d, bool stop_now) {
  std::thread previous;
  std::uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(down_mu_);
    if (stopping_) return;
    generation = ++down_generation_;
    previous = std::move(down_thread_);
  }
  down_cv_.notify_all();  // a previous down period ends without resuming
  if (previous.joinable()) previous.join();
  if (stop_now) stopListening();
  std::lock_guard<std::mutex> lock(down_mu_);
  down_thread_ = std::thread([this, d, generation, stop_now] {
    if (!stop_now) stopListening();
    std::unique_lock<std::mutex> down_lock(down_mu_);
    const bool cancelled = down_cv_.wait_for(
        down_lock, d, [&] { return stopping_ || down_generation_ != generation; });
    down_lock.unlock();
    if (!cancelled) (void)resumeListening();
  });
}

void VaultTestServer::stop() {
  {
    std::lock_guard<std::mutex> lock(down_mu_);
    stopping_ = true;
  }
  down_cv_.notify_all();
  if (down_thread_.joinable()) down_thread_.join();
  stopListening();
}

std::vector<RecordedRequest> VaultTestServer::requests() const {
  std::lock_guard<std::mutex> lock(log_mu_);
  return log_;
}

void VaultTestServer::clearRequests() {
  std::lock_guard<std::mutex> lock(log_mu_);
  log_.clear();
}

std::size_t VaultTestServer::record(RecordedRequest r) {
  std::lock_guard<std::mutex> lock(log_mu_);
  log_.push_back(std::move(r));
  return log_.size() - 1;
}

void VaultTestServer::setStatus(std::size_t index, int status) {
  std::lock_guard<std::mutex> lock(log_mu_);
  if (index < log_.size()) log_[index].status = status;  // clearRequests() may have run
}

void VaultTestServer::onRequest(const httplib::Request& req, httplib::Response& res) {
  if (req.path.rfind("/_test/", 0) == 0 && options_.control_api) return onControl(req, res);
  if (req.path.rfind("/v1/", 0) != 0) return writeReply(errorReply(404, {}), res);

  IncomingRequest in;
  in.method = req.method;
  in.path = req.path.substr(4);
  in.query = queryOf(req.target);
  in.body = req.body;
  in.token = tokenOf(req);
  in.namespace_header = req.get_header_value("X-Vault-Namespace");
  in.request_header = req.get_header_value("X-Vault-Request") == "true";
  in.target = req.target;
  in.peer_chain = peerChain(req);

  RecordedRequest rec;
  rec.method = req.method;
  rec.path = req.path;
  const auto q = req.target.find('?');
  rec.query = q == std::string::npos ? "" : req.target.substr(q + 1);
  rec.namespace_header = in.namespace_header;
  rec.token_sent = !in.token.empty();
  rec.request_header_sent = in.request_header;
  rec.client_cert_sent = !in.peer_chain.empty();
  rec.body = req.body;
  const std::size_t index = record(std::move(rec));

  if (auto fault = faults_.take(in.path)) {
    const int status = fault->status == 0 ? 200 : fault->status;
    switch (fault->kind) {
      case Fault::Kind::kDelay:
        std::this_thread::sleep_for(fault->delay);
        break;
      case Fault::Kind::kStatus: {
        const Reply r = statusFaultReply(*fault, in.path);
        setStatus(index, r.status);
        return writeReply(r, res);
      }
      case Fault::Kind::kDrop:
        dropConnection(req);
        return;
      case Fault::Kind::kTruncate: {
        auto body = std::make_shared<std::string>(
            R"({"request_id":")" + newUuid() + R"(","lease_id":"","renewable":false,"lease_duration":0,)"
            R"("data":{"note":"this body is cut off before its end"},"warnings":null,"auth":null})");
        res.status = status;
        setStatus(index, status);
        res.set_content_provider(body->size(), "application/json",
                                 [body](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                                   if (offset != 0) return false;  // abort: close mid-body
                                   sink.write(body->data(), body->size() / 2);
                                   return true;
                                 });
        return;
      }
      case Fault::Kind::kMalformedJson:
        setStatus(index, status);
        res.status = status;
        res.set_content(R"({"request_id":")" + newUuid() + R"(","data":{"certificate":)",
                        "application/json");
        return;
      case Fault::Kind::kResetMidBody: {
        auto body = std::make_shared<std::string>(
            R"({"request_id":")" + newUuid() + R"(","lease_id":"","renewable":false,"lease_duration":0,)"
            R"("data":{"note":"the connection is reset before this body ends"},"warnings":null,"auth":null})");
        res.status = status;
        setStatus(index, status);
        const SSL* ssl = req.ssl;
        res.set_content_provider(body->size(), "application/json",
                                 [body, ssl](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                                   if (offset != 0) return false;
                                   sink.write(body->data(), body->size() / 2);
                                   waitSendQueueEmpty(ssl);
                                   resetConnection(ssl);
                                   return false;
                                 });
        return;
      }
      case Fault::Kind::kTrickle: {
        // Every byte restarts a per-read timeout: only an overall deadline ends this.
        auto body = std::make_shared<std::string>(R"({"data":{"padding":")" + std::string(4000, 'T') + R"("}})");
        const Duration every = fault->delay > Duration::zero() ? fault->delay : std::chrono::milliseconds(300);
        res.status = status;
        setStatus(index, status);
        res.set_content_provider(body->size(), "application/json",
                                 [body, every](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                                   std::this_thread::sleep_for(every);
                                   return sink.is_writable() && sink.write(body->data() + offset, 1);
                                 });
        return;
      }
      case Fault::Kind::kRespond: {
        const Reply r = fault->respond ? fault->respond(req.body) : errorReply(500, {"no responder"});
        setStatus(index, r.status);
        return writeReply(r, res);
      }
      case Fault::Kind::kHugeBody: {
        setStatus(index, status);
        res.status = status;
        std::string body = R"({"data":{"padding":")";
        const std::string tail = R"("}})";
        body.append(fault->huge_bytes > body.size() + tail.size()
                        ? fault->huge_bytes - body.size() - tail.size() : 0, 'A');
        res.set_content(body + tail, "application/json");
        return;
      }
    }
  }
  // After the faults: they stand for what this node answers itself, before any forwarding
  // (Vault applies rate-limit quotas in front of its standby handling).
  std::string standby_of;
  {
    std::lock_guard<std::mutex> lock(standby_mu_);
    standby_of = standby_of_;
  }
  if (!standby_of.empty()) {
    // Vault's respondStandby: no body, the active node's address with the same path and query.
    setStatus(index, 307);
    res.status = 307;
    res.set_header("Location", standby_of + req.target);
    return;
  }
  const Reply r = handle(in);
  setStatus(index, r.status);
  writeReply(r, res);
}

void VaultTestServer::onControl(const httplib::Request& req, httplib::Response& res) {
  if (tokenOf(req) != rootToken()) return writeReply(errorReply(403, {permissionDeniedMessage()}), res);
  const json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  if (body.is_discarded()) return writeReply(errorReply(400, {"failed to parse JSON input"}), res);
  const std::string& p = req.path;
  if (p == "/_test/faults" && req.method == "POST") {
    auto fault = faultFromJson(body);
    if (!fault) return writeReply(errorReply(400, {fault.error().message}), res);
    injectFault(std::move(fault).value());
    return writeReply(noContent(), res);
  }
  if (p == "/_test/faults" && req.method == "DELETE") {
    clearFaults();
    return writeReply(noContent(), res);
  }
  if (p == "/_test/seal" && req.method == "POST") {
    seal(body.value("sealed", true));
    return writeReply(noContent(), res);
  }
  if (p == "/_test/down" && req.method == "POST") {
    const auto ms = body.value("seconds", 1.0) * 1000.0;
    // Stop in the background: stopping the listener waits for in-flight requests,
    // including this one.
    startDown(Duration{static_cast<long long>(ms)}, false);
    return writeReply(noContent(), res);
  }
  if (p == "/_test/requests" && req.method == "GET") {
    json out = json::array();
    for (const auto& r : requests()) out.push_back(recordToJson(r));
    Reply r;
    r.body = out.dump();
    return writeReply(r, res);
  }
  if (p == "/_test/tokens" && req.method == "GET") {
    Reply r;
    r.body = json{{"live_login_tokens", liveTokens(true)}, {"live_tokens", liveTokens(false)}}.dump();
    return writeReply(r, res);
  }
  if (p == "/_test/requests" && req.method == "DELETE") {
    clearRequests();
    return writeReply(noContent(), res);
  }
  writeReply(errorReply(404, {"unsupported path"}), res);
}

}  // namespace cacerts::testing
