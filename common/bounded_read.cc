#include "common/bounded_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include <fmt/format.h>

#include "common/fs_check.h"

namespace cacerts {

namespace {

Error readError(const std::string& path, int err = errno) {
  return Error{ErrorCode::kOutput, fmt::format("read {}: {}", path, describeOsError(err))};
}

}  // namespace

Result<std::optional<Secret>> readBoundedFile(int dirfd, const std::string& name, const std::string& path) {
  const int raw_fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (raw_fd < 0) {
    if (errno == ENOENT) return std::optional<Secret>();
    return readError(path);
  }
  // Closed on every return below.
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } fd{raw_fd};
  struct stat st {};
  if (fstat(fd.fd, &st) != 0) return readError(path);
  if (!S_ISREG(st.st_mode)) return Error{ErrorCode::kOutput, fmt::format("{} is not a regular file", path)};
  const auto too_large = [&] {
    return Error{ErrorCode::kOutput, fmt::format("{} is larger than {} bytes", path, kMaxReadBytes)};
  };
  if (static_cast<std::uint64_t>(st.st_size) > kMaxReadBytes) return too_large();
  Secret out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return readError(path);
    if (n == 0) break;
    out.append({buf, static_cast<std::size_t>(n)});
    if (out.size() > kMaxReadBytes) {  // grew while being read
      cleanseMemory(buf, sizeof buf);
      return too_large();
    }
  }
  cleanseMemory(buf, sizeof buf);  // may have held key bytes
  return std::optional<Secret>(std::move(out));
}

}  // namespace cacerts
