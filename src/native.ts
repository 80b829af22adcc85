// The one place that loads the native addon (build/Release/calico_nettest.node) and gives it the
// types of ./native-types.ts. Everything else imports this module, never the .node file.
//
// A socket from open() starts with a drop-all filter and an empty queue: it delivers nothing until
// attachFilter() swaps in a program (`[{ code: 0x06, jt: 0, jf: 0, k: 0xffff }]` accepts everything).
// An open socket is kept alive by the addon until close(), also when its wrapper is unreachable.
// See: raw(7), packet(7), socket(7).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  BpfInstruction,
  NativeBinding,
  NativeBpf,
  NativeError,
  NativeSocket,
  ProcessRestrictions,
  ReceivedPacket,
  SocketOptions,
  SocketStats,
} from './native-types.js';

export type * from './native-types.js';

/** What the addon's socket object really is (a C++ ObjectWrap); kept private to this module. */
interface AddonSocket {
  readonly fd: number;
  readonly kind: 'raw' | 'packet';
  readonly closed: boolean;
  attachFilter(program: readonly BpfInstruction[]): void;
  send(data: Buffer, address: string): number;
  start(onPackets: (packets: ReceivedPacket[]) => void, onError: (err: NativeError) => void, batch?: number): void;
  stop(): void;
  close(): void;
  stats(): SocketStats;
}

interface Addon {
  open(options: SocketOptions): AddonSocket;
  ifIndex(name: string): number;
  restrictProcess(options?: { dumpable?: boolean }): ProcessRestrictions;
  interfaceMtu(address: string, netns?: string): { ifname: string; mtu: number } | null;
  routeMtu(destination: string, options?: { bindAddress?: string; netns?: string }): number;
  netlinkTransact?(protocol: number, request: Buffer, timeoutMs?: number): Buffer;
  bpfMapCreate?(type: number, keySize: number, valueSize: number, maxEntries: number): number;
  bpfProgLoad?(progType: number, insns: Buffer, license: string): number;
  bpfRawTracepointOpen?(name: string, progFd: number): number;
  bpfMapUpdate?(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  bpfMapDelete?(fd: number, key: Buffer): boolean;
  bpfMapEntries?(fd: number, keySize: number, valueSize: number, maxEntries: number): Buffer;
  bpfClose?(fd: number): void;
}

/** The addon's bpf(2) calls as one object, when it has all of them (an older build has none). */
function bpfOf(a: Addon): NativeBpf | undefined {
  const { bpfMapCreate, bpfProgLoad, bpfRawTracepointOpen, bpfMapUpdate, bpfMapDelete, bpfMapEntries, bpfClose } = a;
  if (!bpfMapCreate || !bpfProgLoad || !bpfRawTracepointOpen || !bpfMapUpdate || !bpfMapDelete || !bpfMapEntries || !bpfClose) return undefined;
  return {
    mapCreate: bpfMapCreate.bind(a),
    progLoad: bpfProgLoad.bind(a),
    rawTracepointOpen: bpfRawTracepointOpen.bind(a),
    mapUpdate: bpfMapUpdate.bind(a),
    mapDelete: bpfMapDelete.bind(a),
    mapEntries: bpfMapEntries.bind(a),
    close: bpfClose.bind(a),
  };
}

/** The package root: src/native.ts and dist/native.js both sit one level below it. */
export const packageRoot: string = fileURLToPath(new URL('..', import.meta.url));

/** Where the addon is looked for, in order. */
export function addonCandidates(root: string = packageRoot): string[] {
  return [
    join(root, 'build', 'Release', 'calico_nettest.node'),
    join(root, 'build', 'Debug', 'calico_nettest.node'),
  ];
}

/** A thin typed face over the addon's socket; instances come only from `open()`. */
class Socket implements NativeSocket {
  readonly #raw: AddonSocket;

  constructor(raw: AddonSocket) {
    this.#raw = raw;
  }

  get fd(): number {
    return this.#raw.fd;
  }

  get kind(): 'raw' | 'packet' {
    return this.#raw.kind;
  }

  get closed(): boolean {
    return this.#raw.closed;
  }

  attachFilter(program: readonly BpfInstruction[]): void {
    this.#raw.attachFilter(program);
  }

  send(data: Buffer, address: string): number {
    return this.#raw.send(data, address);
  }

  start(onPackets: (packets: ReceivedPacket[]) => void, onError: (err: NativeError) => void, batch?: number): void {
    this.#raw.start(onPackets, onError, batch);
  }

  stop(): void {
    this.#raw.stop();
  }

  close(): void {
    this.#raw.close();
  }

  stats(): SocketStats {
    return this.#raw.stats();
  }
}

function isAddon(value: unknown): value is Addon {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.open === 'function' && typeof v.ifIndex === 'function' && typeof v.restrictProcess === 'function' && typeof v.interfaceMtu === 'function' && typeof v.routeMtu === 'function';
}

function wrap(addon: Addon): NativeBinding {
  return {
    open: (options: SocketOptions): NativeSocket => new Socket(addon.open(options)),
    ifIndex: (name: string): number => addon.ifIndex(name),
    restrictProcess: (options?: { dumpable?: boolean }): ProcessRestrictions => addon.restrictProcess(options),
    interfaceMtu: (address, netns) => addon.interfaceMtu(address, netns),
    routeMtu: (destination, options) => addon.routeMtu(destination, options),
    ...(addon.netlinkTransact ? { netlinkTransact: addon.netlinkTransact.bind(addon) } : {}),
    ...(bpfOf(addon) ? { bpf: bpfOf(addon)! } : {}),
  };
}

/**
 * Load the addon from the first of `candidates` that loads. Throws an Error listing every path tried,
 * why each failed, and how to build the addon.
 */
export function loadNativeFrom(candidates: readonly string[], root: string = packageRoot): NativeBinding {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  let lastError: unknown;
  for (const path of candidates) {
    try {
      const loaded: unknown = require(path);
      if (isAddon(loaded)) return wrap(loaded);
      lastError = new Error(`${path} does not export open(), ifIndex(), restrictProcess(), interfaceMtu() and routeMtu(): not this project's addon (or an old build: npx node-gyp rebuild)`);
    } catch (err) {
      lastError = err;
    }
    failures.push(`  ${path}: ${firstLine(lastError)}`);
  }
  const message = [
    'calico-nettest: cannot load its native addon (calico_nettest.node). Tried:',
    ...failures,
    `Last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
    `Build it by running \`npm install\` (or \`npx node-gyp rebuild\`) in ${root}; that needs python3, make and g++`,
    '(on Debian/Ubuntu: apt-get install build-essential python3).',
  ].join('\n');
  throw new Error(message, { cause: lastError });
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n', 1)[0] ?? text;
}

let cached: NativeBinding | undefined;

/** The addon, loaded once. CALICO_NETTEST_ADDON names a .node file tried first (the single-file bundle sets it). */
export function loadNative(): NativeBinding {
  const override = process.env.CALICO_NETTEST_ADDON;
  cached ??= loadNativeFrom(override ? [override, ...addonCandidates()] : addonCandidates());
  return cached;
}

/** A system-call error from the addon (or any Node system error): string `code`, `errno`, `syscall`. */
export function isNativeError(e: unknown): e is NativeError {
  if (!(e instanceof Error)) return false;
  const v = e as Error & Record<string, unknown>;
  return typeof v.code === 'string' && typeof v.errno === 'number' && typeof v.syscall === 'string';
}
