#include "common/clock.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <utility>

namespace cacerts {

bool Clock::sleepUntil(SystemTime deadline) {
  const auto left = std::chrono::ceil<Duration>(deadline - now());
  if (left <= Duration::zero()) return true;
  return sleepFor(std::min(left, kWallRecheck));
}

SystemClock::SystemClock(Duration recheck) : recheck_(std::clamp(recheck, Duration(1), kWallRecheck)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ >= 0) timer_fd_ = ::timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
}

SystemClock::~SystemClock() {
  if (timer_fd_ >= 0) ::close(timer_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool SystemClock::takeInterrupt() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(interrupted_, false);
}

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

bool SystemClock::sleepUntil(SystemTime deadline) {
  if (timer_fd_ < 0) return Clock::sleepUntil(deadline);
  std::uint64_t count = 0;
  if (takeInterrupt()) {
    (void)::read(wake_fd_, &count, sizeof count);  // the latch said it all
    return false;
  }
  const auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch());
  if (since_epoch <= std::chrono::nanoseconds::zero()) return true;
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(since_epoch.count() / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(since_epoch.count() % 1'000'000'000);
  if (::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, nullptr) != 0) {
    return Clock::sleepUntil(deadline);
  }
  const auto disarm = [this] {
    const itimerspec off{};
    ::timerfd_settime(timer_fd_, 0, &off, nullptr);
  };
  pollfd fds[2] = {{timer_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  // The timer covers the steps the kernel sees; this bound covers the ones it does not (a
  // clock faked inside the process, e.g. by an LD_PRELOAD library) and a wake-up that never
  // comes: the caller reads the wall clock again at least this often.
  const auto recheck_at = std::chrono::steady_clock::now() + recheck_;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(recheck_at - std::chrono::steady_clock::now());
    const int ready = ::poll(fds, 2, static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0)));
    if (ready == 0) {
      disarm();
      return true;
    }
    if (ready < 0) {
      if (errno == EINTR) continue;
      disarm();
      return Clock::sleepUntil(deadline);
    }
    if ((fds[1].revents & POLLIN) != 0) {
      (void)::read(wake_fd_, &count, sizeof count);
      // A latch already taken by sleepFor leaves its eventfd count behind: not a wake-up.
      if (takeInterrupt()) {
        disarm();
        return false;
      }
    }
    if ((fds[0].revents & POLLIN) != 0) {
      // 8 bytes when the deadline passed; ECANCELED when the clock was set. Either way the
      // caller looks at the time again.
      (void)::read(timer_fd_, &count, sizeof count);
      return true;
    }
  }
}

void SystemClock::interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_all();
  if (wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    (void)::write(wake_fd_, &one, sizeof one);
  }
}

}  // namespace cacerts
