// Hand-written test doubles for the small seams in common/: Clock, Random, HttpTransport.
// They record what happened so tests assert on state, and never sleep or touch the network.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/http.h"
#include "common/random.h"
#include "common/result.h"

namespace cacerts::testing {

// A Clock that never ticks by itself. sleepFor(d) records d, advances now() by d at once and
// returns true — unless interrupt() was called since the last sleep: then the latch is
// cleared, d is still recorded, time does not move and sleepFor returns false (the same
// latching contract as SystemClock). sleepUntil(t) is sleepFor(t - now()) that ends at t.
//
// stepDuringSleep(after, step) models a wall-clock step (NTP, suspend/resume) during the
// next sleep longer than `after`: once `after` of it has passed, now() jumps by `step`.
// A sleepFor, like a steady sleep, still runs its whole length (it ends late by `step`);
// a sleepUntil, like SystemClock's CLOCK_REALTIME timer, ends right at the step.
// Thread-safe.
class FakeClock final : public Clock {
 public:
  // 2023-11-14T22:13:20Z: a fixed, unremarkable wall time.
  static constexpr std::chrono::seconds kDefaultStart{1'700'000'000};

  explicit FakeClock(SystemTime start = SystemTime(kDefaultStart)) : now_(start) {}

  SystemTime now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }

  bool sleepFor(Duration d) override { return sleep(d, /*wall=*/false); }

  bool sleepUntil(SystemTime deadline) override {
    Duration d;
    {
      std::lock_guard<std::mutex> lock(mu_);
      d = std::max(std::chrono::ceil<Duration>(deadline - now_), Duration::zero());
    }
    return sleep(d, /*wall=*/true);
  }

  void interrupt() override {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }

  void set(SystemTime t) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ = t;
  }
  void advance(Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

  void stepDuringSleep(Duration after, Duration step) {
    std::lock_guard<std::mutex> lock(mu_);
    step_ = Step{after, step};
  }

  // Every requested sleep in order, including interrupted ones.
  std::vector<Duration> sleeps() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sleeps_;
  }
  Duration totalSlept() const {
    std::lock_guard<std::mutex> lock(mu_);
    Duration total{0};
    for (Duration d : sleeps_) total += d;
    return total;
  }

  // Runs after each sleepFor (after time has advanced): lets a test change the world
  // "while" the code under test sleeps, e.g. stop a loop after the n-th sleep.
  // When the latest sleep began: inside an onSleep hook, the time of the work before it.
  SystemTime lastSleepStart() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_sleep_start_;
  }

  void onSleep(std::function<void(Duration)> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    on_sleep_ = std::move(hook);
  }

 private:
  struct Step {
    Duration after;
    Duration by;
  };

  bool sleep(Duration d, bool wall) {
    std::function<void(Duration)> hook;
    bool slept = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sleeps_.push_back(d);
      last_sleep_start_ = now_;
      if (interrupted_) {
        interrupted_ = false;
        slept = false;
      } else if (step_ && d > step_->after) {
        now_ += step_->after + step_->by;
        if (!wall) now_ += d - step_->after;
        step_.reset();
      } else if (d > Duration::zero()) {
        now_ += d;
      }
      hook = on_sleep_;
    }
    // Outside the lock, so the hook may call now(), set(), advance() or interrupt().
    if (hook) hook(d);
    return slept;
  }

  mutable std::mutex mu_;
  SystemTime now_;
  SystemTime last_sleep_start_{};
  std::optional<Step> step_;
  bool interrupted_ = false;
  std::vector<Duration> sleeps_;
  std::function<void(Duration)> on_sleep_;
};

// A Random that returns scripted values in order and then repeats the last one
// (0.0 when nothing was scripted). Values are returned as given, so tests can probe
// out-of-range inputs too. Thread-safe.
class FakeRandom final : public Random {
 public:
  FakeRandom() = default;
  FakeRandom(std::initializer_list<double> values) : values_(values) {}
  explicit FakeRandom(std::vector<double> values) : values_(std::move(values)) {}

  double uniform01() override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::size_t i = calls_++;
    if (values_.empty()) return 0.0;
    return i < values_.size() ? values_[i] : values_.back();
  }

  std::size_t calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<double> values_;
  std::size_t calls_ = 0;
};

// An HttpTransport that records each request and answers with a scripted handler
// (by default: a 404 with an empty body).
class FakeHttpTransport final : public HttpTransport {
 public:
  using Handler = std::function<Result<HttpResponse>(const HttpRequest&)>;

  FakeHttpTransport() = default;
  explicit FakeHttpTransport(Handler handler) : handler_(std::move(handler)) {}

  Result<HttpResponse> send(const HttpRequest& request) override {
    Handler handler;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      handler = handler_;
    }
    if (!handler) return HttpResponse{404, {}, ""};
    return handler(request);
  }

  void setHandler(Handler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    handler_ = std::move(handler);
  }
  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  mutable std::mutex mu_;
  Handler handler_;
  std::vector<HttpRequest> requests_;
};

}  // namespace cacerts::testing
