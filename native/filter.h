// Classic BPF socket filters: parsing a JS program and attaching it without the open-to-attach race.
// See: socket(7) SO_ATTACH_FILTER, filter(2) / Documentation/networking/filter.rst.
#pragma once

#include <linux/filter.h>
#include <napi.h>

#include <vector>

#include "errors.h"

namespace cnt {

// BPF_MAXINSNS: the kernel refuses longer classic programs.
constexpr size_t kMaxFilterInstructions = 4096;

// Reads `value` as an array of { code, jt, jf, k }. On bad input throws a TypeError that names
// `argName` and the offending element, and returns false.
bool ParseFilterProgram(Napi::Env env, const Napi::Value& value, const char* argName, std::vector<sock_filter>* out);

// Attaches a program that drops everything ("ret #0").
SysError AttachDropAll(int fd);

// Discards everything already queued on the socket (recv with MSG_DONTWAIT until EAGAIN).
SysError DrainQueue(int fd);

// Drop-all, drain, then the real program: SO_ATTACH_FILTER replaces the old filter atomically, so no
// packet queued under an earlier (or no) filter reaches the caller.
SysError AttachFilterSafely(int fd, const std::vector<sock_filter>& program);

}  // namespace cnt
