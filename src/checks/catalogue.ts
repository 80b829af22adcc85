// The requirement catalogue: every check Calico's traffic needs (DESIGN §1), as data.
import { CHECK_IDS, type CheckId, type Reach, type Transport } from '../types.js';

export interface CheckDef {
  id: CheckId;
  transport: Transport;
  /** null for IP-in-IP, which has no ports. */
  defaultPort: number | null;
  reach: Reach;
  /** Short name: 'BGP'. */
  title: string;
  /** What travels: 'BGP (TCP 179)', 'IP-in-IP (IP protocol 4)'. */
  traffic(port: number | null): string;
  /** The iptables match for this traffic towards its destination: '-p tcp --dport 179', '-p 4'. */
  ruleHint(port: number | null): string;
  /** The iptables match for this traffic's replies (the destination's OUTPUT): '-p tcp --sport 179', '-p 4'. */
  replyRuleHint(port: number | null): string;
  /** One line: what Calico uses it for. */
  why: string;
}

function portTraffic(title: string, transport: 'tcp' | 'udp', port: number | null): string {
  return `${title} (${transport.toUpperCase()} ${port ?? '?'})`;
}

function def(
  id: CheckId,
  transport: Transport,
  defaultPort: number | null,
  reach: Reach,
  title: string,
  why: string,
): CheckDef {
  if (transport === 'ipip') {
    return {
      id, transport, defaultPort, reach, title, why,
      traffic: () => `${title} (IP protocol 4)`,
      ruleHint: () => '-p 4',
      replyRuleHint: () => '-p 4',
    };
  }
  return {
    id, transport, defaultPort, reach, title, why,
    traffic: (port) => portTraffic(title, transport, port ?? defaultPort),
    ruleHint: (port) => `-p ${transport} --dport ${port ?? defaultPort ?? '?'}`,
    replyRuleHint: (port) => `-p ${transport} --sport ${port ?? defaultPort ?? '?'}`,
  };
}

const ALL: Reach = { kind: 'all-pairs' };

export const CATALOGUE: Readonly<Record<CheckId, CheckDef>> = Object.freeze({
  bgp: def('bgp', 'tcp', 179, ALL, 'BGP', 'BIRD exchanges pod routes with every peer over BGP sessions.'),
  ipip: def('ipip', 'ipip', null, ALL, 'IP-in-IP', 'pod traffic between nodes is encapsulated in IP-in-IP in ipipMode pools.'),
  vxlan: def('vxlan', 'udp', 4789, ALL, 'VXLAN', 'pod traffic between nodes is encapsulated in VXLAN in vxlanMode pools (and eBPF NodePort forwarding).'),
  wireguard: def('wireguard', 'udp', 51820, ALL, 'WireGuard', 'Felix encrypts pod traffic between nodes over WireGuard when encryption is on.'),
  typha: def('typha', 'tcp', 5473, { kind: 'to-role', role: 'typha' }, 'Typha', 'Felix on every node reads the datastore through Typha.'),
  etcd: def('etcd', 'tcp', 2379, { kind: 'to-role', role: 'etcd' }, 'etcd', 'Calico components talk to etcd when it is the datastore.'),
  apiserver: def('apiserver', 'tcp', 6443, { kind: 'to-role', role: 'apiserver' }, 'kube-apiserver', 'Calico components read and write the Kubernetes datastore through the API server.'),
  // Its probes travel in the framing of the plan's first encapsulation (src/checks/mtu.ts mtuFraming);
  // the transport here is the default framing, IP-in-IP.
  mtu: {
    ...def('mtu', 'ipip', null, ALL, 'path MTU', 'Calico sets every tunnel MTU to the host MTU minus its overhead: a path that carries less drops large pod packets.'),
    traffic: () => 'path MTU (DF probes at the host MTU, encapsulated)',
    ruleHint: () => '-p icmp --icmp-type fragmentation-needed',
  },
});

/** Every check, in catalogue order: the default plan. */
export const DEFAULT_CHECKS: readonly CheckId[] = Object.freeze([...CHECK_IDS]);

export function isCheckId(s: string): s is CheckId {
  return (CHECK_IDS as readonly string[]).includes(s);
}

/** Default port of every check, as a fresh record. */
export function defaultPorts(): Record<CheckId, number | null> {
  const out = {} as Record<CheckId, number | null>;
  for (const id of CHECK_IDS) out[id] = CATALOGUE[id].defaultPort;
  return out;
}

/** Sort check ids into catalogue order, dropping duplicates. */
export function catalogueOrder(ids: Iterable<CheckId>): CheckId[] {
  const want = new Set(ids);
  return CHECK_IDS.filter((id) => want.has(id));
}

/**
 * Parse a `--checks` list: comma-separated, trimmed, duplicates dropped, first-seen order kept.
 * `all` stands for the whole catalogue.
 */
export function parseCheckList(s: string): CheckId[] {
  const out: CheckId[] = [];
  const items = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (items.length === 0) throw new Error(`no checks given; valid checks: ${CHECK_IDS.join(', ')}`);
  for (const item of items) {
    const id = item.toLowerCase();
    if (id === 'all') {
      for (const c of CHECK_IDS) if (!out.includes(c)) out.push(c);
      continue;
    }
    if (!isCheckId(id)) throw new Error(unknownCheckMessage(item));
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

/** "unknown check 'vxaln' (did you mean 'vxlan'?); valid checks: bgp, ipip, ..." */
export function unknownCheckMessage(item: string): string {
  const guess = didYouMean(item, CHECK_IDS);
  return `unknown check '${item}'${guess ? ` (did you mean '${guess}'?)` : ''}; valid checks: ${CHECK_IDS.join(', ')}`;
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
