// The explain feature's data: the rule fact a result carries, what a host is asked to trace, and the
// control messages of the explain call. Shared by the responder side (host.ts) and the coordinator.
import type { CheckId, Transport } from '../types.js';

export type Backend = 'iptables-nft' | 'iptables-legacy' | 'nftables';

/** The host rule that took a probe's verdict (result field `rule`, DESIGN §5). */
export interface RuleFact {
  backend: Backend;
  /** nft family of the table (ip, ip6, inet, …); iptables tables are `ip`. */
  family: string;
  table: string;
  chain: string;
  /** nft rule handle (iptables-nft and nftables rules). */
  handle?: number;
  /** 1-based position of the rule in its chain (iptables numbering, `iptables -L --line-numbers`). */
  position?: number;
  /** The rule as the user wrote it: the iptables-save line (comment included) or the nft rule text; a policy: `policy DROP of chain INPUT`. */
  text: string;
  /** drop | reject (a REJECT rule's kernel verdict is drop; the rule says reject). */
  verdict: 'drop' | 'reject';
  /** How it was found: the kernel's own trace, or counters that grew while probes were sent. */
  method: 'trace' | 'counters';
  /** Counters only name the rule whose packet count grew by at least the probes sent: likely, not proven. */
  likely?: true;
  /** Why tracing was not used (set with method 'counters'). */
  traceUnavailable?: string;
  /** A policy, not a rule, took the verdict. */
  policy?: true;
  /** The firewalld zone whose chain holds the rule, when the rule is in firewalld's tables. */
  firewalldZone?: string;
  /**
   * Rules exist in both the legacy and the nft iptables backends on this host (Calico's most confusing failure:
   * rules added with one `iptables` binary, looked at with the other). `iptables` names the backend the plain
   * `iptables` command uses there (null: unknown).
   */
  splitBackend?: { legacyRules: number; nftRules: number; iptables: 'nft' | 'legacy' | null };
}

/** Which packets of a flow the blamed host traces: arriving (INPUT), leaving (OUTPUT), or its replies. */
export type TraceDirection = 'in' | 'out' | 'return';

/** One flow to explain on one host (the host's end of it). */
export interface TraceSpec {
  /** Caller's id for the flow (index into its list). */
  id: number;
  direction: TraceDirection;
  check: CheckId;
  transport: Transport;
  /** The other end's address as this host sees it (source for 'in', destination for 'out' and 'return'). */
  peer: string;
  /** 'in' / 'return': the probe's own source address when this host sees another (NAT); the TCP tag names it. */
  src?: string;
  /** Destination port of the probe (null: IP-in-IP). */
  port: number | null;
  /** Probe index in the explain session (TCP: it fixes the SYN's sequence number). */
  idx: number;
}

export interface ExplainArmRequest {
  op: 'arm';
  specs: TraceSpec[];
  /** Disarm by itself after this long (the coordinator may die between arm and collect). */
  ttlMs: number;
  /** Skip tracing and use counters (tests and hosts where tracing misbehaves). */
  method?: 'trace' | 'counters';
}

export interface ExplainCollectRequest {
  op: 'collect';
  /** Packets the source sent per spec id (counters need it: a rule that grew by at least this many). */
  sent: Record<string, number>;
  /** How long to wait for trace events of packets still in flight. */
  waitMs: number;
}

export interface ExplainArmResponse {
  armed: boolean;
  method: 'trace' | 'counters' | null;
  /** Why tracing is not used, or why nothing could be armed. */
  note: string | null;
  /** What was added to the host's ruleset (named after the session), for the responder's log and the report. */
  added: string | null;
}

export interface SpecOutcome {
  id: number;
  rule: RuleFact | null;
  /** Why no rule is named (when rule is null), in words. */
  note: string | null;
}

export interface ExplainCollectResponse {
  outcomes: SpecOutcome[];
  /** What was removed again. */
  removed: string | null;
}

/** Report field `explain`: what --explain did (hosts traced, what each added and removed again). */
export interface ExplainSummary {
  /** Flows blamed on a host that were explained. */
  flows: number;
  /** Of them, how many got a `rule`. */
  named: number;
  hosts: Array<{ node: string; method: 'trace' | 'counters' | null; note: string | null; added: string | null; removed: string | null }>;
}
