// Clock: wall time and interruptible sleeps, injected so that scheduling and retry logic
// never read the time themselves and can be tested with a fake that advances instantly.
//
// Wall time (system_clock), not steady time: certificate validity is wall-clock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace cacerts {

using SystemTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::milliseconds;

class Clock {
 public:
  // A step of the wall clock is noticed by sleepUntil at least this often even where the
  // clock cannot report steps itself (the base implementation).
  static constexpr Duration kWallRecheck = std::chrono::minutes(1);

  virtual ~Clock() = default;
  virtual SystemTime now() const = 0;
  // Sleeps for d (steady time: wall-clock steps neither stretch nor shorten it) or until
  // interrupt() is called. Returns false when interrupted.
  // Thread-safe: interrupt() may be called from another thread (or a signal-watcher thread).
  virtual bool sleepFor(Duration d) = 0;
  // Sleeps until the wall clock reaches `deadline`, or until interrupt() (returns false).
  // May return true before the deadline, at the latest kWallRecheck after the wall clock
  // was stepped (NTP, suspend/resume, an operator): callers re-read now() and decide again,
  // so a step forward past the deadline is acted on at once instead of after the steady
  // time that was left. The base implementation sleeps in slices of at most kWallRecheck.
  virtual bool sleepUntil(SystemTime deadline);
  // Wakes the current and the next sleeper once (the wake-up is latched, so an interrupt
  // that arrives between two sleeps is not lost).
  virtual void interrupt() = 0;
};

// sleepUntil waits on a CLOCK_REALTIME timerfd armed with TFD_TIMER_ABSTIME |
// TFD_TIMER_CANCEL_ON_SET: the kernel wakes it at the wall-clock deadline or when the
// clock is set. It also returns after `recheck` (at most kWallRecheck) of steady time, so
// a step the kernel does not report (a wall clock faked inside the process) or a lost
// wake-up is noticed within that: an idle process wakes once per recheck. Where timerfd is
// unavailable it falls back to the base implementation.
class SystemClock final : public Clock {
 public:
  // recheck is clamped to [1 ms, kWallRecheck]; shorter only in tests.
  explicit SystemClock(Duration recheck = kWallRecheck);
  ~SystemClock() override;
  SystemClock(const SystemClock&) = delete;
  SystemClock& operator=(const SystemClock&) = delete;

  SystemTime now() const override { return std::chrono::system_clock::now(); }
  bool sleepFor(Duration d) override;
  bool sleepUntil(SystemTime deadline) override;
  void interrupt() override;

 private:
  // Clears the interrupt latch; true when it was set.
  bool takeInterrupt();

  std::mutex mu_;
  std::condition_variable cv_;
  bool interrupted_ = false;
  int wake_fd_ = -1;   // eventfd, written by interrupt() to wake sleepUntil
  int timer_fd_ = -1;  // CLOCK_REALTIME timerfd; -1 when unavailable
  Duration recheck_;
};

}  // namespace cacerts
