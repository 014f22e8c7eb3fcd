#include "tests/support/slow_clients.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string_view>

namespace cacerts::testing {

int connectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

SlowClients::SlowClients(int port, int count) : port_(port) {
  for (int i = 0; i < count; ++i) fds_.push_back(connectLoopback(port_));
  thread_ = std::thread([this] { run(); });
}

SlowClients::~SlowClients() {
  stop_ = true;
  thread_.join();
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

void SlowClients::run() {
  static constexpr std::string_view kHead = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  std::size_t at = 0;
  while (!stop_) {
    for (std::size_t i = 0; i < fds_.size(); i += 2) {
      const char byte = at < kHead.size() ? kHead[at] : 'a';
      if (fds_[i] < 0 || ::send(fds_[i], &byte, 1, MSG_NOSIGNAL) != 1) {
        if (fds_[i] >= 0) ::close(fds_[i]);
        fds_[i] = connectLoopback(port_);
        ++reconnects_;
      }
    }
    ++at;
    for (int n = 0; n < 5 && !stop_; ++n) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TimedAnswer timedGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(3, 0);
  client.set_read_timeout(3, 0);
  const auto started = std::chrono::steady_clock::now();
  auto res = client.Get(path);
  TimedAnswer out;
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  out.status = res ? res->status : 0;
  return out;
}

}  // namespace cacerts::testing
