// The bpf(2) calls the drop watch needs (src/kernel/drop-watch.ts): create a map, load a program (with
// the verifier's log on failure), attach it to a raw tracepoint, update / delete / walk a map, close.
// Every object is an fd: all of it goes away when the process exits, however it exits.
// See: bpf(2), linux/bpf.h (BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN, BPF_MAP_GET_NEXT_KEY).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "errors.h"

namespace cnt {

SysError BpfMapCreate(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries, int* fd);
// insns: count 8-byte instructions (map fds already patched in). On a verifier refusal the error's
// detail carries the end of the verifier log.
SysError BpfProgLoad(uint32_t prog_type, const void* insns, size_t count, const char* license, int* fd);
SysError BpfRawTracepointOpen(const std::string& name, int prog_fd, int* fd);
SysError BpfMapUpdate(int fd, const void* key, const void* value, uint64_t flags);
SysError BpfMapDelete(int fd, const void* key);
// Every entry (key then value, concatenated), at most max_entries of them.
SysError BpfMapEntries(int fd, uint32_t key_size, uint32_t value_size, uint32_t max_entries, std::string* out);

}  // namespace cnt
