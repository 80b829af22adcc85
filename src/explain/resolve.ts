// From what the kernel said to the rule the user wrote: an nft trace event or a legacy TRACE record is
// mapped to the iptables-save line / nft rule text it stands for; counter deltas name a likely rule
// where tracing was impossible. Pure: rulesets and events in, RuleFact out.
import { findIptChain, findNftChain, iptablesContent, type IptTable, type NftTable } from './ruleset.js';
import type { NftTraceEvent, LegacyTraceEvent } from './trace.js';
import type { RuleFact } from './types.js';

/** What a host's rulesets looked like (null: that backend could not be read or does not exist). */
export interface HostRulesets {
  nft: NftTable[] | null;
  iptNft: IptTable[] | null;
  iptLegacy: IptTable[] | null;
  /** The backend the plain `iptables` command uses on the host. */
  iptables: 'nft' | 'legacy' | null;
}

const XTABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);

/** firewalld's zone from its chain names: nft backend `filter_IN_public_allow`, iptables backend `IN_public_allow`. */
export function firewalldZone(table: string, chain: string): string | undefined {
  const m =
    table === 'firewalld'
      ? /^filter_(?:IN|FWD|OUT)_(.+?)(?:_(?:pre|log|deny|allow|post))?$/.exec(chain)
      : table === 'filter'
        ? /^(?:IN|FWDI|FWDO|OUT)_(.+?)(?:_(?:pre|log|deny|allow|post))?$/.exec(chain)
        : null;
  const zone = m?.[1];
  return zone && zone !== 'ZONES' && zone !== 'ZONES_SOURCE' ? zone : undefined;
}

export function splitBackend(rs: HostRulesets): RuleFact['splitBackend'] {
  if (!rs.iptLegacy || !rs.iptNft) return undefined;
  const legacyRules = iptablesContent(rs.iptLegacy);
  const nftRules = iptablesContent(rs.iptNft);
  return legacyRules > 0 && nftRules > 0 ? { legacyRules, nftRules, iptables: rs.iptables } : undefined;
}

function finish(r: RuleFact, rs: HostRulesets): RuleFact {
  const zone = firewalldZone(r.table, r.chain);
  if (zone) r.firewalldZone = zone;
  if (r.backend !== 'nftables') {
    const split = splitBackend(rs);
    if (split) r.splitBackend = split;
  }
  return r;
}

const isReject = (text: string) => /(^|\s)(-j REJECT|reject)\b/.test(text);

/** The rule (or policy) an nft trace's drop verdict names. */
export function ruleFromNftTrace(ev: NftTraceEvent, rs: HostRulesets): RuleFact {
  const chain = findNftChain(rs.nft ?? [], ev.family, ev.table, ev.chain);
  const ipt = ev.family === 'ip' && XTABLES.has(ev.table) ? findIptChain(rs.iptNft ?? [], ev.table, ev.chain) : undefined;
  // An iptables-nft table is one iptables-nft-save can print: the same chain with the same number of rules.
  const isIpt = !!ipt && (!chain || chain.rules.length === ipt.rules.length);
  if (ev.kind === 'policy') {
    return finish(
      isIpt
        ? { backend: 'iptables-nft', family: ev.family, table: ev.table, chain: ev.chain, text: `policy ${ipt!.policy ?? 'DROP'} of chain ${ev.chain}`, verdict: 'drop', method: 'trace', policy: true }
        : { backend: 'nftables', family: ev.family, table: ev.table, chain: ev.chain, text: `policy drop of chain ${ev.chain}`, verdict: 'drop', method: 'trace', policy: true },
      rs,
    );
  }
  const listed = ev.handle !== null ? chain?.rules.find((r) => r.handle === ev.handle) : undefined;
  const position = listed?.position;
  if (isIpt && position !== undefined) {
    const line = ipt!.rules[position - 1];
    if (line) {
      return finish(
        { backend: 'iptables-nft', family: ev.family, table: ev.table, chain: ev.chain, handle: ev.handle ?? undefined, position, text: line.text, verdict: line.target === 'REJECT' ? 'reject' : 'drop', method: 'trace' },
        rs,
      );
    }
  }
  const text = listed?.text ?? ev.text.replace(/\bcounter packets \d+ bytes \d+/g, 'counter').replace(/\s+/g, ' ').trim();
  const r: RuleFact = { backend: isIpt ? 'iptables-nft' : 'nftables', family: ev.family, table: ev.table, chain: ev.chain, text, verdict: isReject(text) ? 'reject' : 'drop', method: 'trace' };
  if (ev.handle !== null) r.handle = ev.handle;
  if (position !== undefined) r.position = position;
  return finish(r, rs);
}

/** The legacy rule or policy a TRACE record names, when it is one that drops (else null: it went on). */
export function ruleFromLegacyTrace(ev: LegacyTraceEvent, rs: HostRulesets): RuleFact | null {
  const chain = findIptChain(rs.iptLegacy ?? [], ev.table, ev.chain);
  if (!chain) return null;
  if (ev.kind === 'policy') {
    if (chain.policy !== 'DROP') return null;
    return finish({ backend: 'iptables-legacy', family: 'ip', table: ev.table, chain: ev.chain, text: `policy DROP of chain ${ev.chain}`, verdict: 'drop', method: 'trace', policy: true }, rs);
  }
  if (ev.kind !== 'rule') return null;
  const rule = chain.rules[ev.num - 1];
  if (!rule || (rule.target !== 'DROP' && rule.target !== 'REJECT')) return null;
  return finish(
    { backend: 'iptables-legacy', family: 'ip', table: ev.table, chain: ev.chain, position: rule.position, text: rule.text, verdict: rule.target === 'REJECT' ? 'reject' : 'drop', method: 'trace' },
    rs,
  );
}

interface Candidate {
  rule: RuleFact;
  delta: number;
}

/**
 * Counters instead of a trace: a dropping rule (or DROP policy) whose packet count grew by at least `sent`
 * while the probes went out. A rule naming the flow (`prefer`) wins, then the smallest growth (other traffic
 * inflates broad rules); it stays "likely", never proven.
 */
export function ruleFromCounters(before: HostRulesets, after: HostRulesets, sent: number, why: string, prefer: (text: string) => boolean = () => false): RuleFact | null {
  const found: Candidate[] = [];
  const ipt = (backend: 'iptables-nft' | 'iptables-legacy', b: IptTable[] | null, a: IptTable[] | null) => {
    for (const t of a ?? []) {
      for (const c of t.chains) {
        const old = findIptChain(b ?? [], t.name, c.name);
        if (!old) continue;
        if (c.policy === 'DROP' && c.policyPackets !== null && old.policyPackets !== null && c.policyPackets - old.policyPackets >= sent) {
          found.push({ delta: c.policyPackets - old.policyPackets, rule: { backend, family: 'ip', table: t.name, chain: c.name, text: `policy DROP of chain ${c.name}`, verdict: 'drop', method: 'counters', likely: true, traceUnavailable: why, policy: true } });
        }
        for (const r of c.rules) {
          const o = old.rules[r.position - 1];
          if (!o || o.text !== r.text || r.packets === null || o.packets === null) continue;
          if (r.target !== 'DROP' && r.target !== 'REJECT') continue;
          const delta = r.packets - o.packets;
          if (delta >= sent) found.push({ delta, rule: { backend, family: 'ip', table: t.name, chain: c.name, position: r.position, text: r.text, verdict: r.target === 'REJECT' ? 'reject' : 'drop', method: 'counters', likely: true, traceUnavailable: why } });
        }
      }
    }
  };
  ipt('iptables-nft', before.iptNft, after.iptNft);
  ipt('iptables-legacy', before.iptLegacy, after.iptLegacy);
  for (const t of after.nft ?? []) {
    // iptables-nft tables were counted above from iptables-save (same counters, the user's own words).
    if (t.family === 'ip' && XTABLES.has(t.name) && after.iptNft?.some((x) => x.name === t.name)) continue;
    for (const c of t.chains) {
      const old = findNftChain(before.nft ?? [], t.family, t.name, c.name);
      if (!old) continue;
      for (const r of c.rules) {
        const o = old.rules.find((x) => x.handle === r.handle);
        if (!o || r.packets === null || o.packets === null) continue;
        if (!/(^|\s)(drop|reject)(\s|$)/.test(r.text)) continue;
        const delta = r.packets - o.packets;
        if (delta >= sent) found.push({ delta, rule: { backend: 'nftables', family: t.family, table: t.name, chain: c.name, handle: r.handle, position: r.position, text: r.text, verdict: isReject(r.text) ? 'reject' : 'drop', method: 'counters', likely: true, traceUnavailable: why } });
      }
    }
  }
  if (found.length === 0) return null;
  // Several flows probed at once all count on a broad rule: a rule naming this flow's port comes first.
  const rank = (c: Candidate) => (prefer(c.rule.text) ? 0 : 1);
  found.sort((x, y) => rank(x) - rank(y) || x.delta - y.delta);
  return finish(found[0]!.rule, after);
}
