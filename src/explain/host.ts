// The responder's side of --explain: arms tracing for a session's blamed flows (a table of its own named
// after the session, plus `nft -a monitor trace` and, for iptables-legacy, the kernel log), then says
// which rule took each probe's verdict; falls back to counter deltas when tracing is impossible. The host's
// ruleset is left exactly as it was: the table goes at collect, on a timer, on close, and at the next start.
// Programs, not netlink: the rule text "as the user wrote it" needs nft's and iptables-save's own
// decoders of the rule expressions (thousands of lines each); the programs are on every node that has
// these rules. See: nft(8), iptables-save(8), /dev/kmsg (Documentation/ABI/testing/dev-kmsg).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { closeSync, constants as fsc, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tcpProbeTag } from '../packets/probe.js';
import { CommandError, run, which } from '../lab/sys.js';
import { parseIptablesSave, parseNftRuleset, iptablesContent } from './ruleset.js';
import { ruleFromCounters, ruleFromLegacyTrace, ruleFromNftTrace, type HostRulesets } from './resolve.js';
import {
  CANARY_PORT,
  isOwnTable,
  legacyMatches,
  parseLegacyTrace,
  responderTag,
  tableName,
  TraceFollower,
  traceTableScript,
  type LegacyTraceEvent,
} from './trace.js';
import type { ExplainArmRequest, ExplainArmResponse, ExplainCollectRequest, ExplainCollectResponse, RuleFact, SpecOutcome, TraceSpec } from './types.js';

export interface ExplainSession {
  id: string;
  key: Buffer;
}

export interface ExplainerOptions {
  /** This host's address (the responder's --listen). */
  address: string;
  log?: (msg: string) => void;
  /** The kernel log (tests point it elsewhere). */
  kmsgPath?: string;
}

interface Programs {
  nft: string | null;
  iptNftSave: string | null;
  iptLegacySave: string | null;
  iptables: 'nft' | 'legacy' | null;
  timeout: string | null;
}

interface Armed {
  session: ExplainSession;
  specs: TraceSpec[];
  method: 'trace' | 'counters';
  /** Why tracing is not used (counters), or a remark on legacy tracing. */
  note: string | null;
  table: string | null;
  monitor: ChildProcess | null;
  follower: TraceFollower | null;
  kmsg: KmsgReader | null;
  legacyNote: string | null;
  before: HostRulesets;
  timer: NodeJS.Timeout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const firstLine = (s: string) => s.trim().split('\n')[0]?.trim() ?? '';

/** Non-blocking reader of the kernel log from "now" on (records already there are skipped). */
class KmsgReader {
  private readonly fd: number;
  private readonly buf = Buffer.alloc(8192);
  readonly events: LegacyTraceEvent[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(path: string) {
    this.fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    this.drain(false);
    this.timer = setInterval(() => this.drain(true), 20);
  }

  drain(keep: boolean): void {
    for (let i = 0; i < 100_000; i++) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue; // records were overwritten under us: go on with the next
        return; // EAGAIN: nothing more for now
      }
      if (n <= 0) return;
      if (!keep) continue;
      const ev = parseLegacyTrace(this.buf.toString('utf8', 0, n));
      if (ev && this.events.length < 100_000) this.events.push(ev);
    }
  }

  close(): void {
    clearInterval(this.timer);
    try {
      closeSync(this.fd);
    } catch {
      /* closed */
    }
  }
}

export class Explainer {
  private readonly armed = new Map<string, Armed>();
  private programs: Promise<Programs> | null = null;
  readonly tag: string;
  private readonly log: (msg: string) => void;

  constructor(private readonly o: ExplainerOptions) {
    this.tag = responderTag(o.address);
    this.log = o.log ?? (() => undefined);
  }

  private findPrograms(): Promise<Programs> {
    this.programs ??= (async () => {
      const [nft, nftSave, legacySave, save, iptables, timeout] = await Promise.all(
        ['nft', 'iptables-nft-save', 'iptables-legacy-save', 'iptables-save', 'iptables', 'timeout'].map((p) => which(p)),
      );
      const version = async (p: string | null) => (p ? ((await run([p, '--version'], { allowFail: true, timeoutMs: 5000 }).catch(() => null))?.stdout ?? '') : '');
      const saveVersion = await version(save ?? null);
      const ipVersion = await version(iptables ?? null);
      return {
        nft: nft ?? null,
        iptNftSave: nftSave ?? (saveVersion.includes('nf_tables') ? save! : null),
        iptLegacySave: legacySave ?? (save && saveVersion && !saveVersion.includes('nf_tables') ? save : null),
        iptables: ipVersion.includes('nf_tables') ? 'nft' : ipVersion.includes('legacy') ? 'legacy' : null,
        timeout: timeout ?? null,
      };
    })();
    return this.programs;
  }

  /** The host's rulesets now, with counters (each backend that exists and can be read). */
  async rulesets(): Promise<HostRulesets> {
    const p = await this.findPrograms();
    const out = async (argv: string[] | null) => (argv ? (await run(argv, { allowFail: true, timeoutMs: 15_000 }).catch(() => null)) : null);
    const [nft, iptNft, iptLegacy] = await Promise.all([
      out(p.nft ? [p.nft, '-a', 'list', 'ruleset'] : null),
      out(p.iptNftSave ? [p.iptNftSave, '-c'] : null),
      out(p.iptLegacySave ? [p.iptLegacySave, '-c'] : null),
    ]);
    return {
      nft: nft && nft.code === 0 ? parseNftRuleset(nft.stdout) : null,
      iptNft: iptNft && iptNft.code === 0 ? parseIptablesSave(iptNft.stdout) : null,
      iptLegacy: iptLegacy && iptLegacy.code === 0 ? parseIptablesSave(iptLegacy.stdout) : null,
      iptables: p.iptables,
    };
  }

  /** Remove tables this responder left behind (a crash, a SIGKILL): by name, never anyone else's. */
  async removeStale(): Promise<string[]> {
    const p = await this.findPrograms();
    if (!p.nft) return [];
    const list = await run([p.nft, 'list', 'tables'], { allowFail: true, timeoutMs: 10_000 }).catch(() => null);
    if (!list || list.code !== 0) return [];
    const removed: string[] = [];
    for (const line of list.stdout.split('\n')) {
      const m = /^table (\S+) (\S+)$/.exec(line.trim());
      if (!m || !isOwnTable(m[2]!, this.tag)) continue;
      const r = await run([p.nft, 'delete', 'table', m[1]!, m[2]!], { allowFail: true, timeoutMs: 10_000 }).catch(() => null);
      if (r?.code === 0) removed.push(`table ${m[1]} ${m[2]}`);
    }
    if (removed.length) this.log(`removed leftover trace tables of an earlier run: ${removed.join(', ')}`);
    return removed;
  }

  seqOf(session: ExplainSession, s: TraceSpec): number {
    if (s.transport !== 'tcp' || s.port === null) return 0;
    // The SYN goes to the destination: this host for 'in' and 'return', the peer for 'out'. Its tag names the
    // flow's own source, which behind NAT is not the peer this host sees (spec.src).
    const ends = s.direction === 'out' ? { src: this.o.address, dst: s.peer } : { src: s.src ?? s.peer, dst: this.o.address };
    return tcpProbeTag(session.key, { ...ends, transport: 'tcp', port: s.port, check: s.check, idx: s.idx }).seq;
  }

  async arm(session: ExplainSession, req: ExplainArmRequest): Promise<ExplainArmResponse> {
    await this.disarm(session.id);
    const p = await this.findPrograms();
    const before = await this.rulesets();
    if (!before.nft && !before.iptNft && !before.iptLegacy) {
      return { armed: false, method: null, note: 'cannot read any ruleset on this host (no nft or iptables-save program, or not permitted: the responder needs CAP_NET_ADMIN)', added: null };
    }
    const timer = setTimeout(() => void this.disarm(session.id), req.ttlMs);
    timer.unref();
    const a: Armed = { session, specs: req.specs, method: 'counters', note: null, table: null, monitor: null, follower: null, kmsg: null, legacyNote: null, before, timer };
    this.armed.set(session.id, a);
    if (req.method === 'counters') a.note = 'counters were asked for';
    else if (!p.nft) a.note = 'the nft program is not installed (tracing needs it)';
    else if (!before.nft) a.note = 'nft cannot list the ruleset here (not permitted?)';
    else {
      const why = await this.startTrace(a, p, req.ttlMs);
      if (why) a.note = why;
      else a.method = 'trace';
    }
    if (a.method === 'trace' && before.iptLegacy && iptablesContent(before.iptLegacy) > 0) {
      try {
        a.kmsg = new KmsgReader(this.o.kmsgPath ?? '/dev/kmsg');
      } catch (err) {
        a.legacyNote = `cannot read the kernel log for iptables-legacy TRACE records (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
      }
    }
    const added = a.table ? `nft table ip ${a.table} (prerouting/output chains at priority -350 setting the trace bit on this session's probes only)` : null;
    if (added) this.log(`explain session ${session.id}: added ${added}`);
    return { armed: true, method: a.method, note: a.note, added };
  }

  /** Add the table, start the monitor, and prove it listens with a loopback canary; a reason on failure. */
  private async startTrace(a: Armed, p: Programs, ttlMs: number): Promise<string | null> {
    const table = tableName(this.tag, a.session.id);
    const canary = randomBytes(8).toString('hex');
    const script = traceTableScript({ table, address: this.o.address, sessionId: a.session.id, specs: a.specs, seqOf: (s) => this.seqOf(a.session, s), canary });
    const follower = new TraceFollower(table);
    try {
      await run([p.nft!, '-f', '-'], { input: script, timeoutMs: 15_000 });
      a.table = table;
    } catch (err) {
      return `could not add the trace table: ${err instanceof CommandError ? firstLine(err.stderr) || err.message : (err as Error).message}`;
    }
    // The monitor after the table: nft reads the ruleset once when it starts and prints a rule added later
    // as "unknown rule handle". `timeout` bounds it should this process be killed.
    const ttlS = String(Math.ceil(ttlMs / 1000) + 5);
    const argv = p.timeout ? [p.timeout, '-k', '2', ttlS, p.nft!, '-a', 'monitor', 'trace'] : [p.nft!, '-a', 'monitor', 'trace'];
    const monitor = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let monitorError = '';
    monitor.on('error', (err) => (monitorError = err.message));
    monitor.stderr?.on('data', (d: Buffer) => (monitorError = (monitorError + d.toString()).slice(-500)));
    createInterface({ input: monitor.stdout! }).on('line', (l) => follower.pushLine(l));
    a.monitor = monitor;
    a.follower = follower;
    // Nothing says when the monitor listens: a traced loopback datagram does.
    const sock = createSocket('udp4');
    try {
      const deadline = Date.now() + 3000;
      while (!follower.canarySeen && Date.now() < deadline && monitor.exitCode === null) {
        await new Promise<void>((resolve) => sock.send(Buffer.from(canary, 'hex'), CANARY_PORT, '127.0.0.1', () => resolve()));
        await sleep(30);
      }
    } finally {
      sock.close();
    }
    if (follower.canarySeen) return null;
    await this.removeTable(a);
    this.stopMonitor(a);
    return `nft monitor trace did not report a traced test packet within 3 s${monitorError.trim() ? ` (${firstLine(monitorError)})` : ''}`;
  }

  private stopMonitor(a: Armed): void {
    if (a.monitor && a.monitor.exitCode === null) a.monitor.kill('SIGTERM');
    a.monitor = null;
  }

  private async removeTable(a: Armed): Promise<string | null> {
    if (!a.table) return null;
    const p = await this.findPrograms();
    const name = a.table;
    a.table = null;
    const r = await run([p.nft!, 'delete', 'table', 'ip', name], { allowFail: true, timeoutMs: 15_000 }).catch((err: Error) => ({ code: -1, stderr: err.message, stdout: '' }));
    if (r.code !== 0) {
      this.log(`could not remove trace table ip ${name}: ${firstLine(r.stderr)} (it is removed at the next start)`);
      return null;
    }
    this.log(`explain session ${a.session.id}: removed nft table ip ${name}`);
    return `nft table ip ${name}`;
  }

  async disarm(sessionId: string): Promise<string | null> {
    const a = this.armed.get(sessionId);
    if (!a) return null;
    this.armed.delete(sessionId);
    clearTimeout(a.timer);
    this.stopMonitor(a);
    a.kmsg?.close();
    return this.removeTable(a);
  }

  async collect(sessionId: string, req: ExplainCollectRequest): Promise<ExplainCollectResponse | null> {
    const a = this.armed.get(sessionId);
    if (!a) return null;
    const settled = (s: TraceSpec) =>
      a.follower!.packets.some((p) => p.spec === s.id && p.drop) || (a.kmsg?.events.some((e) => legacyMatches(e, s, this.o.address, this.seqOf(a.session, s))) ?? false);
    if (a.method === 'trace') {
      // Trace events trail the packets by a little; stop as soon as every flow has its verdict.
      const deadline = Date.now() + req.waitMs;
      while (Date.now() < deadline && !a.specs.every(settled)) await sleep(15);
      a.kmsg?.drain(true);
    }
    const after = await this.rulesets();
    const outcomes = a.specs.map((s) => this.outcome(a, s, after, Math.max(1, req.sent[String(s.id)] ?? 1)));
    const removed = await this.disarm(sessionId);
    return { outcomes, removed };
  }

  private outcome(a: Armed, s: TraceSpec, after: HostRulesets, sent: number): SpecOutcome {
    const counters = (why: string): SpecOutcome => {
      const rule = ruleFromCounters(a.before, after, sent, why, namesFlow(s));
      return { id: s.id, rule, note: rule ? null : `no dropping rule's counter grew by the ${sent} probe packet(s) sent (tracing not used: ${why})` };
    };
    if (a.method === 'counters') return counters(a.note ?? 'tracing unavailable');
    const packets = a.follower!.packets.filter((p) => p.spec === s.id);
    const dropped = packets.find((p) => p.drop);
    if (dropped) return { id: s.id, rule: ruleFromNftTrace(dropped.drop!, after), note: null };
    const seq = this.seqOf(a.session, s);
    const legacy = a.kmsg?.events.filter((e) => legacyMatches(e, s, this.o.address, seq)) ?? [];
    for (const e of legacy) {
      const rule = ruleFromLegacyTrace(e, after);
      if (rule) return { id: s.id, rule, note: null };
    }
    const legacyInUse = !!after.iptLegacy && iptablesContent(after.iptLegacy) > 0;
    if (legacyInUse && legacy.length === 0) {
      return counters(
        a.legacyNote ??
          'iptables-legacy rules exist but the kernel log shows no TRACE record of the probes (in a non-initial network namespace the kernel writes them only with net.netfilter.nf_log_all_netns=1)',
      );
    }
    if (packets.length === 0) return { id: s.id, rule: null, note: 'the trace saw none of the probe packets at this host (did they reach it? were they rewritten by NAT?)' };
    return {
      id: s.id,
      rule: null,
      note: `traced ${packets.length} probe packet(s) through every nftables chain${legacy.length ? ' and the iptables-legacy tables' : ''}: no rule dropped them (the kernel, not a firewall rule, discarded them: rp_filter, routing, a socket-level drop)`,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.armed.keys()].map((id) => this.disarm(id)));
  }

  get armedSessions(): number {
    return this.armed.size;
  }
}

/** Whether a rule's text names the flow's port or protocol (counters prefer such a rule: see ruleFromCounters). */
export function namesFlow(s: TraceSpec): (text: string) => boolean {
  return (text) => (s.port !== null ? new RegExp(`(dport|sport) ${s.port}\\b`).test(text) : /(-p 4\b|ipencap|l4proto 4\b|protocol 4\b)/.test(text));
}
