#include "tests/support/trickling_peer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

namespace cacerts::testing {

TricklingPeer::TricklingPeer(std::string bytes, std::chrono::milliseconds every)
    : bytes_(std::move(bytes)), every_(every) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(wake_, O_CLOEXEC) != 0) {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    throw std::runtime_error("trickling peer: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

TricklingPeer::~TricklingPeer() {
  ::close(wake_[1]);
  acceptor_.join();
  for (auto& t : servers_) t.join();
  ::close(wake_[0]);
  ::close(listen_fd_);
}

void TricklingPeer::acceptLoop() {
  for (;;) {
    pollfd fds[2] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[0].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    servers_.emplace_back([this, fd] { serve(fd); });
  }
}

void TricklingPeer::serve(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const auto every_ms = static_cast<int>(every_.count());
  for (std::size_t at = 0; at < bytes_.size(); ++at) {
    // Sleep by polling the wake pipe, reading (and dropping) whatever the client sends.
    const auto until = std::chrono::steady_clock::now() + every_;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd fds[2] = {{wake_[0], POLLIN, 0}, {fd, POLLIN, 0}};
      if (::poll(fds, 2, std::min(every_ms, static_cast<int>(left.count()))) < 0) continue;
      if (fds[0].revents != 0) {
        ::close(fd);
        return;
      }
      if (fds[1].revents != 0) {
        char sink[4096];
        const ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {  // the client left
          ::close(fd);
          return;
        }
      }
    }
    if (::send(fd, &bytes_[at], 1, MSG_NOSIGNAL) != 1) break;
    ++sent_;
  }
  ::close(fd);
}

std::string TricklingPeer::httpResponse(std::size_t body_bytes) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body_bytes) +
         "\r\n\r\n" + std::string(body_bytes, 'x');
}

std::string TricklingPeer::tlsRecord() {
  // Content type 22 (handshake), version 3.3, length 0x4000: the client waits for all of it.
  return std::string("\x16\x03\x03\x40\x00", 5) + std::string(0x4000, '\x02');
}

}  // namespace cacerts::testing
