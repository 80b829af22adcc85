// Enter a network namespace for the duration of a scope. See: setns(2), network_namespaces(7), proc(5).
#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cnt {

NetnsGuard::NetnsGuard(const std::string& path) {
  // thread-self, not self: setns(2) changes only the calling thread.
  original_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original_fd_ < 0) {
    error_ = SysError::FromErrno("open", "cannot open /proc/thread-self/ns/net to come back to");
    return;
  }
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    error_ = SysError::FromErrno("open", "cannot open network namespace " + path);
    return;
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    int err = errno;
    std::string detail;
    if (err == EPERM) {
      detail = "entering network namespace " + path + " needs CAP_SYS_ADMIN (run as root)";
    } else if (err == EINVAL) {
      detail = path + " is not a network namespace";
    } else {
      detail = "cannot enter network namespace " + path;
    }
    close(target);
    error_.err = err;
    error_.syscall = "setns";
    error_.detail = detail;
    return;
  }
  close(target);
  entered_ = true;
}

NetnsGuard::~NetnsGuard() {
  if (entered_ && setns(original_fd_, CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "calico_nettest: cannot return to the original network namespace: setns(2): %s\n",
                 std::strerror(errno));
    std::abort();
  }
  if (original_fd_ >= 0) close(original_fd_);
}

}  // namespace cnt
