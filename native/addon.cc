// calico_nettest: the native half of the witnesses. Exports open(options), ifIndex(name),
// restrictProcess(options), interfaceMtu(address, netns?), routeMtu(destination, options?) and
// netlinkTransact(protocol, request). See: netlink(7), raw(7), packet(7), socket(7), ip(7), if_nametoindex(3), prctl(2).
#include <arpa/inet.h>
#include <napi.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <cmath>
#include <string>

#include "bpf.h"
#include "errors.h"
#include "mtu.h"
#include "netlink.h"
#include "open.h"
#include "privileges.h"
#include "socket.h"

namespace cnt {
namespace {

struct AddonData {
  Napi::FunctionReference socket_ctor;
};

const char kOpenUsage[] =
    "Usage: open({ kind: 'raw', protocol: number, bindAddress?: string, hdrincl?: boolean, rcvbuf?: number, "
    "pmtudisc?: 'want' | 'dont' | 'do' | 'probe', netns?: string }) or open({ kind: 'packet', ifname?: string, rcvbuf?: number, netns?: string })";

// Reads an optional property (undefined = absent): false (with a TypeError thrown) when present but
// not a string.
bool OptionalString(Napi::Env env, const Napi::Object& o, const char* key, std::string* out,
                    bool* present = nullptr) {
  Napi::Value v = o.Get(key);
  if (env.IsExceptionPending()) return false;
  if (present != nullptr) *present = !v.IsUndefined();
  if (v.IsUndefined()) return true;
  if (!v.IsString()) {
    ThrowUsage(env, std::string("options.") + key + " must be a string. " + kOpenUsage);
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

bool IntegerIn(const Napi::Value& v, double lo, double hi, double* out) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < lo || d > hi) return false;
  *out = d;
  return true;
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || info[0].IsArray() || info[0].IsFunction()) {
    ThrowUsage(env, std::string("options must be an object. ") + kOpenUsage);
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  OpenOptions options;

  Napi::Value kind = o.Get("kind");
  if (env.IsExceptionPending()) return env.Undefined();
  std::string kindText = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : std::string();
  if (kindText == "raw") {
    options.kind = SocketKind::kRaw;
  } else if (kindText == "packet") {
    options.kind = SocketKind::kPacket;
  } else {
    ThrowUsage(env, std::string("options.kind must be 'raw' or 'packet'. ") + kOpenUsage);
    return env.Undefined();
  }

  if (options.kind == SocketKind::kRaw) {
    double protocol;
    Napi::Value p = o.Get("protocol");
    if (env.IsExceptionPending()) return env.Undefined();
    if (!IntegerIn(p, 1, 255, &protocol)) {
      ThrowUsage(env, std::string("options.protocol must be an IP protocol number in 1..255 (4 IP-in-IP, 6 TCP, "
                                  "17 UDP, 255 send-only). ") + kOpenUsage);
      return env.Undefined();
    }
    options.protocol = static_cast<int>(protocol);
    if (!OptionalString(env, o, "bindAddress", &options.bind_address)) return env.Undefined();
    in_addr scratch;
    if (!options.bind_address.empty() && inet_pton(AF_INET, options.bind_address.c_str(), &scratch) != 1) {
      ThrowUsage(env, "options.bindAddress must be a dotted IPv4 address such as '198.18.1.2'. " +
                          std::string(kOpenUsage));
      return env.Undefined();
    }
    Napi::Value h = o.Get("hdrincl");
    if (env.IsExceptionPending()) return env.Undefined();
    if (!h.IsUndefined() && !h.IsBoolean()) {
      ThrowUsage(env, std::string("options.hdrincl must be a boolean. ") + kOpenUsage);
      return env.Undefined();
    }
    options.hdrincl = h.IsBoolean() && h.As<Napi::Boolean>().Value();
    bool hasPmtudisc = false;
    std::string pmtudisc;
    if (!OptionalString(env, o, "pmtudisc", &pmtudisc, &hasPmtudisc)) return env.Undefined();
    if (hasPmtudisc) {
      if (pmtudisc == "want") options.pmtudisc = IP_PMTUDISC_WANT;
      else if (pmtudisc == "dont") options.pmtudisc = IP_PMTUDISC_DONT;
      else if (pmtudisc == "do") options.pmtudisc = IP_PMTUDISC_DO;
      else if (pmtudisc == "probe") options.pmtudisc = IP_PMTUDISC_PROBE;
      else {
        ThrowUsage(env, std::string("options.pmtudisc must be 'want', 'dont', 'do' or 'probe'. ") + kOpenUsage);
        return env.Undefined();
      }
    }
  } else {
    bool hasIfname = false;
    if (!OptionalString(env, o, "ifname", &options.ifname, &hasIfname)) return env.Undefined();
    if (hasIfname && (options.ifname.empty() || options.ifname.size() >= IFNAMSIZ ||
                            options.ifname.find('\0') != std::string::npos)) {
      ThrowUsage(env, "options.ifname must be an interface name of 1.." + std::to_string(IFNAMSIZ - 1) +
                          " characters. " + kOpenUsage);
      return env.Undefined();
    }
  }

  Napi::Value rcvbuf = o.Get("rcvbuf");
  if (env.IsExceptionPending()) return env.Undefined();
  if (!rcvbuf.IsUndefined()) {
    double bytes;
    if (!IntegerIn(rcvbuf, 1, 2147483647.0, &bytes)) {
      ThrowUsage(env, std::string("options.rcvbuf must be a byte count in 1..2147483647. ") + kOpenUsage);
      return env.Undefined();
    }
    options.rcvbuf = static_cast<int>(bytes);
  }
  bool hasNetns = false;
  if (!OptionalString(env, o, "netns", &options.netns, &hasNetns)) return env.Undefined();
  if (hasNetns && options.netns.empty()) {
    ThrowUsage(env, std::string("options.netns must be a path such as /run/netns/NAME. ") + kOpenUsage);
    return env.Undefined();
  }

  SysError error;
  int fd = OpenSocketFd(options, &error);
  if (fd < 0) {
    ThrowSysError(env, error);
    return env.Undefined();
  }
  return NetSocket::Wrap(env, env.GetInstanceData<AddonData>()->socket_ctor, fd, options.kind);
}

Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowUsage(env, "name must be a string. Usage: ifIndex(name: string)");
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Number::New(env, if_nametoindex(name.c_str()));
}

// restrictProcess({ dumpable?: boolean }) -> { noNewPrivs, allThreads, threadsError, dumpable }
Napi::Value RestrictProcessJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char usage[] = "Usage: restrictProcess({ dumpable?: boolean })";
  bool not_dumpable = true;
  if (!info[0].IsUndefined()) {
    if (!info[0].IsObject()) {
      ThrowUsage(env, std::string("options must be an object. ") + usage);
      return env.Undefined();
    }
    Napi::Value d = info[0].As<Napi::Object>().Get("dumpable");
    if (env.IsExceptionPending()) return env.Undefined();
    if (!d.IsUndefined() && !d.IsBoolean()) {
      ThrowUsage(env, std::string("options.dumpable must be a boolean. ") + usage);
      return env.Undefined();
    }
    not_dumpable = !(d.IsBoolean() && d.As<Napi::Boolean>().Value());
  }
  Restrictions r;
  SysError error = RestrictProcess(not_dumpable, &r);
  if (!error.ok()) {
    ThrowSysError(env, error);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("noNewPrivs", Napi::Boolean::New(env, r.no_new_privs));
  out.Set("allThreads", Napi::Boolean::New(env, r.all_threads));
  out.Set("threadsError", r.threads_error.ok() ? env.Null() : MakeSysError(env, r.threads_error).Value());
  out.Set("dumpable", Napi::Boolean::New(env, r.dumpable));
  return out;
}

// interfaceMtu(address, netns?) -> { ifname, mtu } | null
Napi::Value InterfaceMtuJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const char kUsage[] = "Usage: interfaceMtu(address: string, netns?: string)";
  in_addr scratch;
  if (!info[0].IsString() || inet_pton(AF_INET, info[0].As<Napi::String>().Utf8Value().c_str(), &scratch) != 1) {
    ThrowUsage(env, std::string("address must be a dotted IPv4 address. ") + kUsage);
    return env.Undefined();
  }
  std::string netns;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsString() || info[1].As<Napi::String>().Utf8Value().empty()) {
      ThrowUsage(env, std::string("netns must be a path such as /run/netns/NAME. ") + kUsage);
      return env.Undefined();
    }
    netns = info[1].As<Napi::String>().Utf8Value();
  }
  InterfaceMtu found;
  SysError e = AddressInterfaceMtu(info[0].As<Napi::String>().Utf8Value(), netns, &found);
  if (!e.ok()) {
    ThrowSysError(env, e);
    return env.Undefined();
  }
  if (!found.found) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("ifname", Napi::String::New(env, found.ifname));
  out.Set("mtu", Napi::Number::New(env, found.mtu));
  return out;
}

// routeMtu(destination, { bindAddress?, netns? }?) -> number
Napi::Value RouteMtuJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const char kUsage[] = "Usage: routeMtu(destination: string, options?: { bindAddress?: string, netns?: string })";
  in_addr scratch;
  if (!info[0].IsString() || inet_pton(AF_INET, info[0].As<Napi::String>().Utf8Value().c_str(), &scratch) != 1) {
    ThrowUsage(env, std::string("destination must be a dotted IPv4 address. ") + kUsage);
    return env.Undefined();
  }
  std::string source, netns;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject() || info[1].IsArray() || info[1].IsFunction()) {
      ThrowUsage(env, std::string("options must be an object. ") + kUsage);
      return env.Undefined();
    }
    Napi::Object o = info[1].As<Napi::Object>();
    if (!OptionalString(env, o, "bindAddress", &source) || !OptionalString(env, o, "netns", &netns)) return env.Undefined();
    if (!source.empty() && inet_pton(AF_INET, source.c_str(), &scratch) != 1) {
      ThrowUsage(env, std::string("options.bindAddress must be a dotted IPv4 address. ") + kUsage);
      return env.Undefined();
    }
  }
  int mtu = 0;
  SysError e = RouteMtu(info[0].As<Napi::String>().Utf8Value(), source, netns, &mtu);
  if (!e.ok()) {
    ThrowSysError(env, e);
    return env.Undefined();
  }
  return Napi::Number::New(env, mtu);
}

// netlinkTransact(protocol, request: Buffer, timeoutMs?): Buffer — every reply, up to the DONE or ERROR.
Napi::Value NetlinkTransactJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char usage[] = "Usage: netlinkTransact(protocol: 0..31, request: Buffer (>= 16 bytes), timeoutMs?: 1..60000)";
  double protocol = 0;
  double timeout = 2000;
  if (!IntegerIn(info[0], 0, 31, &protocol) || !info[1].IsBuffer() ||
      (!info[2].IsUndefined() && !IntegerIn(info[2], 1, 60000, &timeout))) {
    ThrowUsage(env, usage);
    return env.Undefined();
  }
  auto request = info[1].As<Napi::Buffer<uint8_t>>();
  if (request.Length() < 16) {
    ThrowUsage(env, usage);
    return env.Undefined();
  }
  std::string out;
  SysError error = NetlinkTransact(static_cast<int>(protocol), request.Data(), request.Length(), static_cast<int>(timeout), &out);
  if (!error.ok()) {
    ThrowSysError(env, error);
    return env.Undefined();
  }
  return Napi::Buffer<char>::Copy(env, out.data(), out.size());
}

// --- bpf(2): the drop watch (native/bpf.h) ---

Napi::Value FdOrThrow(Napi::Env env, const SysError& e, int fd) {
  if (!e.ok()) {
    ThrowSysError(env, e);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// bpfMapCreate(type, keySize, valueSize, maxEntries) -> fd
Napi::Value BpfMapCreateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double type = 0, key = 0, value = 0, max = 0;
  if (!IntegerIn(info[0], 1, 64, &type) || !IntegerIn(info[1], 1, 512, &key) || !IntegerIn(info[2], 1, 65536, &value) ||
      !IntegerIn(info[3], 1, 1 << 20, &max)) {
    ThrowUsage(env, "Usage: bpfMapCreate(type: 1..64, keySize: 1..512, valueSize: 1..65536, maxEntries: 1..1048576)");
    return env.Undefined();
  }
  int fd = -1;
  SysError e = BpfMapCreate(static_cast<uint32_t>(type), static_cast<uint32_t>(key), static_cast<uint32_t>(value), static_cast<uint32_t>(max), &fd);
  return FdOrThrow(env, e, fd);
}

// bpfProgLoad(progType, insns: Buffer (8-byte instructions), license) -> fd
Napi::Value BpfProgLoadJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char usage[] = "Usage: bpfProgLoad(progType: 1..64, insns: Buffer (a multiple of 8 bytes, at most 4096 instructions), license: string)";
  double type = 0;
  if (!IntegerIn(info[0], 1, 64, &type) || !info[1].IsBuffer() || !info[2].IsString()) {
    ThrowUsage(env, usage);
    return env.Undefined();
  }
  auto insns = info[1].As<Napi::Buffer<uint8_t>>();
  if (insns.Length() == 0 || insns.Length() % 8 != 0 || insns.Length() > 4096 * 8) {
    ThrowUsage(env, usage);
    return env.Undefined();
  }
  std::vector<uint8_t> copy(insns.Data(), insns.Data() + insns.Length());
  std::string license = info[2].As<Napi::String>().Utf8Value();
  int fd = -1;
  SysError e = BpfProgLoad(static_cast<uint32_t>(type), copy.data(), copy.size() / 8, license.c_str(), &fd);
  return FdOrThrow(env, e, fd);
}

// bpfRawTracepointOpen(name, progFd) -> fd (the attachment: closing it detaches)
Napi::Value BpfRawTracepointOpenJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double prog = 0;
  if (!info[0].IsString() || !IntegerIn(info[1], 0, 1 << 30, &prog)) {
    ThrowUsage(env, "Usage: bpfRawTracepointOpen(name: string, progFd: number)");
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() > 127) {
    ThrowUsage(env, "Usage: bpfRawTracepointOpen(name: string (1..127 characters), progFd: number)");
    return env.Undefined();
  }
  int fd = -1;
  SysError e = BpfRawTracepointOpen(name, static_cast<int>(prog), &fd);
  return FdOrThrow(env, e, fd);
}

// bpfMapUpdate(fd, key: Buffer, value: Buffer, flags?) — the buffers must be the map's sizes
Napi::Value BpfMapUpdateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd = 0, flags = 0;
  if (!IntegerIn(info[0], 0, 1 << 30, &fd) || !info[1].IsBuffer() || !info[2].IsBuffer() || (!info[3].IsUndefined() && !IntegerIn(info[3], 0, 4, &flags))) {
    ThrowUsage(env, "Usage: bpfMapUpdate(fd: number, key: Buffer, value: Buffer, flags?: 0..4)");
    return env.Undefined();
  }
  SysError e = BpfMapUpdate(static_cast<int>(fd), info[1].As<Napi::Buffer<uint8_t>>().Data(), info[2].As<Napi::Buffer<uint8_t>>().Data(), static_cast<uint64_t>(flags));
  if (!e.ok()) ThrowSysError(env, e);
  return env.Undefined();
}

// bpfMapDelete(fd, key: Buffer) -> whether it was there
Napi::Value BpfMapDeleteJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd = 0;
  if (!IntegerIn(info[0], 0, 1 << 30, &fd) || !info[1].IsBuffer()) {
    ThrowUsage(env, "Usage: bpfMapDelete(fd: number, key: Buffer)");
    return env.Undefined();
  }
  SysError e = BpfMapDelete(static_cast<int>(fd), info[1].As<Napi::Buffer<uint8_t>>().Data());
  if (!e.ok() && e.err == ENOENT) return Napi::Boolean::New(env, false);
  if (!e.ok()) {
    ThrowSysError(env, e);
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// bpfMapEntries(fd, keySize, valueSize, maxEntries) -> Buffer of key||value records
Napi::Value BpfMapEntriesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd = 0, key = 0, value = 0, max = 0;
  if (!IntegerIn(info[0], 0, 1 << 30, &fd) || !IntegerIn(info[1], 1, 512, &key) || !IntegerIn(info[2], 1, 65536, &value) || !IntegerIn(info[3], 1, 1 << 20, &max)) {
    ThrowUsage(env, "Usage: bpfMapEntries(fd: number, keySize: 1..512, valueSize: 1..65536, maxEntries: 1..1048576)");
    return env.Undefined();
  }
  std::string out;
  SysError e = BpfMapEntries(static_cast<int>(fd), static_cast<uint32_t>(key), static_cast<uint32_t>(value), static_cast<uint32_t>(max), &out);
  if (!e.ok()) {
    ThrowSysError(env, e);
    return env.Undefined();
  }
  return Napi::Buffer<char>::Copy(env, out.data(), out.size());
}

// bpfClose(fd)
Napi::Value BpfCloseJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd = 0;
  if (!IntegerIn(info[0], 0, 1 << 30, &fd)) {
    ThrowUsage(env, "Usage: bpfClose(fd: number)");
    return env.Undefined();
  }
  close(static_cast<int>(fd));
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->socket_ctor = Napi::Persistent(NetSocket::DefineClass(env));
  env.SetInstanceData(data);
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("ifIndex", Napi::Function::New(env, IfIndex, "ifIndex"));
  exports.Set("restrictProcess", Napi::Function::New(env, RestrictProcessJs, "restrictProcess"));
  exports.Set("interfaceMtu", Napi::Function::New(env, InterfaceMtuJs, "interfaceMtu"));
  exports.Set("routeMtu", Napi::Function::New(env, RouteMtuJs, "routeMtu"));
  exports.Set("netlinkTransact", Napi::Function::New(env, NetlinkTransactJs, "netlinkTransact"));
  exports.Set("bpfMapCreate", Napi::Function::New(env, BpfMapCreateJs, "bpfMapCreate"));
  exports.Set("bpfProgLoad", Napi::Function::New(env, BpfProgLoadJs, "bpfProgLoad"));
  exports.Set("bpfRawTracepointOpen", Napi::Function::New(env, BpfRawTracepointOpenJs, "bpfRawTracepointOpen"));
  exports.Set("bpfMapUpdate", Napi::Function::New(env, BpfMapUpdateJs, "bpfMapUpdate"));
  exports.Set("bpfMapDelete", Napi::Function::New(env, BpfMapDeleteJs, "bpfMapDelete"));
  exports.Set("bpfMapEntries", Napi::Function::New(env, BpfMapEntriesJs, "bpfMapEntries"));
  exports.Set("bpfClose", Napi::Function::New(env, BpfCloseJs, "bpfClose"));
  return exports;
}

}  // namespace
}  // namespace cnt

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return cnt::Init(env, exports); }

NODE_API_MODULE(calico_nettest, InitModule)
