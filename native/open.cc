// Opening raw and packet sockets. See: raw(7), packet(7), socket(7), ip(7), netdevice(7).
#include "open.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "filter.h"
#include "netns.h"

namespace cnt {

namespace {

const char kCapabilityHint[] =
    "needs CAP_NET_RAW: run as root, or grant it (setcap cap_net_raw,cap_net_admin+ep "
    "\"$(readlink -f $(which node))\", or in Kubernetes securityContext.capabilities.add: [NET_RAW, NET_ADMIN])";

SysError SocketError(const char* what) {
  SysError e = SysError::FromErrno("socket");
  if (e.err == EPERM || e.err == EACCES) {
    e.detail = std::string("opening a ") + what + " socket " + kCapabilityHint;
  } else {
    e.detail = std::string("opening a ") + what + " socket";
  }
  return e;
}

// Everything after socket(2) that both kinds share: timestamps and the receive buffer.
SysError ConfigureCommon(int fd, const OpenOptions& o) {
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
    return SysError::FromErrno("setsockopt", "SO_TIMESTAMPNS");
  }
  // The kernel's count of packets dropped on a full receive queue comes with each packet (raw sockets
  // have no PACKET_STATISTICS); best effort, so a kernel without it still opens.
  (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
  if (o.rcvbuf > 0) {
    // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped by rmem_max.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &o.rcvbuf, sizeof o.rcvbuf) != 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.rcvbuf, sizeof o.rcvbuf) != 0) {
      return SysError::FromErrno("setsockopt", "SO_RCVBUF");
    }
  }
  return SysError::Ok();
}

int OpenRaw(const OpenOptions& o, SysError* error) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, o.protocol);
  if (fd < 0) {
    *error = SocketError("raw");
    return -1;
  }
  // A raw socket queues matching packets from the moment it exists: shut the door first.
  SysError e = AttachDropAll(fd);
  if (e.ok()) e = ConfigureCommon(fd, o);
  if (e.ok() && o.hdrincl) {
    int on = 1;
    if (setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &on, sizeof on) != 0) e = SysError::FromErrno("setsockopt", "IP_HDRINCL");
  }
  // IP_PMTUDISC_PROBE: send at the size asked for even when the kernel has learnt a smaller path MTU
  // (the mtu check measures the path itself, not the kernel's memory of it).
  if (e.ok() && o.pmtudisc >= 0 &&
      setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &o.pmtudisc, sizeof o.pmtudisc) != 0) {
    e = SysError::FromErrno("setsockopt", "IP_MTU_DISCOVER");
  }
  if (e.ok() && !o.bind_address.empty()) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, o.bind_address.c_str(), &sin.sin_addr);  // validated by the caller
    if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
      e = SysError::FromErrno("bind", "bindAddress " + o.bind_address);
      if (e.err == EADDRNOTAVAIL) e.detail += " is not an address of this host (or of the socket's namespace)";
    }
  }
  if (e.ok()) e = DrainQueue(fd);
  if (!e.ok()) {
    close(fd);
    *error = e;
    return -1;
  }
  return fd;
}

int OpenPacket(const OpenOptions& o, SysError* error) {
  // Protocol 0 receives nothing; the ETH_P_ALL hook is installed by bind(2) below, after the drop-all
  // filter, so not even the drain has anything to do. ETH_P_ALL (not ETH_P_IP) is what makes outgoing
  // packets visible. SOCK_DGRAM strips the link header: data starts at the IPv4 header on any link.
  int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = SocketError("packet");
    return -1;
  }
  SysError e = AttachDropAll(fd);
  if (e.ok()) e = ConfigureCommon(fd, o);
  int ifindex = 0;
  if (e.ok() && !o.ifname.empty()) {
    // Resolved through this socket, so in its namespace, whichever namespace the thread is in later.
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, o.ifname.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
      e = SysError::FromErrno("ioctl", "SIOCGIFINDEX: no interface named " + o.ifname);
    } else {
      ifindex = ifr.ifr_ifindex;
    }
  }
  if (e.ok()) {
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
      e = SysError::FromErrno("bind", o.ifname.empty() ? std::string("all interfaces") : "interface " + o.ifname);
    }
  }
  if (e.ok()) e = DrainQueue(fd);
  if (!e.ok()) {
    close(fd);
    *error = e;
    return -1;
  }
  return fd;
}

}  // namespace

int OpenSocketFd(const OpenOptions& options, SysError* error) {
  std::unique_ptr<NetnsGuard> guard;
  if (!options.netns.empty()) {
    guard = std::make_unique<NetnsGuard>(options.netns);
    if (!guard->error().ok()) {
      *error = guard->error();
      return -1;
    }
  }
  return options.kind == SocketKind::kRaw ? OpenRaw(options, error) : OpenPacket(options, error);
  // ~NetnsGuard puts the thread back in its own namespace.
}

}  // namespace cnt
