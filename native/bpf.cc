// bpf(2) wrappers. See bpf.h.
#include "bpf.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace cnt {

namespace {

long Bpf(int cmd, union bpf_attr* attr) {
  long r;
  do {
    r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
  } while (r < 0 && errno == EINTR);
  return r;
}

uint64_t Ptr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

}  // namespace

SysError BpfMapCreate(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries, int* fd) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.map_type = type;
  attr.key_size = key_size;
  attr.value_size = value_size;
  attr.max_entries = max_entries;
  long r = Bpf(BPF_MAP_CREATE, &attr);
  if (r < 0) return SysError::FromErrno("bpf", "BPF_MAP_CREATE");
  *fd = static_cast<int>(r);
  return SysError::Ok();
}

SysError BpfProgLoad(uint32_t prog_type, const void* insns, size_t count, const char* license, int* fd) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_type = prog_type;
  attr.insns = Ptr(insns);
  attr.insn_cnt = static_cast<uint32_t>(count);
  attr.license = Ptr(license);
  long r = Bpf(BPF_PROG_LOAD, &attr);
  if (r >= 0) {
    *fd = static_cast<int>(r);
    return SysError::Ok();
  }
  int first = errno;
  // Refused: load again with the verifier's log, to say why.
  std::vector<char> log(1 << 20, '\0');
  attr.log_level = 1;
  attr.log_buf = Ptr(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  r = Bpf(BPF_PROG_LOAD, &attr);
  if (r >= 0) {  // loaded after all (cannot normally happen): keep it
    *fd = static_cast<int>(r);
    return SysError::Ok();
  }
  if (errno == ENOSPC) errno = first;
  std::string text(log.data(), strnlen(log.data(), log.size()));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > 1500) text = "..." + text.substr(text.size() - 1500);
  return SysError::FromErrno("bpf", text.empty() ? std::string("BPF_PROG_LOAD") : "BPF_PROG_LOAD: verifier: " + text);
}

SysError BpfRawTracepointOpen(const std::string& name, int prog_fd, int* fd) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.raw_tracepoint.name = Ptr(name.c_str());
  attr.raw_tracepoint.prog_fd = static_cast<uint32_t>(prog_fd);
  long r = Bpf(BPF_RAW_TRACEPOINT_OPEN, &attr);
  if (r < 0) return SysError::FromErrno("bpf", "BPF_RAW_TRACEPOINT_OPEN " + name);
  *fd = static_cast<int>(r);
  return SysError::Ok();
}

SysError BpfMapUpdate(int fd, const void* key, const void* value, uint64_t flags) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.map_fd = static_cast<uint32_t>(fd);
  attr.key = Ptr(key);
  attr.value = Ptr(value);
  attr.flags = flags;
  if (Bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0) return SysError::FromErrno("bpf", "BPF_MAP_UPDATE_ELEM");
  return SysError::Ok();
}

SysError BpfMapDelete(int fd, const void* key) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.map_fd = static_cast<uint32_t>(fd);
  attr.key = Ptr(key);
  if (Bpf(BPF_MAP_DELETE_ELEM, &attr) < 0) return SysError::FromErrno("bpf", "BPF_MAP_DELETE_ELEM");
  return SysError::Ok();
}

SysError BpfMapEntries(int fd, uint32_t key_size, uint32_t value_size, uint32_t max_entries, std::string* out) {
  std::vector<uint8_t> key(key_size), next(key_size), value(value_size);
  bool first = true;
  for (uint32_t n = 0; n < max_entries; n++) {
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));
    attr.map_fd = static_cast<uint32_t>(fd);
    attr.key = first ? 0 : Ptr(key.data());  // NULL key: the first one
    attr.next_key = Ptr(next.data());
    if (Bpf(BPF_MAP_GET_NEXT_KEY, &attr) < 0) {
      if (errno == ENOENT) return SysError::Ok();
      return SysError::FromErrno("bpf", "BPF_MAP_GET_NEXT_KEY");
    }
    first = false;
    key = next;
    std::memset(&attr, 0, sizeof(attr));
    attr.map_fd = static_cast<uint32_t>(fd);
    attr.key = Ptr(key.data());
    attr.value = Ptr(value.data());
    if (Bpf(BPF_MAP_LOOKUP_ELEM, &attr) < 0) {
      if (errno == ENOENT) continue;  // deleted meanwhile
      return SysError::FromErrno("bpf", "BPF_MAP_LOOKUP_ELEM");
    }
    out->append(reinterpret_cast<const char*>(key.data()), key.size());
    out->append(reinterpret_cast<const char*>(value.data()), value.size());
  }
  return SysError::Ok();
}

}  // namespace cnt
