// istiod's verification of a published chain, for the test tools that judge output
// directories from outside the agent (cacerts-soak-reader, cacerts-fleet-checker). It uses
// OpenSSL directly and the test PKI types, never the agent's own x509 code, so a bug there
// cannot hide itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tests/support/test_pki.h"

namespace cacerts::testing {

// Verifies `leaf` through `untrusted` (any order, extras ignored) to one of `roots` as trust
// anchors, at the current time, without the system trust store or partial chains. nullopt
// when it verifies; otherwise OpenSSL's verify error and the failing depth (never
// certificate bytes).
std::optional<std::string> verifyToRoots(const TestCert& leaf, const std::vector<TestCert>& untrusted,
                                         const std::vector<TestCert>& roots);

}  // namespace cacerts::testing
