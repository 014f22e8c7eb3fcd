// Running the real cacerts-agent binary from tests, and temporary directories.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace cacerts::testing {

struct ProcessResult {
  int exit_code = -1;     // exit status, or 128+signal when killed
  std::string out, err;   // captured stdout and stderr
  bool timed_out = false;
};

// Runs `binary args...` with exactly `env` as its environment (nothing inherited, so the
// developer's VAULT_* variables cannot leak into a test), capturing output. Kills the
// process after `timeout`.
ProcessResult runProcess(const std::string& binary, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The built agent (CACERTS_AGENT_BINARY).
ProcessResult runAgent(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));
std::string agentBinary();

// A fresh directory removed (recursively) on destruction. on_tmpfs: under /dev/shm.
class TempDir {
 public:
  explicit TempDir(bool on_tmpfs = true);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Every entry of a directory tree: relative name -> "link:<target>" for symlinks,
// "dir" for directories, "file:<mode>:<bytes>" for files. Two equal snapshots mean the
// directory is byte-identical, including which generation ..data points to.
std::map<std::string, std::string> snapshotTree(const std::string& dir);

void writeFile(const std::string& path, const std::string& content, unsigned mode = 0644);
std::string readFile(const std::string& path);

}  // namespace cacerts::testing
