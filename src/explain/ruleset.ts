// Parsers for the rulesets a host prints: `nft -a list ruleset` and `iptables-save -c`. Pure: text in,
// tables/chains/rules out, in the order the kernel evaluates them. Unknown lines are skipped, never fatal.
// See: nft(8) (LIST, handles), iptables-save(8).

export interface NftRule {
  handle: number;
  /** 1-based, in chain order. */
  position: number;
  /** As nft prints it, without the handle comment and with counters reduced to `counter`. */
  text: string;
  /** Packets counted by the rule's `counter`, when it has one. */
  packets: number | null;
}

export interface NftChain {
  name: string;
  /** Base chains only. */
  hook: string | null;
  priority: string | null;
  policy: string | null;
  rules: NftRule[];
}

export interface NftTable {
  family: string;
  name: string;
  chains: NftChain[];
}

/** Strip quoted strings so braces inside comments do not count. */
function unquoted(line: string): string {
  return line.replace(/"(?:[^"\\]|\\.)*"/g, '""');
}

function braces(line: string): number {
  const s = unquoted(line);
  let d = 0;
  for (const ch of s) {
    if (ch === '{') d++;
    else if (ch === '}') d--;
  }
  return d;
}

/** A rule's text as the user wrote it: counters are state, not what was written. */
export function normaliseNftRule(text: string): string {
  return text
    .replace(/\bcounter packets \d+ bytes \d+/g, 'counter')
    .replace(/\s+/g, ' ')
    .trim();
}

export function parseNftRuleset(text: string): NftTable[] {
  const tables: NftTable[] = [];
  let table: NftTable | null = null;
  let chain: NftChain | null = null;
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (depth === 0) {
      const m = /^table (\S+) (\S+) \{/.exec(line);
      if (m) {
        table = { family: m[1]!, name: m[2]!, chains: [] };
        tables.push(table);
      }
      depth = Math.max(0, depth + braces(line));
      continue;
    }
    if (depth === 1 && table) {
      const m = /^chain (\S+) \{/.exec(line);
      if (m) {
        chain = { name: m[1]!, hook: null, priority: null, policy: null, rules: [] };
        table.chains.push(chain);
      }
      depth = Math.max(0, depth + braces(line));
      if (depth <= 1) chain = null;
      if (depth === 0) table = null;
      continue;
    }
    if (depth === 2 && chain) {
      if (line === '}') {
        depth = 1;
        chain = null;
        continue;
      }
      const base = /^type \S+ hook (\S+)(?: device \S+)? priority ([^;]+);(?: policy (\w+);)?/.exec(line);
      if (base) {
        chain.hook = base[1]!;
        chain.priority = base[2]!.trim();
        chain.policy = base[3] ?? 'accept';
        continue;
      }
      const rule = /^(.*?)\s*# handle (\d+)$/.exec(line);
      if (rule) {
        const counter = /\bcounter packets (\d+) bytes \d+/.exec(rule[1]!);
        chain.rules.push({
          handle: Number(rule[2]),
          position: chain.rules.length + 1,
          text: normaliseNftRule(rule[1]!),
          packets: counter ? Number(counter[1]) : null,
        });
      }
      // A rule line keeps its braces balanced; anything else unbalanced is skipped by depth.
      depth = Math.max(0, depth + braces(line));
      continue;
    }
    depth = Math.max(0, depth + braces(line));
    if (depth <= 1) chain = null;
    if (depth === 0) table = null;
  }
  return tables;
}

export function findNftChain(tables: readonly NftTable[], family: string, table: string, chain: string): NftChain | undefined {
  return tables.find((t) => t.family === family && t.name === table)?.chains.find((c) => c.name === chain);
}

export interface IptRule {
  /** 1-based within its chain. */
  position: number;
  /** The iptables-save line without its counters: `-A INPUT -p tcp -m tcp --dport 179 -j DROP`. */
  text: string;
  /** `-j` / `-g` target, or null (a rule with no target only counts). */
  target: string | null;
  packets: number | null;
}

export interface IptChain {
  name: string;
  /** ACCEPT / DROP for built-in chains; null for user-defined ones. */
  policy: string | null;
  policyPackets: number | null;
  rules: IptRule[];
}

export interface IptTable {
  name: string;
  chains: IptChain[];
}

/** `iptables-save [-c]` output. */
export function parseIptablesSave(text: string): IptTable[] {
  const tables: IptTable[] = [];
  let table: IptTable | null = null;
  const chainOf = (name: string): IptChain => {
    let c = table!.chains.find((x) => x.name === name);
    if (!c) {
      c = { name, policy: null, policyPackets: null, rules: [] };
      table!.chains.push(c);
    }
    return c;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = { name: line.slice(1).trim(), chains: [] };
      tables.push(table);
      continue;
    }
    if (!table) continue;
    if (line === 'COMMIT') {
      table = null;
      continue;
    }
    const decl = /^:(\S+) (\S+)(?: \[(\d+):\d+\])?/.exec(line);
    if (decl) {
      const c = chainOf(decl[1]!);
      c.policy = decl[2] === '-' ? null : decl[2]!;
      c.policyPackets = decl[3] !== undefined ? Number(decl[3]) : null;
      continue;
    }
    const rule = /^(?:\[(\d+):\d+\]\s+)?(-A (\S+)\b.*)$/.exec(line);
    if (rule) {
      const c = chainOf(rule[3]!);
      const target = /\s-[jg] (\S+)/.exec(rule[2]!);
      c.rules.push({ position: c.rules.length + 1, text: rule[2]!.trim(), target: target ? target[1]! : null, packets: rule[1] !== undefined ? Number(rule[1]) : null });
    }
  }
  return tables;
}

export function findIptChain(tables: readonly IptTable[], table: string, chain: string): IptChain | undefined {
  return tables.find((t) => t.name === table)?.chains.find((c) => c.name === chain);
}

/** Rules, user chains and non-ACCEPT policies: what makes a backend "in use" (an empty table is not). */
export function iptablesContent(tables: readonly IptTable[]): number {
  let n = 0;
  for (const t of tables) for (const c of t.chains) n += c.rules.length + (c.policy === null ? 1 : c.policy !== 'ACCEPT' ? 1 : 0);
  return n;
}

/** The ruleset without counters: what "unchanged" means (counters move with any traffic). */
export function withoutCounters(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^# (Generated|Completed) /.test(l))
    .map((l) => l.replace(/^\[\d+:\d+\]\s+/, '').replace(/^(:\S+ \S+) \[\d+:\d+\]/, '$1').replace(/\bcounter packets \d+ bytes \d+/g, 'counter'))
    .join('\n');
}
