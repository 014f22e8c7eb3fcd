// Result<T>: a value or an Error. Expected failures travel as values; exceptions stay
// inside the adapters for libraries that throw (nlohmann, CLI11, httplib).
//
// Member names follow std::expected (has_value, value, error, operator bool) so that a
// move to C++23 is a type alias.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cacerts {

// The categories an operator acts on. Each maps to one documented exit code.
enum class ErrorCode {
  kInvalidArgument,   // usage or configuration error (exit 2)
  kNotFound,          // a configured Vault path, field or version does not exist (exit 2)
  kPermissionDenied,  // authentication refused or policy denied (exit 3)
  kUnavailable,       // transient: Vault unreachable, sealed, 5xx, 429, bad body (exit 4, retried)
  kDeadlineExceeded,  // retries of a transient failure ran out of time (exit 4)
  kValidation,        // material rejected by a check istiod would apply (exit 5)
  kOutput,            // output directory problem (exit 6)
  kInternal,          // a bug or an unexpected library failure (exit 1)
};

// Process exit code for a failure category (see README "Exit codes").
int exitCodeFor(ErrorCode code);
std::string_view toString(ErrorCode code);

// True for failures worth retrying with backoff.
inline bool isTransient(ErrorCode code) { return code == ErrorCode::kUnavailable; }

// message is for operators: it names what to fix (a path, a role, a check) and never
// contains a token, a key, a secret_id or a PEM body.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;
inline Status ok() { return {}; }

// Prefixes context to an error message ("kv read secret/x: " + message).
inline Error withContext(Error e, std::string_view context) {
  e.message = std::string(context) + ": " + e.message;
  return e;
}

}  // namespace cacerts

#define CACERTS_CONCAT_INNER(a, b) a##b
#define CACERTS_CONCAT(a, b) CACERTS_CONCAT_INNER(a, b)

// Returns the error of a failed Result/Status from the enclosing function.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    auto cacerts_status_ = (expr);                     \
    if (!cacerts_status_) return cacerts_status_.error(); \
  } while (0)

// ASSIGN_OR_RETURN(auto x, f()); expands to several statements (not usable as the body
// of an unbraced if).
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(CACERTS_CONCAT(cacerts_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp) return tmp.error();               \
  lhs = std::move(tmp).value()
