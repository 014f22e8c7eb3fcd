// DirLock: one writer per output directory. Two agents publishing into the same directory
// (two init containers, init beside a running sidecar, two sidecars of a misconfigured
// Deployment) would each remove the other's generations and leave ..data dangling, so every
// writer holds this lock while it cleans up or publishes.
//
// Mechanism: flock(LOCK_EX) on a directory named "..lock" inside the output directory.
//  * A directory, not a file: istiod watches the output directory (non-recursively) and
//    reloads on any Create or Write in it. The holder record lives inside ..lock/, where
//    writing it causes no event istiod sees; only the very first creation of ..lock is one
//    Create event, which happens in the init container before istiod starts.
//  * A dot-dot name, like ..data: no layout file name starts with '.', istiod reads only
//    its fixed names, and AtomicDirWriter removes only "..YYYY_..." generation directories.
//  * flock belongs to the open file description: the kernel releases it when the holder
//    exits or crashes, so a stale lock cannot exist; the holder record may be stale, and is
//    read only to name a holder that does hold the lock.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace cacerts {

class DirLock {
 public:
  static constexpr std::string_view kLockName = "..lock";
  static constexpr std::string_view kHolderName = "holder";

  // Takes the lock for dir, waiting up to `wait` (polled every 100 ms on `clock`; zero
  // tries once) for a holder to release it, then records "pid=<pid> mode=<mode>" as this
  // process's holder record. dir must exist.
  // Errors: kOutput when the lock is still held after `wait` (the message names the
  // holder's pid and mode from its record, and the directory), or when ..lock cannot be
  // created or opened (naming the path and the OS reason).
  static Result<DirLock> acquire(const std::string& dir, std::string_view mode, Duration wait, Clock& clock);

  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();  // releases the lock

  // The holder record currently in dir ("pid=... mode=..."), or empty when there is none.
  static std::string holderOf(const std::string& dir);

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace cacerts
