// A TCP peer that answers every connection with a fixed byte string, one byte at a time
// with a pause between bytes: each byte restarts a per-read timeout, so only an overall
// deadline ends a request to it. Stands in for a trickling Vault, istiod metrics endpoint
// or TLS server (the bytes of a TLS record header followed by a trickled record body).
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace cacerts::testing {

class TricklingPeer {
 public:
  // Listens on 127.0.0.1 (kernel-chosen port); throws std::runtime_error when it cannot.
  // Each connection is served on its own thread; what the client sends is read and dropped.
  explicit TricklingPeer(std::string bytes,
                         std::chrono::milliseconds every = std::chrono::milliseconds(300));
  ~TricklingPeer();  // stops at once (closes every connection) and joins
  TricklingPeer(const TricklingPeer&) = delete;
  TricklingPeer& operator=(const TricklingPeer&) = delete;

  int port() const { return port_; }
  // Connections accepted so far.
  int connections() const { return connections_; }
  // Bytes sent so far, over all connections.
  long bytesSent() const { return sent_; }

  // An HTTP response head that promises a long body: its bytes then trickle.
  static std::string httpResponse(std::size_t body_bytes = 100000);
  // A TLS handshake record header announcing a 16 KiB record, then the record's bytes.
  static std::string tlsRecord();

 private:
  void acceptLoop();
  void serve(int fd);

  std::string bytes_;
  std::chrono::milliseconds every_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe: closing the write end wakes every thread
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<long> sent_{0};
  std::thread acceptor_;
  std::vector<std::thread> servers_;  // only the acceptor thread adds, the destructor joins
};

}  // namespace cacerts::testing
