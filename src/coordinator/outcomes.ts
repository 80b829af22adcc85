// Source outcomes of a whole mesh, column by column in typed arrays: ~35 bytes a flow instead of ~270 for
// an object, so a 1000-node mesh (millions of flows) fits. Strings (addresses, errno names, interfaces)
// are interned: a mesh has few distinct ones.
import type { WitnessRow } from '../control/protocol.js';
import type { CheckId, MtuSourceFacts, PlannedFlow, SourceOutcome, WitnessSummary } from '../types.js';

const REPLIES = [null, 'synack', 'rst', 'icmp'] as const;

/** Strings stored once each, referred to by number (-1 for null). */
class Interner {
  private readonly strings: string[] = [];
  private readonly ids = new Map<string, number>();

  id(s: string | null): number {
    if (s === null) return -1;
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.ids.set(s, id);
    }
    return id;
  }

  at(id: number): string | null {
    return id < 0 ? null : (this.strings[id] ?? null);
  }
}

export class OutcomeTable {
  private readonly present: Uint8Array;
  private readonly reply: Uint8Array;
  private readonly icmpType: Int16Array;
  private readonly icmpCode: Int16Array;
  private readonly left: Uint8Array; // 0 unknown (null), 1 false, 2 true
  private readonly rtt: Float64Array; // NaN: none
  private readonly attempts: Uint8Array;
  private readonly srcPort: Int32Array; // -1: none
  private readonly replyFrom: Int32Array; // string ids, -1: none
  private readonly sendError: Int32Array;
  private readonly leftOn: Int32Array;
  /** Rare (a reply socket overflowed): kept sparse so the common flow costs nothing for it. */
  private readonly receiveError = new Map<number, number>();
  private readonly lost: Int16Array; // -1: not known
  /** Kernel facts of failed flows only (few): route dev/via, home interface, neighbour state, interned. */
  private readonly kernel = new Map<number, [number, number, number, number]>();
  private readonly strings = new Interner();
  /** mtu facts, 6 sizes a flow (0: none) + the frag-needed sender; allocated at the first mtu outcome. */
  private mtuSizes: Uint16Array | null = null;
  private mtuFrom: Int32Array | null = null;
  count = 0;

  constructor(
    readonly size: number,
    /** idx, toAddress and check of flow i (the plan knows them; they are not stored twice). */
    private readonly flowAt: (i: number) => { idx: number; toAddress: string; check: CheckId },
  ) {
    this.present = new Uint8Array(size);
    this.reply = new Uint8Array(size);
    this.icmpType = new Int16Array(size).fill(-1);
    this.icmpCode = new Int16Array(size).fill(-1);
    this.left = new Uint8Array(size);
    this.rtt = new Float64Array(size).fill(Number.NaN);
    this.attempts = new Uint8Array(size);
    this.srcPort = new Int32Array(size).fill(-1);
    this.replyFrom = new Int32Array(size).fill(-1);
    this.sendError = new Int32Array(size).fill(-1);
    this.leftOn = new Int32Array(size).fill(-1);
    this.lost = new Int16Array(size).fill(-1);
  }

  private id(s: string | null): number {
    return this.strings.id(s);
  }

  private str(id: number): string | null {
    return this.strings.at(id);
  }

  has(i: number): boolean {
    return this.present[i] === 1;
  }

  set(i: number, o: SourceOutcome): void {
    if (i < 0 || i >= this.size) throw new RangeError(`flow ${i} out of range`);
    if (!this.has(i)) this.count++;
    this.present[i] = 1;
    this.reply[i] = REPLIES.indexOf(o.reply);
    this.icmpType[i] = o.icmp ? o.icmp.type : -1;
    this.icmpCode[i] = o.icmp ? o.icmp.code : -1;
    this.left[i] = o.left === null ? 0 : o.left ? 2 : 1;
    this.rtt[i] = o.rttMs ?? Number.NaN;
    this.attempts[i] = Math.min(255, o.attempts);
    this.srcPort[i] = o.srcPort ?? -1;
    this.replyFrom[i] = this.id(o.replyFrom);
    this.sendError[i] = this.id(o.sendError);
    this.leftOn[i] = this.id(o.leftOn);
    if (o.receiveError) this.receiveError.set(i, this.id(o.receiveError));
    else this.receiveError.delete(i);
    this.lost[i] = o.lost === undefined ? -1 : Math.min(255, o.lost);
    if (o.route !== undefined || o.homeIf !== undefined || o.neigh !== undefined) {
      this.kernel.set(i, [o.route ? this.id(o.route.dev) : -2, this.id(o.route?.via ?? null), this.id(o.homeIf ?? null), this.id(o.neigh ?? null)]);
    } else this.kernel.delete(i);
    if (o.mtu) this.setMtu(i, o.mtu);
  }

  private setMtu(i: number, m: MtuSourceFacts): void {
    this.mtuSizes ??= new Uint16Array(this.size * 6);
    this.mtuFrom ??= new Int32Array(this.size).fill(-1);
    const v = [m.hostMtu, m.kernelPmtu, m.kernelPmtuAfter, m.fragNeeded?.mtu, m.fragNeeded?.size, m.refusedSize];
    v.forEach((x, k) => (this.mtuSizes![i * 6 + k] = Math.max(0, Math.min(0xffff, x ?? 0))));
    this.mtuFrom[i] = this.id(m.fragNeeded?.from ?? null);
  }

  private getMtu(i: number): MtuSourceFacts | undefined {
    if (!this.mtuSizes || !this.mtuFrom) return undefined;
    const at = (k: number) => this.mtuSizes![i * 6 + k] || null;
    const from = this.str(this.mtuFrom[i]!);
    if (at(0) === null && at(1) === null && from === null && at(5) === null) return undefined;
    return {
      hostMtu: at(0),
      kernelPmtu: at(1),
      kernelPmtuAfter: at(2),
      sizes: [],
      fragNeeded: from !== null ? { from, mtu: at(3) ?? 0, size: at(4) ?? 0 } : null,
      refusedSize: at(5),
    };
  }

  /** The outcome of flow i as an object (built on demand), or undefined when none came. */
  get(i: number): SourceOutcome | undefined {
    if (!this.has(i)) return undefined;
    const f = this.flowAt(i);
    const rtt = this.rtt[i]!;
    const out: SourceOutcome = {
      idx: f.idx,
      toAddress: f.toAddress,
      check: f.check,
      reply: REPLIES[this.reply[i]!] ?? null,
      replyFrom: this.str(this.replyFrom[i]!),
      icmp: this.icmpType[i]! >= 0 ? { type: this.icmpType[i]!, code: this.icmpCode[i]! } : null,
      sendError: this.str(this.sendError[i]!),
      left: this.left[i] === 0 ? null : this.left[i] === 2,
      leftOn: this.str(this.leftOn[i]!),
      rttMs: Number.isNaN(rtt) ? null : rtt,
      attempts: this.attempts[i]!,
      srcPort: this.srcPort[i]! >= 0 ? this.srcPort[i]! : null,
      ...withMtu(this.getMtu(i)),
      ...(this.lost[i]! >= 0 ? { lost: this.lost[i]! } : {}),
      ...this.kernelOf(i),
    };
    const receiveError = this.receiveError.get(i);
    if (receiveError !== undefined) out.receiveError = this.str(receiveError)!;
    return out;
  }

  private kernelOf(i: number): Pick<SourceOutcome, 'route' | 'homeIf' | 'neigh'> {
    const k = this.kernel.get(i);
    if (!k) return {};
    return { route: k[0] === -2 ? null : { dev: this.str(k[0]) ?? '', via: this.str(k[1]) }, homeIf: this.str(k[2]), neigh: this.str(k[3]) };
  }
}

const withMtu = (m: MtuSourceFacts | undefined): { mtu?: MtuSourceFacts } => (m ? { mtu: m } : {});

/** What a destination witnessed of one flow, with the flow its proof was for (the join checks it is this flow). */
export interface WitnessedFlow extends WitnessSummary {
  from: string;
  check: CheckId;
  port: number | null;
}

/** One destination's witness log, packed: flags, interned interface, source addresses and check, count, port. */
export class WitnessTable {
  private readonly flags: Uint8Array; // bit 0 present, bit 1 interface, bit 2 socket
  private readonly ifname: Int32Array;
  private readonly observed: Int32Array;
  private readonly from: Int32Array;
  private readonly check: Int32Array;
  private readonly port: Int32Array; // -1: none
  private readonly count: Uint32Array;
  /** Largest probe sizes seen (mtu check), allocated only when a row has one. */
  private sizes: Uint16Array | null = null;
  private readonly strings = new Interner();

  constructor(rows: ReadonlyArray<Readonly<WitnessRow>>) {
    let size = 0;
    for (const r of rows) if (Number.isInteger(r[0]) && r[0] >= 0 && r[0] < 65_536) size = Math.max(size, r[0] + 1);
    this.flags = new Uint8Array(size);
    this.ifname = new Int32Array(size).fill(-1);
    this.observed = new Int32Array(size).fill(-1);
    this.from = new Int32Array(size).fill(-1);
    this.check = new Int32Array(size).fill(-1);
    this.port = new Int32Array(size).fill(-1);
    this.count = new Uint32Array(size);
    for (const [idx, iface, ifname, socket, observed, count, from, check, port, ifaceSize, socketSize] of rows) {
      if (!Number.isInteger(idx) || idx < 0 || idx >= size) continue;
      if (ifaceSize || socketSize) {
        this.sizes ??= new Uint16Array(size * 2);
        this.sizes[idx * 2] = Math.min(0xffff, Math.max(0, ifaceSize ?? 0));
        this.sizes[idx * 2 + 1] = Math.min(0xffff, Math.max(0, socketSize ?? 0));
      }
      this.flags[idx] = 1 | (iface ? 2 : 0) | (socket ? 4 : 0);
      this.ifname[idx] = this.id(ifname);
      this.observed[idx] = this.id(observed);
      this.from[idx] = this.id(typeof from === 'string' ? from : null);
      this.check[idx] = this.id(typeof check === 'string' ? check : null);
      this.port[idx] = Number.isInteger(port) ? (port as number) : -1;
      this.count[idx] = count;
    }
  }

  private id(s: string | null): number {
    return this.strings.id(s);
  }

  get(idx: number): WitnessedFlow | undefined {
    const f = this.flags[idx];
    if (!f) return undefined;
    const ifname = this.ifname[idx]!;
    const observed = this.observed[idx]!;
    const port = this.port[idx]!;
    return {
      idx,
      interfaceSeen: (f & 2) !== 0,
      interfaceName: this.strings.at(ifname),
      socketSeen: (f & 4) !== 0,
      observedSource: this.strings.at(observed),
      count: this.count[idx]!,
      ...(this.sizes ? { ifaceSize: this.sizes[idx * 2]!, socketSize: this.sizes[idx * 2 + 1]! } : {}),
      from: this.strings.at(this.from[idx]!) ?? '',
      check: (this.strings.at(this.check[idx]!) ?? '') as CheckId,
      port: port < 0 ? null : port,
    };
  }

  /** What was witnessed of `flow`, only when the row is for exactly that flow (source, check, port, idx). */
  forFlow(flow: { idx: number; check: CheckId; port: number | null }, fromAddress: string): WitnessedFlow | undefined {
    const w = this.get(flow.idx);
    return w && w.from === fromAddress && w.check === flow.check && w.port === flow.port ? w : undefined;
  }
}

/**
 * A plan's flows packed in typed arrays (~12 bytes a flow instead of ~85 for an object): the coordinator
 * packs the plan when a run starts and lets the objects go, then rebuilds one flow at a time on demand.
 */
export class PackedFlows {
  private readonly checkOf: Uint8Array;
  private readonly fromOf: Uint32Array;
  private readonly toOf: Uint32Array;
  private readonly idxOf: Uint16Array;
  private readonly portOf: Int32Array; // -1: none
  private readonly sourceOnly: Uint8Array;
  private readonly names: string[] = [];
  private readonly addresses: string[] = [];
  private readonly nameIds = new Map<string, number>();
  private readonly checks: CheckId[] = [];
  private readonly transports: PlannedFlow['transport'][] = [];

  private constructor(readonly length: number) {
    this.checkOf = new Uint8Array(length);
    this.fromOf = new Uint32Array(length);
    this.toOf = new Uint32Array(length);
    this.idxOf = new Uint16Array(length);
    this.portOf = new Int32Array(length);
    this.sourceOnly = new Uint8Array(length);
  }

  private nameId(name: string, address: string | null): number {
    let id = this.nameIds.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(name);
      this.addresses.push(address ?? '');
      this.nameIds.set(name, id);
    } else if (address !== null && this.addresses[id] === '') this.addresses[id] = address;
    return id;
  }

  /** Pack `flows`, emptying the array as it goes (so both never exist whole at once). */
  static pack(flows: PlannedFlow[]): PackedFlows {
    const p = new PackedFlows(flows.length);
    for (let i = 0; i < flows.length; i++) {
      const f = flows[i]!;
      let c = p.checks.indexOf(f.check);
      if (c < 0) {
        c = p.checks.push(f.check) - 1;
        p.transports.push(f.transport);
      }
      p.checkOf[i] = c;
      p.fromOf[i] = p.nameId(f.from, null);
      p.toOf[i] = p.nameId(f.to, f.toAddress);
      p.idxOf[i] = f.idx;
      p.portOf[i] = f.port ?? -1;
      p.sourceOnly[i] = f.sourceOnly ? 1 : 0;
      (flows as (PlannedFlow | undefined)[])[i] = undefined;
    }
    flows.length = 0;
    return p;
  }

  get(i: number): PlannedFlow {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`flow ${i} out of range 0..${this.length - 1}`);
    const c = this.checkOf[i]!;
    const to = this.toOf[i]!;
    const port = this.portOf[i]!;
    const f: PlannedFlow = {
      check: this.checks[c]!,
      transport: this.transports[c]!,
      from: this.names[this.fromOf[i]!]!,
      to: this.names[to]!,
      toAddress: this.addresses[to]!,
      port: port < 0 ? null : port,
      idx: this.idxOf[i]!,
    };
    if (this.sourceOnly[i]) f.sourceOnly = true;
    return f;
  }
}
