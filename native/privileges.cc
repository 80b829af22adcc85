// no_new_privs and PR_SET_DUMPABLE for the whole process. See: prctl(2), seccomp(2), ptrace(2).
#include "privileges.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace cnt {

SysError RestrictProcess(bool not_dumpable, Restrictions* out) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return SysError::FromErrno("prctl", "PR_SET_NO_NEW_PRIVS");
  out->no_new_privs = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
  // no_new_privs is per thread, and Node's V8 and libuv threads already run. A seccomp filter that
  // allows everything, installed with TSYNC, is the kernel's one way to set no_new_privs on all of
  // them (seccomp_sync_threads copies the caller's flag). Allow-all costs nothing measurable: the
  // kernel caches a constant verdict per syscall.
  struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_fprog prog = {1, allow};
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (r == 0) {
    out->all_threads = true;
  } else if (r > 0) {
    errno = EAGAIN;
    out->threads_error = SysError::FromErrno("seccomp", "thread " + std::to_string(r) + " could not be synchronised");
  } else {
    out->threads_error = SysError::FromErrno("seccomp", "SECCOMP_FILTER_FLAG_TSYNC");
  }
  if (not_dumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return SysError::FromErrno("prctl", "PR_SET_DUMPABLE");
  out->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1;
  return SysError::Ok();
}

}  // namespace cnt
