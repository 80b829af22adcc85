// The control protocol's validators (v2): every valid message comes back exactly as sent, each numeric field is
// held to its bounds at both edges, and truncated messages (a key missing, a list cut short, a string or the
// JSON text cut) are refused with a BadRequest naming what is wrong — never another exception.
// (Fuzzing with arbitrary JSON lives in control-validators.ts.)
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { CATALOGUE, FRAMINGS } from '../../src/checks/catalogue.js';
import { FRAMINGS_OF } from '../../src/checks/framing.js';
import { BadRequest, packInbound, parseInbound, parseOpenSession, parseProbeRequest, rowToSummary, type InboundFlow, type OpenSessionRequest, type ProbeRequestBody } from '../../src/control/protocol.js';
import { UserError } from '../../src/errors.js';
import { CHECK_IDS } from '../../src/types.js';

/** 'ok', or the BadRequest's message; any other exception fails the test. */
const outcome = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (err) {
    if (err instanceof BadRequest) return err.message;
    throw err;
  }
};
const wire = <T>(v: T): unknown => JSON.parse(JSON.stringify(v));

const hex16 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 16, maxLength: 16 });
const inboundFlow: fc.Arbitrary<InboundFlow> = fc
  .record({ idx: fc.integer({ min: 0, max: 65535 }), src: fc.ipV4(), check: fc.constantFrom(...CHECK_IDS), port: fc.integer({ min: 1, max: 65535 }) })
  .map((f) => ({ ...f, transport: CATALOGUE[f.check].transport, port: CATALOGUE[f.check].transport === 'ipip' ? null : f.port }));
const validOpen: fc.Arbitrary<OpenSessionRequest> = fc.record({
  id: hex16,
  peers: fc.array(fc.ipV4(), { maxLength: 6 }),
  ports: fc.dictionary(fc.constantFrom(...CHECK_IDS), fc.integer({ min: 1, max: 65535 }), { maxKeys: 4 }),
  ttlMs: fc.integer({ min: 1000, max: 300_000 }),
  inbound: fc.uniqueArray(inboundFlow, { selector: (f) => f.idx, maxLength: 20 }).map(packInbound),
});
type Probe = ProbeRequestBody['probes'][number];
const validProbe: fc.Arbitrary<Probe> = fc
  .record(
    {
      idx: fc.integer({ min: 0, max: 65535 }),
      check: fc.constantFrom(...CHECK_IDS),
      to: fc.ipV4(),
      port: fc.integer({ min: 1, max: 65535 }),
      framing: fc.constantFrom(...FRAMINGS),
      size: fc.integer({ min: 0, max: 65535 }),
      df: fc.boolean(),
    },
    { requiredKeys: ['idx', 'check', 'to', 'port'] },
  )
  .map((p) => {
    const transport = CATALOGUE[p.check].transport;
    const { framing, ...rest } = p;
    // A framing only where it can carry this transport (FRAMINGS_OF).
    const carried = framing !== undefined && FRAMINGS_OF[transport].includes(framing) ? { framing } : {};
    return { ...rest, ...carried, transport, port: transport === 'ipip' ? null : p.port };
  });
const validProbeRequest: fc.Arbitrary<ProbeRequestBody> = fc
  .record({
    probes: fc.uniqueArray(validProbe, { selector: (p) => `${p.to}/${p.idx}`, maxLength: 8 }),
    tries: fc.integer({ min: 1, max: 10 }),
    initialMs: fc.integer({ min: 10, max: 60_000 }),
    a: fc.integer({ min: 10, max: 60_000 }),
    b: fc.integer({ min: 1, max: 60_000 }),
    concurrency: fc.integer({ min: 1, max: 4096 }),
    spacingMs: fc.integer({ min: 0, max: 5000 }),
  })
  .map(({ initialMs, a, b, ...r }) => ({ ...r, timeouts: { initialMs, minMs: Math.min(a, b), maxMs: Math.max(a, b) } }));

t.test('valid messages come back exactly as sent (through JSON, as on the wire)', async (t) => {
  fc.assert(fc.property(validOpen.map(wire), (o) => isDeepStrictEqual(parseOpenSession(o), o)), { numRuns: 1000 });
  fc.assert(fc.property(validProbeRequest.map(wire), (r) => isDeepStrictEqual(parseProbeRequest(r), r)), { numRuns: 1000 });
  t.same(rowToSummary([3, 1, 'eth0', 0, '198.18.1.2', 2, '198.18.1.2', 'bgp', 179]), {
    idx: 3,
    interfaceSeen: true,
    interfaceName: 'eth0',
    socketSeen: false,
    observedSource: '198.18.1.2',
    count: 2,
    ifaceSize: 0,
    socketSize: 0,
  }, 'a row without the sized check\'s two sizes reads them as 0 (none)');
  t.match(rowToSummary([3, 1, 'eth0', 1, null, 1, '198.18.1.2', 'mtu', 4789, 1450, 1400]), { ifaceSize: 1450, socketSize: 1400 });
  t.ok(new BadRequest('x') instanceof UserError, 'a BadRequest is a UserError (exit 2 if it ever reaches the CLI)');
});

const open0: OpenSessionRequest = {
  id: '0123456789abcdef',
  peers: ['198.18.2.2'],
  ports: { bgp: 179 },
  ttlMs: 30_000,
  inbound: packInbound([
    { idx: 0, src: '198.18.2.2', check: 'bgp', transport: 'tcp', port: 179 },
    { idx: 1, src: '198.18.2.2', check: 'ipip', transport: 'ipip', port: null },
  ]),
};
const probe0 = { idx: 0, check: 'bgp', transport: 'tcp', to: '198.18.2.2', port: 179 } as const;
const req0: ProbeRequestBody = { probes: [probe0], tries: 3, timeouts: { initialMs: 1000, minMs: 100, maxMs: 3000 }, concurrency: 64, spacingMs: 30 };

/** Each bounded integer: how to put a value in it, its bounds, the validator, and the words its refusal names. */
const BOUNDS: Array<{ field: string; lo: number; hi: number; set: (v: unknown) => unknown; parse: (v: unknown) => unknown; names: RegExp }> = [
  { field: 'ttlMs', lo: 1000, hi: 300_000, set: (v) => ({ ...open0, ttlMs: v }), parse: parseOpenSession, names: /^ttlMs/ },
  { field: 'ports.bgp', lo: 1, hi: 65535, set: (v) => ({ ...open0, ports: { bgp: v } }), parse: parseOpenSession, names: /^ports\.bgp/ },
  { field: 'inbound idx', lo: 0, hi: 65535, set: (v) => ({ ...open0, inbound: { from: ['198.18.2.2'], flows: [v, 0, 1, 179] } }), parse: parseOpenSession, names: /inbound\.flows\[0\]: idx/ },
  { field: 'inbound source', lo: 0, hi: 0, set: (v) => ({ ...open0, inbound: { from: ['198.18.2.2'], flows: [0, v, 1, 179] } }), parse: parseOpenSession, names: /inbound\.flows\[0\]: source/ },
  { field: 'inbound port', lo: 1, hi: 65535, set: (v) => ({ ...open0, inbound: { from: ['198.18.2.2'], flows: [0, 0, 1, v] } }), parse: parseOpenSession, names: /inbound\.flows\[0\]: port/ },
  { field: 'probes[0].idx', lo: 0, hi: 65535, set: (v) => ({ ...req0, probes: [{ ...probe0, idx: v }] }), parse: parseProbeRequest, names: /^probes\[0\]\.idx/ },
  { field: 'probes[0].port', lo: 1, hi: 65535, set: (v) => ({ ...req0, probes: [{ ...probe0, port: v }] }), parse: parseProbeRequest, names: /^probes\[0\]\.port/ },
  { field: 'probes[0].size', lo: 0, hi: 65535, set: (v) => ({ ...req0, probes: [{ ...probe0, size: v }] }), parse: parseProbeRequest, names: /^probes\[0\]\.size/ },
  { field: 'tries', lo: 1, hi: 10, set: (v) => ({ ...req0, tries: v }), parse: parseProbeRequest, names: /^tries/ },
  { field: 'timeouts.initialMs', lo: 10, hi: 60_000, set: (v) => ({ ...req0, timeouts: { ...req0.timeouts, initialMs: v } }), parse: parseProbeRequest, names: /^timeouts/ },
  { field: 'timeouts.minMs', lo: 1, hi: 3000, set: (v) => ({ ...req0, timeouts: { ...req0.timeouts, minMs: v } }), parse: parseProbeRequest, names: /^timeouts/ }, // hi: maxMs (min <= max)
  { field: 'timeouts.maxMs', lo: 100, hi: 60_000, set: (v) => ({ ...req0, timeouts: { ...req0.timeouts, maxMs: v } }), parse: parseProbeRequest, names: /^timeouts/ }, // lo: minMs
  { field: 'concurrency', lo: 1, hi: 4096, set: (v) => ({ ...req0, concurrency: v }), parse: parseProbeRequest, names: /^concurrency/ },
  { field: 'spacingMs', lo: 0, hi: 5000, set: (v) => ({ ...req0, spacingMs: v }), parse: parseProbeRequest, names: /^spacingMs/ },
];

t.test('each bounded field: both edges accepted, one past each edge and anything not an integer refused by name', async (t) => {
  for (const b of BOUNDS) {
    for (const v of [b.lo, b.hi]) t.equal(outcome(() => b.parse(wire(b.set(v)))), 'ok', `${b.field} = ${v} accepted`);
    for (const v of [b.lo - 1, b.hi + 1, b.lo + 0.5, String(b.lo), null, true, [b.lo], Number.NaN]) {
      const r = outcome(() => b.parse(b.set(v)));
      t.match(r, b.names, `${b.field} = ${JSON.stringify(v)} refused: ${r}`);
    }
    // Anywhere inside accepted, anywhere outside refused.
    fc.assert(fc.property(fc.integer({ min: b.lo, max: b.hi }), (v) => outcome(() => b.parse(b.set(v))) === 'ok'));
    const outside = fc.oneof(fc.integer({ max: b.lo - 1 }), fc.integer({ min: b.hi + 1 }), fc.double({ noInteger: true }));
    fc.assert(fc.property(outside, (v) => b.names.test(outcome(() => b.parse(b.set(v))))));
  }
});

t.test('truncated messages: a key missing, a list cut short, a string cut, the JSON text cut — a BadRequest, never another error', async (t) => {
  // Every required key of each message, left out, is refused by name.
  const openKeys: Array<[keyof OpenSessionRequest, RegExp]> = [['id', /^id/], ['peers', /^peers/], ['ports', /^ports/], ['ttlMs', /^ttlMs/], ['inbound', /^inbound/]];
  for (const [k, names] of openKeys) {
    const { [k]: _gone, ...rest } = open0;
    t.match(outcome(() => parseOpenSession(rest)), names, `open without ${k}`);
  }
  const reqKeys: Array<[keyof ProbeRequestBody, RegExp]> = [['probes', /^probes/], ['tries', /^tries/], ['timeouts', /^timeouts/], ['concurrency', /^concurrency/], ['spacingMs', /^spacingMs/]];
  for (const [k, names] of reqKeys) {
    const { [k]: _gone, ...rest } = req0;
    t.match(outcome(() => parseProbeRequest(rest)), names, `probe request without ${k}`);
  }
  for (const k of ['idx', 'check', 'transport', 'to', 'port'] as const) {
    const { [k]: _gone, ...rest } = probe0;
    t.match(outcome(() => parseProbeRequest({ ...req0, probes: [rest] })), new RegExp(`^probes\\[0\\]\\.?${k === 'port' ? '.*port' : k}`), `probe without ${k}`);
  }
  // Cut strings: a short id, an address missing its last octet.
  t.match(outcome(() => parseOpenSession({ ...open0, id: open0.id.slice(0, 15) })), /^id/);
  t.match(outcome(() => parseOpenSession({ ...open0, peers: ['198.18.2.'] })), /^peers/);
  t.match(outcome(() => parseOpenSession({ ...open0, inbound: { ...open0.inbound, from: ['198.18.2'] } })), /^inbound\.from/);
  t.match(outcome(() => parseProbeRequest({ ...req0, probes: [{ ...probe0, to: '198.18.2' }] })), /^probes\[0\]\.to/);

  // The inbound table cut anywhere: whole quadruples left are a valid (smaller) table, anything else is refused.
  fc.assert(
    fc.property(validOpen, fc.nat(), (o, cut) => {
      const flows = o.inbound.flows.slice(0, o.inbound.flows.length === 0 ? 0 : cut % (o.inbound.flows.length + 1));
      const r = outcome(() => parseOpenSession({ ...o, inbound: { from: o.inbound.from, flows } }));
      return flows.length % 4 === 0 ? r === 'ok' : /quadruples/.test(r);
    }),
    { numRuns: 1000 },
  );
  // The JSON text cut at any byte: what still parses (a prefix that happens to be JSON) validates or is a BadRequest.
  fc.assert(
    fc.property(fc.oneof(validOpen, validProbeRequest), fc.nat(), (body, cut) => {
      const text = JSON.stringify(body);
      const prefix = text.slice(0, cut % (text.length + 1));
      let v: unknown;
      try {
        v = JSON.parse(prefix);
      } catch {
        return true; // the server answers 400 'body is not JSON' before a validator sees it
      }
      outcome(() => parseOpenSession(v));
      outcome(() => parseProbeRequest(v));
      outcome(() => parseInbound(v));
      return true;
    }),
    { numRuns: 2000 },
  );
  // Every prefix of one message's text that parses at all: only the whole message is valid.
  const text = JSON.stringify(open0);
  for (let n = 0; n < text.length; n++) {
    let v: unknown;
    try {
      v = JSON.parse(text.slice(0, n));
    } catch {
      continue;
    }
    t.not(outcome(() => parseOpenSession(v)), 'ok', `prefix ${n} is not a session open`);
  }
});
