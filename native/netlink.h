// One netlink request and all its replies, synchronously: for short kernel conversations (a conntrack
// delete or dump) that need no event loop. See: netlink(7), rtnetlink(7).
#pragma once

#include <cstdint>
#include <string>

#include "errors.h"

namespace cnt {

// Sends `request` (one or more complete nlmsghdr messages) to the kernel on a fresh socket of
// `protocol` (NETLINK_NETFILTER = 12, ...) and appends every reply to `out` until an NLMSG_DONE or
// NLMSG_ERROR (an ack or an error: the caller parses it) arrives; gives up after `timeout_ms` of silence.
SysError NetlinkTransact(int protocol, const uint8_t* request, size_t length, int timeout_ms, std::string* out);

}  // namespace cnt
