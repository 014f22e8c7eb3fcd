// AtomicDirWriter: publishes a set of files into a directory as one unit, the way kubelet's
// AtomicWriter fills Secret and ConfigMap volumes, so that istiod's directory watcher never
// reloads a half-written CA.
//
// Layout after a publish (all symlink targets relative, because the agent and istiod mount
// the volume at different paths):
//
//   dir/..generations/                                staging area, mode 0755, created once
//   dir/..generations/..2026_11_23_15_04_05.123456789.Ab3xYz/   a generation, mode 0755
//   dir/..data -> ..generations/..2026_11_23_15_04_05.123456789.Ab3xYz
//   dir/ca-cert.pem -> ..data/ca-cert.pem            one link per visible name
//
// Why ..generations: istiod watches dir non-recursively and arms a single 100 ms reload
// timer on the first Create or Write event there, then reads the files one by one. Every
// generation and every temporary link is made inside ..generations, which that watch does
// not see; the only event a republish causes in dir is the arrival of ..data (IN_MOVED_TO,
// a Create to fsnotify), at the commit point, when the new set is complete. Creating
// ..generations itself is an event, so publish() and cleanupLeftovers() create it when
// absent, which the agent does before istiod starts (init, and every start of the sidecar).
// The previous layout (generations next to ..data, ..data -> ..<timestamp>...) is still
// adopted and read, and its generations are removed once ..data points elsewhere.
//
// publish() steps, marked // (n) in the code:
//  (1) validate names (non-empty, no '/', no NUL, not starting with '.', no duplicates) and
//      refuse a name (published or reserved) whose top-level entry is not our own link into
//      ..data/ (someone else owns that file)
//  (2) if ..data holds exactly these names with identical bytes and modes, skip to (6)
//      without a new generation (changed=false)
//  (3) mkdir a new generation "..generations/..<UTC timestamp>.<random>" with mode 0755
//  (4) write each file O_CREAT|O_EXCL|O_NOFOLLOW, fchmod(mode) whatever the umask, fsync;
//      fsync the generation directory
//  (5) symlink ..generations/..data_tmp -> ..generations/<generation> (a target relative to
//      dir, where it will live); rename it across to dir/..data   <- commit point
//  (6) ensure a link name -> ..data/name for every visible name (made in ..generations and
//      renamed across; only when missing or wrong, so not on a republish)
//  (7) remove links into ..data/ for names no longer published, then older generations
//      (in ..generations and of the previous layout)
//  (8) fsync ..generations and the directory
//
// Guarantees: at every instant the top-level names resolve to one complete generation. A
// reader that opens several names one after another can still straddle a swap; istiod does
// not in practice because it reloads 100 ms after the event that the rename itself causes.
// A failure before the commit point removes the half-written generation and leaves the
// previous one byte-identical. A failure after it returns an error saying the generation
// was committed; publishing again repairs links and removes leftovers.
//
// Not thread-safe and one writer per directory: callers serialise publishes, and processes
// hold the directory's DirLock (common/dir_lock.h) around cleanupLeftovers() and publish().
// Whatever ..data points to when a generation is about to be removed is never removed.
// Only files the writer created are touched, plus stale links pointing into ..data/.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bounded_read.h"
#include "common/result.h"
#include "common/secret.h"

namespace cacerts {

struct OutputFile {
  std::string name;          // a plain file name, e.g. "ca-cert.pem"
  std::string_view content;  // may view key bytes held in a Secret; not copied
  mode_t mode = 0644;        // applied exactly, regardless of the process umask
  // Written into the generation but given no top-level link: small state that must change
  // together with the published material (e.g. the sidecar's root-rotation phase).
  bool hidden = false;
};

struct PublishResult {
  // What ..data points to, relative to the directory, e.g. "..generations/..2026_11_23_...".
  std::string generation;
  bool changed = false;    // false when ..data already held identical content
};


class AtomicDirWriter {
 public:
  static constexpr std::string_view kDataLink = "..data";
  static constexpr std::string_view kDataTmpLink = "..data_tmp";  // inside kGenerationsDir
  static constexpr std::string_view kGenerationsDir = "..generations";

  explicit AtomicDirWriter(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }

  // Creates ..generations when absent and removes leftovers of a crashed publish: generation
  // directories that ..data does not point to (in ..generations and of the previous layout)
  // and temporary links. Safe to call at every start. Errors: kOutput.
  Status cleanupLeftovers();

  // See the steps above. `reserved` names are refused in step (1) like the published ones
  // when a file of another owner holds them, though they are not published: a reader would
  // take such a file together with this set. Errors: kInvalidArgument for a bad name set;
  // kOutput naming the path and the OS reason ("no space left on device", ...).
  Result<PublishResult> publish(const std::vector<OutputFile>& files, const std::vector<std::string>& reserved = {});

  // Reads the published files as a reader sees them: `names` through their top-level
  // links, `hidden_names` from ..data/ directly, all from one generation (retried if a
  // publish swaps ..data meanwhile). Names that do not exist are absent from the map.
  // Errors: kNotFound when the directory or ..data is missing; kOutput otherwise.
  Result<std::map<std::string, Secret>> readCurrent(
      const std::vector<std::string>& names,
      const std::vector<std::string>& hidden_names = {}) const;

  // What ..data points to (see PublishResult::generation). Errors: kNotFound when there is none.
  Result<std::string> currentGeneration() const;

 private:
  std::string dir_;
};

}  // namespace cacerts
