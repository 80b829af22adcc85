// The requirement catalogue: every check Calico's traffic needs (DESIGN §1), as data. It owns each check's
// shape: transport, default port, wire code, probe framing / size / DF bit, address families, and how its
// witness listens. Every other module asks it; adding a check is adding an entry here (and its id in types.ts).
import { CHECK_IDS, type CheckId, type Reach, type Transport } from '../types.js';

/** Address families a check exists in. */
export const FAMILIES = ['ipv4', 'ipv6'] as const;
export type Family = (typeof FAMILIES)[number];

/** How the destination's witness sees a check's probe: a raw TCP socket (the SYN), a raw UDP socket, a raw IP protocol 4 socket. */
export type Listen = 'tcp-syn' | 'udp' | 'ipip';

/**
 * How a probe payload is wrapped before it goes on the wire: as is ('bare', a UDP payload), in a VXLAN header and
 * inner frame ('vxlan'), or in an inner IPv4 header ('ipip', the payload of IP protocol 4). TCP probes are SYNs.
 */
export const FRAMINGS = ['bare', 'vxlan', 'ipip', 'syn'] as const;
export type Framing = (typeof FRAMINGS)[number];

/** The shape of one probe packet. A probe request may override it (the mtu check sends DF probes of the host MTU). */
export interface ProbeShape {
  framing: Framing;
  /** Total IPv4 packet length to pad the probe to (null: as small as it comes). */
  size: number | null;
  /** The don't-fragment bit. */
  df: boolean;
}

export interface CheckDef {
  id: CheckId;
  /** The check's code in a probe payload (packets/probe.ts): never reuse one. */
  code: number;
  transport: Transport;
  /** null for IP-in-IP, which has no ports. */
  defaultPort: number | null;
  /** Where the default port differs by family (WireGuard: 51821 over IPv6). */
  defaultPortByFamily?: Partial<Record<Family, number>>;
  families: readonly Family[];
  reach: Reach;
  listen: Listen;
  probe: ProbeShape;
  /** Short name: 'BGP'. */
  title: string;
  /** What travels: 'BGP (TCP 179)', 'IP-in-IP (IP protocol 4)'. */
  traffic(port: number | null): string;
  /** The iptables match for this traffic towards its destination: '-p tcp --dport 179', '-p 4'. */
  ruleHint(port: number | null): string;
  /** The iptables match for this traffic's replies (the destination's OUTPUT): '-p tcp --sport 179', '-p 4'. */
  replyRuleHint(port: number | null): string;
  /** The nftables-style match: 'tcp dport 179', 'IP protocol 4 (ipencap)'. */
  match(port: number | null): string;
  /** One line: what Calico uses it for. */
  why: string;
  /**
   * A check that measures the path rather than a port (the mtu check): its probes travel in the shape
   * (transport, port, framing) of the first of these checks the plan enables, the first when none is.
   */
  carriedBy?: readonly CheckId[];
  /**
   * 'host-mtu': each probe is a DF packet of the sender's host MTU (the MTU of the interface holding its
   * address); when that does not arrive, the coordinator searches for the largest size that does, and
   * the verdict is the mtu join's (verdict-mtu.ts).
   */
  sizing?: 'host-mtu';
  /** An encapsulation's bytes over the pod packet (IPv4), for Calico MTU advice: IP-in-IP 20, VXLAN 50, WireGuard 60. */
  overhead?: number;
}

/** The data of a check; the words (traffic, rule hints) are derived from it. */
export type CheckSpec = Omit<CheckDef, 'traffic' | 'ruleHint' | 'replyRuleHint' | 'match' | 'listen' | 'probe' | 'families'> &
  Partial<Pick<CheckDef, 'listen' | 'families'>> & { probe?: Partial<ProbeShape>; /** Overrides the derived 'Title (TCP 179)'. */ trafficWords?: string };

const LISTEN: Record<Transport, Listen> = { tcp: 'tcp-syn', udp: 'udp', ipip: 'ipip' };
const FRAMING: Record<Transport, Framing> = { tcp: 'syn', udp: 'bare', ipip: 'ipip' };

/** A full definition from a spec: the listen mode and framing follow the transport unless given. */
export function defineCheck(spec: CheckSpec): CheckDef {
  const { id, transport, defaultPort, title, trafficWords, ...rest } = spec;
  const probe: ProbeShape = { framing: FRAMING[transport], size: null, df: true, ...spec.probe };
  const base = { families: ['ipv4'] as readonly Family[], listen: LISTEN[transport], id, transport, defaultPort, title, ...rest, probe };
  if (transport === 'ipip') {
    return {
      ...base,
      traffic: () => trafficWords ?? `${title} (IP protocol 4)`,
      ruleHint: () => '-p 4',
      replyRuleHint: () => '-p 4',
      match: () => 'IP protocol 4 (ipencap)',
    };
  }
  const port = (p: number | null) => p ?? defaultPort ?? '?';
  return {
    ...base,
    traffic: (p) => trafficWords ?? `${title} (${transport.toUpperCase()} ${port(p)})`,
    ruleHint: (p) => `-p ${transport} --dport ${port(p)}`,
    replyRuleHint: (p) => `-p ${transport} --sport ${port(p)}`,
    match: (p) => `${transport} dport ${port(p)}`,
  };
}

const ALL: Reach = { kind: 'all-pairs' };
const BOTH: readonly Family[] = ['ipv4', 'ipv6'];
/** Size of a WireGuard handshake initiation (148 bytes of UDP payload), so a size-aware filter sees a plausible one. */
export const WIREGUARD_HANDSHAKE_SIZE = 148;

const BUILTIN: readonly CheckSpec[] = [
  { id: 'bgp', code: 1, transport: 'tcp', defaultPort: 179, families: BOTH, reach: ALL, title: 'BGP', why: 'BIRD exchanges pod routes with every peer over BGP sessions.' },
  // IP-in-IP carries IPv4 only: Calico has no IPv6 IP-in-IP mode.
  { id: 'ipip', code: 2, transport: 'ipip', defaultPort: null, reach: ALL, overhead: 20, title: 'IP-in-IP', why: 'pod traffic between nodes is encapsulated in IP-in-IP in ipipMode pools.' },
  { id: 'vxlan', code: 3, transport: 'udp', defaultPort: 4789, families: BOTH, reach: ALL, overhead: 50, probe: { framing: 'vxlan' }, title: 'VXLAN', why: 'pod traffic between nodes is encapsulated in VXLAN in vxlanMode pools (and eBPF NodePort forwarding).' },
  {
    id: 'wireguard', code: 4, transport: 'udp', defaultPort: 51820, defaultPortByFamily: { ipv6: 51821 }, families: BOTH, reach: ALL, overhead: 60,
    probe: { size: 20 + 8 + WIREGUARD_HANDSHAKE_SIZE }, title: 'WireGuard', why: 'Felix encrypts pod traffic between nodes over WireGuard when encryption is on.',
  },
  { id: 'typha', code: 5, transport: 'tcp', defaultPort: 5473, families: BOTH, reach: { kind: 'to-role', role: 'typha' }, title: 'Typha', why: 'Felix on every node reads the datastore through Typha.' },
  { id: 'etcd', code: 6, transport: 'tcp', defaultPort: 2379, families: BOTH, reach: { kind: 'to-role', role: 'etcd' }, title: 'etcd', why: 'Calico components talk to etcd when it is the datastore.' },
  { id: 'apiserver', code: 7, transport: 'tcp', defaultPort: 6443, families: BOTH, reach: { kind: 'to-role', role: 'apiserver' }, title: 'kube-apiserver', why: 'Calico components read and write the Kubernetes datastore through the API server.' },
  // The path itself: DF probes of the host MTU in the first enabled encapsulation's framing (its transport
  // and port come from that check; IP-in-IP when none is planned). IPv4 only, like its search.
  {
    id: 'mtu', code: 8, transport: 'ipip', defaultPort: null, reach: ALL, carriedBy: ['ipip', 'vxlan', 'wireguard'], sizing: 'host-mtu',
    trafficWords: 'path MTU (DF probes at the host MTU, encapsulated)', title: 'path MTU',
    why: 'Calico sets every tunnel MTU to the host MTU minus its overhead: a path that carries less drops large pod packets.',
  },
];

/** Every check by id. Extended only through registerCheck. */
export const CATALOGUE: Readonly<Record<CheckId, CheckDef>> = {} as Record<CheckId, CheckDef>;
const ORDER: CheckId[] = [];
const BY_CODE = new Map<number, CheckDef>();

/**
 * Add a check to the catalogue (the built-in ones at load; a test or an extension later). Its id and code
 * must be new; the code must fit the probe payload's byte.
 */
export function registerCheck(spec: CheckSpec): CheckDef {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(spec.id)) throw new TypeError(`check id ${JSON.stringify(spec.id)} must be lower-case letters, digits and dashes`);
  if ((CATALOGUE as Record<string, CheckDef>)[spec.id]) throw new TypeError(`check ${spec.id} is already in the catalogue`);
  if (!Number.isInteger(spec.code) || spec.code < 1 || spec.code > 255) throw new TypeError(`check ${spec.id}: code must be 1..255`);
  const taken = BY_CODE.get(spec.code);
  if (taken) throw new TypeError(`check ${spec.id}: code ${spec.code} is ${taken.id}'s`);
  if ((spec.transport === 'ipip') !== (spec.defaultPort === null)) throw new TypeError(`check ${spec.id}: only IP-in-IP has no port`);
  for (const c of spec.carriedBy ?? []) {
    const carrier = (CATALOGUE as Record<string, CheckDef | undefined>)[c];
    if (!carrier || carrier.carriedBy || carrier.transport === 'tcp') throw new TypeError(`check ${spec.id}: carrier ${c} must be a datagram check already in the catalogue`);
  }
  const def = Object.freeze(defineCheck(spec));
  (CATALOGUE as Record<string, CheckDef>)[def.id] = def;
  ORDER.push(def.id);
  BY_CODE.set(def.code, def);
  return def;
}
for (const spec of BUILTIN) registerCheck(spec);

/** Every check id, in catalogue order (the built-in ones are CHECK_IDS). */
export function checkIds(): readonly CheckId[] {
  return ORDER;
}

/** The check whose probe-payload code is `code`, or null. */
export function checkByCode(code: number): CheckDef | null {
  return BY_CODE.get(code) ?? null;
}

/** The shape of a probe: the check's, with what a request overrides. */
export function probeShape(check: CheckId, override: Partial<ProbeShape> = {}): ProbeShape {
  const base = CATALOGUE[check].probe;
  return {
    framing: override.framing ?? base.framing,
    size: override.size !== undefined ? override.size : base.size,
    df: override.df ?? base.df,
  };
}

/** The ports a set of checks needs witnessed, split by how the witness listens (IP-in-IP has none). */
export function witnessPorts(ports: Iterable<[CheckId | string, number]>): { tcp: number[]; udp: number[] } {
  const tcp: number[] = [];
  const udp: number[] = [];
  for (const [id, port] of ports) {
    const listen = (CATALOGUE as Record<string, CheckDef | undefined>)[id]?.listen;
    if (listen === 'udp') udp.push(port);
    else if (listen === 'tcp-syn') tcp.push(port);
  }
  return { tcp, udp };
}

/** "bgp, ipip, vxlan, ...": the check list for help texts and messages. */
export function checkList(sep = ', ', filter: (d: CheckDef) => boolean = () => true): string {
  return ORDER.filter((id) => filter(CATALOGUE[id])).join(sep);
}

/** The transports a check's probes may travel over: a carried check (mtu) any of its carriers', else its own. */
export function transportsOf(check: CheckId): ReadonlySet<Transport> {
  let ways = TRANSPORTS_OF.get(check);
  if (!ways) {
    const def = CATALOGUE[check];
    TRANSPORTS_OF.set(check, (ways = new Set(def.carriedBy ? def.carriedBy.map((c) => CATALOGUE[c].transport) : [def.transport])));
  }
  return ways;
}
// Asked once per inbound flow of a session (tens of thousands): computed once per check.
const TRANSPORTS_OF = new Map<CheckId, ReadonlySet<Transport>>();

/**
 * The check whose shape a carried check's probes take in a plan of `checks`: the first of its carriers
 * the plan enables, else its first carrier; the check itself when it is not carried.
 */
export function carrierOf(check: CheckId, checks: readonly CheckId[]): CheckId {
  const by = CATALOGUE[check].carriedBy;
  if (!by || by.length === 0) return check;
  return by.find((c) => checks.includes(c)) ?? (by[0] as CheckId);
}

/** Every check, in catalogue order: the default plan. */
export const DEFAULT_CHECKS: readonly CheckId[] = Object.freeze([...CHECK_IDS]);

export function isCheckId(s: string): s is CheckId {
  return Object.prototype.hasOwnProperty.call(CATALOGUE, s);
}

/** Default port of every check, as a fresh record. */
export function defaultPorts(): Record<CheckId, number | null> {
  const out = {} as Record<CheckId, number | null>;
  for (const id of ORDER) out[id] = CATALOGUE[id].defaultPort;
  return out;
}

/** Sort check ids into catalogue order, dropping duplicates. */
export function catalogueOrder(ids: Iterable<CheckId>): CheckId[] {
  const want = new Set(ids);
  return ORDER.filter((id) => want.has(id));
}

/**
 * Parse a `--checks` list: comma-separated, trimmed, duplicates dropped, first-seen order kept.
 * `all` stands for the whole catalogue.
 */
export function parseCheckList(s: string): CheckId[] {
  const out: CheckId[] = [];
  const items = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (items.length === 0) throw new Error(`no checks given; valid checks: ${checkList()}`);
  for (const item of items) {
    const id = item.toLowerCase();
    if (id === 'all') {
      for (const c of ORDER) if (!out.includes(c)) out.push(c);
      continue;
    }
    if (!isCheckId(id)) throw new Error(unknownCheckMessage(item));
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

/** "unknown check 'vxaln' (did you mean 'vxlan'?); valid checks: bgp, ipip, ..." */
export function unknownCheckMessage(item: string): string {
  const guess = didYouMean(item, ORDER);
  return `unknown check '${item}'${guess ? ` (did you mean '${guess}'?)` : ''}; valid checks: ${checkList()}`;
}

/**
 * The candidate closest to `word` (case-insensitive optimal-string-alignment distance), if close
 * enough to be a typo: at most 1 edit for short words, 2 for longer ones.
 */
export function didYouMean(word: string, candidates: readonly string[]): string | null {
  const w = word.toLowerCase();
  if (w.length === 0 || w.length > 64) return null;
  const limit = w.length <= 3 ? 1 : 2;
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD && d <= limit && d < Math.max(w.length, c.length)) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1).fill(0);
    row[0] = i;
    rows.push(row);
  }
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Infinity;
  for (let j = 0; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, at(i - 2, j - 2) + 1);
      row[j] = d;
    }
  }
  return at(a.length, b.length);
}
