// Random: uniform numbers for jitter and backoff only. Key material uses OpenSSL's
// RAND_bytes directly, never this interface.
#pragma once

#include <mutex>
#include <random>

namespace cacerts {

class Random {
 public:
  virtual ~Random() = default;
  // Uniform in [0, 1). Thread-safe.
  virtual double uniform01() = 0;
};

class SystemRandom final : public Random {
 public:
  double uniform01() override {
    std::lock_guard<std::mutex> lock(mu_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
  }

 private:
  std::mutex mu_;
  std::mt19937_64 engine_{std::random_device{}()};
};

}  // namespace cacerts
