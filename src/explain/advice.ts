// What the operator should do about a named rule, in the terms the rule was written in: an iptables
// command for the backend that holds it, an nft command, or firewall-cmd for a firewalld zone; and the
// diagnosis statements, quoting the rules of the flows they explain. Pure.
import { CATALOGUE } from '../checks/catalogue.js';
import type { CheckId, DiagnosisStatement, FlowResult, Transport } from '../types.js';
import type { RuleFact, TraceDirection } from './types.js';

export interface AllowFlow {
  direction: TraceDirection;
  transport: Transport;
  port: number | null;
  /** The other node's address. */
  peer: string;
}

/** Which packets of a blamed flow its host's rule saw. */
export function directionOf(cause: FlowResult['cause']): TraceDirection | null {
  switch (cause) {
    case 'egress-blocked':
      return 'out';
    case 'ingress-blocked':
    case 'rejected':
      return 'in';
    case 'return-blocked':
      return 'return';
    default:
      return null;
  }
}

function iptMatch(f: AllowFlow): string {
  const who = f.direction === 'in' ? `-s ${f.peer}` : `-d ${f.peer}`;
  if (f.transport === 'ipip') return `${who} -p 4`;
  const port = f.direction === 'return' ? `--sport ${f.port}` : `--dport ${f.port}`;
  return `${who} -p ${f.transport} ${port}`;
}

function nftMatch(f: AllowFlow): string {
  const who = f.direction === 'in' ? `ip saddr ${f.peer}` : `ip daddr ${f.peer}`;
  if (f.transport === 'ipip') return `${who} meta l4proto 4`;
  return `${who} ${f.transport} ${f.direction === 'return' ? 'sport' : 'dport'} ${f.port}`;
}

/** The iptables program that edits the backend holding the rule. */
function iptBinary(r: RuleFact): string {
  if (r.backend === 'iptables-legacy') return r.splitBackend?.iptables === 'legacy' ? 'iptables' : 'iptables-legacy';
  return r.splitBackend?.iptables === 'legacy' ? 'iptables-nft' : 'iptables';
}

/** One command that lets the flow through, placed where the rule that drops it cannot win. */
export function allowCommand(r: RuleFact, f: AllowFlow): string {
  if (r.firewalldZone && f.direction === 'in') {
    const what = f.transport === 'ipip' ? '--add-protocol=4' : `--add-port=${f.port}/${f.transport}`;
    return `firewall-cmd --permanent --zone=${r.firewalldZone} ${what} && firewall-cmd --reload`;
  }
  if (r.backend === 'nftables') {
    const at = r.policy || r.handle === undefined ? 'add' : 'insert';
    const pos = at === 'insert' ? ` position ${r.handle}` : '';
    return `nft ${at} rule ${r.family} ${r.table} ${r.chain}${pos} ${nftMatch(f)} accept`;
  }
  const bin = iptBinary(r);
  const table = r.table === 'filter' ? '' : ` -t ${r.table}`;
  if (r.policy || r.position === undefined) return `${bin}${table} -A ${r.chain} ${iptMatch(f)} -j ACCEPT`;
  return `${bin}${table} -I ${r.chain} ${r.position} ${iptMatch(f)} -j ACCEPT`;
}

/** "`-A INPUT -p tcp … -j DROP` (iptables-nft, table filter, chain INPUT, rule 3)". */
export function quoteRule(r: RuleFact): string {
  const where = [r.backend, `table ${r.family === 'ip' || r.backend !== 'nftables' ? '' : `${r.family} `}${r.table}`, `chain ${r.chain}`];
  if (!r.policy && r.position !== undefined) where.push(`rule ${r.position}`);
  if (r.backend === 'nftables' && r.handle !== undefined) where.push(`handle ${r.handle}`);
  return `\`${r.text}\` (${where.join(', ')})`;
}

export function splitBackendSentence(node: string, r: RuleFact): string {
  const s = r.splitBackend;
  if (!s) return '';
  const uses = s.iptables ? ` (\`iptables\` there is iptables-${s.iptables})` : '';
  return ` ${node} has iptables rules in both backends, legacy (${s.legacyRules}) and nft (${s.nftRules})${uses}: the dropping rule is in ${r.backend}, so \`iptables${r.backend === 'iptables-legacy' ? '-legacy' : '-nft'} -S ${r.chain}\` shows it and the other backend's listing does not.`;
}

/** What a flow's detail says of its rule. */
export function ruleDetail(node: string, r: RuleFact): string {
  const what = r.policy ? 'Verdict from' : r.method === 'counters' ? 'Likely rule' : 'Rule';
  return `${what} on ${node}: ${quoteRule(r)}.`;
}

/** The sentence a flow's rule adds to a diagnosis. */
export function ruleSentence(node: string, r: RuleFact, f: AllowFlow): string {
  const how = r.method === 'counters' ? ` Likely (its packet counter grew by the probes sent; tracing was not used: ${r.traceUnavailable ?? 'unavailable'}).` : '';
  const zone = r.firewalldZone ? ` It belongs to firewalld's zone ${r.firewalldZone}.` : '';
  return ` On ${node} the ${r.policy ? 'verdict came from' : 'rule that took the verdict is'} ${quoteRule(r)}.${how}${zone}${splitBackendSentence(node, r)} To allow it: \`${allowCommand(r, f)}\`.`;
}

export interface FlowLookup {
  result(check: CheckId, from: string, to: string): FlowResult | undefined;
  addressOf(node: string): string | undefined;
}

/** The statements with their flows' rules quoted (each distinct rule once per statement). */
export function annotateDiagnosis(statements: readonly DiagnosisStatement[], flows: FlowLookup): DiagnosisStatement[] {
  return statements.map((st) => {
    const seen = new Set<string>();
    let extra = '';
    for (const e of st.examples) {
      const r = flows.result(e.check, e.from, e.to);
      const dir = r ? directionOf(r.cause) : null;
      if (!r?.rule || !dir) continue;
      const host = dir === 'out' ? r.from : r.to;
      const key = `${host}|${r.rule.backend}|${r.rule.table}|${r.rule.chain}|${r.rule.handle ?? r.rule.position ?? 'policy'}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const peer = flows.addressOf(dir === 'out' ? r.to : r.from) ?? (dir === 'out' ? (r.toAddress ?? '?') : '?');
      extra += ruleSentence(host, r.rule, { direction: dir, transport: CATALOGUE[r.check].transport, port: r.port ?? null, peer });
    }
    return extra ? { ...st, advice: `${st.advice}${extra}` } : st;
  });
}
