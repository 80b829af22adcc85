// Opening a witness socket: a raw IPv4 socket or a SOCK_DGRAM packet socket, configured and with a
// drop-all filter already attached, optionally inside another network namespace.
// See: raw(7), packet(7), socket(7), ip(7), setns(2).
#pragma once

#include <string>

#include "errors.h"

namespace cnt {

enum class SocketKind { kRaw, kPacket };

struct OpenOptions {
  SocketKind kind = SocketKind::kRaw;
  int protocol = 0;          // raw: IP protocol number
  std::string bind_address;  // raw: dotted IPv4, empty = none
  bool hdrincl = false;      // raw
  int pmtudisc = -1;         // raw: IP_MTU_DISCOVER value, -1 = leave the default
  std::string ifname;        // packet: empty = all interfaces
  int rcvbuf = 0;            // 0 = leave the default
  std::string netns;         // empty = the caller's namespace
};

// Returns a non-blocking, close-on-exec fd that receives nothing until a filter replaces the drop-all
// one, or -1 with *error set.
int OpenSocketFd(const OpenOptions& options, SysError* error);

}  // namespace cnt
