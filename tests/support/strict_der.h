// A strict DER reader for tests: judges an encoding the way the strictest parsers do
// (Go's cryptobyte, rust-asn1, BoringSSL), so a test can prove that what the agent
// encodes is accepted by every reader, not only by OpenSSL's lenient one.
#pragma once

#include <string>
#include <string_view>

namespace cacerts::testing {

// Empty when `der` is exactly one DER element (nothing after it) that follows the rules
// below, recursively through every constructed element; otherwise what is wrong and at
// which byte offset. Rules: definite lengths only, in the shortest form; tag numbers in
// the shortest form; BOOLEAN is one byte, 0x00 or 0xFF; INTEGER and ENUMERATED are
// minimal two's complement; BIT STRING has 0..7 unused bits, all zero; NULL is empty;
// the elements of a SET are in ascending order of their encodings.
// OCTET STRING and BIT STRING contents are not descended into: check an embedded
// encoding (such as an extension value) with a second call.
std::string strictDerProblem(std::string_view der);

}  // namespace cacerts::testing
