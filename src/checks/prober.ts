// The prober: sends this node's probes to its peers from its own address, through its own firewall, and
// records what came back (SYN-ACK, reset, ICMP error, a refused send). Probes are built in user space and
// sent on one IPPROTO_RAW socket; replies arrive on a raw TCP and a raw ICMP socket behind kernel filters.
// TCP probes are half-open SYNs whose sequence number carries the probe's HMAC tag (DESIGN §3).
import { networkInterfaces } from 'node:os';
import type { NativeBinding, NativeError, NativeSocket, ReceivedPacket } from '../native-types.js';
import { isNativeError } from '../native.js';
import { decodeIPv4, encodeIPv4 } from '../packets/ipv4.js';
import { decodeTcp } from '../packets/tcp.js';
import { decodeIcmp } from '../packets/icmp.js';
import { encodeProbePayload, encodeProbeSyn, PROBE_TCP_SPORT_HI, PROBE_TCP_SPORT_LO, tcpProbeTag, type TcpProbeTag } from '../packets/probe.js';
import { icmpErrorQuotingProbe, tcpRepliesToPortRange } from '../packets/bpf.js';
import { DecodeError } from '../packets/errors.js';
import type { CheckId, SourceOutcome, Transport } from '../types.js';
import { DEFAULT_TIMEOUTS, nowMs, PeerTimeouts, untilDeadline, type TimeoutPolicy } from './rtt.js';
import { CATALOGUE, probeShape, type Framing, type ProbeShape } from './catalogue.js';
import { FRAMINGS_OF, framePacket } from './framing.js';
import { MtuProber, sleep, traceMtu } from './mtu-prober.js';
import { nextHopMtu } from '../packets/icmp.js';
import { IpLookups } from '../kernel/ip.js';

export interface ProbeRequest {
  idx: number;
  check: CheckId;
  transport: Transport;
  to: string;
  port: number | null;
  /** Overrides of the check's probe shape (catalogue): the mtu check sends DF probes of a given size. */
  framing?: Framing;
  size?: number;
  df?: boolean;
  /** A sized check (catalogue `sizing`): the outer sizes of one search round (absent: the host MTU). */
  sizes?: number[];
  /** A sized check: instead, TTL-limited probes of `size` (one that does not arrive) to find the hop that limits. */
  trace?: { size: number; small: number; maxTtl: number };
  /** Keep listening up to LATE_ANSWER_MS for a late answer (endpoints without a responder). */
  patient?: boolean;
  /** Called once every copy of this probe has been sent (the waiting for answers may go on). */
  onSent?: () => void;
}

const shapeOf = (req: ProbeRequest): ProbeShape => probeShape(req.check, { ...(req.framing ? { framing: req.framing } : {}), ...(req.size !== undefined ? { size: req.size } : {}), ...(req.df !== undefined ? { df: req.df } : {}) });

export interface ProbeOptions {
  tries: number;
  timeouts: TimeoutPolicy;
  concurrency: number;
  /** Gap between the copies of a UDP / IP-in-IP probe (they get no reply to pace them). */
  spacingMs: number;
  /** TCP: send every try at once (spaced) and wait one timeout, counting the answers (the loss round). */
  burst?: boolean;
}

/** How long a patient probe keeps listening after its first try: ARP gives up after 3 s (3 solicitations, 1 s apart). */
export const LATE_ANSWER_MS = 3500;

export const DEFAULT_PROBE_OPTIONS: ProbeOptions = { tries: 3, timeouts: DEFAULT_TIMEOUTS, concurrency: 64, spacingMs: 30 };

export interface ProbeSession {
  idBytes: Buffer;
  key: Buffer;
  /** Whether this probe was seen leaving (null when the node cannot capture). */
  left(dst: string, idx: number): string | null | undefined;
}

type Reply = { kind: 'synack' | 'rst' | 'icmp'; from: string; atMs: number; icmp: { type: number; code: number } | null };


class SendRefused extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

export class Prober {
  private send: NativeSocket | null = null;
  private replies: NativeSocket | null = null;
  private icmp: NativeSocket | null = null;
  private readonly pending = new Map<string, (r: Reply | null) => void>();
  private nextPort = PROBE_TCP_SPORT_LO;
  private nextIpId = 1;
  /** Receive errors of the reply sockets so far, and the last one's errno name: a probe that waited
   *  across one may have lost its reply, and says so (`receiveError`) instead of claiming a drop. */
  private receiveErrors = 0;
  private lastReceiveError = '';
  private readonly mtu: MtuProber;
  constructor(
    private readonly native: NativeBinding,
    readonly address: string,
  ) {
    this.mtu = new MtuProber(native, address);
  }

  /** Open the sockets (before dropping privileges). */
  open(): void {
    try {
      this.send = this.native.open({ kind: 'raw', protocol: 255, hdrincl: true, bindAddress: this.address });
      this.replies = this.native.open({ kind: 'raw', protocol: 6, bindAddress: this.address, rcvbuf: 1 << 20 });
      this.replies.attachFilter(tcpRepliesToPortRange(PROBE_TCP_SPORT_LO, PROBE_TCP_SPORT_HI));
      this.replies.start((p) => this.onTcp(p), (e) => this.onReceiveError(e));
      this.icmp = this.native.open({ kind: 'raw', protocol: 1, bindAddress: this.address, rcvbuf: 1 << 20 });
      this.icmp.attachFilter(icmpErrorQuotingProbe());
      this.icmp.start((p) => this.onIcmp(p), (e) => this.onReceiveError(e));
      this.mtu.open();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  close(): void {
    for (const s of [this.send, this.replies, this.icmp]) s?.close();
    this.mtu.close();
    this.send = this.replies = this.icmp = null;
    this.pending.clear();
  }

  private onReceiveError(err: NativeError): void {
    this.receiveErrors++;
    this.lastReceiveError = err.code || err.message || 'receive error';
  }

  private onTcp(packets: ReceivedPacket[]): void {
    for (const p of packets) {
      try {
        const ip = decodeIPv4(p.data);
        const tcp = decodeTcp(ip.payload);
        const key = `t/${ip.src}/${tcp.srcPort}/${tcp.dstPort}`;
        const done = this.pending.get(key);
        if (!done) continue;
        if (tcp.isSyn && tcp.isAck) done({ kind: 'synack', from: ip.src, atMs: p.tsMs, icmp: null });
        else if (tcp.isRst) done({ kind: 'rst', from: ip.src, atMs: p.tsMs, icmp: null });
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
      }
    }
  }

  private onIcmp(packets: ReceivedPacket[]): void {
    for (const p of packets) {
      try {
        const ip = decodeIPv4(p.data);
        const icmp = decodeIcmp(ip.payload);
        const q = icmp.quoted;
        if (!q || q.src !== this.address) continue;
        const key =
          q.protocol === 6 ? `t/${q.dst}/${q.dstPort}/${q.srcPort}` : q.protocol === 17 ? `u/${q.dst}/${q.dstPort}/${q.srcPort}` : q.protocol === 4 ? `i/${q.dst}/${q.id}` : null;
        if (key) this.mtu.onIcmp({ key, from: ip.src, type: icmp.type, code: icmp.code, nextHopMtu: nextHopMtu(icmp), quotedLength: q.totalLength, atMs: p.tsMs });
        const done = key ? this.pending.get(key) : undefined;
        done?.({ kind: 'icmp', from: ip.src, atMs: p.tsMs, icmp: { type: icmp.type, code: icmp.code } });
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
      }
    }
  }

  private allocPort(dst: string, dport: number | null, proto: 't' | 'u'): number {
    for (let i = 0; i <= PROBE_TCP_SPORT_HI - PROBE_TCP_SPORT_LO; i++) {
      const p = this.nextPort;
      this.nextPort = p >= PROBE_TCP_SPORT_HI ? PROBE_TCP_SPORT_LO : p + 1;
      if (!this.pending.has(`${proto}/${dst}/${dport}/${p}`)) return p;
    }
    throw new Error('no free probe source port (too many probes in flight)');
  }

  private allocIpId(): number {
    const id = this.nextIpId;
    this.nextIpId = id >= 0xffff ? 1 : id + 1;
    return id;
  }

  /** Send one packet; a refused send (the local OUTPUT chain) becomes SendRefused with its errno name. */
  private transmit(packet: Buffer, dst: string): void {
    if (!this.send) throw new Error('prober is not open');
    try {
      this.send.send(packet, dst);
    } catch (err) {
      if (isNativeError(err)) throw new SendRefused(err.code);
      throw err;
    }
  }

  /** Wait for a reply registered under `key` until the (adaptive) timeout of `peer` passes. */
  private awaitReply(key: string, peer: string, sent: { at: number }, timeouts: PeerTimeouts, signal?: AbortSignal): Promise<Reply | null> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (r: Reply | null) => {
        if (timer) clearTimeout(timer);
        this.pending.delete(key);
        signal?.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const onAbort = () => finish(null);
      const arm = () => {
        // Re-read the timeout: samples from other probes to this peer may have shortened it meanwhile.
        const left = sent.at + timeouts.timeout(peer) - nowMs();
        if (left <= 0) finish(null);
        else timer = setTimeout(arm, Math.min(left, 100));
      };
      this.pending.set(key, finish);
      signal?.addEventListener('abort', onAbort, { once: true });
      arm();
    });
  }

  /** Probe every request, `concurrency` at a time, reporting each outcome as soon as it is known. */
  async run(
    session: ProbeSession,
    probes: readonly ProbeRequest[],
    opts: ProbeOptions,
    onOutcome: (o: SourceOutcome) => void,
    signal?: AbortSignal,
    /** Shared by runs of one request (so a later batch starts with what an earlier one learnt). */
    timeouts: PeerTimeouts = new PeerTimeouts(opts.timeouts),
  ): Promise<void> {
    let next = 0;
    // Unanswered flows wait for the kernel's route facts until the run is done: looked up once per peer,
    // and not at all for a peer a TCP probe got an answer from (its route demonstrably works).
    const held: SourceOutcome[] = [];
    const answered = new Set<string>();
    const worker = async () => {
      while (next < probes.length && !signal?.aborted) {
        const req = probes[next++]!;
        const o = await this.probeOne(session, req, opts, timeouts, signal);
        if (o.reply === 'synack' || o.reply === 'rst') answered.add(o.toAddress);
        if (!o.reply && (!o.sendError || o.sendError === 'EHOSTUNREACH' || o.sendError === 'ENETUNREACH')) held.push(o);
        else onOutcome(o);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, probes.length)) }, worker));
    const ip = new IpLookups();
    const homeIf = held.length > 0 ? this.homeInterface() : null;
    const facts = new Map<string, Promise<Pick<SourceOutcome, 'route' | 'homeIf' | 'neigh'>>>();
    for (const o of held) {
      if (!answered.has(o.toAddress) && !facts.has(o.toAddress)) facts.set(o.toAddress, this.kernelFacts(o.toAddress, ip, homeIf));
    }
    for (const o of held) onOutcome(Object.assign(o, (await facts.get(o.toAddress)) ?? {}));
  }

  /** The interface carrying this node's own address: where its probes should leave. */
  private homeInterface(): string | null {
    for (const [name, list] of Object.entries(networkInterfaces())) if (list?.some((a) => a.address === this.address)) return name;
    return null;
  }

  /** For a peer that answered nothing: the kernel's route to it and the state of its next hop's neighbour entry. */
  private async kernelFacts(peer: string, ip: IpLookups, homeIf: string | null): Promise<Pick<SourceOutcome, 'route' | 'homeIf' | 'neigh'>> {
    const r = await ip.route(peer, this.address);
    if (!r?.ok) return { homeIf, route: null };
    return { homeIf, route: { dev: r.route.dev, via: r.route.via }, neigh: await ip.neighbour(r.route.via ?? peer, r.route.dev) };
  }

  async probeOne(session: ProbeSession, req: ProbeRequest, opts: ProbeOptions, timeouts: PeerTimeouts, signal?: AbortSignal): Promise<SourceOutcome> {
    const outcome: SourceOutcome = {
      idx: req.idx,
      toAddress: req.to,
      check: req.check,
      reply: null,
      replyFrom: null,
      icmp: null,
      sendError: null,
      left: null,
      leftOn: null,
      rttMs: null,
      attempts: 0,
      srcPort: null,
    };
    const receiveErrorsBefore = this.receiveErrors;
    try {
      if (CATALOGUE[req.check].sizing && req.transport !== 'tcp') await this.probeMtu(session, req, opts, timeouts, outcome, signal);
      else if (req.transport === 'tcp') await this.probeTcp(session, req, opts, timeouts, outcome, signal);
      else await this.probeDatagram(session, req, opts, timeouts, outcome, signal);
    } catch (err) {
      if (err instanceof SendRefused) outcome.sendError = err.code;
      else throw err;
    }
    const left = session.left(req.to, req.idx);
    outcome.left = left === null ? null : left !== undefined;
    outcome.leftOn = left ?? null;
    if (this.receiveErrors !== receiveErrorsBefore) outcome.receiveError = this.lastReceiveError;
    return outcome;
  }

  private async probeTcp(session: ProbeSession, req: ProbeRequest, opts: ProbeOptions, timeouts: PeerTimeouts, outcome: SourceOutcome, signal?: AbortSignal): Promise<void> {
    const dport = req.port ?? 0;
    const tag = tcpProbeTag(session.key, { src: this.address, dst: req.to, transport: 'tcp', port: dport, check: req.check, idx: req.idx });
    // Every try's key stays registered until the flow is done: a late answer to an earlier try (an ICMP
    // host unreachable when ARP gives up, a slow SYN-ACK) is still an answer, and tells which try got through.
    const keys: string[] = [];
    let got: { reply: Reply; sentAt: number; tryIndex: number } | null = null;
    let wake: (() => void) | null = null;
    const firstAt = nowMs();
    if (opts.burst) return this.probeTcpBurst(req, tag, opts, timeouts, outcome, signal);
    try {
      for (let t = 0; t < opts.tries && !got && !signal?.aborted; t++) {
        const sport = this.allocPort(req.to, dport, 't');
        const key = `t/${req.to}/${dport}/${sport}`;
        const segment = encodeProbeSyn({ srcAddr: this.address, dstAddr: req.to, srcPort: sport, dstPort: dport, tag });
        const packet = encodeIPv4({ src: this.address, dst: req.to, protocol: 6, id: this.allocIpId(), dontFragment: shapeOf(req).df, payload: segment });
        outcome.attempts++;
        outcome.srcPort = sport;
        const sent = { at: nowMs() };
        keys.push(key);
        this.pending.set(key, (r) => {
          if (r && !got) {
            got = { reply: r, sentAt: sent.at, tryIndex: t };
            wake?.();
          }
        });
        this.transmit(packet, req.to);
        if (t + 1 === opts.tries) req.onSent?.();
        await untilDeadline(() => got !== null, () => sent.at + timeouts.timeout(req.to), (w) => (wake = w), signal);
      }
      if (!got && req.patient) await untilDeadline(() => got !== null, () => firstAt + LATE_ANSWER_MS, (w) => (wake = w), signal);
    } finally {
      for (const k of keys) this.pending.delete(k);
    }
    const g = got as { reply: Reply; sentAt: number; tryIndex: number } | null;
    if (!g) return;
    outcome.reply = g.reply.kind;
    outcome.replyFrom = g.reply.from;
    outcome.icmp = g.reply.icmp;
    outcome.rttMs = Math.max(0, g.reply.atMs - g.sentAt);
    outcome.lost = g.tryIndex;
    if (g.reply.kind !== 'icmp') timeouts.sample(req.to, outcome.rttMs);
  }

  /** All tries at once, spaced, then one timeout: how many were answered tells the loss (the adaptive retry round). */
  private async probeTcpBurst(req: ProbeRequest, tag: TcpProbeTag, opts: ProbeOptions, timeouts: PeerTimeouts, outcome: SourceOutcome, signal?: AbortSignal): Promise<void> {
    const dport = req.port ?? 0;
    const keys: string[] = [];
    const answered = new Set<number>();
    let first: { reply: Reply; sentAt: number } | null = null;
    const last = { at: nowMs() };
    try {
      for (let t = 0; t < opts.tries && !signal?.aborted; t++) {
        const sport = this.allocPort(req.to, dport, 't');
        const key = `t/${req.to}/${dport}/${sport}`;
        const segment = encodeProbeSyn({ srcAddr: this.address, dstAddr: req.to, srcPort: sport, dstPort: dport, tag });
        const packet = encodeIPv4({ src: this.address, dst: req.to, protocol: 6, id: this.allocIpId(), dontFragment: shapeOf(req).df, payload: segment });
        const sentAt = nowMs();
        keys.push(key);
        this.pending.set(key, (r) => {
          if (!r || r.kind === 'icmp') return;
          answered.add(t);
          first ??= { reply: r, sentAt };
        });
        outcome.attempts++;
        outcome.srcPort = sport;
        this.transmit(packet, req.to);
        last.at = nowMs();
        if (t + 1 < opts.tries) await sleep(opts.spacingMs, signal);
      }
      req.onSent?.();
      await untilDeadline(() => answered.size === opts.tries, () => last.at + timeouts.timeout(req.to), undefined, signal);
    } finally {
      for (const k of keys) this.pending.delete(k);
    }
    const f = first as { reply: Reply; sentAt: number } | null;
    outcome.lost = outcome.attempts - answered.size;
    if (!f) return;
    outcome.reply = f.reply.kind;
    outcome.replyFrom = f.reply.from;
    outcome.rttMs = Math.max(0, f.reply.atMs - f.sentAt);
  }


  private async probeMtu(session: ProbeSession, req: ProbeRequest, opts: ProbeOptions, timeouts: PeerTimeouts, outcome: SourceOutcome, signal?: AbortSignal): Promise<void> {
    const ipId = this.allocIpId();
    const sport = req.transport === 'udp' ? this.allocPort(req.to, req.port, 'u') : null;
    const key = req.transport === 'udp' ? `u/${req.to}/${req.port}/${sport}` : `i/${req.to}/${ipId}`;
    outcome.srcPort = sport;
    const transport: 'udp' | 'ipip' = req.transport === 'udp' ? 'udp' : 'ipip';
    // The request names the carrier's framing; one that does not fit the transport falls back to its first.
    const asked = shapeOf(req).framing;
    const framing = FRAMINGS_OF[transport].includes(asked) ? asked : (FRAMINGS_OF[transport][0] as Framing);
    const sizes = req.sizes ?? (req.size !== undefined ? [req.size] : undefined);
    if (req.trace) {
      const trace = req.trace;
      outcome.mtu = { hostMtu: this.mtu.hostMtu(), kernelPmtu: null, kernelPmtuAfter: null, sizes: [], fragNeeded: null, refusedSize: null };
      // Every TTL-limited probe gets its own IP id / source port, so its time-exceeded says which TTL it was.
      const wire = () => {
        const ipId = this.allocIpId();
        const srcPort = transport === 'udp' ? this.allocPort(req.to, req.port, 'u') : null;
        const key = transport === 'udp' ? `u/${req.to}/${req.port}/${srcPort}` : `i/${req.to}/${ipId}`;
        this.pending.set(key, () => undefined);
        return { ipId, srcPort, key };
      };
      const mreq = { idx: req.idx, check: req.check, transport, framing, to: req.to, port: req.port, trace };
      await traceMtu(this.mtu, session, mreq, wire, (w) => this.pending.delete(w.key), timeouts, outcome, signal);
      req.onSent?.();
      return;
    }
    // Held in `pending` so the source port is not handed out twice meanwhile; the MtuProber collects the ICMP.
    this.pending.set(key, () => undefined);
    try {
      await this.mtu.probe(session, { idx: req.idx, check: req.check, transport, framing, to: req.to, port: req.port, ...(sizes ? { sizes } : {}), ...(req.onSent ? { onSent: req.onSent } : {}) }, { ipId, srcPort: sport, key }, opts, timeouts, outcome, signal);
    } finally {
      this.pending.delete(key);
    }
  }

  private async probeDatagram(session: ProbeSession, req: ProbeRequest, opts: ProbeOptions, timeouts: PeerTimeouts, outcome: SourceOutcome, signal?: AbortSignal): Promise<void> {
    const ipId = this.allocIpId();
    const sport = req.transport === 'udp' ? this.allocPort(req.to, req.port, 'u') : null;
    const key = req.transport === 'udp' ? `u/${req.to}/${req.port}/${sport}` : `i/${req.to}/${ipId}`;
    outcome.srcPort = sport;
    const shape = shapeOf(req);
    let firstSent = 0;
    const last = { at: nowMs() };
    const waits: Promise<Reply | null>[] = [];
    // Every copy is a complete probe; one witnessed copy is enough, so a lost packet is not a failure.
    for (let attempt = 0; attempt < opts.tries && !signal?.aborted; attempt++) {
      const payload = encodeProbePayload({
        key: session.key,
        sessionId: session.idBytes,
        src: this.address,
        dst: req.to,
        transport: req.transport,
        port: req.port,
        check: req.check,
        idx: req.idx,
        attempt,
        sendTimeMs: Date.now(),
      });
      // The catalogue says how this check's probe is framed, sized and flagged; the request may override it.
      const packet = framePacket(shape, { src: this.address, dst: req.to, transport: req.transport === 'udp' ? 'udp' : 'ipip', srcPort: sport, dstPort: req.port, id: ipId, payload });
      outcome.attempts++;
      if (attempt === 0) {
        firstSent = nowMs();
        waits.push(this.awaitReply(key, req.to, last, timeouts, signal));
      }
      try {
        this.transmit(packet, req.to);
        last.at = nowMs();
      } catch (err) {
        this.pending.get(key)?.(null);
        throw err;
      }
      if (attempt + 1 < opts.tries) await sleep(opts.spacingMs, signal);
    }
    req.onSent?.();
    const reply = await waits[0];
    if (reply) {
      outcome.reply = reply.kind;
      outcome.replyFrom = reply.from;
      outcome.icmp = reply.icmp;
      outcome.rttMs = Math.max(0, reply.atMs - firstSent);
    }
  }
}
