// The responder's questions to its own kernel for a session (DESIGN §2a): at opening, the IP-in-IP
// conntrack entries that already exist and the rp_filter drop counter; on request, removal of the
// conntrack entries this session's probes made; with the witness log, the kernel's reverse-path verdict
// for every probe that arrived on an interface but never reached a socket.
import { IpipConntrack, netlinkConntrack, type ConntrackOps } from '../kernel/conntrack.js';
import type { DestKernelFacts, KernelDrop, ReversePathFact } from '../kernel/facts.js';
import type { DropWatchResult, SeenDrop } from '../kernel/drop-watch.js';
import { IpLookups, type Exec, execProgram } from '../kernel/ip.js';
import { readRpFilter, readRpFilterDrops } from '../kernel/rpfilter.js';
import { dropReasonUnavailable, readDropReasonInput } from '../kernel/drop-reason.js';
import type { Session } from './sessions.js';

interface PerSession {
  session: Session;
  conntrack: IpipConntrack;
  rpDropsAtOpen: number | null;
  /** The drop watch's counts at open, by flow key: the session's drops are what came after. */
  dropsAtOpen: Map<string, number>;
}

const dropKey = (d: SeenDrop) => `${d.saddr}>${d.daddr}/${d.proto}/${d.sport}/${d.dport}`;
/** How often a session-less watch checks whether its sessions expired (without a DELETE). */
const SWEEP_MS = 5_000;

export class KernelEvidence {
  private readonly sessions = new Map<string, PerSession>();
  /** Read once, at start (before privileges are dropped): why drop reasons cannot be read here. */
  private readonly dropReason: Promise<string | null>;
  private sweeper: NodeJS.Timeout | null = null;
  /**
   * `drops`: the drop watch opened for this node's address before privileges were dropped (or why it could
   * not be); null: none tried (drop reasons are then said unavailable from what tracefs offers).
   */
  constructor(
    private readonly self: string,
    private readonly exec: Exec = execProgram,
    private readonly readers = { rpFilter: readRpFilter, rpDrops: readRpFilterDrops, dropReason: readDropReasonInput },
    private readonly conntrack: ConntrackOps = netlinkConntrack(),
    private readonly drops: DropWatchResult | null = null,
  ) {
    this.dropReason = drops && 'watch' in drops ? Promise.resolve(null) : drops ? Promise.resolve(drops.unavailable) : this.readers.dropReason().then(dropReasonUnavailable);
  }

  private get watch() {
    return this.drops && 'watch' in this.drops ? this.drops.watch : null;
  }

  /** Count drops only while a session is live (sessions that expired without a DELETE count as ended). */
  private sweep(now = Date.now()): void {
    for (const [id, s] of this.sessions) if (s.session.expiresAtMs <= now && !s.session.probing) void this.close(id);
    const w = this.watch;
    if (!w) return;
    const on = this.sessions.size > 0;
    try {
      w.enable(on);
    } catch (e) {
      this.watchFailed(e);
    }
    if (on && !this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    } else if (!on && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  private seen(): SeenDrop[] {
    try {
      return this.watch?.entries() ?? [];
    } catch (e) {
      this.watchFailed(e);
      return [];
    }
  }

  /**
   * The watch's maps could not be used (after dropping privileges, a kernel before 6.x with
   * kernel.unprivileged_bpf_disabled refuses every bpf(2) call): from now on the facts say so.
   */
  private watchError: string | null = null;
  private watchFailed(e: unknown): void {
    this.watchError ??= `the drop watch's maps cannot be used: ${e instanceof Error ? e.message : String(e)} (after dropping privileges, kernels before 6.x refuse bpf(2) when kernel.unprivileged_bpf_disabled is set: run without --user to read drop reasons)`;
  }

  /** Opens the session's kernel evidence; says whether this kernel tracks connections (null: cannot tell). */
  async open(session: Session): Promise<boolean | null> {
    const known = this.sessions.get(session.id);
    if (known) return known.conntrack.state.tracking ?? null;
    const w = this.watch;
    if (w && this.sessions.size === 0) {
      try {
        w.clear();
      } catch (e) {
        this.watchFailed(e);
      }
    }
    const dropsAtOpen = new Map<string, number>();
    for (const d of this.seen()) dropsAtOpen.set(dropKey(d), d.count);
    const s: PerSession = { session, conntrack: new IpipConntrack(this.self, session.peers, this.conntrack), rpDropsAtOpen: null, dropsAtOpen };
    this.sessions.set(session.id, s);
    this.sweep();
    const [, drops] = await Promise.all([s.conntrack.snapshot(), this.readers.rpDrops()]);
    s.rpDropsAtOpen = drops;
    return s.conntrack.state.tracking ?? null;
  }

  /** Remove the IP-in-IP conntrack entries this session's probes made (before the other direction probes). */
  async clearConntrack(session: Session): Promise<number> {
    return (await this.sessions.get(session.id)?.conntrack.clearOurs()) ?? 0;
  }

  async facts(session: Session): Promise<DestKernelFacts> {
    const s = this.sessions.get(session.id);
    const ip = new IpLookups(this.exec);
    const pairs = new Map<string, { source: string; iif: string }>();
    for (const e of session.witnessed.values()) {
      if (!e.iface || e.socket || !e.ifname || !e.observedSource) continue;
      pairs.set(`${e.observedSource}/${e.ifname}`, { source: e.observedSource, iif: e.ifname });
    }
    const reversePath: ReversePathFact[] = await Promise.all(
      [...pairs.values()].slice(0, 256).map(async ({ source, iif }) => {
        const [check, back, rpFilter] = await Promise.all([ip.route(this.self, source, iif), ip.route(source, this.self), this.readers.rpFilter(iif)]);
        return {
          source,
          iif,
          lookupError: check && !check.ok ? check.error : null,
          rpFilter,
          backDev: back?.ok ? back.route.dev : null,
          backVia: back?.ok ? back.route.via : null,
        };
      }),
    );
    const [now, dropReason] = await Promise.all([this.readers.rpDrops(), this.dropReason]);
    const drops: KernelDrop[] = [];
    if (this.watch && s) {
      for (const d of this.seen()) {
        if (d.daddr !== this.self || !session.peers.has(d.saddr)) continue;
        const count = d.count - (s.dropsAtOpen.get(dropKey(d)) ?? 0);
        if (count > 0 && drops.length < 1024) drops.push({ source: d.saddr, destination: d.daddr, proto: d.proto, sport: d.sport, dport: d.dport, reason: d.reason, count });
      }
    }
    const unavailable = dropReason ?? this.watchError;
    return {
      ...(unavailable !== null ? { dropReasonUnavailable: unavailable } : { drops }),
      reversePath,
      rpFilterDrops: now !== null && s?.rpDropsAtOpen != null ? now - s.rpDropsAtOpen : null,
      conntrack: s ? { ...s.conntrack.state } : { available: false, error: 'session not known to the kernel evidence', preexisting: [] },
    };
  }

  /** The session ended: remove what its probes made and forget it. */
  async close(sessionId: string): Promise<void> {
    const s = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    if (s) this.sweep();
    await s?.conntrack.clearOurs();
  }
}
