// Sessions on a responder: the peers it may probe, the key its probes are signed with, and the bounded
// witness log of what it saw (as destination) and what it saw leave (as source).
import type { CheckId } from '../types.js';
import { EXIT, UserError } from '../errors.js';

export interface WitnessEntry {
  check: CheckId | null;
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
export const MAX_SESSION_TTL_MS = 30 * 60_000;

export class Session {
  readonly witnessed = new Map<number, WitnessEntry>();
  /** Probes this node sent that were seen leaving: `${dst}/${idx}` -> interface name. */
  readonly left = new Map<string, string>();
  droppedRecords = 0;
  probing = false;

  constructor(
    readonly id: string,
    readonly idBytes: Buffer,
    readonly key: Buffer,
    readonly peers: ReadonlySet<string>,
    readonly ports: Readonly<Partial<Record<CheckId, number>>>,
    public expiresAtMs: number,
    /** Probe indexes this node can receive are below this. */
    readonly expect = MAX_WITNESS_ENTRIES,
  ) {}

  witness(idx: number, layer: 'iface' | 'socket', check: CheckId | null, ifname: string | null, source: string, atMs: number, size = 0): boolean {
    let e = this.witnessed.get(idx);
    const first = !e;
    if (!e) {
      if (this.witnessed.size >= MAX_WITNESS_ENTRIES) {
        this.droppedRecords++;
        return false;
      }
      e = { check, iface: false, ifname: null, socket: false, observedSource: null, count: 0, firstAtMs: atMs, ifaceSize: 0, socketSize: 0 };
      this.witnessed.set(idx, e);
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
    e.check ??= check;
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

  /** Live sessions (the witness tries each one's key on TCP probes). */
  active(nowMs: number): Session[] {
    this.expire(nowMs);
    return [...this.sessions.values()];
  }

  byIdBytes(idBytes: Buffer, nowMs: number): Session | undefined {
    return this.get(idBytes.toString('hex'), nowMs);
  }

  expire(nowMs: number): void {
    for (const [id, s] of this.sessions) if (s.expiresAtMs <= nowMs) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}
