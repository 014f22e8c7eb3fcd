#include "common/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "common/fs_check.h"

namespace cacerts {
namespace {

constexpr Duration kPollInterval{100};
constexpr std::size_t kMaxHolderBytes = 256;

std::string lockPath(const std::string& dir) { return fmt::format("{}/{}", dir, DirLock::kLockName); }

Error osError(std::string_view action, const std::string& path, int err) {
  return Error{ErrorCode::kOutput, fmt::format("{} {}: {}", action, path, describeOsError(err))};
}

// Rewritten in place with one write(): the record is a few bytes, only ever read to
// improve a message, and an empty read just says "holder unknown". (No rename: the fault
// matrix kills the agent at its n-th rename, which must stay the publish's.)
void writeHolder(int lock_fd, std::string_view mode) {
  const std::string text = fmt::format("pid={} mode={}\n", ::getpid(), mode);
  const int fd = ::openat(lock_fd, DirLock::kHolderName.data(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                          0644);
  if (fd < 0) return;  // the record only improves a message; the lock is what matters
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
}

}  // namespace

Result<DirLock> DirLock::acquire(const std::string& dir, std::string_view mode, Duration wait, Clock& clock) {
  const std::string path = lockPath(dir);
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return osError("create lock", path, errno);
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return osError("open lock", path, errno);
  DirLock lock(fd);
  const SystemTime deadline = clock.now() + std::max(wait, Duration::zero());
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return osError("lock", path, errno);
    const SystemTime now = clock.now();
    if (now >= deadline) {
      const std::string holder = holderOf(dir);
      return Error{ErrorCode::kOutput,
                   fmt::format("{} is in use by another cacerts-agent ({}) after waiting {} ms; only one init or "
                               "sidecar may write a directory: give each its own --dir",
                               dir, holder.empty() ? "holder unknown" : holder, wait.count())};
    }
    clock.sleepFor(std::min(kPollInterval, std::chrono::ceil<Duration>(deadline - now)));
  }
  writeHolder(fd, mode);
  return lock;
}

DirLock::DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

std::string DirLock::holderOf(const std::string& dir) {
  const std::string path = fmt::format("{}/{}", lockPath(dir), kHolderName);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[kMaxHolderBytes];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return "";
  std::string text(buf, static_cast<std::size_t>(n));
  // Printable characters only: the record ends up in a log line.
  text.erase(std::remove_if(text.begin(), text.end(), [](char c) { return c < 0x20 || c > 0x7e; }), text.end());
  return text;
}

}  // namespace cacerts
