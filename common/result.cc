#include "common/result.h"

namespace cacerts {

int exitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kNotFound:
      return 2;
    case ErrorCode::kPermissionDenied:
      return 3;
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeadlineExceeded:
      return 4;
    case ErrorCode::kValidation:
      return 5;
    case ErrorCode::kOutput:
      return 6;
    case ErrorCode::kInternal:
      return 1;
  }
  return 1;
}

std::string_view toString(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kDeadlineExceeded: return "deadline_exceeded";
    case ErrorCode::kValidation: return "validation";
    case ErrorCode::kOutput: return "output";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

}  // namespace cacerts
