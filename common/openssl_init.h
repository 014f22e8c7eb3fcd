// OpenSSL set up for a long-running process that holds little: without loading the
// system's openssl.cnf (the agent sets every TLS and key parameter itself; a config file
// could also pull in providers or engines) and without the error-string tables (no message
// of the agent quotes OpenSSL's error text). Both would stay resident for the sidecar's
// whole life.
#pragma once

namespace cacerts {

// Initialises libcrypto and libssl that way. Idempotent and thread-safe; OpenSSL's own
// initialisation runs once, so whichever call comes first decides: call it before
// anything else uses OpenSSL. In a static binary it also runs by itself before the C++
// static initialisers (httplib's among them, which would load both); calling it from
// main() is what links it in. Returns false if OpenSSL could not be initialised.
bool initOpenSsl();

}  // namespace cacerts
