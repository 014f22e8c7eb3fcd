// Resetting a TLS connection from the server side, for fault injection.
#pragma once

#include <openssl/ssl.h>

namespace cacerts::testing {

// Resets the client's connection: linger 0 turns the close into an RST, and dup2 closes the
// connection while leaving httplib a valid (unconnected) fd to write its response into and
// close later. A no-op for a null ssl.
void resetConnection(const SSL* ssl);

}  // namespace cacerts::testing
