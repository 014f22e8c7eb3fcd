#include "tests/vault_server/connection_reset.h"

#include <sys/socket.h>
#include <unistd.h>

namespace cacerts::testing {

void resetConnection(const SSL* ssl) {
  if (ssl == nullptr) return;
  const int fd = SSL_get_fd(ssl);
  if (fd < 0) return;
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  const int dummy = socket(AF_INET, SOCK_STREAM, 0);
  if (dummy < 0) {
    shutdown(fd, SHUT_RDWR);
    return;
  }
  dup2(dummy, fd);
  close(dummy);
}

}  // namespace cacerts::testing
