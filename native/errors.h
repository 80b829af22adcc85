// Turns a failed system call into a real JS Error with `code` (errno name), `errno` and `syscall`, and
// argument mistakes into TypeErrors that say how to call the function.
// See: errno(3), strerror(3).
#pragma once

#include <napi.h>

#include <string>

namespace cnt {

// A failed system call: err == 0 means success.
struct SysError {
  int err = 0;
  const char* syscall = "";
  // Extra words appended to the message: what was being done, or how to fix it.
  std::string detail;

  bool ok() const { return err == 0; }
  static SysError Ok() { return SysError{}; }
  static SysError FromErrno(const char* syscall, std::string detail = std::string());
};

// "EPERM", "EADDRINUSE", ...; "E<num>" for numbers the table does not know.
std::string ErrnoName(int err);

// `syscall(2) failed: CODE (strerror): detail`, with code/errno/syscall properties.
Napi::Error MakeSysError(Napi::Env env, const SysError& e);
void ThrowSysError(Napi::Env env, const SysError& e);

// Throws a TypeError. Callers return right after (C++ exceptions are disabled).
void ThrowUsage(Napi::Env env, const std::string& message);

}  // namespace cnt
