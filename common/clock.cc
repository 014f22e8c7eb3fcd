#include "common/clock.h"

namespace cacerts {

bool SystemClock::sleepFor(Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  // A steady deadline: wall-clock jumps must not stretch or shorten the wait.
  const auto deadline = std::chrono::steady_clock::now() + d;
  const bool woken = cv_.wait_until(lock, deadline, [this] { return interrupted_; });
  if (woken) {
    interrupted_ = false;
    return false;
  }
  return true;
}

void SystemClock::interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_all();
}

}  // namespace cacerts
