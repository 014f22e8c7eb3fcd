// Keeps the CA key and the Vault token out of core dumps and away from other processes.
#pragma once

#include "common/result.h"

namespace cacerts {

// Makes the calling process non-dumpable (PR_SET_DUMPABLE 0: no core file, and its
// /proc/<pid>/mem, environ and the like belong to root, so another process of the same
// uid cannot read its memory) and sets RLIMIT_CORE to 0 (so a core_pattern that pipes to a
// helper gets nothing either). Call first thing in main, before any thread exists and
// before any secret is read; both settings are inherited by every thread. The dumpable
// flag is reset by execve, which the agent never calls.
// Errors: kInternal naming the call that failed.
Status disableCoreDumps();

}  // namespace cacerts
