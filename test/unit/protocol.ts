// The control protocol's validators: good bodies come back normalised, every bad field is named, and
// random JSON (fast-check) either validates into a well-formed request or is refused with BadRequest.
import t from 'tap';
import fc from 'fast-check';
import { BadRequest, parseOpenSession, parseProbeRequest, rowToSummary } from '../../src/control/protocol.js';
import { UserError } from '../../src/errors.js';
import { CHECK_IDS } from '../../src/types.js';

const open = { id: '0123456789abcdef', peers: ['198.18.1.2'], ports: { bgp: 179 }, ttlMs: 60_000, expect: 4 };
const probe = {
  probes: [
    { idx: 0, check: 'bgp', transport: 'tcp', to: '198.18.2.2', port: 179 },
    { idx: 1, check: 'ipip', transport: 'ipip', to: '198.18.2.2', port: null },
  ],
  tries: 3,
  timeouts: { initialMs: 1000, minMs: 100, maxMs: 3000 },
  concurrency: 64,
  spacingMs: 30,
};

t.test('good bodies validate', async (t) => {
  t.same(parseOpenSession(open), open);
  t.same(parseOpenSession({ ...open, expect: undefined }).expect, 65536, 'expect defaults to the whole index range');
  t.same(parseProbeRequest(probe), probe);
  t.same(rowToSummary([3, 1, 'eth0', 0, '198.18.1.2', 2]), { idx: 3, interfaceSeen: true, interfaceName: 'eth0', socketSeen: false, observedSource: '198.18.1.2', count: 2 });
});

t.test('every bad field is refused with a message naming it', async (t) => {
  const badOpen: Array<[unknown, RegExp]> = [
    [null, /JSON object/],
    [[open], /JSON object/],
    [{ ...open, id: 'ABCDEF0123456789' }, /id must be 16 hex/],
    [{ ...open, peers: ['198.18.1.256'] }, /peers/],
    [{ ...open, peers: 'x' }, /peers/],
    [{ ...open, ports: [] }, /ports must be an object/],
    [{ ...open, ports: { bgp: 0 } }, /ports\.bgp/],
    [{ ...open, ports: { nosuch: 1 } }, /ports\.nosuch/],
    [{ ...open, ttlMs: 999 }, /ttlMs/],
    [{ ...open, expect: -1 }, /expect/],
  ];
  for (const [body, msg] of badOpen) t.throws(() => parseOpenSession(body), { name: 'BadRequest', message: msg }, JSON.stringify(body));
  const p0 = probe.probes[0]!;
  const badProbe: Array<[unknown, RegExp]> = [
    [{ ...probe, probes: {} }, /probes must be a list/],
    [{ ...probe, probes: [1] }, /probes\[0\] must be an object/],
    [{ ...probe, probes: [{ ...p0, idx: 65536 }] }, /probes\[0\]\.idx/],
    [{ ...probe, probes: [{ ...p0, check: 'http' }] }, /probes\[0\]\.check/],
    [{ ...probe, probes: [{ ...p0, transport: 'sctp' }] }, /probes\[0\]\.transport/],
    [{ ...probe, probes: [{ ...p0, to: 'localhost' }] }, /probes\[0\]\.to/],
    [{ ...probe, probes: [{ ...p0, port: null }] }, /probes\[0\]\.port/],
    [{ ...probe, probes: [{ ...p0, transport: 'ipip', port: 4 }] }, /probes\[0\]\.port/],
    [{ ...probe, tries: 0 }, /tries/],
    [{ ...probe, timeouts: { initialMs: 1000, minMs: 500, maxMs: 100 } }, /timeouts/],
    [{ ...probe, concurrency: 5000 }, /concurrency/],
    [{ ...probe, spacingMs: 1.5 }, /spacingMs/],
  ];
  for (const [body, msg] of badProbe) t.throws(() => parseProbeRequest(body), { name: 'BadRequest', message: msg }, JSON.stringify(body));
  t.ok(new BadRequest('x') instanceof UserError, 'a BadRequest is a UserError (exit 2 if it ever reaches the CLI)');
});

const isIPv4 = (s: unknown) => typeof s === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(s) && s.split('.').every((o) => Number(o) <= 255);

t.test('random JSON: validated into a well-formed request, or BadRequest — never another error', async (t) => {
  const outcome = (fn: () => unknown): 'ok' | 'bad' => {
    try {
      fn();
      return 'ok';
    } catch (err) {
      if (err instanceof BadRequest) return 'bad';
      throw err;
    }
  };
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      outcome(() => parseOpenSession(v));
      outcome(() => parseProbeRequest(v));
    }),
    { numRuns: 2000 },
  );
  // Near-valid bodies (one field replaced by random JSON) exercise every check, not only the first.
  const mutate = <T extends Record<string, unknown>>(base: T) =>
    fc.tuple(fc.constantFrom(...Object.keys(base)), fc.jsonValue()).map(([k, v]) => ({ ...base, [k]: v }));
  fc.assert(
    fc.property(mutate(open), (v) => {
      if (outcome(() => parseOpenSession(v)) === 'ok') {
        const r = parseOpenSession(v);
        if (!/^[0-9a-f]{16}$/.test(r.id) || !r.peers.every(isIPv4)) return false;
        if (!Object.entries(r.ports).every(([c, p]) => (CHECK_IDS as readonly string[]).includes(c) && Number.isInteger(p) && p >= 1 && p <= 65535)) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  const probeItem = fc.record({
    idx: fc.oneof(fc.integer({ min: -2, max: 70000 }), fc.jsonValue()),
    check: fc.oneof(fc.constantFrom(...CHECK_IDS), fc.string()),
    transport: fc.constantFrom('tcp', 'udp', 'ipip', 'x'),
    to: fc.oneof(fc.ipV4(), fc.string()),
    port: fc.oneof(fc.constant(null), fc.integer({ min: -1, max: 70000 })),
  });
  fc.assert(
    fc.property(fc.array(probeItem, { maxLength: 5 }), mutate(probe), (probes, base) => {
      const body = { ...base, probes };
      if (outcome(() => parseProbeRequest(body)) === 'ok') {
        const r = parseProbeRequest(body);
        return r.probes.every((p) => isIPv4(p.to) && (p.transport === 'ipip' ? p.port === null : Number.isInteger(p.port)) && p.idx >= 0 && p.idx <= 65535);
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 runs each');
});
