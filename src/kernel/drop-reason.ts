// Whether this node can tell the kernel's own reason for dropping one of our probes (DESIGN §2a), and why
// not when it cannot. The responder reads the reasons with its eBPF drop watch (./drop-watch.ts: BPF reads
// the skb, no probe events needed); this module is what is said where no watch was tried, and the names of
// the reasons from tracefs where BTF has none. skb:kfree_skb names a reason (its numbers differ between kernels: the names are read
// from the event's format) but carries no packet content, so on its own it cannot say *which* packet was
// dropped; matching a drop to a probe needs a probe event that reads the skb (a kprobe/fprobe on
// sk_skb_reason_drop / kfree_skb_reason with fetch args, or an eprobe on skb:kfree_skb dereferencing
// skbaddr). Parsers pure; the reader never throws and only reads tracefs (it defines and enables nothing).
import { readFile } from 'node:fs/promises';

/** The drop reasons the kernel names in an event's format file: `__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, …)`. */
export function dropReasonNames(format: string): Map<number, string> {
  const names = new Map<number, string>();
  const at = format.indexOf('__print_symbolic(REC->reason');
  if (at < 0) return names;
  for (const m of format.slice(at).matchAll(/\{\s*(\d+)\s*,\s*"([A-Z0-9_]+)"\s*\}/g)) names.set(Number(m[1]), m[2]!);
  return names;
}

/** Which dynamic probe events tracefs offers, from its README ("kprobe_events", "eprobe", "fprobe" lines). */
export function probeEventKinds(readme: string): { kprobe: boolean; fprobe: boolean; eprobe: boolean } {
  return { kprobe: /\bkprobe_events\b/.test(readme), fprobe: /\bf\[:\[<group>\/\]<event>\]|\bfprobe\b/.test(readme), eprobe: /\beprobe\b|\be\[:\[<group>\/\]<event>\]/.test(readme) };
}

export interface DropReasonInput {
  /** tracefs README, the kfree_skb event's format; null: not readable (tracefs not mounted, or no permission). */
  readme: string | null;
  format: string | null;
}

/**
 * Why the drop reason of a probe cannot be read here, in words for the report (`facts.dropReasonUnavailable`).
 * Matching drops to probes through a probe event is not built yet (see the issue-11 report), so every
 * answer is an "unavailable"; it names the most specific missing piece.
 */
export function dropReasonUnavailable(i: DropReasonInput): string {
  if (i.readme === null) return 'tracefs is not readable here (mount -t tracefs nodev /sys/kernel/tracing; needs CAP_SYS_ADMIN)';
  if (i.format === null) return 'the kernel has no skb:kfree_skb event';
  const names = dropReasonNames(i.format);
  if (!names.has(12) && ![...names.values()].includes('NETFILTER_DROP')) return 'skb:kfree_skb carries no drop reason on this kernel (before 5.17)';
  const k = probeEventKinds(i.readme);
  if (!k.kprobe && !k.fprobe && !k.eprobe) {
    return 'skb:kfree_skb names the reason but carries no packet content, and this kernel offers no kprobe, fprobe or eprobe events to read the packet with (CONFIG_KPROBE_EVENTS, CONFIG_FPROBE_EVENTS, CONFIG_EPROBE_EVENTS off)';
  }
  return 'skb:kfree_skb names the reason but carries no packet content; matching drops to probes through a probe event is not built yet';
}

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** Read what tracefs offers (never throws). */
export async function readDropReasonInput(roots: readonly string[] = TRACEFS): Promise<DropReasonInput> {
  for (const root of roots) {
    const readme = await readFile(`${root}/README`, 'utf8').catch(() => null);
    if (readme === null) continue;
    const format = await readFile(`${root}/events/skb/kfree_skb/format`, 'utf8').catch(() => null);
    return { readme, format };
  }
  return { readme: null, format: null };
}
