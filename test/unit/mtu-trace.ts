// Finding the hop that limits a silent path: TTL-limited DF probes over a fake binding whose simulated
// path (two routers, a 1400-byte link) answers as Linux does — time-exceeded checked before the MTU, the
// too-large packet dropped without a word — the hop read from what answered, and the protocol's checks.
import t from 'tap';
import { Prober, type ProbeOptions, type ProbeRequest } from '../../src/checks/prober.js';
import { decodeIPv4, encodeIPv4 } from '../../src/packets/ipv4.js';
import { encodeIcmpError } from '../../src/packets/icmp.js';
import { deriveSessionKey } from '../../src/packets/probe.js';
import { BadRequest, parseProbeRequest } from '../../src/control/protocol.js';
import { hopFromTrace } from '../../src/verdict-mtu.js';
import type { SourceOutcome } from '../../src/types.js';
import { FakeNative } from '../helpers/fake-native.js';

const ME = '198.18.1.2';
const PEER = '198.18.2.2';
const R1 = '198.18.1.1';
const R2 = '198.18.9.1';
const idBytes = Buffer.from('0123456789abcdef', 'hex');
const key = deriveSessionKey(Buffer.from('a-shared-secret-long-enough'), idBytes);
const fast: ProbeOptions = { tries: 1, timeouts: { initialMs: 40, minMs: 1, maxMs: 60 }, concurrency: 8, spacingMs: 0 };

/** A path ME -> R1 -> R2 -> PEER whose link after hop `limitAfter` (0: ME's own first link) carries `mtu`. */
function path(limitAfter: number, mtu: number) {
  const native = new FakeNative();
  const prober = new Prober(native, ME);
  prober.open();
  const hops = [R1, R2];
  let sent = 0;
  native.onSend = (socket, data) => {
    if (socket.options.kind !== 'raw' || socket.options.pmtudisc !== 'probe') return;
    sent++;
    const ip = decodeIPv4(data);
    // Hop by hop: a packet too large for the link it is about to cross vanishes; one whose TTL ends at a router draws time-exceeded.
    for (let hop = 0; hop <= hops.length; hop++) {
      if (hop === limitAfter && ip.totalLength > mtu) return;
      const router = hops[hop];
      if (!router) return; // arrived
      if (ip.ttl === hop + 1) {
        const err = encodeIPv4({ src: router, dst: ME, protocol: 1, payload: encodeIcmpError({ type: 11, code: 0, quoted: data.subarray(0, 28) }) });
        setImmediate(() => native.raw(1).push(err));
        return;
      }
    }
  };
  return { prober, sent: () => sent };
}

const req = (size: number, maxTtl = 4): ProbeRequest => ({ idx: 1, check: 'mtu', transport: 'ipip', to: PEER, port: null, trace: { size, small: 90, maxTtl } });

async function run(prober: Prober, r: ProbeRequest): Promise<SourceOutcome> {
  const out: SourceOutcome[] = [];
  await prober.run({ idBytes, key, left: () => null }, [r], fast, (o) => out.push(o));
  return out[0]!;
}

t.test('the limit after R1: large probes reach R1 only; the hop is R1, the link after it', async (t) => {
  const { prober, sent } = path(1, 1400);
  t.teardown(() => prober.close());
  const o = await run(prober, req(1401));
  t.same(o.mtu?.trace, { size: 1401, maxTtl: 4, reached: [{ ttl: 1, from: R1 }], first: null });
  t.equal(sent(), 4, 'one large probe per TTL, no small one (a time-exceeded costs the router a token)');
  t.same(hopFromTrace(o.mtu?.trace, 1400), { address: R1, mtu: 1400, by: 'time-exceeded', ttl: 1, link: 'after' });
});

t.test('the limit after R2: reached R1 and R2', async (t) => {
  const { prober } = path(2, 1400);
  t.teardown(() => prober.close());
  const o = await run(prober, req(1401));
  t.same(o.mtu?.trace?.reached, [{ ttl: 1, from: R1 }, { ttl: 2, from: R2 }]);
  t.same(hopFromTrace(o.mtu?.trace, 1400), { address: R2, mtu: 1400, by: 'time-exceeded', ttl: 2, link: 'after' });
});

t.test('the limit on the first link: nothing answers a large probe; a small TTL-1 probe names the first hop', async (t) => {
  const { prober, sent } = path(0, 1400);
  t.teardown(() => prober.close());
  const o = await run(prober, req(1401));
  t.same(o.mtu?.trace, { size: 1401, maxTtl: 4, reached: [], first: R1 });
  t.equal(sent(), 5, 'four large probes, then one small');
  t.same(hopFromTrace(o.mtu?.trace, 1400), { address: R1, mtu: 1400, by: 'time-exceeded', ttl: 1, link: 'before' });
});

t.test('no hop is claimed where the trace cannot tell', async (t) => {
  t.equal(hopFromTrace(undefined, 1400), null);
  t.equal(hopFromTrace({ size: 1401, maxTtl: 2, reached: [{ ttl: 1, from: R1 }, { ttl: 2, from: R2 }], first: null }, 1400), null, 'every TTL answered: the limit lies beyond the trace');
  t.equal(hopFromTrace({ size: 1401, maxTtl: 4, reached: [], first: null }, 1400), null, 'nothing answered at all');
  // A trace bounded below the limit: large probes reached both routers and TTL 2 was the last tried.
  const { prober } = path(2, 1400);
  t.teardown(() => prober.close());
  const o = await run(prober, req(1401, 2));
  t.equal(hopFromTrace(o.mtu?.trace, 1400), null);
});

t.test('the protocol: trace and sizes only for a sized check, within bounds', async (t) => {
  const body = (p: Record<string, unknown>) => ({ probes: [{ idx: 0, check: 'mtu', transport: 'ipip', to: PEER, port: null, ...p }], tries: 1, timeouts: { initialMs: 100, minMs: 10, maxMs: 1000 }, concurrency: 4, spacingMs: 3 });
  t.same(parseProbeRequest(body({ trace: { size: 1401, small: 90, maxTtl: 8 } })).probes[0]?.trace, { size: 1401, small: 90, maxTtl: 8 });
  t.same(parseProbeRequest(body({ sizes: [1400, 1401] })).probes[0]?.sizes, [1400, 1401]);
  t.throws(() => parseProbeRequest(body({ trace: { size: 1401, small: 90, maxTtl: 9 } })), BadRequest);
  t.throws(() => parseProbeRequest(body({ trace: { size: 1401, small: 90 } })), BadRequest);
  t.throws(() => parseProbeRequest(body({ trace: 'yes' })), BadRequest);
  t.throws(() => parseProbeRequest(body({ sizes: Array.from({ length: 33 }, (_, i) => 1000 + i) })), BadRequest);
  t.throws(() => parseProbeRequest(body({ sizes: [40] })), BadRequest);
  t.throws(() => parseProbeRequest({ ...body({}), probes: [{ idx: 0, check: 'bgp', transport: 'tcp', to: PEER, port: 179, trace: { size: 1401, small: 90, maxTtl: 2 } }] }), /sized check/);
  t.throws(() => parseProbeRequest(body({ framing: 'vxlan' })), /cannot carry a ipip probe/);
});
