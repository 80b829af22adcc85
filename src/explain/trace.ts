// The trace table and what the kernel says about traced packets. Pure: builds the nft script of the
// session's own table (it only sets the trace bit on the session's probe packets) and parses
// `nft -a monitor trace` lines and iptables-legacy `TRACE:` kernel log records. See: nft(8) (monitor,
// meta nftrace, raw payload expressions @th), iptables-extensions(8) (TRACE), Documentation/ABI/testing/dev-kmsg.
import { probeShape } from '../checks/catalogue.js';
import { PROBE_MAGIC, PROBE_SESSION_OFFSET } from '../packets/probe.js';
import type { TraceSpec } from './types.js';

/** Prefix of every table the tool adds; the full name carries the responder's tag and the session id. */
export const TABLE_PREFIX = 'calico-nettest-';

/**
 * Before every filter hook: raw is -300, conntrack -200, mangle -150, filter 0. At -350 our chain sets the
 * trace bit before any table of the host (iptables-nft, iptables-legacy or native) sees the packet.
 */
export const TRACE_PRIORITY = -350;

/** A responder's own tables: named after its address, so a restart removes its leftovers and no one else's. */
export function responderTag(address: string): string {
  return address.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
}

export function tableName(tag: string, sessionId: string): string {
  return `${TABLE_PREFIX}${tag}-${sessionId}`;
}

/** Whether an existing table is a leftover of this responder (any session). */
export function isOwnTable(name: string, tag: string): boolean {
  return new RegExp(`^${TABLE_PREFIX}${tag}-[0-9a-f]{16}$`).test(name);
}

export interface TraceTableInput {
  table: string;
  /** This host's address. */
  address: string;
  /** 8-byte session id, hex. */
  sessionId: string;
  specs: readonly TraceSpec[];
  /** TCP probe sequence number of a spec (the session's HMAC tag: only our SYN carries it). */
  seqOf: (spec: TraceSpec) => number;
  /** 8 random bytes (hex) of the loopback canary that proves the monitor is listening. */
  canary: string;
}

export const CANARY_PORT = 9;
const hex32 = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
const MAGIC = hex32(PROBE_MAGIC);

/** Bit offset (from the transport header) of the probe payload of a datagram check. */
function payloadBits(spec: TraceSpec): number {
  if (spec.transport === 'ipip') return (20 + 8) * 8; // th = the inner IPv4 header; inner UDP; payload
  if (probeShape(spec.check).framing === 'vxlan') return (8 + 8 + 14 + 20 + 8) * 8; // UDP, VXLAN, inner Ethernet, IPv4, UDP
  return 8 * 8; // UDP header
}

/** The nft match (after addresses) that selects exactly this spec's probe packets. */
export function probeMatch(spec: TraceSpec, sessionId: string, seq: number): string {
  if (spec.transport === 'tcp') {
    if (spec.direction === 'return') return `tcp sport ${spec.port} tcp ackseq ${(seq + 1) >>> 0}`;
    return `tcp dport ${spec.port} tcp sequence ${seq >>> 0}`;
  }
  const at = payloadBits(spec);
  const proto = spec.transport === 'ipip' ? 'ip protocol 4' : `udp dport ${spec.port}`;
  return `${proto} @th,${at},32 ${MAGIC} @th,${at + PROBE_SESSION_OFFSET * 8},64 0x${sessionId}`;
}

export const specComment = (id: number) => `cnt:${id}`;

/** The whole `nft -f` script that creates the session's trace table. */
export function traceTableScript(t: TraceTableInput): string {
  const pre: string[] = [];
  const out: string[] = [`ip daddr 127.0.0.1 udp dport ${CANARY_PORT} @th,64,64 0x${t.canary} meta nftrace set 1 comment "cnt:canary"`];
  for (const s of t.specs) {
    const m = probeMatch(s, t.sessionId, t.seqOf(s));
    if (s.direction === 'in') pre.push(`ip saddr ${s.peer} ip daddr ${t.address} ${m} meta nftrace set 1 comment "${specComment(s.id)}"`);
    else out.push(`ip saddr ${t.address} ip daddr ${s.peer} ${m} meta nftrace set 1 comment "${specComment(s.id)}"`);
  }
  const chain = (name: string, hook: string, rules: string[]) =>
    [`  chain ${name} {`, `    type filter hook ${hook} priority ${TRACE_PRIORITY}; policy accept;`, ...rules.map((r) => `    ${r}`), '  }'].join('\n');
  return [`table ip ${t.table} {`, chain('pre', 'prerouting', pre), chain('out', 'output', out), '}', ''].join('\n');
}

// ---- nft monitor trace -------------------------------------------------------------------------

export interface NftTraceEvent {
  id: string;
  family: string;
  table: string;
  chain: string;
  kind: 'rule' | 'policy' | 'packet' | 'return';
  /** Rule text as printed (rule events), or the policy's verdict. */
  text: string;
  handle: number | null;
  /** accept, drop, continue, jump X, goto X, return …; for a policy: accept / drop. */
  verdict: string | null;
}

/** One line of `nft -a monitor trace`, or null for anything else. */
export function parseNftTraceLine(line: string): NftTraceEvent | null {
  const head = /^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (rule|policy|packet:|return|unknown rule)\s?(.*)$/.exec(line.trimEnd());
  if (!head) return null;
  const [, id, family, table, chain, kindWord, rest] = head as unknown as [string, string, string, string, string, string, string];
  if (kindWord === 'packet:') return { id, family, table, chain, kind: 'packet', text: rest, handle: null, verdict: null };
  if (kindWord === 'policy') {
    const v = rest.trim().split(/\s+/)[0] ?? '';
    return { id, family, table, chain, kind: 'policy', text: v, handle: null, verdict: v || null };
  }
  if (kindWord === 'return') return { id, family, table, chain, kind: 'return', text: rest.trim(), handle: null, verdict: 'return' };
  if (kindWord === 'unknown rule') {
    // nft knows the rules that existed when it started; a later one is "unknown rule handle N".
    const unknown = /^handle (\d+)\s+\(verdict ([^)]*)\)\s*$/.exec(rest);
    return { id, family, table, chain, kind: 'rule', text: '', handle: unknown ? Number(unknown[1]) : null, verdict: unknown ? unknown[2]!.trim() : null };
  }
  const m = /^(.*?)(?:\s+# handle (\d+))?\s+\(verdict ([^)]*)\)\s*$/.exec(rest);
  if (!m) return { id, family, table, chain, kind: 'rule', text: rest.trim(), handle: null, verdict: null };
  return { id, family, table, chain, kind: 'rule', text: m[1]!.trim(), handle: m[2] !== undefined ? Number(m[2]) : null, verdict: m[3]!.trim() };
}

/** Which spec a trace line of our own table marks ("cnt:3"), 'canary', or null. */
export function markedSpec(ev: NftTraceEvent, table: string): number | 'canary' | null {
  if (ev.table !== table || ev.kind !== 'rule') return null;
  const m = /comment "cnt:(\d+|canary)"/.exec(ev.text);
  if (!m) return null;
  return m[1] === 'canary' ? 'canary' : Number(m[1]);
}

export interface TracedPacket {
  spec: number;
  /** The event that took a drop verdict (a rule or a policy), if any. */
  drop: NftTraceEvent | null;
}

/**
 * Follows a stream of trace events: each of our marking lines starts a packet of one spec (the kernel can
 * reuse a trace id for a later packet), and the first drop verdict after it is that packet's fate.
 */
export class TraceFollower {
  private readonly current = new Map<string, TracedPacket>();
  readonly packets: TracedPacket[] = [];
  canarySeen = false;
  constructor(private readonly table: string) {}

  push(ev: NftTraceEvent): void {
    const mark = markedSpec(ev, this.table);
    if (mark === 'canary') {
      this.canarySeen = true;
      this.current.delete(ev.id);
      return;
    }
    if (mark !== null) {
      const p: TracedPacket = { spec: mark, drop: null };
      this.current.set(ev.id, p);
      this.packets.push(p);
      return;
    }
    const p = this.current.get(ev.id);
    if (!p || p.drop) return;
    if ((ev.kind === 'rule' || ev.kind === 'policy') && ev.verdict === 'drop') p.drop = ev;
  }

  pushLine(line: string): void {
    const ev = parseNftTraceLine(line);
    if (ev) this.push(ev);
  }
}

// ---- iptables-legacy TRACE kernel log records ---------------------------------------------------

export interface LegacyTraceEvent {
  table: string;
  chain: string;
  kind: 'rule' | 'return' | 'policy';
  /** 1-based rule number in the chain (for a policy: rules + 1). */
  num: number;
  fields: Record<string, string>;
}

/** A /dev/kmsg record (`pri,seq,ts,flags;message`) or a bare message holding `TRACE: table:chain:kind:n`. */
export function parseLegacyTrace(record: string): LegacyTraceEvent | null {
  const semi = record.indexOf(';');
  const msg = /^\d+,\d+,\d+,[^;]*;/.test(record) ? record.slice(semi + 1) : record;
  const m = /TRACE: (\w+):([^:\s]+):(rule|return|policy):(\d+)\s(.*)$/.exec(msg.split('\n')[0] ?? '');
  if (!m) return null;
  const fields: Record<string, string> = {};
  for (const f of m[5]!.matchAll(/\b([A-Z]+)=(\S*)/g)) if (!(f[1]! in fields)) fields[f[1]!] = f[2]!;
  return { table: m[1]!, chain: m[2]!, kind: m[3] as LegacyTraceEvent['kind'], num: Number(m[4]), fields };
}

const PROTO_NAMES: Record<string, string> = { tcp: 'TCP', udp: 'UDP', ipip: '4' };

/** Whether a legacy TRACE record is of this spec's probe: addresses, protocol, port, and the TCP tag. */
export function legacyMatches(ev: LegacyTraceEvent, spec: TraceSpec, address: string, seq: number): boolean {
  const f = ev.fields;
  const [src, dst] = spec.direction === 'in' ? [spec.peer, address] : [address, spec.peer];
  if (f.SRC !== src || f.DST !== dst) return false;
  if (f.PROTO !== PROTO_NAMES[spec.transport]) return false;
  if (spec.transport === 'ipip') return true;
  if (spec.direction === 'return') return f.SPT === String(spec.port) && f.ACK === String((seq + 1) >>> 0);
  if (f.DPT !== String(spec.port)) return false;
  return spec.transport !== 'tcp' || f.SEQ === String(seq >>> 0);
}
