// Secret: bytes that must never be printed and are wiped when freed.
//
// Backed by a vector with a cleansing allocator (no small-string optimisation, so every
// byte lives on the heap and is wiped by OPENSSL_cleanse on release). Its fmt formatter
// prints only the size, so a stray log call cannot leak it. Wiping is best effort: the
// HTTP and JSON libraries keep their own transient copies; keep those scopes short.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace cacerts {

void cleanseMemory(void* p, std::size_t n);  // OPENSSL_cleanse, not optimised away

template <class T>
struct CleansingAllocator {
  using value_type = T;
  CleansingAllocator() = default;
  template <class U>
  CleansingAllocator(const CleansingAllocator<U>&) {}  // NOLINT
  T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
  void deallocate(T* p, std::size_t n) {
    cleanseMemory(p, n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }
  template <class U>
  bool operator==(const CleansingAllocator<U>&) const { return true; }
};

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string_view bytes) : bytes_(bytes.begin(), bytes.end()) {}
  // Takes the bytes of a std::string and wipes the source.
  static Secret takeFrom(std::string& s) {
    Secret out(s);
    cleanseMemory(s.data(), s.size());
    s.clear();
    return out;
  }
  std::string_view view() const { return {bytes_.data(), bytes_.size()}; }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  void append(std::string_view more) { bytes_.insert(bytes_.end(), more.begin(), more.end()); }
  bool operator==(const Secret& other) const;  // constant time in the length

 private:
  std::vector<char, CleansingAllocator<char>> bytes_;
};

}  // namespace cacerts

template <>
struct fmt::formatter<cacerts::Secret> : fmt::formatter<std::string_view> {
  auto format(const cacerts::Secret& s, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "<secret:{}B>", s.size());
  }
};
