// One netlink request and its replies on a fresh socket (see netlink.h). See: netlink(7).
#include "netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace cnt {

namespace {
constexpr size_t kMaxReply = 64u << 20;  // a dump larger than this is not ours to read
}

SysError NetlinkTransact(int protocol, const uint8_t* request, size_t length, int timeout_ms, std::string* out) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) return SysError::FromErrno("socket", "a netlink socket");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return SysError::FromErrno("bind", "a netlink socket");
  timeval tv{};
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return SysError::FromErrno("setsockopt", "SO_RCVTIMEO");
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, request, length, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return SysError::FromErrno("sendto", "to the kernel");
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError::FromErrno("recv", errno == EAGAIN || errno == EWOULDBLOCK ? "the kernel did not finish answering in time" : "");
    }
    out->append(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n));
    if (out->size() > kMaxReply) return SysError{EMSGSIZE, "recv", "the kernel's answer is larger than 64 MiB"};
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) return SysError::Ok();
    }
  }
}

}  // namespace cnt
