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
  virtual ~Clock() = default;
  virtual SystemTime now() const = 0;
  // Sleeps for d or until interrupt() is called. Returns false when interrupted.
  // Thread-safe: interrupt() may be called from another thread (or a signal-watcher thread).
  virtual bool sleepFor(Duration d) = 0;
  // Wakes the current and the next sleeper once (the wake-up is latched, so an interrupt
  // that arrives between two sleeps is not lost).
  virtual void interrupt() = 0;
};

class SystemClock final : public Clock {
 public:
  SystemTime now() const override { return std::chrono::system_clock::now(); }
  bool sleepFor(Duration d) override;
  void interrupt() override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool interrupted_ = false;
};

}  // namespace cacerts
