// Runs a piece of code inside another network namespace on the calling thread, and always comes back.
// A socket keeps the namespace it was created in, so this is only needed around socket(2).
// See: setns(2), network_namespaces(7).
#pragma once

#include <string>

#include "errors.h"

namespace cnt {

class NetnsGuard {
 public:
  // Enters the namespace at `path` (e.g. /run/netns/NAME). On failure error() is set and the thread
  // is still in its own namespace.
  explicit NetnsGuard(const std::string& path);
  // Restores the thread's original namespace. Aborts the process if that is impossible: a JS thread
  // silently left in a foreign namespace would send every later packet from the wrong host.
  ~NetnsGuard();

  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

  const SysError& error() const { return error_; }

 private:
  int original_fd_ = -1;
  bool entered_ = false;
  SysError error_;
};

}  // namespace cnt
