// calico_nettest: the native half of the witnesses. Exports open(options), ifIndex(name) and
// restrictProcess(options). See: raw(7), packet(7), socket(7), ip(7), if_nametoindex(3), prctl(2).
#include <arpa/inet.h>
#include <napi.h>
#include <net/if.h>

#include <cmath>
#include <string>

#include "errors.h"
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
    "netns?: string }) or open({ kind: 'packet', ifname?: string, rcvbuf?: number, netns?: string })";

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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->socket_ctor = Napi::Persistent(NetSocket::DefineClass(env));
  env.SetInstanceData(data);
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("ifIndex", Napi::Function::New(env, IfIndex, "ifIndex"));
  exports.Set("restrictProcess", Napi::Function::New(env, RestrictProcessJs, "restrictProcess"));
  return exports;
}

}  // namespace
}  // namespace cnt

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return cnt::Init(env, exports); }

NODE_API_MODULE(calico_nettest, InitModule)
