// Conntrack entries of IP-in-IP (protocol 4, tracked by addresses alone), over ctnetlink through the
// addon (src/kernel/ctnetlink.ts): one node's IP-in-IP probe to a peer opens an entry that lets the peer's
// probe in as a "reply" through a stateful firewall (ufw: ESTABLISHED,RELATED accepted). The tool
// removes only entries its own probes made: whatever existed when the session opened is left alone and
// reported, because then a fresh flow cannot be tested. Why netlink and not the `conntrack` program: each
// `conntrack -D` dumps the whole table in the kernel (~45 ms each under load); a delete by tuple is one
// hash lookup, and nothing needs installing.
import { readFile } from 'node:fs/promises';
import { loadNative } from '../native.js';
import { encodeDelete, encodeDump, NETLINK_NETFILTER, parseCtAnswer } from './ctnetlink.js';

/** How entries are listed and deleted: netlink through the addon, or a fake in tests. */
export interface ConntrackOps {
  /** Every IPv4 entry's original tuple; throws with a message saying why it could not. */
  list(): Promise<ConntrackEntry[]>;
  /** Delete one entry by its original tuple: true deleted, false already gone (ENOENT); throws otherwise. */
  remove(e: ConntrackEntry): Promise<boolean>;
  /**
   * How many entries this network namespace holds (nf_conntrack_count; 0 when conntrack is not loaded at
   * all), or null when it cannot be read. A dump scans the kernel's whole table, shared by every
   * namespace (~15 ms on a large host even when this one has none): the count says when to skip it.
   */
  count?(): Promise<number | null>;
}

const errnoName = (n: number) => (n === 1 ? 'EPERM' : n === 2 ? 'ENOENT' : n === 13 ? 'EACCES' : n === 22 ? 'EINVAL' : n === 93 ? 'EPROTONOSUPPORT' : `errno ${n}`);

/** This namespace's entry count from procfs: 0 without the conntrack module, null when unreadable otherwise. */
export async function readConntrackCount(path = '/proc/sys/net/netfilter/nf_conntrack_count'): Promise<number | null> {
  try {
    const n = Number.parseInt(await readFile(path, 'utf8'), 10);
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  } catch (err) {
    // No netfilter directory: conntrack is not loaded, so nothing is tracked here.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 0 : null;
  }
}

/** ctnetlink through the addon's netlinkTransact(). */
export function netlinkConntrack(transact?: (protocol: number, request: Buffer) => Buffer, count: () => Promise<number | null> = readConntrackCount): ConntrackOps {
  const call = (request: Buffer) => {
    const t = transact ?? loadNative().netlinkTransact;
    if (!t) throw new Error('the native addon predates netlinkTransact (npx node-gyp rebuild)');
    return parseCtAnswer(t(NETLINK_NETFILTER, request));
  };
  return {
    count,
    list: async () => {
      const a = call(encodeDump());
      if (a.errno) throw new Error(`the kernel refused the conntrack dump: ${errnoName(a.errno)}`);
      return a.entries;
    },
    remove: async (e) => {
      const a = call(encodeDelete(e));
      if (a.errno === 0) return true;
      if (a.errno === 2) return false;
      throw new Error(`the kernel refused to delete ${e.src} > ${e.dst}: ${a.errno === null ? 'no answer' : errnoName(a.errno)}`);
    },
  };
}

export interface ConntrackEntry {
  proto: number;
  /** Original direction: the packet that created the entry. */
  src: string;
  dst: string;
}

const key = (e: { src: string; dst: string }) => `${e.src}>${e.dst}`;

export interface ConntrackState {
  /** Whether entries could be listed (the program is there and allowed to talk to the kernel). */
  available: boolean;
  error: string | null;
  /** Peers with an IP-in-IP entry to or from this node before the session began. */
  preexisting: string[];
  /**
   * Whether this node's kernel tracks connections at all (its table held any entry at the session's
   * opening: the coordinator's own control connection is in it whenever it does); null when it could not
   * be listed. Where it does not, probes make no entries, and IP-in-IP needs no ordering.
   */
  tracking?: boolean | null;
}

/** The IP-in-IP entries between `self` and the peers of one session, from its opening to its end. */
export class IpipConntrack {
  private before = new Set<string>();
  state: ConntrackState = { available: false, error: 'not looked at', preexisting: [] };
  constructor(
    private readonly self: string,
    private readonly peers: ReadonlySet<string>,
    private readonly ops: ConntrackOps = netlinkConntrack(),
  ) {}

  private tracked: boolean | null = null;

  private async list(): Promise<ConntrackEntry[] | null> {
    let all: ConntrackEntry[];
    try {
      all = await this.ops.list();
    } catch (err) {
      this.state = { available: false, error: (err as Error).message, preexisting: this.state.preexisting, tracking: null };
      return null;
    }
    this.tracked = all.length > 0;
    return all.filter((e) => e.proto === 4 && ((e.src === this.self && this.peers.has(e.dst)) || (e.dst === this.self && this.peers.has(e.src))));
  }

  /** This namespace holds no entry at all (so nothing to list or delete); false when it may. */
  private async empty(): Promise<boolean> {
    return (await this.ops.count?.().catch(() => null)) === 0;
  }

  /** Remember what exists before any probe (call when the session opens). */
  async snapshot(): Promise<ConntrackState> {
    if (await this.empty()) {
      this.before = new Set();
      this.state = { available: true, error: null, preexisting: [], tracking: false };
      return this.state;
    }
    const entries = await this.list();
    if (!entries) return this.state;
    this.before = new Set(entries.map(key));
    const pre = new Set(entries.map((e) => (e.src === this.self ? e.dst : e.src)));
    this.state = { available: true, error: null, preexisting: [...pre].sort(), tracking: this.tracked };
    return this.state;
  }

  /** Delete the entries made since the snapshot (by this session's probes), never an older one. */
  async clearOurs(): Promise<number> {
    if (!this.state.available || (await this.empty())) return 0;
    const entries = await this.list();
    if (!entries) return 0;
    // All at once (one per peer and direction at most): the other direction's probes wait for every node's clearing.
    const ours = entries.filter((e) => !this.before.has(key(e)));
    let deleted = 0;
    for (const e of ours) if (await this.ops.remove(e).catch(() => false)) deleted++;
    return deleted;
  }
}
