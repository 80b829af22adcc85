// Locking a process down after it has dropped to an unprivileged user: no_new_privs on every thread
// (no execve can gain privileges: setuid binaries, file capabilities) and not dumpable (no ptrace, no
// core dump, /proc/PID files owned by root, even for processes of the same user).
// See: prctl(2) PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE; seccomp(2) SECCOMP_FILTER_FLAG_TSYNC.
#pragma once

#include "errors.h"

namespace cnt {

struct Restrictions {
  bool no_new_privs = false;   // set on the calling thread (read back)
  bool all_threads = false;    // also on every other thread of the process (seccomp TSYNC)
  SysError threads_error;      // why not, when all_threads is false
  bool dumpable = true;        // read back after the change
};

// Sets no_new_privs, then (when `not_dumpable`) PR_SET_DUMPABLE 0. A failure of the per-thread part
// is reported in `threads_error`, not as the result: the calling thread is covered either way.
SysError RestrictProcess(bool not_dumpable, Restrictions* out);

}  // namespace cnt
