// Interface and route MTUs. See: ip(7) IP_MTU, netdevice(7) SIOCGIFMTU, getifaddrs(3), connect(2).
#include "mtu.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "netns.h"

namespace cnt {

namespace {

// A socket opened in `netns` (namespaces bind at socket(2); everything after runs on it).
int OpenDgram(const std::string& netns, SysError* error) {
  std::unique_ptr<NetnsGuard> guard;
  if (!netns.empty()) {
    guard = std::make_unique<NetnsGuard>(netns);
    if (!guard->error().ok()) {
      *error = guard->error();
      return -1;
    }
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) *error = SysError::FromErrno("socket", "a UDP socket to ask the kernel for MTUs");
  return fd;
}

}  // namespace

SysError AddressInterfaceMtu(const std::string& address, const std::string& netns, InterfaceMtu* out) {
  in_addr want{};
  if (inet_pton(AF_INET, address.c_str(), &want) != 1) {
    SysError e;
    e.err = EINVAL;
    e.syscall = "inet_pton";
    e.detail = address + " is not a dotted IPv4 address";
    return e;
  }
  // getifaddrs(3) asks netlink through a socket of its own, so it runs in the namespace too.
  std::unique_ptr<NetnsGuard> guard;
  if (!netns.empty()) {
    guard = std::make_unique<NetnsGuard>(netns);
    if (!guard->error().ok()) return guard->error();
  }
  SysError e;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysError::FromErrno("socket", "a UDP socket to ask the kernel for MTUs");
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) e = SysError::FromErrno("getifaddrs");
  if (e.ok()) {
    for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
      if (reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr != want.s_addr) continue;
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, a->ifa_name, IFNAMSIZ - 1);
      if (ioctl(fd, SIOCGIFMTU, &ifr) != 0) {
        e = SysError::FromErrno("ioctl", std::string("SIOCGIFMTU of ") + a->ifa_name);
        break;
      }
      out->found = true;
      out->ifname = a->ifa_name;
      out->mtu = ifr.ifr_mtu;
      break;
    }
  }
  if (list != nullptr) freeifaddrs(list);
  close(fd);
  return e;
}

SysError RouteMtu(const std::string& destination, const std::string& source, const std::string& netns, int* mtu) {
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(9);  // connect(2) on UDP sends nothing; the port only completes the address
  if (inet_pton(AF_INET, destination.c_str(), &dst.sin_addr) != 1) {
    SysError e;
    e.err = EINVAL;
    e.syscall = "inet_pton";
    e.detail = destination + " is not a dotted IPv4 address";
    return e;
  }
  SysError e;
  int fd = OpenDgram(netns, &e);
  if (fd < 0) return e;
  if (!source.empty()) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (inet_pton(AF_INET, source.c_str(), &src.sin_addr) != 1) {
      e.err = EINVAL;
      e.syscall = "inet_pton";
      e.detail = source + " is not a dotted IPv4 address";
    } else if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      e = SysError::FromErrno("bind", "source " + source);
    }
  }
  if (e.ok() && connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    e = SysError::FromErrno("connect", "looking up the route to " + destination);
  }
  if (e.ok()) {
    int value = 0;
    socklen_t len = sizeof value;
    if (getsockopt(fd, IPPROTO_IP, IP_MTU, &value, &len) != 0) {
      e = SysError::FromErrno("getsockopt", "IP_MTU of the route to " + destination);
    } else {
      *mtu = value;
    }
  }
  close(fd);
  return e;
}

}  // namespace cnt
