#include "tests/support/strict_der.h"

#include <cstdint>
#include <vector>

namespace cacerts::testing {
namespace {

struct Element {
  std::size_t start = 0;    // offset of the tag
  std::uint8_t first = 0;   // first tag byte: class, constructed bit, low tag number
  std::size_t value = 0;    // offset of the contents
  std::size_t length = 0;
};

class Walker {
 public:
  explicit Walker(std::string_view der) : der_(der) {}

  // The whole input must be exactly one element.
  std::string single() {
    Element e;
    if (std::string problem = header(0, der_.size(), e); !problem.empty()) return problem;
    if (e.value + e.length != der_.size()) return at(e.value + e.length, "bytes after the element");
    return walk(0, der_.size());
  }

  // Walks the elements of [begin, end); returns the first problem or "".
  std::string walk(std::size_t begin, std::size_t end) {
    std::vector<std::string_view> encodings;
    std::size_t pos = begin;
    while (pos < end) {
      Element e;
      if (std::string problem = header(pos, end, e); !problem.empty()) return problem;
      if (std::string problem = contents(e); !problem.empty()) return problem;
      pos = e.value + e.length;
      encodings.push_back(der_.substr(e.start, pos - e.start));
    }
    if (in_set_) {
      for (std::size_t i = 1; i < encodings.size(); ++i) {
        if (encodings[i] < encodings[i - 1]) return at(begin, "SET OF elements are not in ascending order");
      }
    }
    return {};
  }

 private:
  std::string at(std::size_t offset, const std::string& what) const {
    return what + " at offset " + std::to_string(offset);
  }
  std::uint8_t byte(std::size_t i) const { return static_cast<std::uint8_t>(der_[i]); }

  std::string header(std::size_t pos, std::size_t end, Element& e) const {
    e.start = pos;
    if (pos >= end) return at(pos, "truncated tag");
    e.first = byte(pos++);
    if ((e.first & 0x1f) == 0x1f) {
      // High tag number form: base-128 without a leading 0x80, only for numbers >= 31.
      if (pos >= end) return at(e.start, "truncated tag");
      if (byte(pos) == 0x80) return at(e.start, "tag number not in the shortest form");
      std::uint32_t number = 0;
      do {
        if (pos >= end) return at(e.start, "truncated tag");
        if (number > (1u << 24)) return at(e.start, "tag number too large");
        number = (number << 7) | (byte(pos) & 0x7fu);
      } while ((byte(pos++) & 0x80) != 0);
      if (number < 31) return at(e.start, "tag number not in the shortest form");
    }
    if (pos >= end) return at(e.start, "truncated length");
    const std::uint8_t l0 = byte(pos++);
    if (l0 == 0x80) return at(e.start, "indefinite length");
    if (l0 < 0x80) {
      e.length = l0;
    } else {
      const std::size_t n = l0 & 0x7fu;
      if (n > 4) return at(e.start, "length of more than four bytes");
      if (pos + n > end) return at(e.start, "truncated length");
      if (byte(pos) == 0) return at(e.start, "length with a leading zero byte");
      e.length = 0;
      for (std::size_t i = 0; i < n; ++i) e.length = (e.length << 8) | byte(pos++);
      if (e.length < 0x80) return at(e.start, "long-form length below 128");
    }
    e.value = pos;
    if (e.length > end - pos) return at(e.start, "length runs past the end of its container");
    return {};
  }

  std::string contents(const Element& e) {
    const bool constructed = (e.first & 0x20) != 0;
    if (constructed) {
      const bool was_set = in_set_;
      in_set_ = e.first == 0x31;  // universal SET / SET OF
      std::string problem = walk(e.value, e.value + e.length);
      in_set_ = was_set;
      return problem;
    }
    if ((e.first & 0xc0) != 0) return {};  // context/application/private primitives: opaque
    const std::size_t v = e.value;
    switch (e.first & 0x1f) {
      case 0x01:  // BOOLEAN
        if (e.length != 1) return at(e.start, "BOOLEAN is not one byte");
        if (byte(v) != 0x00 && byte(v) != 0xff) return at(e.start, "BOOLEAN is neither 0x00 nor 0xFF");
        return {};
      case 0x02:  // INTEGER
      case 0x0a:  // ENUMERATED
        if (e.length == 0) return at(e.start, "empty INTEGER");
        if (e.length > 1 && ((byte(v) == 0x00 && (byte(v + 1) & 0x80) == 0) ||
                             (byte(v) == 0xff && (byte(v + 1) & 0x80) != 0))) {
          return at(e.start, "INTEGER not in the shortest form");
        }
        return {};
      case 0x03: {  // BIT STRING
        if (e.length == 0) return at(e.start, "BIT STRING without the unused-bits byte");
        const std::uint8_t unused = byte(v);
        if (unused > 7 || (e.length == 1 && unused != 0)) return at(e.start, "BIT STRING with bad unused bits");
        if (unused != 0 && (byte(v + e.length - 1) & ((1u << unused) - 1)) != 0) {
          return at(e.start, "BIT STRING with non-zero unused bits");
        }
        return {};
      }
      case 0x05:  // NULL
        return e.length == 0 ? std::string() : at(e.start, "NULL with contents");
      case 0x06:  // OBJECT IDENTIFIER: subidentifiers without leading 0x80, last byte ends one
        if (e.length == 0) return at(e.start, "empty OBJECT IDENTIFIER");
        if ((byte(v + e.length - 1) & 0x80) != 0) return at(e.start, "truncated OBJECT IDENTIFIER");
        for (std::size_t i = v; i < v + e.length; ++i) {
          const bool starts = i == v || (byte(i - 1) & 0x80) == 0;
          if (starts && byte(i) == 0x80) return at(e.start, "OBJECT IDENTIFIER not in the shortest form");
        }
        return {};
      default:
        return {};
    }
  }

  std::string_view der_;
  bool in_set_ = false;
};

}  // namespace

std::string strictDerProblem(std::string_view der) {
  if (der.empty()) return "empty input";
  return Walker(der).single();
}

}  // namespace cacerts::testing
