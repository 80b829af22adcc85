// What the kernel knows about packet sizes: the MTU of the interface that holds an address, and the MTU
// of the route to a destination (IP_MTU of a connected UDP socket: the device MTU, or the path MTU the
// kernel learnt from an ICMP "fragmentation needed"). Nothing is sent. See: ip(7) IP_MTU, netdevice(7)
// SIOCGIFMTU, getifaddrs(3).
#pragma once

#include <string>

#include "errors.h"

namespace cnt {

struct InterfaceMtu {
  bool found = false;
  std::string ifname;
  int mtu = 0;
};

// The interface holding IPv4 `address` in the namespace `netns` (empty: the caller's) and its MTU.
SysError AddressInterfaceMtu(const std::string& address, const std::string& netns, InterfaceMtu* out);

// IP_MTU of a UDP socket bound to `source` (empty: any) and connected to `destination`.
SysError RouteMtu(const std::string& destination, const std::string& source, const std::string& netns, int* mtu);

}  // namespace cnt
