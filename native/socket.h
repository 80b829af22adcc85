// The JS-visible socket: an ObjectWrap over one raw or packet socket fd, with race-free filter attach,
// sendto, and batched asynchronous receive (libuv poll + recvmmsg).
// See: raw(7), packet(7), socket(7), recvmmsg(2), sendto(2).
#pragma once

#include <linux/filter.h>
#include <napi.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "errors.h"
#include "open.h"

namespace cnt {

class NetSocket : public Napi::ObjectWrap<NetSocket> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // Wraps an open fd (takes ownership; closes it if the wrapper cannot be made).
  static Napi::Value Wrap(Napi::Env env, const Napi::FunctionReference& ctor, int fd, SocketKind kind);

  explicit NetSocket(const Napi::CallbackInfo& info);
  ~NetSocket() override;

 private:
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetKind(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  void AttachFilter(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  void Start(const Napi::CallbackInfo& info);
  void Stop(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);

  // Throws EBADF (as the named system call would on a closed fd) and returns false when closed.
  bool CheckOpen(Napi::Env env, const char* syscall);
  void AllocateBatch(unsigned batch);
  void StopPolling();
  // Closes the fd and the poll handle and drops every reference. `teardown`: called from the
  // environment cleanup hook, where no JS may run and async hooks must not be touched.
  void CloseNow(bool teardown);
  void ReadReady();
  Napi::Object MakePacket(Napi::Env env, unsigned index);
  // Calls onError; returns false when the socket was stopped or closed meanwhile, or JS threw.
  bool DeliverError(Napi::Env env, const SysError& error);
  bool AfterCallback(Napi::Env env, uint32_t generation);
  std::string InterfaceName(int ifindex);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnEnvCleanup(void* arg);

  napi_env env_;
  int fd_ = -1;
  SocketKind kind_ = SocketKind::kRaw;
  uv_poll_t* poll_ = nullptr;  // freed by its uv_close callback, never by us directly
  bool polling_ = false;
  bool strong_ = false;
  bool cleanup_hook_ = false;
  // Bumped by start/stop/close, so a receive loop notices that a callback changed the state under it.
  uint32_t generation_ = 0;

  Napi::FunctionReference on_packets_;
  Napi::FunctionReference on_error_;
  napi_async_context async_context_ = nullptr;

  unsigned batch_ = 0;
  std::vector<uint8_t> buffer_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_storage> addrs_;
  std::vector<uint8_t> control_;

  double received_ = 0;
  double batches_ = 0;
  double drops_ = 0;
  // Raw sockets: the latest SO_RXQ_OVFL value (the kernel's cumulative drop count for this socket).
  double rxqDrops_ = 0;
  std::unordered_map<int, std::string> ifnames_;
};

}  // namespace cnt
