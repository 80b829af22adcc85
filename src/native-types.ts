// The exact contract of the native addon (build/Release/calico_nettest.node), as src/native.ts exposes it.
// Everything outside src/native.ts depends on these types only, so tests can inject a fake binding.
// See: raw(7), packet(7), socket(7), ip(7).

/** One classic BPF instruction: struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }. */
export interface BpfInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export interface RawSocketOptions {
  kind: 'raw';
  /** IP protocol: 1 ICMP, 4 IP-in-IP, 6 TCP, 17 UDP, 255 IPPROTO_RAW (send only; implies IP_HDRINCL). */
  protocol: number;
  /** Local IPv4 address to bind to (receives only packets addressed to it; sends from it). */
  bindAddress?: string;
  /** Set IP_HDRINCL: data passed to send() starts with the IPv4 header. */
  hdrincl?: boolean;
  /** SO_RCVBUF in bytes (SO_RCVBUFFORCE is tried first when privileged). */
  rcvbuf?: number;
  /**
   * IP_MTU_DISCOVER. 'probe': packets go out at the size sent, DF as the header says, even when the
   * kernel has learnt a smaller path MTU for the destination (what the mtu check needs).
   */
  pmtudisc?: 'want' | 'dont' | 'do' | 'probe';
  /** Open the socket inside this network namespace (a path such as /run/netns/NAME); the calling
   *  thread is back in its own namespace before open() returns, also on error. */
  netns?: string;
}

export interface PacketSocketOptions {
  kind: 'packet';
  /** Interface name to bind to; all interfaces when omitted. */
  ifname?: string;
  rcvbuf?: number;
  /** As for raw sockets. */
  netns?: string;
}

export type SocketOptions = RawSocketOptions | PacketSocketOptions;

/** One received packet. Raw sockets and (SOCK_DGRAM) packet sockets both deliver from the IPv4 header on. */
export interface ReceivedPacket {
  data: Buffer;
  /** Kernel receive timestamp (SO_TIMESTAMPNS), milliseconds since the epoch with sub-ms fraction. */
  tsMs: number;
  /** Raw sockets: the sender's IPv4 address from recvmmsg's sockaddr. Packet sockets: ''. */
  source: string;
  /** Packet sockets: interface name (if_indextoname, cached) and index; raw sockets: null / 0. */
  ifname: string | null;
  ifindex: number;
  /** Packet sockets: sll_pkttype (0 HOST, 1 BROADCAST, 2 MULTICAST, 3 OTHERHOST, 4 OUTGOING); raw: 0. */
  pktType: number;
  /** Packet sockets: pktType === 4 (the packet was sent by this host). */
  outgoing: boolean;
  /** Original length on the wire (may exceed data.length when the filter truncated it). */
  origLength: number;
}

export interface SocketStats {
  received: number;
  batches: number;
  /** Packet sockets: PACKET_STATISTICS tp_drops since open; raw sockets: SO_RXQ_OVFL-style drops or 0. */
  drops: number;
}

export interface NativeSocket {
  readonly fd: number;
  readonly kind: 'raw' | 'packet';
  /**
   * Attach a classic BPF filter without the open-to-attach race: a drop-all filter is attached first,
   * the queue is drained, then this program replaces it (SO_ATTACH_FILTER).
   */
  attachFilter(program: readonly BpfInstruction[]): void;
  /** sendto(2) to an IPv4 address. Throws NativeError (e.g. code 'EPERM' when OUTPUT drops it). */
  send(data: Buffer, address: string): number;
  /**
   * Start receiving: libuv poll on the fd, recvmmsg in batches of up to `batch` (default 64) per wake-up.
   * The socket is kept alive (strong reference) until close().
   */
  start(onPackets: (packets: ReceivedPacket[]) => void, onError: (err: NativeError) => void, batch?: number): void;
  stop(): void;
  /** Idempotent. */
  close(): void;
  readonly closed: boolean;
  stats(): SocketStats;
}

export interface NativeBinding {
  open(options: SocketOptions): NativeSocket;
  /** if_nametoindex(3); 0 when unknown. */
  ifIndex(name: string): number;
  /**
   * After dropping privileges: no_new_privs on every thread and (unless `dumpable: true`) not dumpable,
   * read back from the kernel. Optional: fake bindings in tests leave it out.
   */
  restrictProcess?(options?: { dumpable?: boolean }): ProcessRestrictions;
  /** The interface holding IPv4 `address` and its MTU (SIOCGIFMTU); null when no interface holds it. */
  interfaceMtu(address: string, netns?: string): { ifname: string; mtu: number } | null;
  /**
   * IP_MTU of a UDP socket connected to `destination` (nothing is sent): the route's device MTU, or
   * the smaller path MTU the kernel learnt from an ICMP "fragmentation needed" for that destination.
   */
  routeMtu(destination: string, options?: { bindAddress?: string; netns?: string }): number;
  /**
   * One netlink request (complete nlmsghdr messages) on a fresh socket of `protocol` (netlink(7);
   * NETLINK_NETFILTER = 12) and every reply up to the NLMSG_DONE or NLMSG_ERROR, concatenated; throws a
   * NativeError when the socket fails or the kernel is silent for `timeoutMs` (default 2000). Optional:
   * an addon built before it, or a fake binding, leaves it out.
   */
  netlinkTransact?(protocol: number, request: Buffer, timeoutMs?: number): Buffer;
  /**
   * bpf(2), for the drop watch (src/kernel/drop-watch.ts). Optional: an addon built before it, or a
   * fake binding, leaves it out. Every object is an fd: all of it goes when the process exits.
   */
  bpf?: NativeBpf;
}

/** The bpf(2) commands the drop watch uses; each throws a NativeError (`syscall: 'bpf'`) when the kernel refuses. */
export interface NativeBpf {
  /** BPF_MAP_CREATE -> the map's fd. */
  mapCreate(type: number, keySize: number, valueSize: number, maxEntries: number): number;
  /** BPF_PROG_LOAD of 8-byte instructions (map fds patched in); a verifier refusal's message ends with its log. */
  progLoad(progType: number, insns: Buffer, license: string): number;
  /** BPF_RAW_TRACEPOINT_OPEN -> the attachment's fd (closing it detaches the program). */
  rawTracepointOpen(name: string, progFd: number): number;
  /** BPF_MAP_UPDATE_ELEM (flags: BPF_ANY 0). */
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  /** BPF_MAP_DELETE_ELEM: false when the key was not there. */
  mapDelete(fd: number, key: Buffer): boolean;
  /** Every entry (GET_NEXT_KEY + LOOKUP), at most `maxEntries`: key||value records concatenated. */
  mapEntries(fd: number, keySize: number, valueSize: number, maxEntries: number): Buffer;
  close(fd: number): void;
}

/** What restrictProcess() achieved (prctl(2) PR_GET_NO_NEW_PRIVS / PR_GET_DUMPABLE). */
export interface ProcessRestrictions {
  /** no_new_privs on the calling (main) thread: a child it spawns can never gain privileges. */
  noNewPrivs: boolean;
  /** …and on every other thread (a seccomp allow-all filter with TSYNC); false with `threadsError`. */
  allThreads: boolean;
  threadsError: NativeError | null;
  dumpable: boolean;
}

/** An error from a system call, with the errno name as `code` (e.g. 'EPERM', 'EADDRINUSE'). */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
}
