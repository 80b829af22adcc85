// The drop watch: the eBPF program of ./drop-bpf.ts on the kfree_skb raw tracepoint, with its two maps,
// for one responder's address. Opened once, before the responder drops privileges; enabled only while a
// session is live; its entries say which of our flows' packets the kernel dropped and why (DESIGN §2a).
// Everything is an fd of this process: nothing outlives it, however it ends. Never throws from open: it
// answers why not.
import { stat } from 'node:fs/promises';
import type { NativeBpf } from '../native-types.js';
import { readSkbLayout, type SkbLayout } from './btf.js';
import { dropReasonNames, readDropReasonInput } from './drop-reason.js';
import {
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_PROG_TYPE_RAW_TRACEPOINT,
  DROP_KEY_SIZE,
  DROP_MAP_ENTRIES,
  DROP_VALUE_SIZE,
  decodeDropEntries,
  dropWatchProgram,
  patchMapFds,
  type DropEntry,
} from './drop-bpf.js';

/** A drop the watch saw, its reason named (the kernel's number when the name is not known). */
export interface SeenDrop {
  saddr: string;
  daddr: string;
  proto: number;
  sport: number;
  dport: number;
  reason: string;
  count: number;
}

export interface DropWatch {
  /** The names of enum skb_drop_reason on this kernel (from BTF). */
  readonly reasons: ReadonlyMap<number, string>;
  /** Count drops (true) or not (false). */
  enable(on: boolean): void;
  /** Every drop counted since the last clear. */
  entries(): SeenDrop[];
  /** Forget what was counted. */
  clear(): void;
  close(): void;
}

export type DropWatchResult = { watch: DropWatch } | { unavailable: string };

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Open the watch for `self` (never throws: `unavailable` says why not). */
/** This process's network namespace: the inode number of /proc/self/ns/net. */
export async function ownNetns(): Promise<number> {
  return Number((await stat('/proc/self/ns/net')).ino);
}

/**
 * Open the watch for `self` in this process's network namespace (never throws: `unavailable` says why
 * not). The program is global (every namespace's kfree_skb), so it keeps only packets of this namespace.
 */
export async function openDropWatch(
  bpf: NativeBpf | undefined,
  self: string,
  readLayout: () => Promise<SkbLayout> = readSkbLayout,
  netns: () => Promise<number> = ownNetns,
  /** skb:kfree_skb's format file from tracefs (null: unreadable): the reasons' names where BTF has no enum for them. */
  readFormat: () => Promise<string | null> = async () => (await readDropReasonInput()).format,
): Promise<DropWatchResult> {
  if (!bpf) return { unavailable: 'this build of the native addon has no bpf(2) calls (npx node-gyp rebuild)' };
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) return { unavailable: 'the drop watch is built for little-endian hosts only' };
  let layout: SkbLayout;
  try {
    layout = await readLayout();
  } catch (e) {
    return { unavailable: `this kernel's BTF (/sys/kernel/btf/vmlinux) cannot say where an sk_buff's headers are: ${errText(e)}` };
  }
  if (layout.reasons.size === 0) {
    const names = dropReasonNames((await readFormat().catch(() => null)) ?? '');
    if (names.size === 0) return { unavailable: "this kernel's BTF has no enum skb_drop_reason and tracefs names no reasons: kfree_skb carries no drop reason here (before 5.17?)" };
    layout = { ...layout, reasons: names };
  }
  let ns: number;
  try {
    ns = await netns();
  } catch (e) {
    return { unavailable: `this process's network namespace cannot be read (/proc/self/ns/net): ${errText(e)}` };
  }
  const fds: number[] = [];
  const closeAll = () => {
    for (const fd of fds.splice(0).reverse()) bpf.close(fd);
  };
  try {
    const enabled = bpf.mapCreate(BPF_MAP_TYPE_ARRAY, 4, 4, 1);
    fds.push(enabled);
    const drops = bpf.mapCreate(BPF_MAP_TYPE_HASH, DROP_KEY_SIZE, DROP_VALUE_SIZE, DROP_MAP_ENTRIES);
    fds.push(drops);
    const program = dropWatchProgram({
      headOffset: layout.head,
      networkHeaderOffset: layout.networkHeader,
      devOffset: layout.dev,
      devNetOffset: layout.devNet,
      netInumOffset: layout.netInum,
      netns: ns,
      self,
    });
    const prog = bpf.progLoad(BPF_PROG_TYPE_RAW_TRACEPOINT, patchMapFds(program, { enabled, drops }), 'GPL');
    fds.push(prog);
    fds.push(bpf.rawTracepointOpen('kfree_skb', prog));
    const key0 = Buffer.alloc(4);
    const name = (n: number) => layout.reasons.get(n) ?? String(n);
    let closed = false;
    const watch: DropWatch = {
      reasons: layout.reasons,
      enable(on) {
        if (closed) return;
        const v = Buffer.alloc(4);
        v.writeUInt32LE(on ? 1 : 0, 0);
        bpf.mapUpdate(enabled, key0, v, 0);
      },
      entries() {
        if (closed) return [];
        return decodeDropEntries(bpf.mapEntries(drops, DROP_KEY_SIZE, DROP_VALUE_SIZE, DROP_MAP_ENTRIES)).map((e: DropEntry) => ({ ...e, reason: name(e.reason) }));
      },
      clear() {
        if (closed) return;
        const raw = bpf.mapEntries(drops, DROP_KEY_SIZE, DROP_VALUE_SIZE, DROP_MAP_ENTRIES);
        const size = DROP_KEY_SIZE + DROP_VALUE_SIZE;
        for (let at = 0; at + size <= raw.length; at += size) bpf.mapDelete(drops, raw.subarray(at, at + DROP_KEY_SIZE));
      },
      close() {
        if (closed) return;
        closed = true;
        closeAll();
      },
    };
    return { watch };
  } catch (e) {
    closeAll();
    const err = e as { code?: string };
    const why =
      err.code === 'EPERM' || (err.code === 'EACCES' && !/verifier/.test(errText(e)))
        ? ' (needs CAP_BPF and CAP_PERFMON: root on a host; in a pod, securityContext.capabilities.add: [BPF, PERFMON] — without them every other check works and drop reasons are said unavailable)'
        : '';
    return { unavailable: `the kernel refused the drop watch's eBPF program: ${errText(e)}${why}` };
  }
}
