// One probe request run in two steps, so that a direction's verdict never depends on the other
// direction's probes (DESIGN §2a): IP-in-IP is tracked by conntrack by addresses alone, so n2's probe to
// n1 opens an entry through which n1's probe to n2 enters a stateful firewall as a "reply". The
// coordinator marks one direction of every pair `afterClear`. Everything else goes at once; as soon as
// this node's first-direction IP-in-IP copies are all sent, it removes the conntrack entries its session
// made and says so on the stream (`cleared`); the `afterClear` probes wait for the coordinator's release,
// which comes when every node has cleared.
import { PeerTimeouts } from '../checks/rtt.js';
import type { Prober, ProbeOptions, ProbeRequest, ProbeSession } from '../checks/prober.js';
import type { SourceOutcome } from '../types.js';

/** A coordinator that never releases (gone, or too old to know) does not hold the probes forever. */
export const RELEASE_TIMEOUT_MS = 30_000;

export interface OrderedRun {
  prober: Pick<Prober, 'run'>;
  session: ProbeSession;
  probes: readonly (ProbeRequest & { afterClear?: boolean })[];
  opts: ProbeOptions;
  onOutcome: (o: SourceOutcome) => void;
  /** Remove this session's IP-in-IP conntrack entries; resolves with how many went. */
  clear: () => Promise<number>;
  /** Resolves when the coordinator releases the second direction. */
  released: Promise<void>;
  onCleared: (deleted: number) => void;
  signal?: AbortSignal;
}

export async function runOrdered(o: OrderedRun): Promise<void> {
  const later = o.probes.filter((p) => p.afterClear);
  // The first direction's IP-in-IP goes first: the other direction (on every node) waits until it was sent.
  const now = [...o.probes.filter((p) => !p.afterClear && p.transport === 'ipip'), ...o.probes.filter((p) => !p.afterClear && p.transport !== 'ipip')];
  const timeouts = new PeerTimeouts(o.opts.timeouts);
  if (later.length === 0 && !now.some((p) => p.transport === 'ipip')) {
    await o.prober.run(o.session, now, o.opts, o.onOutcome, o.signal, timeouts);
    return;
  }
  // The first direction's IP-in-IP probes count as done once sent (their entries exist from then on).
  let waiting = now.filter((p) => p.transport === 'ipip').length;
  let firstSent!: () => void;
  const allSent = new Promise<void>((r) => (firstSent = r));
  const sentOne = () => {
    if (--waiting === 0) firstSent();
  };
  if (waiting === 0) firstSent();
  const onceOf = new Map<string, () => void>();
  const marked = now.map((p) => {
    if (p.transport !== 'ipip') return p;
    let counted = false;
    const once = () => {
      if (!counted) {
        counted = true;
        sentOne();
      }
    };
    onceOf.set(`${p.to}/${p.idx}`, once);
    return { ...p, onSent: once };
  });
  const first = o.prober.run(
    o.session,
    marked,
    o.opts,
    (outcome) => {
      // A refused send never reports "sent": its outcome does.
      onceOf.get(`${outcome.toAddress}/${outcome.idx}`)?.();
      o.onOutcome(outcome);
    },
    o.signal,
    timeouts,
  );
  const second = (async () => {
    await allSent;
    o.onCleared(await o.clear());
    if (later.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      o.released,
      new Promise<void>((r) => {
        timer = setTimeout(r, RELEASE_TIMEOUT_MS);
        onAbort = () => r();
        o.signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    clearTimeout(timer);
    if (onAbort) o.signal?.removeEventListener('abort', onAbort);
    if (o.signal?.aborted) return;
    await o.prober.run(o.session, later, o.opts, o.onOutcome, o.signal, timeouts);
  })();
  await Promise.all([first, second]);
}
