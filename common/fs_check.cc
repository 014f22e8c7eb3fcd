#include "common/fs_check.h"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <system_error>

#include <fmt/format.h>
#include <linux/magic.h>

namespace cacerts {

std::string describeOsError(int err) {
  std::string text = std::system_category().message(err);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  if (err == EACCES || err == EPERM) {
    // The usual cause in a pod: the emptyDir is owned by another uid and no fsGroup is set.
    text += fmt::format(" (running as uid {}; check the directory's owner, mode or the pod's fsGroup)",
                        geteuid());
  }
  return text;
}

Result<bool> isTmpfs(const std::string& dir) {
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) != 0) {
    return Error{ErrorCode::kOutput, fmt::format("output directory {}: {}", dir, describeOsError(errno))};
  }
  // f_type's type differs between architectures; compare as unsigned 32-bit magic values.
  const auto type = static_cast<unsigned long>(fs.f_type) & 0xffffffffUL;
  return type == TMPFS_MAGIC || type == RAMFS_MAGIC;
}

Status ensureWritableDir(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    return Error{ErrorCode::kOutput, fmt::format("output directory {}: {}", dir, describeOsError(errno))};
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error{ErrorCode::kOutput, fmt::format("output directory {}: not a directory", dir)};
  }
  // AT_EACCESS: judge by the effective ids, which are the ones open(2) will use. Also
  // reports EROFS for a read-only mount, even to root.
  if (faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    return Error{ErrorCode::kOutput,
                 fmt::format("output directory {} is not writable: {}", dir, describeOsError(errno))};
  }
  return ok();
}

}  // namespace cacerts
