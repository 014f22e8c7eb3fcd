#include "common/idle_memory.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace cacerts {
namespace {

// The executable's non-writable file mappings that hold no private copy of a page, from
// /proc/self/smaps. MADV_DONTNEED on a private file mapping only drops the page-table
// entries: the next access maps the page-cache page again. That is only right for pages
// never written: relocated ones (RELRO: the GOT, .data.rel.ro, written at start-up, then
// made read-only) are private copies that would revert to the file's bytes, so a mapping
// with any anonymous page is left alone, as are writable ones (data, heap).
void dropExecutableReadOnlyPages() {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  std::FILE* smaps = std::fopen("/proc/self/smaps", "re");
  if (smaps == nullptr) return;
  char line[4352];
  unsigned long start = 0, end = 0;
  bool candidate = false;  // the mapping whose fields are being read
  while (std::fgets(line, sizeof line, smaps) != nullptr) {
    unsigned long s = 0, e = 0;
    char perms[5] = {};
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &s, &e, perms, &path_at) >= 3 && path_at > 0) {
      char* path = line + path_at;
      path[std::strcspn(path, "\n")] = '\0';
      candidate = perms[1] != 'w' && std::strcmp(path, exe) == 0;
      start = s;
      end = e;
      continue;
    }
    unsigned long anonymous_kib = 0;
    if (candidate && std::sscanf(line, "Anonymous: %lu kB", &anonymous_kib) == 1) {
      if (anonymous_kib == 0) ::madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED);
      candidate = false;
    }
  }
  std::fclose(smaps);
}

}  // namespace

void releaseIdleMemory() {
  ::malloc_trim(0);
  dropExecutableReadOnlyPages();
}

}  // namespace cacerts
