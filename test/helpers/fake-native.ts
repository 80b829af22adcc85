// A fake native binding (src/native-types.ts) for unit tests without root: sockets record what is sent,
// a test pushes packets in (through the socket's attached BPF filter, run by src/packets/bpf-run.ts as the
// kernel would), makes sends fail with an errno (EPERM, EMSGSIZE, EHOSTUNREACH) and raises receive errors.
import { constants } from 'node:os';
import type { BpfInstruction, NativeBinding, NativeError, NativeSocket, ReceivedPacket, SocketOptions, SocketStats } from '../../src/native-types.js';
import { runBpf } from '../../src/packets/bpf-run.js';

/** An Error shaped exactly like the addon's: errno name as `code`, the number, the system call. */
export function nativeError(code: string, syscall: string): NativeError {
  const errno = (constants.errno as Record<string, number | undefined>)[code] ?? 0;
  return Object.assign(new Error(`${syscall}(2) failed: ${code}`), { code, errno, syscall });
}

export interface SentPacket {
  data: Buffer;
  address: string;
}

/** What a send does: undefined goes out, an errno name is thrown as a NativeError from sendto. */
export type SendRule = (data: Buffer, address: string) => string | undefined;

/** The addon's drop-all default: a socket delivers nothing until a real filter is attached. */
const DROP_ALL: readonly BpfInstruction[] = [{ code: 0x06, jt: 0, jf: 0, k: 0 }];

export class FakeSocket implements NativeSocket {
  readonly kind: 'raw' | 'packet';
  readonly sent: SentPacket[] = [];
  filter: readonly BpfInstruction[] = DROP_ALL;
  filtersAttached = 0;
  closed = false;
  started = false;
  /** Decides each send's fate (default: every send goes out). */
  sendRule: SendRule = () => undefined;
  private onPackets: ((p: ReceivedPacket[]) => void) | null = null;
  private onError: ((e: NativeError) => void) | null = null;
  private readonly counters: SocketStats = { received: 0, batches: 0, drops: 0 };

  constructor(
    readonly fd: number,
    readonly options: SocketOptions,
    private readonly binding: FakeNative,
  ) {
    this.kind = options.kind;
  }

  get protocol(): number | null {
    return this.options.kind === 'raw' ? this.options.protocol : null;
  }

  attachFilter(program: readonly BpfInstruction[]): void {
    this.alive('setsockopt');
    this.filter = [...program];
    this.filtersAttached++;
  }

  send(data: Buffer, address: string): number {
    this.alive('sendto');
    const refused = this.sendRule(data, address);
    if (refused) throw nativeError(refused, 'sendto');
    const copy = Buffer.from(data);
    this.sent.push({ data: copy, address });
    this.binding.onSend?.(this, copy, address);
    return data.length;
  }

  start(onPackets: (packets: ReceivedPacket[]) => void, onError: (err: NativeError) => void): void {
    this.alive('uv_poll_start');
    this.onPackets = onPackets;
    this.onError = onError;
    this.started = true;
  }

  stop(): void {
    this.started = false;
  }

  close(): void {
    this.closed = true;
    this.started = false;
    this.onPackets = this.onError = null;
  }

  stats(): SocketStats {
    return { ...this.counters };
  }

  /**
   * Deliver packets as one receive batch, as the kernel would: each passes the attached filter (and is
   * truncated to what it keeps) or is not delivered. Returns how many were delivered.
   */
  push(...packets: Array<Buffer | (Partial<ReceivedPacket> & { data: Buffer })>): number {
    if (!this.started || !this.onPackets) return 0;
    const batch: ReceivedPacket[] = [];
    for (const p of packets) {
      const given: Partial<ReceivedPacket> & { data: Buffer } = Buffer.isBuffer(p) ? { data: p } : p;
      const pktType = given.pktType ?? 0;
      const keep = runBpf(this.filter, given.data, { pktType, ifindex: given.ifindex ?? 0 });
      if (keep === 0) continue;
      batch.push({
        data: given.data.subarray(0, Math.min(keep, given.data.length)),
        tsMs: given.tsMs ?? performance.timeOrigin + performance.now(),
        source: given.source ?? (this.kind === 'raw' ? sourceOf(given.data) : ''),
        ifname: given.ifname ?? null,
        ifindex: given.ifindex ?? 0,
        pktType,
        outgoing: given.outgoing ?? pktType === 4,
        origLength: given.origLength ?? given.data.length,
      });
    }
    if (batch.length === 0) return 0;
    this.counters.received += batch.length;
    this.counters.batches++;
    this.onPackets(batch);
    return batch.length;
  }

  /** Raise a receive error (e.g. ENOBUFS when the queue overflowed) through the start() callback. */
  fail(code: string, syscall = 'recvmmsg'): void {
    this.onError?.(nativeError(code, syscall));
  }

  private alive(syscall: string): void {
    if (this.closed) throw nativeError('EBADF', syscall);
  }
}

function sourceOf(ip: Buffer): string {
  return ip.length >= 16 ? `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}` : '';
}

export class FakeNative implements NativeBinding {
  readonly sockets: FakeSocket[] = [];
  private nextFd = 100;
  /** Called after every successful send on any socket: a test answers probes here. */
  onSend?: (socket: FakeSocket, data: Buffer, address: string) => void;
  /** Makes open() fail with this errno name for the options it returns one for (e.g. EPERM for packet sockets). */
  openRule: (options: SocketOptions) => string | undefined = () => undefined;

  open(options: SocketOptions): NativeSocket {
    const refused = this.openRule(options);
    if (refused) throw nativeError(refused, 'socket');
    const s = new FakeSocket(this.nextFd++, options, this);
    this.sockets.push(s);
    return s;
  }

  ifIndex(name: string): number {
    return name === 'lo' ? 1 : 0;
  }

  /** MTU of the interface holding each address (interfaceMtu); an address not here is held by eth0 at `hostMtu`. */
  readonly interfaceMtus = new Map<string, { ifname: string; mtu: number } | null>();
  hostMtu = 1500;
  /** IP_MTU of the route to each destination (routeMtu); absent: `hostMtu`. A string is an errno name thrown. */
  readonly routeMtus = new Map<string, number | string>();

  interfaceMtu(address: string): { ifname: string; mtu: number } | null {
    if (this.interfaceMtus.has(address)) return this.interfaceMtus.get(address) ?? null;
    return { ifname: 'eth0', mtu: this.hostMtu };
  }

  routeMtu(destination: string): number {
    const r = this.routeMtus.get(destination) ?? this.hostMtu;
    if (typeof r === 'string') throw nativeError(r, 'getsockopt');
    return r;
  }

  /** Netlink requests made, and the kernel's answer to each (default: an empty NLMSG_DONE). */
  readonly netlinkRequests: Array<{ protocol: number; request: Buffer }> = [];
  netlinkRule: (protocol: number, request: Buffer) => Buffer | string = () => {
    const done = Buffer.alloc(20);
    done.writeUInt32LE(20, 0);
    done.writeUInt16LE(3, 4);
    return done;
  };

  netlinkTransact(protocol: number, request: Buffer): Buffer {
    this.netlinkRequests.push({ protocol, request: Buffer.from(request) });
    const answer = this.netlinkRule(protocol, request);
    if (typeof answer === 'string') throw nativeError(answer, 'socket');
    return answer;
  }

  /**
   * The open raw socket of `protocol` (the last one opened), or throws: a test names what it expects.
   * `pmtudisc`: the socket opened with that IP_MTU_DISCOVER mode (the mtu prober's); without it, one opened without.
   */
  raw(protocol: number, pmtudisc?: string): FakeSocket {
    const s = this.sockets.filter((x) => !x.closed && x.protocol === protocol && (x.options.kind === 'raw' ? x.options.pmtudisc : undefined) === pmtudisc).at(-1);
    if (!s) throw new Error(`no open raw socket for protocol ${protocol}${pmtudisc ? ` with pmtudisc ${pmtudisc}` : ''}`);
    return s;
  }

  packet(): FakeSocket {
    const s = this.sockets.filter((x) => !x.closed && x.kind === 'packet').at(-1);
    if (!s) throw new Error('no open packet socket');
    return s;
  }
}
