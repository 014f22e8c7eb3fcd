// Checks on the output directory before anything is written into it.
#pragma once

#include <string>

#include "common/result.h"

namespace cacerts {

// True when dir lives on a memory-backed filesystem (tmpfs or ramfs), where a private key
// never reaches a disk. Errors: kOutput naming dir (e.g. it does not exist).
Result<bool> isTmpfs(const std::string& dir);

// OK when dir exists, is a directory (symlinks followed) and the effective user may create
// files in it. Errors: kOutput naming dir and the reason.
Status ensureWritableDir(const std::string& dir);

// The OS reason for errno value err as an operator reads it: "no space left on device",
// "read-only file system"; permission errors also name the uid the agent runs as.
std::string describeOsError(int err);

}  // namespace cacerts
