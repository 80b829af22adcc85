// Socket lifecycle, send and batched receive. See: raw(7), packet(7), socket(7), recvmmsg(2), cmsg(3),
// netdevice(7) SIOCGIFNAME, uv_poll_t (libuv).
#include "socket.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "filter.h"

namespace cnt {

namespace {

// One receive slot. Probes are small; a longer packet is truncated here and origLength says so.
constexpr size_t kSlotBytes = 16384;
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(timespec)) + 64;
constexpr unsigned kDefaultBatch = 64;
constexpr unsigned kMaxBatch = 1024;
// recvmmsg calls per wake-up; more waiting data makes the poll fire again, so other handles get a turn.
constexpr int kMaxBatchesPerWake = 16;
constexpr size_t kIfnameCacheMax = 256;

struct Handoff {
  int fd;
  SocketKind kind;
};

double NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Errors after which receiving cannot go on; anything else (ENETDOWN, ENOBUFS, ...) is a pending
// socket error that the kernel reports once.
bool IsFatalReceiveError(int err) { return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL; }

}  // namespace

Napi::Function NetSocket::DefineClass(Napi::Env env) {
  return ObjectWrap<NetSocket>::DefineClass(
      env, "NativeSocket",
      {
          InstanceAccessor<&NetSocket::GetFd>("fd"),
          InstanceAccessor<&NetSocket::GetKind>("kind"),
          InstanceAccessor<&NetSocket::GetClosed>("closed"),
          InstanceMethod<&NetSocket::AttachFilter>("attachFilter"),
          InstanceMethod<&NetSocket::Send>("send"),
          InstanceMethod<&NetSocket::Start>("start"),
          InstanceMethod<&NetSocket::Stop>("stop"),
          InstanceMethod<&NetSocket::Close>("close"),
          InstanceMethod<&NetSocket::Stats>("stats"),
      });
}

Napi::Value NetSocket::Wrap(Napi::Env env, const Napi::FunctionReference& ctor, int fd, SocketKind kind) {
  Handoff handoff{fd, kind};
  Napi::Object object = ctor.New({Napi::External<Handoff>::New(env, &handoff)});
  if (env.IsExceptionPending() || object.IsEmpty()) {
    if (handoff.fd >= 0) close(handoff.fd);
    return env.Undefined();
  }
  return object;
}

NetSocket::NetSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetSocket>(info), env_(info.Env()) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowUsage(info.Env(), "NativeSocket cannot be constructed directly. Usage: open({ kind: 'raw' | 'packet', ... })");
    return;
  }
  Handoff* handoff = info[0].As<Napi::External<Handoff>>().Data();
  fd_ = handoff->fd;
  kind_ = handoff->kind;
  handoff->fd = -1;  // ours now
  // An open socket must outlive its JS wrapper's reachability: a collected wrapper would close a
  // socket the responder is still witnessing with. close() releases this.
  Ref();
  strong_ = true;
  if (napi_add_env_cleanup_hook(env_, OnEnvCleanup, this) == napi_ok) cleanup_hook_ = true;
}

NetSocket::~NetSocket() { CloseNow(true); }

bool NetSocket::CheckOpen(Napi::Env env, const char* syscall) {
  if (fd_ >= 0) return true;
  SysError e;
  e.err = EBADF;
  e.syscall = syscall;
  e.detail = "the socket is closed";
  ThrowSysError(env, e);
  return false;
}

Napi::Value NetSocket::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value NetSocket::GetKind(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kind_ == SocketKind::kRaw ? "raw" : "packet");
}

Napi::Value NetSocket::GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), fd_ < 0); }

void NetSocket::AttachFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<sock_filter> program;
  if (!ParseFilterProgram(env, info[0], "program", &program)) return;
  if (!CheckOpen(env, "setsockopt")) return;
  SysError e = AttachFilterSafely(fd_, program);
  if (!e.ok()) ThrowSysError(env, e);
}

Napi::Value NetSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const char kUsage[] = "Usage: send(data: Buffer, address: string) with a dotted IPv4 address";
  if (!info[0].IsBuffer()) {
    ThrowUsage(env, std::string("data must be a Buffer. ") + kUsage);
    return env.Undefined();
  }
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  std::string address;
  if (info[1].IsString()) address = info[1].As<Napi::String>().Utf8Value();
  if (!info[1].IsString() || inet_pton(AF_INET, address.c_str(), &sin.sin_addr) != 1) {
    ThrowUsage(env, std::string("address must be a dotted IPv4 address such as '198.18.2.2'. ") + kUsage);
    return env.Undefined();
  }
  if (kind_ != SocketKind::kRaw) {
    ThrowUsage(env, "send() is for raw sockets; a packet socket only witnesses. " + std::string(kUsage));
    return env.Undefined();
  }
  if (!CheckOpen(env, "sendto")) return env.Undefined();
  Napi::Buffer<uint8_t> data = info[0].As<Napi::Buffer<uint8_t>>();
  ssize_t n;
  do {
    n = sendto(fd_, data.Data(), data.Length(), 0, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    SysError e = SysError::FromErrno("sendto", "to " + address);
    if (e.err == EPERM) e.detail += " (refused on this host: a local firewall rule, e.g. iptables/nftables OUTPUT)";
    ThrowSysError(env, e);
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

void NetSocket::AllocateBatch(unsigned batch) {
  if (batch == batch_) return;
  batch_ = batch;
  buffer_.assign(static_cast<size_t>(batch) * kSlotBytes, 0);
  msgs_.assign(batch, mmsghdr{});
  iovs_.assign(batch, iovec{});
  addrs_.assign(batch, sockaddr_storage{});
  control_.assign(static_cast<size_t>(batch) * kControlBytes, 0);
}

void NetSocket::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const char kUsage[] =
      "Usage: start(onPackets: (packets) => void, onError: (err) => void, batch?: number)";
  if (!info[0].IsFunction()) {
    ThrowUsage(env, std::string("onPackets must be a function. ") + kUsage);
    return;
  }
  if (!info[1].IsFunction()) {
    ThrowUsage(env, std::string("onError must be a function. ") + kUsage);
    return;
  }
  unsigned batch = kDefaultBatch;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    double b = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
    if (!(b >= 1 && b <= kMaxBatch && static_cast<double>(static_cast<unsigned>(b)) == b)) {
      ThrowUsage(env, "batch must be an integer in 1.." + std::to_string(kMaxBatch) + ". " + kUsage);
      return;
    }
    batch = static_cast<unsigned>(b);
  }
  if (!CheckOpen(env, "recvmmsg")) return;

  if (poll_ == nullptr) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "start(): no libuv event loop").ThrowAsJavaScriptException();
      return;
    }
    auto* handle = new uv_poll_t;
    int rc = uv_poll_init_socket(loop, handle, fd_);
    if (rc != 0) {
      delete handle;
      SysError e;
      e.err = -rc;
      e.syscall = "uv_poll_init";
      ThrowSysError(env, e);
      return;
    }
    handle->data = this;
    poll_ = handle;
  }
  if (async_context_ == nullptr) {
    napi_value name = Napi::String::New(env, "CalicoNettestSocket");
    if (napi_async_init(env_, Value(), name, &async_context_) != napi_ok) async_context_ = nullptr;
  }
  on_packets_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  AllocateBatch(batch);
  ++generation_;
  if (!polling_) {
    int rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
    if (rc != 0) {
      SysError e;
      e.err = -rc;
      e.syscall = "uv_poll_start";
      ThrowSysError(env, e);
      return;
    }
    polling_ = true;
  }
}

void NetSocket::StopPolling() {
  ++generation_;
  if (polling_ && poll_ != nullptr) uv_poll_stop(poll_);
  polling_ = false;
}

void NetSocket::Stop(const Napi::CallbackInfo&) { StopPolling(); }

void NetSocket::Close(const Napi::CallbackInfo&) { CloseNow(false); }

void NetSocket::CloseNow(bool teardown) {
  StopPolling();
  if (poll_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  on_packets_.Reset();
  on_error_.Reset();
  if (async_context_ != nullptr) {
    if (!teardown) napi_async_destroy(env_, async_context_);
    async_context_ = nullptr;
  }
  if (cleanup_hook_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    cleanup_hook_ = false;
  }
  if (strong_) {
    strong_ = false;
    Unref();
  }
}

void NetSocket::OnEnvCleanup(void* arg) {
  auto* self = static_cast<NetSocket*>(arg);
  self->cleanup_hook_ = false;  // being run, so already off the list
  self->CloseNow(true);
}

Napi::Value NetSocket::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (kind_ == SocketKind::kPacket && fd_ >= 0) {
    // PACKET_STATISTICS resets the kernel's counters on every read, hence the sum.
    tpacket_stats st{};
    socklen_t len = sizeof st;
    if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) drops_ += st.tp_drops;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("received", Napi::Number::New(env, received_));
  out.Set("batches", Napi::Number::New(env, batches_));
  out.Set("drops", Napi::Number::New(env, kind_ == SocketKind::kPacket ? drops_ : rxqDrops_));
  return out;
}

void NetSocket::OnPoll(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<NetSocket*>(handle->data);
  if (self == nullptr || self->poll_ != handle || !self->polling_) return;
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  if (status < 0) {
    SysError e;
    e.err = -status;
    e.syscall = "poll";
    e.detail = "waiting for packets";
    self->StopPolling();
    self->DeliverError(env, e);
    return;
  }
  self->ReadReady();
}

std::string NetSocket::InterfaceName(int ifindex) {
  auto it = ifnames_.find(ifindex);
  if (it != ifnames_.end()) return it->second;
  // SIOCGIFNAME through our own fd resolves in the socket's namespace; if_indextoname(3) would ask
  // the thread's namespace, which is the wrong one for a socket opened with `netns`.
  ifreq ifr{};
  ifr.ifr_ifindex = ifindex;
  std::string name;
  if (ioctl(fd_, SIOCGIFNAME, &ifr) == 0) {
    name.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  } else {
    return "if" + std::to_string(ifindex);  // gone already; not cached
  }
  if (ifnames_.size() >= kIfnameCacheMax) ifnames_.clear();  // interfaces come and go; stay small
  ifnames_.emplace(ifindex, name);
  return name;
}

Napi::Object NetSocket::MakePacket(Napi::Env env, unsigned i) {
  const mmsghdr& m = msgs_[i];
  const size_t delivered = std::min<size_t>(m.msg_len, kSlotBytes);
  double ts = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&m.msg_hdr), c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
      timespec t;
      std::memcpy(&t, CMSG_DATA(c), sizeof t);
      ts = static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
      uint32_t dropped;
      std::memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
      rxqDrops_ = std::max(rxqDrops_, static_cast<double>(dropped));
    }
  }
  if (ts == 0) ts = NowMs();

  Napi::Object p = Napi::Object::New(env);
  p.Set("data", Napi::Buffer<uint8_t>::Copy(env, &buffer_[static_cast<size_t>(i) * kSlotBytes], delivered));
  p.Set("tsMs", Napi::Number::New(env, ts));
  if (kind_ == SocketKind::kRaw) {
    char text[INET_ADDRSTRLEN] = "";
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addrs_[i]);
    if (m.msg_hdr.msg_namelen >= sizeof(sockaddr_in) && sin->sin_family == AF_INET) {
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    }
    p.Set("source", Napi::String::New(env, text));
    p.Set("ifname", env.Null());
    p.Set("ifindex", Napi::Number::New(env, 0));
    p.Set("pktType", Napi::Number::New(env, 0));
    p.Set("outgoing", Napi::Boolean::New(env, false));
  } else {
    const auto* sll = reinterpret_cast<const sockaddr_ll*>(&addrs_[i]);
    p.Set("source", Napi::String::New(env, ""));
    p.Set("ifname", Napi::String::New(env, InterfaceName(sll->sll_ifindex)));
    p.Set("ifindex", Napi::Number::New(env, sll->sll_ifindex));
    p.Set("pktType", Napi::Number::New(env, sll->sll_pkttype));
    p.Set("outgoing", Napi::Boolean::New(env, sll->sll_pkttype == PACKET_OUTGOING));
  }
  // recvmmsg was called with MSG_TRUNC, so msg_len is the full length even when the slot was shorter.
  p.Set("origLength", Napi::Number::New(env, m.msg_len));
  return p;
}

bool NetSocket::AfterCallback(Napi::Env env, uint32_t generation) {
  if (env.IsExceptionPending()) {
    // Nothing above us on the stack can catch it: report it like any uncaught exception.
    napi_value error;
    napi_get_and_clear_last_exception(env_, &error);
    napi_fatal_exception(env_, error);
    return false;
  }
  return generation == generation_ && polling_ && fd_ >= 0;
}

bool NetSocket::DeliverError(Napi::Env env, const SysError& error) {
  if (on_error_.IsEmpty()) return false;
  const uint32_t generation = generation_;
  Napi::Function fn = on_error_.Value();
  fn.MakeCallback(Value(), {MakeSysError(env, error).Value()}, async_context_);
  return AfterCallback(env, generation);
}

void NetSocket::ReadReady() {
  Napi::Env env(env_);
  for (int round = 0; round < kMaxBatchesPerWake && polling_ && fd_ >= 0; ++round) {
    Napi::HandleScope scope(env);
    for (unsigned i = 0; i < batch_; ++i) {
      iovs_[i].iov_base = &buffer_[static_cast<size_t>(i) * kSlotBytes];
      iovs_[i].iov_len = kSlotBytes;
      msghdr& h = msgs_[i].msg_hdr;
      h.msg_name = &addrs_[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &iovs_[i];
      h.msg_iovlen = 1;
      h.msg_control = &control_[static_cast<size_t>(i) * kControlBytes];
      h.msg_controllen = kControlBytes;
      h.msg_flags = 0;
      msgs_[i].msg_len = 0;
    }
    int n = recvmmsg(fd_, msgs_.data(), batch_, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      SysError e;
      e.err = err;
      e.syscall = "recvmmsg";
      e.detail = "receiving witnessed packets";
      if (IsFatalReceiveError(err)) StopPolling();
      if (!DeliverError(env, e)) return;
      continue;
    }
    if (n == 0) return;
    received_ += n;
    batches_ += 1;
    Napi::Array packets = Napi::Array::New(env, static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) packets.Set(static_cast<uint32_t>(i), MakePacket(env, static_cast<unsigned>(i)));
    const uint32_t generation = generation_;
    Napi::Function fn = on_packets_.Value();
    fn.MakeCallback(Value(), {packets}, async_context_);
    if (!AfterCallback(env, generation)) return;
    if (static_cast<unsigned>(n) < batch_) return;  // the queue ran dry
  }
}

}  // namespace cnt
