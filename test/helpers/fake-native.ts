// A fake native binding (src/native-types.ts) for unit tests without root: sockets record what is sent,
// a test pushes packets in (through the socket's attached BPF filter, run by src/packets/bpf-run.ts as the
// kernel would), makes sends fail with an errno (EPERM, EMSGSIZE, EHOSTUNREACH) and raises receive errors.
import { constants } from 'node:os';
import type { BpfInstruction, NativeBinding, NativeBpf, NativeError, NativeSocket, ReceivedPacket, SocketOptions, SocketStats } from '../../src/native-types.js';
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

/**
 * A fake bpf(2): maps are byte-keyed tables, a loaded program is only recorded (the test plays the kernel:
 * `drop()` counts a drop as the program would, when the enabled flag is set). `refuse` makes a command
 * fail with an errno name (e.g. { progLoad: 'EPERM' }).
 */
export class FakeBpf implements NativeBpf {
  private nextFd = 500;
  readonly maps = new Map<number, { type: number; keySize: number; valueSize: number; max: number; entries: Map<string, Buffer> }>();
  readonly programs = new Map<number, { type: number; insns: Buffer; license: string }>();
  readonly attached = new Map<number, { name: string; prog: number }>();
  readonly closed: number[] = [];
  refuse: Partial<Record<'mapCreate' | 'progLoad' | 'rawTracepointOpen', string>> = {};

  mapCreate(type: number, keySize: number, valueSize: number, maxEntries: number): number {
    if (this.refuse.mapCreate) throw nativeError(this.refuse.mapCreate, 'bpf');
    const fd = this.nextFd++;
    this.maps.set(fd, { type, keySize, valueSize, max: maxEntries, entries: new Map() });
    return fd;
  }
  progLoad(progType: number, insns: Buffer, license: string): number {
    if (this.refuse.progLoad) throw Object.assign(nativeError(this.refuse.progLoad, 'bpf'), { message: `bpf(2) failed: ${this.refuse.progLoad}: BPF_PROG_LOAD: verifier: R1 invalid mem access` });
    const fd = this.nextFd++;
    this.programs.set(fd, { type: progType, insns: Buffer.from(insns), license });
    return fd;
  }
  rawTracepointOpen(name: string, progFd: number): number {
    if (this.refuse.rawTracepointOpen) throw nativeError(this.refuse.rawTracepointOpen, 'bpf');
    if (!this.programs.has(progFd)) throw nativeError('EBADF', 'bpf');
    const fd = this.nextFd++;
    this.attached.set(fd, { name, prog: progFd });
    return fd;
  }
  private map(fd: number) {
    const m = this.maps.get(fd);
    if (!m) throw nativeError('EBADF', 'bpf');
    return m;
  }
  mapUpdate(fd: number, key: Buffer, value: Buffer): void {
    const m = this.map(fd);
    if (key.length !== m.keySize || value.length !== m.valueSize) throw nativeError('EINVAL', 'bpf');
    m.entries.set(key.toString('hex'), Buffer.from(value));
  }
  mapDelete(fd: number, key: Buffer): boolean {
    return this.map(fd).entries.delete(key.toString('hex'));
  }
  mapEntries(fd: number, _keySize: number, _valueSize: number, maxEntries: number): Buffer {
    const out: Buffer[] = [];
    for (const [k, v] of [...this.map(fd).entries].slice(0, maxEntries)) out.push(Buffer.from(k, 'hex'), v);
    return Buffer.concat(out);
  }
  close(fd: number): void {
    this.closed.push(fd);
    this.maps.delete(fd);
    this.programs.delete(fd);
    this.attached.delete(fd);
  }
  /** Whether the program is attached and its enabled flag (the array map) is set. */
  enabled(): boolean {
    if (this.attached.size === 0) return false;
    for (const m of this.maps.values()) if (m.type === 2) return (m.entries.get('00000000')?.readUInt32LE(0) ?? 0) !== 0;
    return false;
  }
  /** Play the kernel: count a drop of `key` (16 bytes, drop-bpf's layout) with `reason`, when enabled. */
  drop(key: Buffer, reason: number): void {
    if (!this.enabled()) return;
    for (const m of this.maps.values()) {
      if (m.type !== 1) continue;
      const v = m.entries.get(key.toString('hex')) ?? Buffer.alloc(16);
      v.writeUInt32LE(reason, 0);
      v.writeBigUInt64LE(v.readBigUInt64LE(8) + 1n, 8);
      m.entries.set(key.toString('hex'), v);
    }
  }
}

export class FakeNative implements NativeBinding {
  readonly sockets: FakeSocket[] = [];
  /** bpf(2): absent unless a test sets it (an addon without it). */
  bpf?: FakeBpf;
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
