#include "common/atomic_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <ctime>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "common/fs_check.h"

namespace cacerts {
namespace {

constexpr std::string_view kLinkTmp = "..link_tmp";  // temporary name for (6)
constexpr std::string_view kDataPrefix = "..data/";

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { close(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int close() { return fd_ < 0 ? 0 : ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

std::string join(const std::string& dir, std::string_view name) {
  return fmt::format("{}/{}", dir, name);
}

Error osError(std::string_view action, const std::string& path, int err = errno) {
  return Error{ErrorCode::kOutput, fmt::format("{} {}: {}", action, path, describeOsError(err))};
}

// Only directories shaped "..YYYY_MM_DD_HH_MM_SS.*" are generations this writer may remove.
bool isGenerationName(std::string_view name) {
  constexpr std::string_view kShape = "..0000_00_00_00_00_00.";
  if (name.size() <= kShape.size()) return false;
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(name[i])) != 0;
    if (kShape[i] == '0' ? !digit : name[i] != kShape[i]) return false;
  }
  return true;
}

// What ..data may point to: "..generations/<generation>" (current layout) or "<generation>"
// (the layout before ..generations existed, still adopted, read and cleaned up).
bool isPublishedTarget(std::string_view target) {
  const std::string prefix = std::string(AtomicDirWriter::kGenerationsDir) + "/";
  if (target.starts_with(prefix)) target.remove_prefix(prefix.size());
  return isGenerationName(target);
}

// The target of a symlink, or nullopt when name is absent or not a symlink.
std::optional<std::string> linkTarget(int dirfd, std::string_view name) {
  char buf[PATH_MAX];
  const ssize_t n = readlinkat(dirfd, std::string(name).c_str(), buf, sizeof buf);
  if (n < 0 || static_cast<std::size_t>(n) == sizeof buf) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

bool isDirAt(int dirfd, const std::string& name) {
  struct stat st {};
  return fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

Result<std::vector<std::string>> listDir(int dirfd, const std::string& path) {
  // A fresh descriptor: fdopendir takes ownership and keeps its own read position.
  const int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd < 0 ? nullptr : fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    return osError("list", path, err);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> owner(d, closedir);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* e = readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  if (errno != 0) return osError("list", path);
  return names;
}

Status removeGeneration(int dirfd, const std::string& dir, const std::string& gen) {
  const std::string path = join(dir, gen);
  Fd g(openat(dirfd, gen.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!g) return osError("open", path);
  ASSIGN_OR_RETURN(const auto entries, listDir(g.get(), path));
  for (const auto& e : entries) {
    if (unlinkat(g.get(), e.c_str(), 0) != 0) return osError("remove", join(path, e));
  }
  if (unlinkat(dirfd, gen.c_str(), AT_REMOVEDIR) != 0) return osError("remove", path);
  return ok();
}

// (2) True when generation gen holds exactly files: same names, bytes and modes.
bool generationMatches(int dirfd, const std::string& gen, const std::vector<OutputFile>& files) {
  Fd g(openat(dirfd, gen.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!g) return false;
  const auto entries = listDir(g.get(), gen);
  if (!entries || entries->size() != files.size()) return false;
  for (const auto& f : files) {
    struct stat st {};
    if (fstatat(g.get(), f.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & 07777) != (f.mode & 07777)) {
      return false;
    }
    const auto content = readBoundedFile(g.get(), f.name, gen);
    if (!content || !content->has_value() || (*content)->view() != f.content) return false;
  }
  return true;
}

// (3) mkdtemp gives a unique name atomically; the timestamp makes generations sortable by eye.
// `dir` is the ..generations directory; the result is the bare generation name.
Result<std::string> makeGenerationDir(const std::string& dir) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y_%m_%d_%H_%M_%S", &utc);
  std::string path = fmt::format("{}/..{}.{:09d}.XXXXXX", dir, stamp, ts.tv_nsec);
  if (mkdtemp(path.data()) == nullptr) return osError("create a generation directory in", dir);
  return path.substr(dir.size() + 1);
}

Status writeAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return osError("write", path);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok();
}

// (4) Errors name the file as the operator knows it (dir/name), not the hidden generation.
Status writeGeneration(int dirfd, const std::string& dir, const std::string& gen,
                       const std::vector<OutputFile>& files) {
  Fd g(openat(dirfd, gen.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!g) return osError("open", join(dir, gen));
  // mkdtemp creates 0700; istiod may run under another uid than the agent.
  if (fchmod(g.get(), 0755) != 0) return osError("chmod", join(dir, gen));
  for (const auto& f : files) {
    const std::string path = join(dir, f.name);
    // Created 0600 and widened afterwards: key bytes are never readable through a wider mode.
    Fd fd(openat(g.get(), f.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return osError("write", path);
    RETURN_IF_ERROR(writeAll(fd.get(), f.content, path));
    if (fchmod(fd.get(), f.mode & 07777) != 0) return osError("chmod", path);
    // Free on tmpfs, and what makes the generation survive a power cut on a disk-backed dir.
    if (fsync(fd.get()) != 0) return osError("write", path);
    if (fd.close() != 0) return osError("write", path);
  }
  if (fsync(g.get()) != 0) return osError("sync", join(dir, gen));
  return ok();
}

// Opens ..generations, creating it (0755: istiod may run under another uid) when absent.
// Creating it is an event in the watched directory, so the agent does it before istiod
// starts (init's first publish, every start's cleanupLeftovers) and never again.
Result<Fd> openGenerations(int dirfd, const std::string& dir) {
  const std::string name(AtomicDirWriter::kGenerationsDir);
  const bool created = mkdirat(dirfd, name.c_str(), 0755) == 0;
  if (!created && errno != EEXIST) return osError("create", join(dir, name));
  Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return osError("open", join(dir, name));
  // Whatever the umask; only when created, so that no later start touches it.
  if (created && fchmod(fd.get(), 0755) != 0) return osError("chmod", join(dir, name));
  return fd;
}

// Removes the temporary links a crashed publish may have left in `fd` (dir or ..generations).
Status removeTmpLinks(int fd, const std::string& path) {
  for (const std::string_view name : {AtomicDirWriter::kDataTmpLink, kLinkTmp}) {
    if (linkTarget(fd, name) && unlinkat(fd, std::string(name).c_str(), 0) != 0) {
      return osError("remove", join(path, name));
    }
  }
  return ok();
}

}  // namespace



Status AtomicDirWriter::cleanupLeftovers() {
  Fd dirfd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return osError("open output directory", dir_);
  ASSIGN_OR_RETURN(const Fd gens, openGenerations(dirfd.get(), dir_));
  const std::string gens_path = join(dir_, kGenerationsDir);
  const auto current = linkTarget(dirfd.get(), kDataLink);
  RETURN_IF_ERROR(removeTmpLinks(gens.get(), gens_path));
  ASSIGN_OR_RETURN(const auto nested, listDir(gens.get(), gens_path));
  for (const auto& e : nested) {
    if (isGenerationName(e) && current != join(std::string(kGenerationsDir), e) && isDirAt(gens.get(), e)) {
      RETURN_IF_ERROR(removeGeneration(gens.get(), gens_path, e));
    }
  }
  // Leftovers of the previous layout, where generations and temporary links sat next to ..data.
  RETURN_IF_ERROR(removeTmpLinks(dirfd.get(), dir_));
  ASSIGN_OR_RETURN(const auto entries, listDir(dirfd.get(), dir_));
  for (const auto& e : entries) {
    if (isGenerationName(e) && e != current && isDirAt(dirfd.get(), e)) {
      RETURN_IF_ERROR(removeGeneration(dirfd.get(), dir_, e));
    }
  }
  return ok();
}

Result<PublishResult> AtomicDirWriter::publish(const std::vector<OutputFile>& files,
                                               const std::vector<std::string>& reserved) {
  // (1)
  if (files.empty()) return Error{ErrorCode::kInvalidArgument, "publish: no files to publish"};
  std::set<std::string> all, visible;
  for (const auto& f : files) {
    if (f.name.empty() || f.name[0] == '.' || f.name.find('/') != std::string::npos ||
        f.name.find('\0') != std::string::npos) {
      return Error{ErrorCode::kInvalidArgument,
                   fmt::format("output file name '{}' is not a plain file name", f.name)};
    }
    if (!all.insert(f.name).second) {
      return Error{ErrorCode::kInvalidArgument, fmt::format("output file name '{}' given twice", f.name)};
    }
    if (!f.hidden) visible.insert(f.name);
  }
  Fd dirfd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return osError("open output directory", dir_);
  std::set<std::string> guarded = visible;
  guarded.insert(reserved.begin(), reserved.end());
  for (const auto& name : guarded) {
    struct stat st {};
    if (fstatat(dirfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return osError("inspect", join(dir_, name));
    }
    const auto target = linkTarget(dirfd.get(), name);
    if (!target || !target->starts_with(kDataPrefix)) {
      return Error{ErrorCode::kOutput,
                   fmt::format("{} exists and is not a link into {} (another tool owns it, and a reader "
                               "would take it together with the published files); remove it or publish into "
                               "another directory",
                               join(dir_, name), kDataPrefix)};
    }
  }

  ASSIGN_OR_RETURN(const Fd gens, openGenerations(dirfd.get(), dir_));
  const std::string gens_path = join(dir_, kGenerationsDir);

  PublishResult result;
  const auto current = linkTarget(dirfd.get(), kDataLink);
  if (current && isPublishedTarget(*current) && generationMatches(dirfd.get(), *current, files)) {  // (2)
    result = {*current, false};
  } else {
    ASSIGN_OR_RETURN(const std::string gen, makeGenerationDir(gens_path));  // (3)
    result = {join(std::string(kGenerationsDir), gen), true};
    const auto abandon = [&](Error e) -> Error {
      (void)removeGeneration(gens.get(), gens_path, gen);
      return e;
    };
    if (auto s = writeGeneration(gens.get(), dir_, gen, files); !s) return abandon(s.error());  // (4)
    // (5) Staged in ..generations and renamed across: the watched directory sees one event,
    // the arrival of ..data. A ..data_tmp left by a crash is ours (never committed); anything
    // else there is not.
    if (linkTarget(gens.get(), kDataTmpLink)) unlinkat(gens.get(), kDataTmpLink.data(), 0);
    if (symlinkat(result.generation.c_str(), gens.get(), kDataTmpLink.data()) != 0) {
      return abandon(osError("create link", join(gens_path, kDataTmpLink)));
    }
    if (renameat(gens.get(), kDataTmpLink.data(), dirfd.get(), kDataLink.data()) != 0) {
      const Error e = osError("rename to", join(dir_, kDataLink));
      unlinkat(gens.get(), kDataTmpLink.data(), 0);
      return abandon(e);
    }
  }

  const auto committed = [&](const Error& e) {
    return Error{e.code, fmt::format("generation {} is published, but: {}", result.generation, e.message)};
  };
  for (const auto& name : visible) {  // (6)
    const std::string want = std::string(kDataPrefix) + name;
    if (linkTarget(dirfd.get(), name) == want) continue;
    // Through a temporary link in ..generations and a rename, so that a wrong link is
    // replaced without a gap and the watched directory sees only the final name.
    if (linkTarget(gens.get(), kLinkTmp)) unlinkat(gens.get(), kLinkTmp.data(), 0);
    if (symlinkat(want.c_str(), gens.get(), kLinkTmp.data()) != 0 ||
        renameat(gens.get(), kLinkTmp.data(), dirfd.get(), name.c_str()) != 0) {
      return committed(osError("create link", join(dir_, name)));
    }
  }
  auto entries = listDir(dirfd.get(), dir_);  // (7)
  if (!entries) return committed(entries.error());
  for (const auto& e : *entries) {
    const auto target = visible.count(e) ? std::nullopt : linkTarget(dirfd.get(), e);
    if (target && target->starts_with(kDataPrefix) && unlinkat(dirfd.get(), e.c_str(), 0) != 0) {
      return committed(osError("remove stale link", join(dir_, e)));
    }
  }
  // ..data is read again for every candidate: whatever it points to now stays, even if a
  // writer that ignored the directory lock swapped it since this publish committed.
  const auto keep = [&](const std::string& target) {
    return target == result.generation || target == linkTarget(dirfd.get(), kDataLink);
  };
  auto nested = listDir(gens.get(), gens_path);
  if (!nested) return committed(nested.error());
  for (const auto& e : *nested) {
    if (isGenerationName(e) && !keep(join(std::string(kGenerationsDir), e)) && isDirAt(gens.get(), e)) {
      if (auto s = removeGeneration(gens.get(), gens_path, e); !s) return committed(s.error());
    }
  }
  for (const auto& e : *entries) {  // generations of the previous layout
    if (isGenerationName(e) && !keep(e) && isDirAt(dirfd.get(), e)) {
      if (auto s = removeGeneration(dirfd.get(), dir_, e); !s) return committed(s.error());
    }
  }
  if (fsync(gens.get()) != 0) return committed(osError("sync", gens_path));
  if (fsync(dirfd.get()) != 0) return committed(osError("sync", dir_));  // (8)
  return result;
}

Result<std::map<std::string, Secret>> AtomicDirWriter::readCurrent(
    const std::vector<std::string>& names, const std::vector<std::string>& hidden_names) const {
  Fd dirfd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd && errno == ENOENT) {
    return Error{ErrorCode::kNotFound, fmt::format("output directory {} does not exist", dir_)};
  }
  if (!dirfd) return osError("open output directory", dir_);
  // Generation names are never reused, so an unchanged ..data before and after the reads
  // proves that they all came from one generation.
  for (int attempt = 0; attempt < 5; ++attempt) {
    const auto before = linkTarget(dirfd.get(), kDataLink);
    if (!before) {
      return Error{ErrorCode::kNotFound,
                   fmt::format("{} holds no published generation ({} is missing)", dir_, kDataLink)};
    }
    std::map<std::string, Secret> out;
    const auto readInto = [&](const std::string& key, const std::string& rel) -> Status {
      ASSIGN_OR_RETURN(auto content, readBoundedFile(dirfd.get(), rel, join(dir_, rel)));
      if (content) out.emplace(key, std::move(*content));
      return ok();
    };
    for (const auto& n : names) RETURN_IF_ERROR(readInto(n, n));
    for (const auto& n : hidden_names) RETURN_IF_ERROR(readInto(n, std::string(kDataPrefix) + n));
    if (linkTarget(dirfd.get(), kDataLink) == before) return out;
  }
  return Error{ErrorCode::kOutput,
               fmt::format("{} kept changing while being read; is another writer publishing into it?", dir_)};
}

Result<std::string> AtomicDirWriter::currentGeneration() const {
  if (auto target = linkTarget(AT_FDCWD, join(dir_, kDataLink))) return *std::move(target);
  return Error{ErrorCode::kNotFound,
               fmt::format("{} holds no published generation ({} is missing)", dir_, kDataLink)};
}

}  // namespace cacerts
