// A process that keeps running while a test talks to it (the sidecar), with its output
// collected on a reader thread. Complements runProcess(), which waits for the exit.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cacerts::testing {

class BackgroundProcess {
 public:
  // Starts `binary args...` with exactly `env` (plus a default PATH), like runProcess.
  // Throws std::runtime_error when it cannot start.
  BackgroundProcess(const std::string& binary, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {});
  // Kills (SIGKILL) and reaps the process if it is still running; hands its output to
  // captureOutput() for the suite-wide log scan.
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // Waits up to `timeout` for the exit; the exit status (128+signal when killed), or
  // nullopt while it still runs.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool exited() const { return exit_code_.has_value(); }

  // Output so far. Thread-safe.
  std::string out() const;
  std::string err() const;
  // How often `text` occurs in stderr so far.
  std::size_t count(const std::string& text) const;
  // Waits until stderr contains `text` at least `times` times (or the process exited).
  bool waitForErr(const std::string& text, std::chrono::milliseconds timeout, std::size_t times = 1) const;

 private:
  void readLoop(int out_fd, int err_fd);

  std::string binary_;
  std::vector<std::string> args_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::thread reader_;
  mutable std::mutex mu_;
  std::string out_, err_;
  bool eof_ = false;
};

// The agent binary under test, in the background.
std::unique_ptr<BackgroundProcess> startAgent(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});

// Polls `condition` every 20 ms until it holds or `timeout` passes; returns the last result.
template <class F>
bool eventually(F condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace cacerts::testing
