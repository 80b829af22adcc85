// The sending side of the mtu check: DF probes of given outer sizes in one encapsulation's framing, sent
// on their own raw socket with IP_PMTUDISC_PROBE (the path is measured, not the kernel's memory of it),
// paced (routers rate-limit ICMP errors), and every ICMP "fragmentation needed" quoting them collected.
// It also reads what the kernel knows: the MTU of the interface holding this node's address and the
// route's MTU to the peer (IP_MTU) before and after, so a path MTU the kernel had already learnt, or
// learnt from these probes, is said, never silently relied on or left behind.
import type { NativeBinding, NativeSocket } from '../native-types.js';
import { isNativeError } from '../native.js';
import { encodeProbePayload } from '../packets/probe.js';
import type { CheckId, MtuSourceFacts, MtuTrace, SourceOutcome } from '../types.js';
import type { Framing } from './catalogue.js';
import { framePacket, MAX_PROBE_SIZE, minFramedSize } from './framing.js';
import { roundSchedule } from './mtu-search.js';
import { nowMs, untilDeadline, type PeerTimeouts } from './rtt.js';

/** An ICMP error quoting one of this node's packets, as the prober's ICMP socket decoded it. */
export interface IcmpSighting {
  key: string;
  from: string;
  type: number;
  code: number;
  nextHopMtu: number | null;
  quotedLength: number;
  atMs: number;
}

export interface MtuProbeRequest {
  idx: number;
  check: CheckId;
  /** The carrier's transport and framing (the catalogue's carriedBy, chosen by the plan). */
  transport: 'udp' | 'ipip';
  framing: Framing;
  to: string;
  port: number | null;
  sizes?: number[];
  /** Called once every probe has been sent (IP-in-IP probes are ordered by it: src/responder/probe-order.ts). */
  onSent?: () => void;
}

const HOST_MTU_CACHE_MS = 5000;
/** Gap between two large probes: a first round of ~30 sizes × 2 copies takes ~60 ms, not a burst of 80 kB. */
export const MTU_SPACING_MS = 1;

export class MtuProber {
  private send: NativeSocket | null = null;
  private readonly watch = new Map<string, (s: IcmpSighting) => void>();
  private hostMtuCache: { mtu: number | null; atMs: number } | null = null;

  constructor(
    private readonly native: NativeBinding,
    readonly address: string,
  ) {}

  open(): void {
    this.send = this.native.open({ kind: 'raw', protocol: 255, hdrincl: true, bindAddress: this.address, pmtudisc: 'probe' });
  }

  close(): void {
    this.send?.close();
    this.send = null;
    this.watch.clear();
  }

  /** Called by the prober for every ICMP error quoting a packet of this node. */
  onIcmp(s: IcmpSighting): void {
    this.watch.get(s.key)?.(s);
  }

  /** MTU of the interface holding this node's address (cached briefly: a mesh asks once per peer). */
  hostMtu(at = nowMs()): number | null {
    if (this.hostMtuCache && at - this.hostMtuCache.atMs < HOST_MTU_CACHE_MS) return this.hostMtuCache.mtu;
    let mtu: number | null = null;
    try {
      mtu = this.native.interfaceMtu(this.address)?.mtu ?? null;
    } catch {
      mtu = null;
    }
    this.hostMtuCache = { mtu, atMs: at };
    return mtu;
  }

  private routeMtu(to: string): number | null {
    try {
      return this.native.routeMtu(to, { bindAddress: this.address });
    } catch {
      return null;
    }
  }

  /**
   * DF probes of `size` at each TTL, paced; the time-exceeded each drew (TTL, sender). A refused send ends it.
   */
  async sendTtl(
    session: { idBytes: Buffer; key: Buffer },
    req: MtuProbeRequest,
    size: number,
    ttls: readonly number[],
    wire: () => TraceWire,
    release: (w: TraceWire) => void,
    timeouts: PeerTimeouts,
    outcome: SourceOutcome,
    signal?: AbortSignal,
  ): Promise<Array<{ ttl: number; from: string }>> {
    if (!this.send) throw new Error('prober is not open');
    const got: Array<{ ttl: number; from: string }> = [];
    const used: TraceWire[] = [];
    let last = nowMs();
    try {
      for (const ttl of ttls) {
        if (signal?.aborted) break;
        const w = wire();
        used.push(w);
        this.watch.set(w.key, (s) => {
          if (s.type === 11 && !got.some((g) => g.ttl === ttl)) got.push({ ttl, from: s.from });
        });
        const payload = encodeProbePayload({ key: session.key, sessionId: session.idBytes, src: this.address, dst: req.to, transport: req.transport, port: req.port, check: req.check, idx: req.idx, attempt: Math.min(255, 200 + ttl), sendTimeMs: Date.now() });
        const packet = framePacket({ framing: req.framing, size, df: true }, { src: this.address, dst: req.to, transport: req.transport, srcPort: w.srcPort, dstPort: req.port, id: w.ipId, ttl, payload });
        try {
          outcome.attempts++;
          this.send.send(packet, req.to);
          last = nowMs();
        } catch (err) {
          if (!isNativeError(err)) throw err;
          break;
        }
        await sleep(MTU_SPACING_MS, signal);
      }
      await untilDeadline(() => false, () => last + timeouts.timeout(req.to), undefined, signal);
    } finally {
      for (const w of used) {
        this.watch.delete(w.key);
        release(w);
      }
    }
    return got;
  }

  /**
   * Send one mtu request's probes and fill `outcome` (attempts, sendError for a refused send other than
   * EMSGSIZE, reply/replyFrom/icmp for a frag-needed, and `mtu`). `key` matches the ICMP quotes.
   */
  async probe(
    session: { idBytes: Buffer; key: Buffer },
    req: MtuProbeRequest,
    wire: { ipId: number; srcPort: number | null; key: string },
    opts: { tries: number; spacingMs: number },
    timeouts: PeerTimeouts,
    outcome: SourceOutcome,
    signal?: AbortSignal,
  ): Promise<void> {
    if (!this.send) throw new Error('prober is not open');
    const hostMtu = this.hostMtu();
    const min = minFramedSize(req.framing, req.transport);
    const sizes = [...new Set(req.sizes ?? (hostMtu !== null ? [hostMtu] : []))].map((x) => Math.min(MAX_PROBE_SIZE, Math.max(min, x))).sort((a, b) => b - a);
    const facts: MtuSourceFacts = { hostMtu, kernelPmtu: this.routeMtu(req.to), kernelPmtuAfter: null, sizes, fragNeeded: null, refusedSize: null };
    outcome.mtu = facts;
    let firstSent = 0;
    let lastSent = nowMs();
    this.watch.set(wire.key, (s) => {
      if (s.type === 3 && s.code === 4) {
        if (facts.fragNeeded) return;
        facts.fragNeeded = { from: s.from, mtu: s.nextHopMtu ?? 0, size: s.quotedLength };
      }
      // Any other ICMP error (a REJECT's admin-prohibited, port unreachable) is the probe's answer, as for
      // every datagram probe; the first answer stands.
      if (outcome.reply) return;
      outcome.reply = 'icmp';
      outcome.replyFrom = s.from;
      outcome.icmp = { type: s.type, code: s.code };
      outcome.rttMs = firstSent ? Math.max(0, s.atMs - firstSent) : null;
    });
    try {
      const refused = new Set<number>();
      const schedule = roundSchedule(sizes, Math.max(1, opts.tries), 0);
      for (let i = 0; i < schedule.length && !signal?.aborted; i++) {
        const { size } = schedule[i]!;
        if (refused.has(size)) continue;
        const payload = encodeProbePayload({ key: session.key, sessionId: session.idBytes, src: this.address, dst: req.to, transport: req.transport, port: req.port, check: req.check, idx: req.idx, attempt: Math.min(255, i), sendTimeMs: Date.now() });
        const packet = framePacket({ framing: req.framing, size, df: true }, { src: this.address, dst: req.to, transport: req.transport, srcPort: wire.srcPort, dstPort: req.port, id: wire.ipId, payload });
        try {
          outcome.attempts++;
          this.send.send(packet, req.to);
          lastSent = nowMs();
          if (!firstSent) firstSent = lastSent;
        } catch (err) {
          if (!isNativeError(err)) throw err;
          if (err.code !== 'EMSGSIZE') {
            outcome.sendError = err.code;
            return;
          }
          // This node's own kernel refuses it: bigger than the outgoing device's MTU.
          refused.add(size);
          facts.refusedSize = facts.refusedSize === null ? size : Math.min(facts.refusedSize, size);
        }
        if (i + 1 < schedule.length) await sleep(Math.min(opts.spacingMs, MTU_SPACING_MS), signal);
      }
      req.onSent?.();
      // Frag-needed comes back within a round trip; wait as long as a reply to this peer could take (re-read as it learns).
      await untilDeadline(() => false, () => lastSent + timeouts.timeout(req.to), undefined, signal);
    } finally {
      this.watch.delete(wire.key);
      facts.kernelPmtuAfter = this.routeMtu(req.to);
    }
  }
}

/** One TTL-limited probe's identity: its IP id / source port and the key its ICMP quotes map to. */
export interface TraceWire {
  ipId: number;
  srcPort: number | null;
  key: string;
}

/** Hops a trace tries at most: enough for a data-centre path, few enough to cost little. */
export const MAX_TRACE_TTL = 8;

/** Appended to MtuProber: the TTL-limited trace (kept here, beside the probe it follows). */
export async function traceMtu(
  p: MtuProber,
  session: { idBytes: Buffer; key: Buffer },
  req: MtuProbeRequest & { trace: { size: number; small: number; maxTtl: number } },
  wire: () => TraceWire,
  release: (w: TraceWire) => void,
  timeouts: PeerTimeouts,
  outcome: SourceOutcome,
  signal?: AbortSignal,
): Promise<void> {
  const maxTtl = Math.max(1, Math.min(MAX_TRACE_TTL, req.trace.maxTtl));
  const trace: MtuTrace = { size: req.trace.size, maxTtl, reached: [], first: null };
  if (outcome.mtu) outcome.mtu.trace = trace;
  // Phase 1: a size that does not arrive, TTL 1..maxTtl. Linux checks the TTL before the MTU when it
  // forwards, so every hop in front of the limit answers time-exceeded, and none past it does.
  const big = await p.sendTtl(session, req, req.trace.size, Array.from({ length: maxTtl }, (_, i) => i + 1), wire, release, timeouts, outcome, signal);
  trace.reached = big.sort((a, b) => a.ttl - b.ttl);
  if (trace.reached.length > 0 || signal?.aborted) return;
  // Phase 2 (only then: time-exceeded is rate-limited per peer): a small probe at TTL 1 names the first
  // hop, which the large ones never reached — the limit is on the sender's first link.
  const small = await p.sendTtl(session, req, req.trace.small, [1], wire, release, timeouts, outcome, signal);
  trace.first = small[0]?.from ?? null;
}

/** Wait `ms`, or less when `signal` aborts (at once when it already has). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
