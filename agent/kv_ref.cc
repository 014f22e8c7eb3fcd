#include "agent/kv_ref.h"

#include <cctype>

namespace cacerts {

Result<KvRef> parseKvRef(std::string_view text, std::string_view option) {
  auto bad = [&](std::string_view why) {
    return Error{ErrorCode::kInvalidArgument,
                 std::string(option) + ": " + std::string(why) + " in \"" + std::string(text.substr(0, 200)) +
                     "\" (expected [vault:]<path>#<field>[#<version>], e.g. vault:secret/data/istio/cacerts#ca-cert)"};
  };
  std::string_view rest = text;
  if (rest.substr(0, 6) == "vault:") rest.remove_prefix(6);
  const auto hash = rest.find('#');
  if (hash == std::string_view::npos) return bad("missing #<field>");
  std::string_view path = rest.substr(0, hash);
  std::string_view after = rest.substr(hash + 1);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return bad("empty path");
  for (char c : path) {
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == '?' || c == ' ') return bad("invalid character in path");
  }
  KvRef ref;
  ref.path = std::string(path);
  const auto hash2 = after.find('#');
  std::string_view field = after.substr(0, hash2);
  if (field.empty()) return bad("empty field");
  ref.field = std::string(field);
  if (hash2 != std::string_view::npos) {
    std::string_view version = after.substr(hash2 + 1);
    if (version.empty() || version.size() > 9) return bad("invalid version");
    for (char c : version) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return bad("invalid version");
    }
    ref.version = std::stoi(std::string(version));
    if (ref.version <= 0) return bad("version must be a positive integer");
  }
  return ref;
}

}  // namespace cacerts
