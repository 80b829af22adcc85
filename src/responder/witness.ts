// The witness: raw sockets (after the INPUT hook) and a packet socket (before any firewall, both
// directions), each behind a kernel BPF filter, turning probe packets into witness-log entries.
// See: raw(7), packet(7). classifyProbe is pure and unit-tested; Witness is the thin I/O around it.
import type { NativeBinding, NativeSocket, ReceivedPacket } from '../native-types.js';
import { IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, decodeIPv4, type IPv4Packet } from '../packets/ipv4.js';
import { decodeTcp } from '../packets/tcp.js';
import { decodeUdp } from '../packets/udp.js';
import {
  PROBE_MAGIC,
  PROBE_PAYLOAD_LENGTH,
  PROBE_SESSION_OFFSET,
  SESSION_ID_LENGTH,
  sameFlow,
  tcpSeqIdx,
  verifyProbePayload,
  verifyTcpProbe,
  type ProbeFlow,
} from '../packets/probe.js';
import { FRAMINGS_OF, unframe } from '../checks/framing.js';
import { dropAll, ipipProbe, tcpSynToPorts, udpProbeToPorts, witnessProgram } from '../packets/bpf.js';
import { DecodeError } from '../packets/errors.js';
import type { ExpectedFlow, Session, SessionStore } from './sessions.js';

export interface ProbeSighting {
  session: Session;
  /** The one flow the probe's proof is right for. */
  flow: ProbeFlow;
  /** Addresses as seen in the packet (the source may differ from flow.src behind NAT). */
  src: string;
  dst: string;
}

/** What one packet turned out to be: a proven probe, a probe-shaped packet whose proof is wrong, one shed unchecked, or noise. */
export type Classification =
  | { kind: 'probe'; sighting: ProbeSighting }
  | { kind: 'forged'; session: Session }
  | { kind: 'shed'; session: Session }
  | null;

export interface ClassifyContext {
  /** This node's address: incoming probes must be for it, outgoing ones from it. */
  self: string;
  /** The packet was sent by this host (a packet socket's outgoing copy). */
  outgoing: boolean;
  active: readonly Session[];
  byId: (idBytes: Buffer) => Session | undefined;
  nowMs: number;
}

/** The flow a session expects for a probe index, seen from this side. */
function expected(session: Session, ctx: ClassifyContext, dst: string, idx: number): ExpectedFlow | undefined {
  return ctx.outgoing ? session.outbound.get(`${dst}/${idx}`) : session.inbound.get(idx);
}

function asFlow(e: ExpectedFlow, ctx: ClassifyContext, dst: string, idx: number): ProbeFlow {
  return { src: ctx.outgoing ? ctx.self : e.src, dst: ctx.outgoing ? dst : ctx.self, transport: e.transport, port: e.port, check: e.check, idx };
}

function classifyTcp(ip: IPv4Packet, ctx: ClassifyContext): Classification {
  const tcp = decodeTcp(ip.payload);
  if (!tcp.isSyn || tcp.isAck || !tcp.timestamp) return null;
  const idx = tcpSeqIdx(tcp.seq);
  let wrong: Session | null = null;
  for (const session of ctx.active) {
    const e = expected(session, ctx, ip.dst, idx);
    // Checked per flow and port: a tag is tried only against the one flow its index and port can be.
    if (!e || e.transport !== 'tcp' || e.port !== tcp.dstPort) continue;
    if (!session.budget.take(ctx.nowMs)) {
      session.shed++;
      return { kind: 'shed', session };
    }
    const flow = asFlow(e, ctx, ip.dst, idx);
    if (verifyTcpProbe(session.key, flow, tcp.seq, tcp.timestamp.val)) return { kind: 'probe', sighting: { session, flow, src: ip.src, dst: ip.dst } };
    wrong ??= session;
  }
  if (wrong) wrong.forged++;
  return wrong ? { kind: 'forged', session: wrong } : null;
}

function classifyPayload(ip: IPv4Packet, buf: Buffer | null, port: number | null, ctx: ClassifyContext): Classification {
  if (!buf || buf.length < PROBE_PAYLOAD_LENGTH || buf.readUInt32BE(0) !== PROBE_MAGIC) return null;
  const session = ctx.byId(buf.subarray(PROBE_SESSION_OFFSET, PROBE_SESSION_OFFSET + SESSION_ID_LENGTH));
  if (!session) return null;
  if (!session.budget.take(ctx.nowMs)) {
    session.shed++;
    return { kind: 'shed', session };
  }
  const forged = (): Classification => {
    session.forged++;
    return { kind: 'forged', session };
  };
  const p = verifyProbePayload(buf, session.key);
  if (!p) return forged();
  // A genuine probe proves only the flow it names, arriving the way that flow travels: re-sent to another
  // node, re-wrapped in another protocol or to another port, it proves nothing.
  const transport = ip.protocol === IPPROTO_UDP ? 'udp' : 'ipip';
  if (p.transport !== transport || p.port !== port) return forged();
  if (ctx.outgoing ? p.src !== ctx.self || p.dst !== ip.dst : p.dst !== ctx.self) return forged();
  const e = expected(session, ctx, p.dst, p.idx);
  if (!e) return forged();
  const flow = asFlow(e, ctx, p.dst, p.idx);
  if (!sameFlow(flow, p)) return forged();
  return { kind: 'probe', sighting: { session, flow, src: ip.src, dst: ip.dst } };
}

/**
 * Decide whether `data` (an IPv4 packet) is a genuine probe of a live session, and of which flow: TCP SYNs by
 * the 48-bit tag in their sequence number and timestamp, UDP and IP-in-IP by the signed payload, each checked
 * against the flow the session expects at that index (incoming: from the session's inbound table; outgoing:
 * from this node's own probe requests). Anything else (real traffic, garbage) gives null. Never throws.
 */
export function classifyProbe(data: Buffer, ctx: ClassifyContext): Classification {
  try {
    // The kernel filter passes at most SNAPLEN bytes: a padded probe (WireGuard-sized, MTU-sized) arrives cut,
    // and its proof sits in the first bytes, so a cut packet is judged on what is there.
    const ip = decodeIPv4(data, { allowTruncated: true });
    if (ip.fragmentOffset !== 0) return null;
    if (ctx.outgoing ? ip.src !== ctx.self : ip.dst !== ctx.self) return null; // passing through, or another address of this host
    if (ip.protocol === IPPROTO_TCP) return classifyTcp(ip, ctx);
    if (ip.protocol === IPPROTO_UDP) {
      const udp = ip.truncated ? cutUdp(ip.payload) : decodeUdp(ip.payload);
      // Any framing a UDP probe may come in (the catalogue's, or a request's override): the first that holds one.
      for (const framing of FRAMINGS_OF.udp) {
        const c = classifyPayload(ip, unframe(framing, udp.payload), udp.dstPort, ctx);
        if (c) return c;
      }
      return null;
    }
    if (ip.protocol === IPPROTO_IPIP) return classifyPayload(ip, unframe('ipip', ip.payload), null, ctx);
    return null;
  } catch (err) {
    if (err instanceof DecodeError) return null;
    throw err;
  }
}

/** The ports and what is left of the payload of a UDP datagram cut by the snap length. */
function cutUdp(buf: Buffer): { dstPort: number; payload: Buffer } {
  if (buf.length < 8) throw new DecodeError('udp header', 0, 'cut short');
  return { dstPort: buf.readUInt16BE(2), payload: buf.subarray(8) };
}

/** Packets one receive call returns at most (the addon's default batch). */
const RECEIVE_BATCH = 64;
/** A full batch this recent means the queue is still being worked off. */
const BEHIND_MS = 250;

/** The size a probe arrived with: its IPv4 total length, if the kernel delivered that much (origLength). */
export function arrivedSize(pkt: Pick<ReceivedPacket, 'data' | 'origLength'>): number {
  return pkt.data.length >= 4 ? Math.min(pkt.data.readUInt16BE(2), pkt.origLength) : 0;
}

export interface WitnessPorts {
  tcp: number[];
  udp: number[];
}

export interface WitnessEvent {
  layer: 'iface' | 'socket' | 'left';
  sighting: ProbeSighting;
  ifname: string | null;
}

export interface WitnessOptions {
  native: NativeBinding;
  address: string;
  ports: WitnessPorts;
  store: SessionStore;
  rcvbuf?: number;
  /** Called the first time a probe is seen at a layer (for the responder's log). */
  onEvent?: (e: WitnessEvent) => void;
  onError?: (err: Error) => void;
}

export interface WitnessStats {
  capture: boolean;
  packets: number;
  probes: number;
  ignored: number;
  /** Probe-shaped packets whose proof was wrong for the flow they could be. */
  forged: number;
  /** Probe-shaped packets not checked: a session's proof budget was spent. */
  shed: number;
}

export class Witness {
  private readonly sockets: { sock: NativeSocket; layer: 'socket' | 'packet'; build: (p: WitnessPorts) => ReturnType<typeof witnessProgram> }[] = [];
  capture = false;
  captureError: string | null = null;
  readonly stats: WitnessStats = { capture: false, packets: 0, probes: 0, ignored: 0, forged: 0, shed: 0 };
  private ports: WitnessPorts;
  /** Whether the probe filters are attached (a session is live); otherwise every socket drops all. */
  private armed = false;
  private timer: NodeJS.Timeout | null = null;
  /** When a receive batch last came full (0: never): while recent, unread packets wait in a queue. */
  private lastFullAt = 0;

  constructor(private readonly opts: WitnessOptions) {
    this.ports = { tcp: [...opts.ports.tcp], udp: [...opts.ports.udp] };
  }

  /** Open every socket (call before dropping privileges). Raw sockets are required; capture is best effort. */
  open(): void {
    const { native, address, rcvbuf = 4 << 20 } = this.opts;
    const raw = (protocol: number, build: (p: WitnessPorts) => ReturnType<typeof witnessProgram>) => {
      const sock = native.open({ kind: 'raw', protocol, bindAddress: address, rcvbuf });
      this.sockets.push({ sock, layer: 'socket', build });
    };
    try {
      raw(6, (p) => tcpSynToPorts(p.tcp));
      raw(17, (p) => udpProbeToPorts(p.udp));
      raw(4, () => ipipProbe());
    } catch (err) {
      this.close();
      throw err;
    }
    try {
      const sock = native.open({ kind: 'packet', rcvbuf });
      this.sockets.push({ sock, layer: 'packet', build: (p) => witnessProgram({ tcpPorts: p.tcp, udpPorts: p.udp, ipip: true }) });
      this.capture = true;
    } catch (err) {
      this.capture = false;
      this.captureError = (err as Error).message;
    }
    this.stats.capture = this.capture;
    // Sockets open with a drop-all filter (the addon's default): no session, nothing reaches user space.
    for (const s of this.sockets) {
      s.sock.start(
        (packets) => {
          // A full batch means more is queued: the witness is behind the kernel (a flood), not caught up.
          this.lastFullAt = packets.length >= RECEIVE_BATCH ? Date.now() : this.lastFullAt;
          this.onPackets(s.layer, packets);
        },
        (err) => this.opts.onError?.(err),
      );
    }
    this.refresh();
    // Sessions expire on their own; notice it within a second and stop copying anything.
    this.timer = setInterval(() => this.refresh(), 1000);
    this.timer.unref();
  }

  /**
   * Attach the probe filters while a session is live, and drop-all otherwise: on a busy node (an
   * apiserver with thousands of connections) an idle responder then costs nothing at all.
   */
  refresh(nowMs = Date.now()): void {
    const live = this.opts.store.active(nowMs).length > 0;
    if (live === this.armed) return;
    this.armed = live;
    for (const s of this.sockets) s.sock.attachFilter(live ? s.build(this.ports) : dropAll());
  }

  get filtering(): boolean {
    return this.armed;
  }

  /** Widen the kernel filters to ports a new session uses (the swap is race-free in the addon). */
  addPorts(ports: WitnessPorts): void {
    const tcp = [...new Set([...this.ports.tcp, ...ports.tcp])].sort((a, b) => a - b);
    const udp = [...new Set([...this.ports.udp, ...ports.udp])].sort((a, b) => a - b);
    if (tcp.length === this.ports.tcp.length && udp.length === this.ports.udp.length) return;
    this.ports = { tcp, udp };
    if (this.armed) for (const s of this.sockets) s.sock.attachFilter(s.build(this.ports));
  }

  get currentPorts(): WitnessPorts {
    return this.ports;
  }

  private onPackets(layer: 'socket' | 'packet', packets: ReceivedPacket[]): void {
    const now = Date.now();
    const store = this.opts.store;
    const active = store.active(now);
    if (active.length === 0) {
      this.stats.packets += packets.length;
      this.stats.ignored += packets.length;
      return;
    }
    const byId = (b: Buffer) => store.byIdBytes(b, now);
    for (const pkt of packets) {
      this.stats.packets++;
      const outgoing = layer === 'packet' && pkt.outgoing;
      const c = classifyProbe(pkt.data, { self: this.opts.address, outgoing, active, byId, nowMs: now });
      if (c?.kind !== 'probe') {
        this.stats.ignored++;
        if (c?.kind === 'forged') this.stats.forged++;
        if (c?.kind === 'shed') this.stats.shed++;
        continue;
      }
      this.stats.probes++;
      const s = c.sighting;
      if (outgoing) {
        s.session.sawLeave(s.flow.dst, s.flow.idx, pkt.ifname);
        this.opts.onEvent?.({ layer: 'left', sighting: s, ifname: pkt.ifname });
        continue;
      }
      const isNew = s.session.witness(s.flow, layer === 'packet' ? 'iface' : 'socket', pkt.ifname, layer === 'socket' && pkt.source ? pkt.source : s.src, pkt.tsMs, arrivedSize(pkt));
      if (isNew) this.opts.onEvent?.({ layer: layer === 'packet' ? 'iface' : 'socket', sighting: s, ifname: pkt.ifname });
    }
  }

  /** True while a receive queue is not drained: "not seen" may only mean "not read yet". */
  behind(nowMs = Date.now()): boolean {
    return nowMs - this.lastFullAt < BEHIND_MS;
  }

  /** Wait (at most `maxMs`) until the receive queues are drained; true when they are. */
  async settle(maxMs: number): Promise<boolean> {
    const until = Date.now() + maxMs;
    while (this.behind() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    return !this.behind();
  }

  /** Packets the kernel dropped on the witness sockets since they opened (a full receive queue). */
  drops(): number {
    let n = 0;
    for (const s of this.sockets) n += s.sock.stats().drops;
    return n;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const s of this.sockets) s.sock.close();
    this.sockets.length = 0;
  }
}
