// Sessions on a responder: the peers it may probe, the key its probes are signed with, the flows it may
// witness (each probe proves one of them), its lease, and the bounded witness log of what it saw (as
// destination) and what it saw leave (as source).
import type { CheckId, Transport } from '../types.js';
import type { ProbeFlow } from '../packets/probe.js';
import { EXIT, UserError } from '../errors.js';
import { Budget } from './budget.js';

/** A flow as one side of it knows it in advance: the witness checks a probe's proof against exactly this. */
export interface ExpectedFlow {
  src: string;
  check: CheckId;
  transport: Transport;
  port: number | null;
}

export interface WitnessEntry {
  /** The flow the probe proved (its MAC or tag was right for exactly this). */
  flow: ProbeFlow;
  iface: boolean;
  ifname: string | null;
  socket: boolean;
  observedSource: string | null;
  count: number;
  firstAtMs: number;
  /** Largest IPv4 total length seen on an interface / at the socket layer (the mtu check's evidence). */
  ifaceSize: number;
  socketSize: number;
}

export const MAX_SESSIONS = 16;
/** idx is 16 bits, so a session's witness map can never hold more than this. */
export const MAX_WITNESS_ENTRIES = 65_536;
export const MAX_LEFT_ENTRIES = 262_144;
/**
 * Probe proofs checked per second per session (each an HMAC), and the burst allowed. A 1000-node mesh sends one
 * node ~30,000 probe sightings over half a minute; a flood shaped like probes beyond this is shed and counted.
 */
export const PROOF_RATE_PER_S = 20_000;
export const PROOF_BURST = 40_000;

export class Session {
  readonly witnessed = new Map<number, WitnessEntry>();
  /** Probes this node sent that were seen leaving: `${dst}/${idx}` -> interface name. */
  readonly left = new Map<string, string>();
  /** Flows this node sends (registered by each probe request): `${dst}/${idx}` -> flow. */
  readonly outbound = new Map<string, ExpectedFlow>();
  droppedRecords = 0;
  /** Probe-shaped packets whose proof was wrong for every flow they could be (forgeries, or corruption). */
  forged = 0;
  /** Probe-shaped packets not checked because the session's proof budget was spent (a flood). */
  shed = 0;
  probing = false;
  /** Open hold connections (a coordinator's); when the last closes, the session ends. */
  holds = 0;
  readonly budget: Budget;

  constructor(
    readonly id: string,
    readonly idBytes: Buffer,
    readonly key: Buffer,
    readonly peers: ReadonlySet<string>,
    readonly ports: Readonly<Partial<Record<CheckId, number>>>,
    /** The flows this node may witness, by probe index. */
    readonly inbound: ReadonlyMap<number, ExpectedFlow>,
    readonly leaseMs: number,
    nowMs: number,
    /** Witness socket drops counted before this session began (later ones may have cost it sightings). */
    readonly dropsAtOpen = 0,
    budget?: Budget,
  ) {
    this.expiresAtMs = nowMs + leaseMs;
    this.budget = budget ?? new Budget(PROOF_RATE_PER_S, PROOF_BURST, nowMs);
  }

  expiresAtMs: number;

  /** The coordinator spoke: the lease runs again from now. */
  renew(nowMs: number): void {
    this.expiresAtMs = Math.max(this.expiresAtMs, nowMs + this.leaseMs);
  }

  witness(flow: ProbeFlow, layer: 'iface' | 'socket', ifname: string | null, source: string, atMs: number, size = 0): boolean {
    let e = this.witnessed.get(flow.idx);
    const first = !e;
    if (!e) {
      if (this.witnessed.size >= MAX_WITNESS_ENTRIES) {
        this.droppedRecords++;
        return false;
      }
      e = { flow, iface: false, ifname: null, socket: false, observedSource: null, count: 0, firstAtMs: atMs, ifaceSize: 0, socketSize: 0 };
      this.witnessed.set(flow.idx, e);
    }
    const newLayer = layer === 'iface' ? !e.iface : !e.socket;
    if (layer === 'iface') {
      e.iface = true;
      e.ifname ??= ifname;
      if (size > e.ifaceSize) e.ifaceSize = size;
    } else {
      e.socket = true;
      e.count++;
      if (size > e.socketSize) e.socketSize = size;
    }
    e.observedSource ??= source;
    return first || newLayer;
  }

  sawLeave(dst: string, idx: number, ifname: string | null): void {
    const k = `${dst}/${idx}`;
    if (this.left.has(k)) return;
    if (this.left.size >= MAX_LEFT_ENTRIES) {
      this.droppedRecords++;
      return;
    }
    this.left.set(k, ifname ?? '?');
  }
}

/** A session request the responder refuses; `status` is the HTTP answer the control server gives. */
export class SessionError extends UserError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message, EXIT.cannotRun);
    this.name = 'SessionError';
  }
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  open(s: Session, nowMs: number): Session {
    this.expire(nowMs);
    const existing = this.sessions.get(s.id);
    if (existing) return existing;
    if (this.sessions.size >= MAX_SESSIONS) throw new SessionError(`too many open sessions (${MAX_SESSIONS}); wait for old ones to expire`, 429);
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string, nowMs: number): Session | undefined {
    this.expire(nowMs);
    return this.sessions.get(id);
  }

  close(id: string): boolean {
    return this.sessions.delete(id);
  }

  /** Live sessions (the witness tries each one's flows on TCP probes). */
  active(nowMs: number): Session[] {
    this.expire(nowMs);
    return [...this.sessions.values()];
  }

  byIdBytes(idBytes: Buffer, nowMs: number): Session | undefined {
    return this.get(idBytes.toString('hex'), nowMs);
  }

  /** A session ends when its lease runs out, unless it is probing right now (the stream is its coordinator's word). */
  expire(nowMs: number): void {
    for (const [id, s] of this.sessions) if (s.expiresAtMs <= nowMs && !s.probing) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}
