#include "common/atomic_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "common/clock.h"
#include "common/dir_lock.h"
#include "common/fs_check.h"

namespace cacerts::testing {
namespace {

namespace fs = std::filesystem;

// A fresh directory, on tmpfs when the machine has /dev/shm (as the agent's --dir would be).
class TempDir {
 public:
  TempDir() {
    const std::string base = fs::is_directory("/dev/shm") ? "/dev/shm" : fs::temp_directory_path().string();
    std::string tmpl = base + "/atomic-writer-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class UmaskScope {
 public:
  explicit UmaskScope(mode_t mask) : old_(umask(mask)) {}
  ~UmaskScope() { umask(old_); }

 private:
  mode_t old_;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

mode_t modeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Everything under dir: link targets, file modes and bytes, directory modes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).string();
    if (e.is_symlink()) {
      out[rel] = "link:" + fs::read_symlink(e.path()).string();
    } else if (e.is_regular_file()) {
      out[rel] = fmt::format("file:{:o}:{}", modeOf(e.path()), readFile(e.path()));
    } else {
      out[rel] = fmt::format("dir:{:o}", modeOf(e.path()));
    }
  }
  return out;
}

// Hidden directories holding (or in the way of) generations, named relative to dir as ..data
// names them: in ..generations, and next to ..data (the previous layout).
std::vector<std::string> generationDirs(const std::string& dir) {
  std::vector<std::string> out;
  const auto scan = [&](const std::string& in, const std::string& prefix) {
    if (!fs::is_directory(in)) return;
    for (const auto& e : fs::directory_iterator(in)) {
      const std::string name = e.path().filename().string();
      if (name.starts_with("..") && name != "..data" && name != "..generations" && name != "..lock" && e.is_directory() &&
          !e.is_symlink()) {
        out.push_back(prefix + name);
      }
    }
  };
  scan(dir, "");
  scan(dir + "/..generations", "..generations/");
  return out;
}

// Fixed strings standing in for PEM; the key marker must never reach an error message.
const std::string kKey = "-----BEGIN PRIVATE KEY-----\nKEY-MARKER-7f3a\n-----END PRIVATE KEY-----\n";
const std::string kCert = "cert v1\n";
const std::string kChain = "cert v1\nroot\n";
const std::string kRoot = "root\n";

std::vector<OutputFile> istioSet(std::string_view cert = kCert) {  // views: pass literals or globals
  return {{"ca-cert.pem", cert, 0644},
          {"ca-key.pem", kKey, 0600},
          {"cert-chain.pem", kChain, 0644},
          {"root-cert.pem", kRoot, 0644}};
}

TEST_CASE("publish creates relative links into one generation with exact modes whatever the umask",
          "[atomic_writer]") {
  const mode_t mask = GENERATE(mode_t{077}, mode_t{0});
  UmaskScope scope(mask);
  TempDir dir;
  AtomicDirWriter writer(dir.path());

  const auto result = writer.publish(istioSet());
  REQUIRE(result);
  CHECK(result->changed);
  CHECK(result->generation.starts_with("..generations/.."));
  CHECK(fs::read_symlink(dir / "..data").string() == result->generation);
  CHECK(modeOf(dir / "..generations") == 0755);
  CHECK(modeOf(dir / result->generation) == 0755);
  for (const auto& f : istioSet()) {
    INFO(f.name);
    CHECK(fs::is_symlink(dir / f.name));
    CHECK(fs::read_symlink(dir / f.name).string() == "..data/" + f.name);
    CHECK(modeOf(dir / result->generation + "/" + f.name) == f.mode);
    CHECK(readFile(dir / f.name) == f.content);
  }
  CHECK(generationDirs(dir.path()).size() == 1);
  CHECK_FALSE(fs::exists(fs::symlink_status(dir / "..data_tmp")));
  CHECK_FALSE(fs::exists(fs::symlink_status(dir / "..generations/..data_tmp")));
}

TEST_CASE("readCurrent returns what a reader sees through the top-level names", "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  SECTION("no directory or no ..data is kNotFound") {
    AtomicDirWriter missing(dir / "nope");
    REQUIRE_FALSE(missing.readCurrent({"ca-cert.pem"}));
    CHECK(missing.readCurrent({"ca-cert.pem"}).error().code == ErrorCode::kNotFound);
    REQUIRE_FALSE(writer.readCurrent({"ca-cert.pem"}));
    CHECK(writer.readCurrent({"ca-cert.pem"}).error().code == ErrorCode::kNotFound);
    CHECK(writer.currentGeneration().error().code == ErrorCode::kNotFound);
  }
  SECTION("published names are read, unknown names are absent") {
    const auto published = writer.publish(istioSet());
    REQUIRE(published);
    const auto read = writer.readCurrent({"ca-cert.pem", "ca-key.pem", "ca-crl.pem"});
    REQUIRE(read);
    CHECK(read->size() == 2);
    CHECK(read->at("ca-cert.pem").view() == kCert);
    CHECK(read->at("ca-key.pem").view() == kKey);
    CHECK(writer.currentGeneration().value() == published->generation);
  }
}

TEST_CASE("republishing identical content is a no-op and changed content swaps the generation",
          "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  const auto first = writer.publish(istioSet());
  REQUIRE(first);
  struct stat root_before {};
  REQUIRE(stat((dir / "root-cert.pem").c_str(), &root_before) == 0);

  const auto again = writer.publish(istioSet());
  REQUIRE(again);
  CHECK_FALSE(again->changed);
  CHECK(again->generation == first->generation);
  struct stat root_after {};
  REQUIRE(stat((dir / "root-cert.pem").c_str(), &root_after) == 0);
  CHECK(root_after.st_ino == root_before.st_ino);  // not even rewritten
  CHECK(readFile(dir / "root-cert.pem") == kRoot);

  SECTION("new bytes") {
    const auto next = writer.publish(istioSet("cert v2\n"));
    REQUIRE(next);
    CHECK(next->changed);
    CHECK(next->generation != first->generation);
    CHECK(readFile(dir / "ca-cert.pem") == "cert v2\n");
    CHECK(readFile(dir / "root-cert.pem") == kRoot);
    CHECK(generationDirs(dir.path()) == std::vector<std::string>{next->generation});
  }
  SECTION("a new mode alone") {
    auto files = istioSet();
    files[1].mode = 0640;
    const auto next = writer.publish(files);
    REQUIRE(next);
    CHECK(next->changed);
    CHECK(modeOf(dir / next->generation + "/ca-key.pem") == 0640);
  }
}

TEST_CASE("a name dropped from the set loses its link", "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  auto files = istioSet();
  files.push_back({"ca-crl.pem", "crl\n", 0644});
  REQUIRE(writer.publish(files));
  REQUIRE(fs::is_symlink(dir / "ca-crl.pem"));

  files.pop_back();
  const auto next = writer.publish(files);
  REQUIRE(next);
  CHECK(next->changed);
  CHECK_FALSE(fs::exists(fs::symlink_status(dir / "ca-crl.pem")));
  CHECK(readFile(dir / "ca-cert.pem") == kCert);
  CHECK(writer.readCurrent({"ca-crl.pem"}).value().empty());
}

TEST_CASE("hidden files travel with the generation but get no top-level link", "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  auto files = istioSet();
  files.push_back({"agent-state.json", R"({"phase":1})", 0644, true});
  const auto first = writer.publish(files);
  REQUIRE(first);
  CHECK_FALSE(fs::exists(fs::symlink_status(dir / "agent-state.json")));
  CHECK(readFile(dir / "..data/agent-state.json") == R"({"phase":1})");

  files.back().content = R"({"phase":2})";
  const auto second = writer.publish(files);
  REQUIRE(second);
  CHECK(second->changed);
  const auto read = writer.readCurrent({"root-cert.pem"}, {"agent-state.json"});
  REQUIRE(read);
  CHECK(read->at("agent-state.json").view() == R"({"phase":2})");
  CHECK(read->at("root-cert.pem").view() == kRoot);
}

TEST_CASE("names that are not plain file names are rejected before anything is written",
          "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  const std::string bad = GENERATE(std::string(""), std::string(".hidden"), std::string("..data"),
                                   std::string("a/b"), std::string("ca-cert.pem"));
  auto files = istioSet();
  files.push_back({bad, "x", 0644});  // "ca-cert.pem" is a duplicate
  const auto result = writer.publish(files);
  REQUIRE_FALSE(result);
  CHECK(result.error().code == ErrorCode::kInvalidArgument);
  CHECK(fs::is_empty(dir.path()));
  CHECK(writer.publish({}).error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("a file the writer does not own at a target name blocks publishing and changes nothing",
          "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  REQUIRE(writer.publish(istioSet()));
  SECTION("a regular file") { writeFile(dir / "ca-crl.pem", "someone else's\n"); }
  SECTION("a link to elsewhere") { fs::create_symlink("/etc/hostname", dir / "ca-crl.pem"); }
  const auto before = snapshot(dir.path());

  auto files = istioSet("cert v2\n");
  files.push_back({"ca-crl.pem", "crl\n", 0644});
  const auto result = writer.publish(files);
  REQUIRE_FALSE(result);
  CHECK(result.error().code == ErrorCode::kOutput);
  CHECK_THAT(result.error().message, Catch::Contains(dir / "ca-crl.pem"));
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("cleanupLeftovers removes crash leftovers and keeps the published generation",
          "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  SECTION("an empty directory is fine") { CHECK(writer.cleanupLeftovers()); }
  SECTION("a missing directory is an output error") {
    AtomicDirWriter missing(dir / "nope");
    CHECK(missing.cleanupLeftovers().error().code == ErrorCode::kOutput);
  }
  SECTION("orphans go, the published generation and foreign files stay") {
    const auto published = writer.publish(istioSet());
    REQUIRE(published);
    const auto before = snapshot(dir.path());
    for (const std::string orphan : {"..2020_01_02_03_04_05.000000001.AbCdEf",  // previous layout
                                     "..generations/..2020_01_02_03_04_05.000000002.AbCdEf"}) {
      fs::create_directory(dir / orphan);
      writeFile(dir / orphan + "/ca-key.pem", kKey);
    }
    fs::create_symlink("..2020_01_02_03_04_05.999999999.gone00", dir / "..data_tmp");
    fs::create_symlink("..generations/..2020_01_02_03_04_05.999999999.gone00", dir / "..generations/..data_tmp");
    fs::create_symlink("..data/ca-cert.pem", dir / "..generations/..link_tmp");
    fs::create_directory(dir / "..foreign");
    writeFile(dir / "notes.txt", "keep me\n");

    REQUIRE(writer.cleanupLeftovers());
    auto after = snapshot(dir.path());
    CHECK(after.erase("..foreign") == 1);
    CHECK(after.erase("notes.txt") == 1);
    CHECK(after == before);
    CHECK(writer.readCurrent({"ca-key.pem"}).value().at("ca-key.pem").view() == kKey);
  }
}

TEST_CASE("a failure before the commit point leaves the previous generation byte-identical",
          "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  const auto published = writer.publish(istioSet());
  REQUIRE(published);
  auto files = istioSet("cert v2\n");
  std::string reason;
  std::string extra_entry;

  SECTION("the kernel refuses a file name while the generation is written") {
    files.push_back({std::string(300, 'n'), "x", 0644});
    reason = "file name too long";
  }
  SECTION("..data_tmp is occupied by something that is not a link") {
    fs::create_directory(dir / "..generations/..data_tmp");
    extra_entry = "..generations/..data_tmp";
    reason = "file exists";
  }
  auto before = snapshot(dir.path());
  const auto result = writer.publish(files);
  REQUIRE_FALSE(result);
  CHECK(result.error().code == ErrorCode::kOutput);
  CHECK_THAT(result.error().message, Catch::Contains(reason));
  CHECK_THAT(result.error().message, !Catch::Contains("KEY-MARKER"));
  CHECK(snapshot(dir.path()) == before);
  CHECK(generationDirs(dir.path()).size() == (extra_entry.empty() ? 1U : 2U));
  CHECK(readFile(dir / "ca-cert.pem") == kCert);
}

// Shared between the test and its forked reader; lock-free atomics work across fork.
struct ReaderCounts {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> stable_sets{0};     // ..data unchanged during the read
  std::atomic<std::uint64_t> stable_mixed{0};    // ... but not one generation: must stay 0
  std::atomic<std::uint64_t> stable_missing{0};  // ... but a file missing: must stay 0
  std::atomic<std::uint64_t> straddling{0};      // a swap happened during the read
  std::atomic<std::uint64_t> straddling_mixed{0};  // expected now and then; not asserted
  std::atomic<std::uint64_t> pinned_sets{0};     // read through one opened ..data
  std::atomic<std::uint64_t> pinned_mixed{0};    // must stay 0
  std::atomic<std::uint64_t> generations_seen{0};
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

constexpr const char* kNames[] = {"ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"};

// Async-signal-safe only (open/read/readlink, stack buffers): the child of a fork in a
// possibly multi-threaded test binary must not allocate. Returns the generation number in
// the file, or -1 when it cannot be read.
long readGenerationAt(int dirfd, const char* name) {
  const int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[256];
  const ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 12 || buf[0] != 'g') return -1;
  long v = 0;
  for (int i = 4; i < 12; ++i) v = v * 10 + (buf[i] - '0');  // "gen 00000042 ..."
  return v;
}

bool readLinkInto(int dirfd, const char* name, char (&out)[256]) {
  const ssize_t n = readlinkat(dirfd, name, out, sizeof out - 1);
  if (n < 0) return false;
  out[n] = '\0';
  return true;
}

[[noreturn]] void readerLoop(const char* dir, ReaderCounts* c) {
  const int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long last = -1;
  while (!c->stop.load()) {
    char before[256], after[256];
    long gens[4];
    const bool had_before = readLinkInto(dirfd, "..data", before);
    for (int i = 0; i < 4; ++i) gens[i] = readGenerationAt(dirfd, kNames[i]);
    const bool stable = had_before && readLinkInto(dirfd, "..data", after) && strcmp(before, after) == 0;
    const bool missing = gens[0] < 0 || gens[1] < 0 || gens[2] < 0 || gens[3] < 0;
    const bool mixed = gens[1] != gens[0] || gens[2] != gens[0] || gens[3] != gens[0];
    if (!stable) {
      c->straddling.fetch_add(1);
      if (!missing && mixed) c->straddling_mixed.fetch_add(1);
    } else if (missing) {
      c->stable_missing.fetch_add(1);
    } else {
      c->stable_sets.fetch_add(1);
      if (mixed) c->stable_mixed.fetch_add(1);
      if (gens[0] != last) c->generations_seen.fetch_add(1);
      last = gens[0];
    }
    // A careful reader: resolve ..data once and read every file from that directory.
    const int gen = openat(dirfd, "..data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (gen < 0) continue;
    for (int i = 0; i < 4; ++i) gens[i] = readGenerationAt(gen, kNames[i]);
    close(gen);
    if (gens[0] < 0 || gens[1] < 0 || gens[2] < 0 || gens[3] < 0) continue;  // removed meanwhile
    c->pinned_sets.fetch_add(1);
    if (gens[1] != gens[0] || gens[2] != gens[0] || gens[3] != gens[0]) c->pinned_mixed.fetch_add(1);
  }
  _exit(0);
}

std::vector<std::string> numberedContents(long generation) {
  std::vector<std::string> out;
  for (const char* name : kNames) {
    out.push_back(fmt::format("gen {:08d} {}\n{}", generation, name, std::string(200, 'x')));
  }
  return out;
}

TEST_CASE("a concurrent reader never sees a mixed set while generations are swapped",
          "[atomic_writer]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  auto publishGeneration = [&](long n) {
    const auto contents = numberedContents(n);
    std::vector<OutputFile> files;
    for (std::size_t i = 0; i < 4; ++i) files.push_back({kNames[i], contents[i], i == 1 ? 0600U : 0644U});
    const auto r = writer.publish(files);
    REQUIRE(r);
    REQUIRE(r->changed);
  };
  publishGeneration(0);

  void* mem = mmap(nullptr, sizeof(ReaderCounts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  auto* counts = new (mem) ReaderCounts();
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) readerLoop(dir.path().c_str(), counts);
  struct Reaper {  // stops and reaps the reader even when an assertion below fails
    pid_t pid;
    ReaderCounts* c;
    int status = -1;
    void reap() {
      if (pid < 0) return;
      c->stop.store(true);
      waitpid(pid, &status, 0);
      pid = -1;
    }
    ~Reaper() { reap(); }
  } reaper{child, counts};

  // Bounded waits, not timing assertions: they only keep a broken reader from hanging the run.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (counts->stable_sets.load() == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  long n = 1;
  // At least 300 swaps, and on until the reader has read 1000 sets and watched 50 swaps.
  const auto reader_done = [&] {
    return counts->stable_sets.load() >= 1000 && counts->generations_seen.load() >= 50;
  };
  for (; n <= 300 || (!reader_done() && n < 50000); ++n) publishGeneration(n);
  reaper.reap();

  REQUIRE(WIFEXITED(reaper.status));
  REQUIRE(WEXITSTATUS(reaper.status) == 0);
  INFO(fmt::format("publishes={} stable={} straddling={} (mixed {}) pinned={} generations_seen={}", n,
                   counts->stable_sets.load(), counts->straddling.load(), counts->straddling_mixed.load(),
                   counts->pinned_sets.load(), counts->generations_seen.load()));
  CHECK(counts->stable_mixed.load() == 0);
  CHECK(counts->stable_missing.load() == 0);
  CHECK(counts->pinned_mixed.load() == 0);
  CHECK(counts->stable_sets.load() >= 1000);
  CHECK(counts->pinned_sets.load() >= 300);
  CHECK(counts->generations_seen.load() >= 50);
  CHECK(generationDirs(dir.path()).size() == 1);
  counts->~ReaderCounts();
  munmap(mem, sizeof(ReaderCounts));
}

// istiod's view of the output directory: one non-recursive inotify(7) watch with every event
// its fsnotify watcher asks for. fsnotify maps IN_CREATE and IN_MOVED_TO to Create and
// IN_MODIFY (and IN_CLOSE_WRITE) to Write; istiod reloads on those two.
class DirWatch {
 public:
  static constexpr std::uint32_t kMask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_MODIFY | IN_CLOSE_WRITE |
                                         IN_ATTRIB | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF;
  static constexpr std::uint32_t kReloads = IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE;

  explicit DirWatch(const std::string& dir) : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    REQUIRE(fd_ >= 0);
    REQUIRE(inotify_add_watch(fd_, dir.c_str(), kMask) >= 0);
  }
  ~DirWatch() { close(fd_); }
  DirWatch(const DirWatch&) = delete;
  DirWatch& operator=(const DirWatch&) = delete;

  struct Event {
    std::uint32_t mask;
    std::string name;
  };
  // Every event queued so far. The kernel queues an event before the system call that
  // causes it returns, so nothing is waited for.
  std::vector<Event> drain() {
    std::vector<Event> out;
    alignas(inotify_event) char buf[64 * 1024];
    for (;;) {
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        REQUIRE(errno == EAGAIN);
        return out;
      }
      for (ssize_t off = 0; off < n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
        REQUIRE((e->mask & IN_Q_OVERFLOW) == 0);
        out.push_back({e->mask, e->len > 0 ? std::string(e->name) : std::string()});
        off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      }
    }
  }

 private:
  int fd_;
};

std::string describe(const std::vector<DirWatch::Event>& events) {
  std::string out;
  for (const auto& e : events) out += fmt::format("{:#x} '{}'\n", e.mask, e.name);
  return out;
}

// The names of the events that make istiod reload, in order.
std::vector<std::string> reloadEvents(const std::vector<DirWatch::Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if ((e.mask & DirWatch::kReloads) != 0) out.push_back(e.name);
  }
  return out;
}

TEST_CASE("a republish shows istiod's directory watch only the arrival of ..data", "[atomic_writer][inotify]") {
  TempDir dir;
  AtomicDirWriter writer(dir.path());
  SystemClock clock;
  {  // init: lock, clean up, first publish, before istiod starts and watches.
    auto lock = DirLock::acquire(dir.path(), "init", Duration::zero(), clock);
    REQUIRE(lock);
    REQUIRE(writer.cleanupLeftovers());
    REQUIRE(writer.publish(istioSet()));
  }
  std::vector<DirWatch::Event> events;
  {
    DirWatch watch(dir.path());
    // The sidecar, while istiod runs: start (lock, cleanup), then publishes under the lock.
    auto lock = DirLock::acquire(dir.path(), "sidecar", Duration::zero(), clock);
    REQUIRE(lock);
    REQUIRE(writer.cleanupLeftovers());
    const auto started = watch.drain();
    INFO(describe(started));
    CHECK(reloadEvents(started).empty());

    const auto v2 = writer.publish(istioSet("cert v2\n"));
    REQUIRE(v2);
    REQUIRE(v2->changed);
    events = watch.drain();
    INFO(describe(events));
    // Exactly one event for the republish, and it is the commit: ..data already names the
    // complete new generation when istiod's timer is armed.
    REQUIRE(events.size() == 1);
    CHECK(events[0].name == "..data");
    CHECK((events[0].mask & IN_MOVED_TO) != 0);
    CHECK(readFile(dir / "ca-cert.pem") == "cert v2\n");

    const auto same = writer.publish(istioSet("cert v2\n"));
    REQUIRE(same);
    CHECK_FALSE(same->changed);
    const auto none = watch.drain();
    INFO(describe(none));
    CHECK(none.empty());

    REQUIRE(writer.publish(istioSet("cert v3\n")));
    const auto third = watch.drain();
    INFO(describe(third));
    CHECK(reloadEvents(third) == std::vector<std::string>{"..data"});
    CHECK(third.size() == 1);
  }
  CHECK(generationDirs(dir.path()).size() == 1);
}

TEST_CASE("a directory written by the previous layout is adopted, read and migrated",
          "[atomic_writer][inotify]") {
  TempDir dir;
  // The previous layout: the generation and ..data's target next to the top-level links.
  const std::string legacy = "..2025_01_02_03_04_05.000000001.Legacy";
  fs::create_directory(dir / legacy);
  for (const auto& f : istioSet()) {
    writeFile(dir / legacy + "/" + f.name, std::string(f.content));
    fs::permissions(dir / legacy + "/" + f.name, static_cast<fs::perms>(f.mode), fs::perm_options::replace);
    fs::create_symlink("..data/" + f.name, dir / f.name);
  }
  fs::create_symlink(legacy, dir / "..data");
  AtomicDirWriter writer(dir.path());
  CHECK(writer.readCurrent({"ca-cert.pem"}).value().at("ca-cert.pem").view() == kCert);

  DirWatch watch(dir.path());
  REQUIRE(writer.cleanupLeftovers());  // at start: the one event that makes ..generations
  CHECK(reloadEvents(watch.drain()) == std::vector<std::string>{"..generations"});
  CHECK(fs::is_directory(dir / legacy));  // still what ..data points to

  SECTION("identical content is adopted without a new generation") {
    const auto same = writer.publish(istioSet());
    REQUIRE(same);
    CHECK_FALSE(same->changed);
    CHECK(same->generation == legacy);
    CHECK(watch.drain().empty());
  }
  SECTION("new content moves to ..generations and the old generation is removed") {
    const auto next = writer.publish(istioSet("cert v2\n"));
    REQUIRE(next);
    CHECK(next->changed);
    const auto events = watch.drain();
    INFO(describe(events));
    CHECK(reloadEvents(events) == std::vector<std::string>{"..data"});
    CHECK(fs::read_symlink(dir / "..data").string() == next->generation);
    CHECK(generationDirs(dir.path()) == std::vector<std::string>{next->generation});
    CHECK(readFile(dir / "ca-cert.pem") == "cert v2\n");
  }
}

TEST_CASE("isTmpfs tells memory-backed directories from disk-backed ones", "[atomic_writer]") {
  if (fs::is_directory("/dev/shm")) {
    CHECK(isTmpfs("/dev/shm").value());
  } else {
    WARN("no /dev/shm on this machine: the positive tmpfs case is not checked");
  }
  CHECK_FALSE(isTmpfs(CACERTS_SOURCE_DIR).value());
  CHECK_FALSE(isTmpfs("/proc").value());
  const auto missing = isTmpfs("/nonexistent/cacerts");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::kOutput);
  CHECK_THAT(missing.error().message, Catch::Contains("/nonexistent/cacerts"));
}

TEST_CASE("ensureWritableDir accepts a writable directory and names what is wrong otherwise",
          "[atomic_writer]") {
  TempDir dir;
  CHECK(ensureWritableDir(dir.path()));
  const auto missing = ensureWritableDir(dir / "nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::kOutput);
  CHECK_THAT(missing.error().message, Catch::Contains(dir / "nope") && Catch::Contains("no such file"));
  writeFile(dir / "file", "x");
  const auto file = ensureWritableDir(dir / "file");
  REQUIRE_FALSE(file);
  CHECK_THAT(file.error().message, Catch::Contains("not a directory"));
}

}  // namespace
}  // namespace cacerts::testing
