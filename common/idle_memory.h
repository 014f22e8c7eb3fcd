// Giving memory back before a long-running process goes idle.
#pragma once

namespace cacerts {

// Returns the heap's free pages to the kernel (malloc_trim) and drops this process's
// mappings of the executable's read-only pages (code and constants, never a page written
// since it was mapped): they stay in the page cache and are mapped again, without I/O, by
// the next code that runs (the kernel maps 64 KiB around each such fault, so a little code
// brings back more than it touches). Only the executable's own pages: shared libraries
// are left alone. Costs well under a millisecond; call it only when about to sleep for long, so the pages a renewal
// touched are not kept resident for the hours until the next one. Never fails (a step
// that cannot be done is skipped).
void releaseIdleMemory();

}  // namespace cacerts
