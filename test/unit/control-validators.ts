// The control protocol's validators under fuzzing (fast-check): anything a peer can send is either the
// well-formed message it claims to be or a BadRequest — never another exception, never a half-checked value.
import t from 'tap';
import fc from 'fast-check';
import { BadRequest, packInbound, parseInbound, parseOpenSession, parseProbeRequest, unpackInbound, type InboundFlow } from '../../src/control/protocol.js';
import { CATALOGUE } from '../../src/checks/catalogue.js';
import { CHECK_IDS } from '../../src/types.js';

/** Runs `f`; true when it returned or threw BadRequest (the only allowed failure). */
const onlyBadRequest = (f: () => unknown): boolean => {
  try {
    f();
    return true;
  } catch (err) {
    if (err instanceof BadRequest) return true;
    throw err;
  }
};

const inboundFlow: fc.Arbitrary<InboundFlow> = fc
  .record({ idx: fc.integer({ min: 0, max: 65535 }), src: fc.ipV4(), check: fc.constantFrom(...CHECK_IDS), port: fc.integer({ min: 1, max: 65535 }) })
  .map((f) => {
    const def = CATALOGUE[f.check];
    // A carried check (mtu) travels as its carrier: IP-in-IP (no port) or UDP (VXLAN / WireGuard's port).
    const transport = def.carriedBy ? (f.port % 2 === 0 ? 'ipip' : 'udp') : def.transport;
    return { ...f, transport, port: transport === 'ipip' ? null : f.port };
  });
const inboundList = fc.uniqueArray(inboundFlow, { selector: (f) => f.idx, maxLength: 60 });

t.test('inbound tables: pack -> validate -> unpack gives back every flow', async () => {
  fc.assert(
    fc.property(inboundList, (flows) => {
      const packed = parseInbound(JSON.parse(JSON.stringify(packInbound(flows))));
      const back = unpackInbound(packed);
      const same = (a: InboundFlow | undefined, b: InboundFlow) => !!a && a.idx === b.idx && a.src === b.src && a.check === b.check && a.transport === b.transport && a.port === b.port;
      return back.size === flows.length && flows.every((f) => same(back.get(f.idx), f));
    }),
  );
});

t.test('inbound tables: duplicates, bad indexes, codes and ports are refused by name', async (t) => {
  const ok = packInbound([{ idx: 3, src: '198.18.1.2', check: 'bgp', transport: 'tcp', port: 179 }]);
  const bad = (flows: unknown[], from: unknown = ok.from) => () => parseInbound({ from, flows });
  t.throws(bad([3, 0, 1, 179, 3, 0, 1, 179]), { message: /appears twice/ });
  t.throws(bad([3, 1, 1, 179]), { message: /source must index/ });
  t.throws(bad([3, 0, 9, 179]), { message: /unknown check code/ });
  t.throws(bad([3, 0, 2, 179]), { message: /port is wrong for ipip/ });
  t.throws(bad([3, 0, 1, 0]), { message: /port is wrong for bgp/ });
  // mtu carried by VXLAN (a cluster without IP-in-IP): its carrier's port, as UDP; by IP-in-IP: none.
  const mtu = CATALOGUE.mtu.code;
  t.same([...unpackInbound(parseInbound({ from: ok.from, flows: [3, 0, mtu, 4789, 4, 0, mtu, 0] })).values()].map((f) => [f.transport, f.port]), [['udp', 4789], ['ipip', null]]);
  t.throws(bad([3, 0, mtu, 65536]), { message: /port is wrong for mtu/ });
  t.throws(bad([65536, 0, 1, 179]), { message: /idx must be/ });
  t.throws(bad([3, 0, 1]), { message: /quadruples/ });
  t.throws(bad([3, 0, 1, 179], ['not-an-address']), { message: /IPv4/ });
  t.throws(() => parseInbound(null), BadRequest);
});

/** Mostly-valid messages with one field at a time broken or replaced by arbitrary JSON. */
const anything = fc.anything({ maxDepth: 2, withBigInt: false });
const openSession = fc.record(
  {
    id: fc.oneof(fc.constant('0123456789abcdef'), fc.string()),
    peers: fc.oneof(fc.array(fc.ipV4(), { maxLength: 4 }), anything),
    ports: fc.oneof(fc.constant({ bgp: 179, vxlan: 4789 }), fc.dictionary(fc.string(), fc.integer())),
    ttlMs: fc.oneof(fc.constant(30_000), fc.integer()),
    inbound: fc.oneof(inboundList.map(packInbound), anything, fc.record({ from: anything, flows: fc.array(fc.integer(), { maxLength: 12 }) })),
  },
  { requiredKeys: [] },
);

t.test('session opens: random and broken messages give a valid open or a BadRequest', async () => {
  fc.assert(
    fc.property(fc.oneof(openSession, anything), (v) =>
      onlyBadRequest(() => {
        const o = parseOpenSession(v);
        // What passed is really well-formed.
        if (!/^[0-9a-f]{16}$/.test(o.id) || o.ttlMs < 1000 || o.ttlMs > 300_000) throw new Error(`let through: ${JSON.stringify(v)}`);
        unpackInbound(o.inbound);
      }),
    ),
    { numRuns: 3000 },
  );
});

const probe = fc.record(
  {
    idx: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.integer()),
    check: fc.oneof(fc.constantFrom(...CHECK_IDS), fc.string()),
    transport: fc.oneof(fc.constantFrom('tcp', 'udp', 'ipip'), fc.string()),
    to: fc.oneof(fc.ipV4(), fc.string()),
    port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constant(null), anything),
  },
  { requiredKeys: [] },
);
const probeRequest = fc.record(
  {
    probes: fc.oneof(fc.array(probe, { maxLength: 5 }), anything),
    tries: fc.oneof(fc.integer({ min: 1, max: 10 }), anything),
    timeouts: fc.oneof(fc.constant({ initialMs: 500, minMs: 100, maxMs: 3000 }), anything),
    concurrency: fc.oneof(fc.integer({ min: 1, max: 4096 }), anything),
    spacingMs: fc.oneof(fc.integer({ min: 0, max: 5000 }), anything),
  },
  { requiredKeys: [] },
);

t.test('probe requests: random and broken messages give a valid request or a BadRequest', async () => {
  fc.assert(
    fc.property(fc.oneof(probeRequest, anything), (v) =>
      onlyBadRequest(() => {
        const r = parseProbeRequest(v);
        const seen = new Set<string>();
        for (const p of r.probes) {
          // Every probe that passed travels the way its check does, with a port exactly when it needs one, once.
          if (CATALOGUE[p.check].transport !== p.transport) throw new Error(`transport let through: ${JSON.stringify(p)}`);
          if ((p.transport === 'ipip') !== (p.port === null)) throw new Error(`port let through: ${JSON.stringify(p)}`);
          if (seen.has(`${p.to}/${p.idx}`)) throw new Error(`duplicate let through: ${JSON.stringify(p)}`);
          seen.add(`${p.to}/${p.idx}`);
        }
      }),
    ),
    { numRuns: 3000 },
  );
});

t.test('probe requests: a check over the wrong transport, and one flow twice, are refused', async (t) => {
  const base = { tries: 1, timeouts: { initialMs: 500, minMs: 100, maxMs: 3000 }, concurrency: 1, spacingMs: 0 };
  t.throws(() => parseProbeRequest({ ...base, probes: [{ idx: 0, check: 'ipip', transport: 'udp', to: '198.18.2.2', port: 51820 }] }), { message: /does not travel over udp/ });
  // mtu travels as its carrier: VXLAN's or WireGuard's UDP, or IP-in-IP; never as TCP.
  t.equal(parseProbeRequest({ ...base, probes: [{ idx: 0, check: 'mtu', transport: 'udp', to: '198.18.2.2', port: 4789, framing: 'vxlan' }] }).probes[0]?.transport, 'udp');
  t.equal(parseProbeRequest({ ...base, probes: [{ idx: 0, check: 'mtu', transport: 'ipip', to: '198.18.2.2', port: null }] }).probes[0]?.transport, 'ipip');
  t.throws(() => parseProbeRequest({ ...base, probes: [{ idx: 0, check: 'mtu', transport: 'tcp', to: '198.18.2.2', port: 179 }] }), { message: /mtu does not travel over tcp/ });
  const p = { idx: 0, check: 'bgp', transport: 'tcp', to: '198.18.2.2', port: 179 };
  t.throws(() => parseProbeRequest({ ...base, probes: [p, { ...p, check: 'typha', port: 5473 }] }), { message: /appears twice/ });
  t.equal(parseProbeRequest({ ...base, probes: [p] }).probes.length, 1);
});
