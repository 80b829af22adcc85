// cBPF program parsing and race-free attach. See: socket(7) SO_ATTACH_FILTER, recv(2).
#include "filter.h"

#include <sys/socket.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <string>

namespace cnt {

namespace {

const char kFilterUsage[] =
    "Usage: attachFilter(program: { code: number, jt: number, jf: number, k: number }[]) with 1..4096 "
    "instructions";

bool ReadField(Napi::Env env, const Napi::Object& insn, const char* name, double max, const std::string& where,
               const char* argName, double* out) {
  Napi::Value v = insn.Get(name);
  if (env.IsExceptionPending()) return false;  // a throwing getter
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && std::floor(d) == d && d >= 0 && d <= max) {
      *out = d;
      return true;
    }
  }
  char range[32];
  std::snprintf(range, sizeof range, "0..%.0f", max);
  ThrowUsage(env, std::string(argName) + where + "." + name + " must be an integer in " + range + ". " + kFilterUsage);
  return false;
}

}  // namespace

bool ParseFilterProgram(Napi::Env env, const Napi::Value& value, const char* argName,
                        std::vector<sock_filter>* out) {
  if (!value.IsArray()) {
    ThrowUsage(env, std::string(argName) + " must be an array of BPF instructions. " + kFilterUsage);
    return false;
  }
  Napi::Array array = value.As<Napi::Array>();
  const uint32_t length = array.Length();
  if (length == 0 || length > kMaxFilterInstructions) {
    ThrowUsage(env, std::string(argName) + " must have 1.." + std::to_string(kMaxFilterInstructions) +
                        " instructions, not " + std::to_string(length) + ". " + kFilterUsage);
    return false;
  }
  out->clear();
  out->reserve(length);
  for (uint32_t i = 0; i < length; ++i) {
    const std::string where = "[" + std::to_string(i) + "]";
    Napi::Value element = array.Get(i);
    if (env.IsExceptionPending()) return false;
    if (!element.IsObject() || element.IsArray()) {
      ThrowUsage(env, std::string(argName) + where + " must be an object { code, jt, jf, k }. " + kFilterUsage);
      return false;
    }
    Napi::Object insn = element.As<Napi::Object>();
    double code, jt, jf, k;
    if (!ReadField(env, insn, "code", 0xffff, where, argName, &code) ||
        !ReadField(env, insn, "jt", 0xff, where, argName, &jt) ||
        !ReadField(env, insn, "jf", 0xff, where, argName, &jf) ||
        !ReadField(env, insn, "k", 4294967295.0, where, argName, &k)) {
      return false;
    }
    out->push_back(sock_filter{static_cast<uint16_t>(code), static_cast<uint8_t>(jt), static_cast<uint8_t>(jf),
                               static_cast<uint32_t>(k)});
  }
  return true;
}

static SysError Attach(int fd, const sock_filter* insns, size_t count, const char* what) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(count);
  prog.filter = const_cast<sock_filter*>(insns);
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
    return SysError::FromErrno("setsockopt", std::string("SO_ATTACH_FILTER (") + what + ")");
  }
  return SysError::Ok();
}

SysError AttachDropAll(int fd) {
  static const sock_filter kDropAll[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  return Attach(fd, kDropAll, 1, "drop-all");
}

SysError DrainQueue(int fd) {
  // With drop-all attached nothing new is queued, so this ends; the cap is only a guard.
  char scratch[1];
  for (int i = 0; i < 1 << 20; ++i) {
    ssize_t n = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC);
    if (n >= 0) continue;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return SysError::Ok();
    // A pending socket error (e.g. ENETDOWN) is reported once and cleared; keep draining.
    if (errno == ENETDOWN || errno == ENOBUFS || errno == ENOMEM) continue;
    return SysError::FromErrno("recv", "draining the receive queue");
  }
  return SysError::Ok();
}

SysError AttachFilterSafely(int fd, const std::vector<sock_filter>& program) {
  SysError e = AttachDropAll(fd);
  if (!e.ok()) return e;
  e = DrainQueue(fd);
  if (!e.ok()) return e;
  return Attach(fd, program.data(), program.size(), "program");
}

}  // namespace cnt
