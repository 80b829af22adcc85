// The kernel's own answers about routing, asked through iproute2 (`ip -j route get`, `ip -j neigh show`):
// which interface and next hop a node's route to a peer takes, whether the reverse-path check accepts a
// peer's packets on the interface they arrived on (`ip route get SELF from PEER iif IF`, RTM_GETROUTE
// with iif: "Invalid cross-device link" when rp_filter refuses), and the neighbour entry's state.
// Why the `ip` program and not netlink in the addon: iproute2 is on every node Calico runs on, its JSON
// output is stable, and these are a handful of lookups per session, only for flows that failed.
// Parsers are pure and unit-tested; `IpLookups` is the thin I/O around them, memoised per session.
import { execFile } from 'node:child_process';

export interface RouteFacts {
  /** Interface the kernel's route leaves by. */
  dev: string;
  /** Next hop (gateway), or null when the peer is on-link. */
  via: string | null;
  /** Preferred source address of the route, when it names one. */
  prefsrc: string | null;
}

/** The kernel's answer to a lookup: a route, or the error it gave (errno text, e.g. "Invalid cross-device link"). */
export type RouteAnswer = { ok: true; route: RouteFacts } | { ok: false; error: string };

/** Parse `ip -j route get …` output (a JSON array with one route). Null when it is not one. */
export function parseRouteGet(stdout: string): RouteFacts | null {
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch {
    return null;
  }
  const r = Array.isArray(v) ? (v[0] as Record<string, unknown> | undefined) : undefined;
  if (!r || typeof r !== 'object' || typeof r.dev !== 'string') return null;
  return { dev: r.dev, via: typeof r.gateway === 'string' ? r.gateway : null, prefsrc: typeof r.prefsrc === 'string' ? r.prefsrc : null };
}

/** The kernel's error text from iproute2's stderr ("RTNETLINK answers: Invalid cross-device link" -> the part after the colon). */
export function parseRtnetlinkError(stderr: string): string {
  const line = stderr.split('\n').find((l) => l.includes('RTNETLINK answers:')) ?? stderr.split('\n').find((l) => l.trim()) ?? '';
  return line.replace(/^.*RTNETLINK answers:\s*/, '').trim() || 'lookup failed';
}

/** Whether the kernel's error is the reverse-path filter's refusal (EXDEV). */
export const isRpFilterRefusal = (error: string): boolean => /cross-device link/i.test(error);

/** Parse `ip -j neigh show ADDR dev IF`: the entry's state (FAILED, INCOMPLETE, REACHABLE, …) or null without one. */
export function parseNeighState(stdout: string): string | null {
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch {
    return null;
  }
  const e = Array.isArray(v) ? (v[0] as Record<string, unknown> | undefined) : undefined;
  const state = e && Array.isArray(e.state) ? e.state.filter((s): s is string => typeof s === 'string') : [];
  return state.length ? state.join(',') : null;
}

/** A neighbour state that means nobody answered ARP for the address. */
export const neighbourFailed = (state: string | null | undefined): boolean => !!state && /FAILED|INCOMPLETE/.test(state);

export type Exec = (argv: readonly string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

/** Run a program without a shell; a missing program is exit 127, never a throw. */
export const execProgram: Exec = (argv) =>
  new Promise((resolve) => {
    const [cmd, ...args] = argv;
    execFile(cmd!, args, { timeout: 5000, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ code, stdout: stdout ?? '', stderr: stderr ?? (err ? String(err.message) : '') });
    });
  });

/** Route and neighbour lookups, each asked once (a mesh asks about the same peer for many flows). */
export class IpLookups {
  private readonly routes = new Map<string, Promise<RouteAnswer | null>>();
  private readonly neighs = new Map<string, Promise<string | null>>();
  constructor(private readonly exec: Exec = execProgram) {}

  /** The route `from` → `to` (with `iif`: as if a packet from `from` arrived on that interface). Null when `ip` cannot be run. */
  route(to: string, from: string, iif?: string): Promise<RouteAnswer | null> {
    const key = `${to}/${from}/${iif ?? ''}`;
    let p = this.routes.get(key);
    if (!p) {
      p = this.exec(['ip', '-j', 'route', 'get', to, 'from', from, ...(iif ? ['iif', iif] : [])]).then((r) => {
        if (r.code === 127) return null;
        if (r.code !== 0) return { ok: false as const, error: parseRtnetlinkError(r.stderr) };
        const route = parseRouteGet(r.stdout);
        return route ? { ok: true as const, route } : null;
      });
      this.routes.set(key, p);
    }
    return p;
  }

  /** State of the neighbour entry for `addr` on `dev`, or null (no entry, or `ip` not available). */
  neighbour(addr: string, dev: string): Promise<string | null> {
    const key = `${addr}/${dev}`;
    let p = this.neighs.get(key);
    if (!p) {
      p = this.exec(['ip', '-j', 'neigh', 'show', addr, 'dev', dev]).then((r) => (r.code === 0 ? parseNeighState(r.stdout) : null));
      this.neighs.set(key, p);
    }
    return p;
  }
}
