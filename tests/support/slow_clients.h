// Clients that hold a server's connections open the way a hostile or broken peer does:
// half send a request head one byte every 0.5 s (and connect again when the server cuts
// them), half connect and say nothing. For testing that probes are still answered.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace cacerts::testing {

// A raw TCP connection to 127.0.0.1:port (-1 on failure); the caller closes it.
int connectLoopback(int port);

class SlowClients {
 public:
  // Connects `count` clients at once, then trickles on a thread of its own until destroyed.
  SlowClients(int port, int count);
  ~SlowClients();
  SlowClients(const SlowClients&) = delete;
  SlowClients& operator=(const SlowClients&) = delete;
  // How often a trickling client found itself cut off and connected again.
  int reconnects() const { return reconnects_; }

 private:
  void run();
  int port_;
  std::vector<int> fds_;  // only the trickling thread touches them until it is joined
  std::atomic<bool> stop_{false};
  std::atomic<int> reconnects_{0};
  std::thread thread_;
};

// One GET over a fresh loopback connection: the status (0 for none) and how long it took.
struct TimedAnswer {
  int status = 0;
  std::chrono::milliseconds took{0};
};
TimedAnswer timedGet(int port, const std::string& path);

}  // namespace cacerts::testing
