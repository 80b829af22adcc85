// The responder's questions to its own kernel for a session (DESIGN §2a): at opening, the IP-in-IP
// conntrack entries that already exist and the rp_filter drop counter; on request, removal of the
// conntrack entries this session's probes made; with the witness log, the kernel's reverse-path verdict
// for every probe that arrived on an interface but never reached a socket.
import { IpipConntrack, netlinkConntrack, type ConntrackOps } from '../kernel/conntrack.js';
import type { DestKernelFacts, ReversePathFact } from '../kernel/facts.js';
import { IpLookups, type Exec, execProgram } from '../kernel/ip.js';
import { readRpFilter, readRpFilterDrops } from '../kernel/rpfilter.js';
import { dropReasonUnavailable, readDropReasonInput } from '../kernel/drop-reason.js';
import type { Session } from './sessions.js';

interface PerSession {
  conntrack: IpipConntrack;
  rpDropsAtOpen: number | null;
}

export class KernelEvidence {
  private readonly sessions = new Map<string, PerSession>();
  /** Read once, at start (before privileges are dropped): why drop reasons cannot be read here. */
  private readonly dropReason: Promise<string>;
  constructor(
    private readonly self: string,
    private readonly exec: Exec = execProgram,
    private readonly readers = { rpFilter: readRpFilter, rpDrops: readRpFilterDrops, dropReason: readDropReasonInput },
    private readonly conntrack: ConntrackOps = netlinkConntrack(),
  ) {
    this.dropReason = this.readers.dropReason().then(dropReasonUnavailable);
  }

  /** Opens the session's kernel evidence; says whether this kernel tracks connections (null: cannot tell). */
  async open(session: Session): Promise<boolean | null> {
    const known = this.sessions.get(session.id);
    if (known) return known.conntrack.state.tracking ?? null;
    const s: PerSession = { conntrack: new IpipConntrack(this.self, session.peers, this.conntrack), rpDropsAtOpen: null };
    this.sessions.set(session.id, s);
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
    return {
      dropReasonUnavailable: dropReason,
      reversePath,
      rpFilterDrops: now !== null && s?.rpDropsAtOpen != null ? now - s.rpDropsAtOpen : null,
      conntrack: s ? { ...s.conntrack.state } : { available: false, error: 'session not known to the kernel evidence', preexisting: [] },
    };
  }

  /** The session ended: remove what its probes made and forget it. */
  async close(sessionId: string): Promise<void> {
    const s = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    await s?.conntrack.clearOurs();
  }
}
