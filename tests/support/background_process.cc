#include "tests/support/background_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "tests/support/output_capture.h"
#include "tests/support/process.h"

namespace cacerts::testing {

BackgroundProcess::BackgroundProcess(const std::string& binary, const std::vector<std::string>& args,
                                     const std::map<std::string, std::string>& env)
    : binary_(binary), args_(args) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error("pipe failed");
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  if (env.count("PATH") == 0) env_strings.push_back("PATH=/usr/local/bin:/usr/bin:/bin");
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string bin = binary;
  std::vector<std::string> arg_copy = args;
  argv.push_back(bin.data());
  for (auto& a : arg_copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // The test binary may run with signals blocked (threads of its own); the child starts clean.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execve(bin.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  reader_ = std::thread([this, o = out_pipe[0], e = err_pipe[0]] { readLoop(o, e); });
}

BackgroundProcess::~BackgroundProcess() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (reader_.joinable()) reader_.join();
  captureOutput(binary_, args_, out_, err_);
}

void BackgroundProcess::readLoop(int out_fd, int err_fd) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  std::lock_guard<std::mutex> lock(mu_);
  eof_ = true;
}

void BackgroundProcess::signal(int sig) const {
  if (!exit_code_) ::kill(pid_, sig);
}

std::optional<int> BackgroundProcess::wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      // The pipes close with the process; let the reader drain them.
      if (reader_.joinable()) reader_.join();
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string BackgroundProcess::out() const {
  std::lock_guard<std::mutex> lock(mu_);
  return out_;
}

std::string BackgroundProcess::err() const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_;
}

std::size_t BackgroundProcess::count(const std::string& text) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (auto at = err_.find(text); at != std::string::npos; at = err_.find(text, at + text.size())) ++n;
  return n;
}

bool BackgroundProcess::waitForErr(const std::string& text, std::chrono::milliseconds timeout,
                                   std::size_t times) const {
  return eventually(
      [&] {
        if (count(text) >= times) return true;
        std::lock_guard<std::mutex> lock(mu_);
        return eof_;
      },
      timeout) &&
         count(text) >= times;
}

std::unique_ptr<BackgroundProcess> startAgent(const std::vector<std::string>& args,
                                              const std::map<std::string, std::string>& env) {
  return std::make_unique<BackgroundProcess>(agentBinary(), args, env);
}

}  // namespace cacerts::testing
