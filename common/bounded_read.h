// Reading files an operator or a hostile peer may have put anywhere: the CA files of a
// directory `check` judges, the generations the writer re-reads, credential files.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/secret.h"

namespace cacerts {

// Reads a file that may be hostile or not a file at all, as every reader here must:
// opened O_NONBLOCK (a FIFO cannot hang the reader), symlinks followed but only a regular
// file accepted (a link to /dev/zero is refused), at most kMaxReadBytes (a huge or sparse
// file is refused from its size, before any read). `name` is relative to dirfd (AT_FDCWD
// for a plain path); `path` names it in messages. The buffer is wiped (it may hold a key).
// nullopt when the file does not exist. Errors: kOutput naming `path` and what is wrong.
inline constexpr std::size_t kMaxReadBytes = 1 << 20;  // far above any CA bundle
Result<std::optional<Secret>> readBoundedFile(int dirfd, const std::string& name, const std::string& path);

}  // namespace cacerts
