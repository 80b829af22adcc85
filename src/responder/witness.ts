// The witness: raw sockets (after the INPUT hook) and a packet socket (before any firewall, both
// directions), each behind a kernel BPF filter, turning probe packets into witness-log entries.
// See: raw(7), packet(7). classifyProbe is pure and unit-tested; Witness is the thin I/O around it.
import type { NativeBinding, NativeSocket, ReceivedPacket } from '../native-types.js';
import { decodeIPv4 } from '../packets/ipv4.js';
import { decodeTcp } from '../packets/tcp.js';
import { decodeUdp } from '../packets/udp.js';
import { PROBE_MAGIC, verifyProbePayload, tcpProbeIdx } from '../packets/probe.js';
import { FRAMINGS_OF, unframe } from '../checks/framing.js';
import { dropAll, ipipProbe, tcpSynToPorts, udpProbeToPorts, witnessProgram } from '../packets/bpf.js';
import { DecodeError } from '../packets/errors.js';
import type { CheckId } from '../types.js';
import type { Session, SessionStore } from './sessions.js';


export interface ProbeSighting {
  session: Session;
  idx: number;
  check: CheckId | null;
  src: string;
  dst: string;
  transport: 'tcp' | 'udp' | 'ipip';
  dstPort: number | null;
}

function probeFromPayload(buf: Buffer | null, sessions: (idBytes: Buffer) => Session | undefined): { session: Session; idx: number; check: CheckId | null } | null {
  if (!buf || buf.length < 42 || buf.readUInt32BE(0) !== PROBE_MAGIC) return null;
  const session = sessions(buf.subarray(10, 18));
  if (!session) return null;
  const p = verifyProbePayload(buf, session.key);
  if (!p) return null;
  return { session, idx: p.idx, check: p.check };
}

/**
 * Decide whether `data` (an IPv4 packet) is a genuine probe of a live session: TCP SYNs by the HMAC tag in
 * their sequence number, UDP and IP-in-IP by the signed payload. Anything else (real traffic, garbage,
 * forgeries) gives null. Never throws.
 */
export function classifyProbe(data: Buffer, sessions: { active: Session[]; byId: (idBytes: Buffer) => Session | undefined }): ProbeSighting | null {
  try {
    // The kernel filter passes at most SNAPLEN bytes: a padded probe (WireGuard-sized, MTU-sized) arrives cut,
    // and its proof sits in the first bytes, so a cut packet is judged on what is there.
    const ip = decodeIPv4(data, { allowTruncated: true });
    if (ip.fragmentOffset !== 0) return null;
    if (ip.protocol === 6) {
      const tcp = decodeTcp(ip.payload);
      if (!tcp.isSyn || tcp.isAck) return null;
      for (const session of sessions.active) {
        const idx = tcpProbeIdx(session.key, ip.dst, tcp.dstPort, tcp.seq);
        if (idx !== null) {
          const check = (Object.entries(session.ports).find(([, p]) => p === tcp.dstPort)?.[0] as CheckId | undefined) ?? null;
          return { session, idx, check, src: ip.src, dst: ip.dst, transport: 'tcp', dstPort: tcp.dstPort };
        }
      }
      return null;
    }
    if (ip.protocol === 17) {
      const udp = ip.truncated ? cutUdp(ip.payload) : decodeUdp(ip.payload);
      let hit = null;
      // Any framing a UDP probe may come in (the catalogue's, or a request's override).
      for (const framing of FRAMINGS_OF.udp) if ((hit = probeFromPayload(unframe(framing, udp.payload), sessions.byId))) break;
      return hit ? { ...hit, src: ip.src, dst: ip.dst, transport: 'udp', dstPort: udp.dstPort } : null;
    }
    if (ip.protocol === 4) {
      const hit = probeFromPayload(unframe('ipip', ip.payload), sessions.byId);
      return hit ? { ...hit, src: ip.src, dst: ip.dst, transport: 'ipip', dstPort: null } : null;
    }
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

/** Whether an incoming sighting's idx is one the session told this node to expect. */
export function withinExpect(s: ProbeSighting): boolean {
  return s.idx < s.session.expect;
}

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
}

export class Witness {
  private readonly sockets: { sock: NativeSocket; layer: 'socket' | 'packet'; build: (p: WitnessPorts) => ReturnType<typeof witnessProgram> }[] = [];
  capture = false;
  captureError: string | null = null;
  readonly stats: WitnessStats = { capture: false, packets: 0, probes: 0, ignored: 0 };
  private ports: WitnessPorts;
  /** Whether the probe filters are attached (a session is live); otherwise every socket drops all. */
  private armed = false;
  private timer: NodeJS.Timeout | null = null;

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
        (packets) => this.onPackets(s.layer, packets),
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
    const lookup = { active, byId: (b: Buffer) => store.byIdBytes(b, now) };
    for (const pkt of packets) {
      this.stats.packets++;
      const s = classifyProbe(pkt.data, lookup);
      if (!s) {
        this.stats.ignored++;
        continue;
      }
      this.stats.probes++;
      if (layer === 'packet' && pkt.outgoing) {
        if (s.src === this.opts.address) s.session.sawLeave(s.dst, s.idx, pkt.ifname);
        this.opts.onEvent?.({ layer: 'left', sighting: s, ifname: pkt.ifname });
        continue;
      }
      if (s.dst !== this.opts.address) continue; // passing through, or for another address of this host
      if (!withinExpect(s)) {
        // A forged TCP tag must also land in the range of flows this node was told to expect.
        this.stats.ignored++;
        continue;
      }
      const isNew = s.session.witness(s.idx, layer === 'packet' ? 'iface' : 'socket', s.check, pkt.ifname, layer === 'socket' && pkt.source ? pkt.source : s.src, pkt.tsMs, arrivedSize(pkt));
      if (isNew) this.opts.onEvent?.({ layer: layer === 'packet' ? 'iface' : 'socket', sighting: s, ifname: pkt.ifname });
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const s of this.sockets) s.sock.close();
    this.sockets.length = 0;
  }
}
