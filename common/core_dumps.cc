#include "common/core_dumps.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <string>

#include "common/fs_check.h"

namespace cacerts {

Status disableCoreDumps() {
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return Error{ErrorCode::kInternal, "setrlimit(RLIMIT_CORE, 0): " + describeOsError(errno)};
  }
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return Error{ErrorCode::kInternal, "prctl(PR_SET_DUMPABLE, 0): " + describeOsError(errno)};
  }
  return ok();
}

}  // namespace cacerts
