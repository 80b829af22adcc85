// The compact outcome table gives back exactly what was stored, for every field shape.
import t from 'tap';
import fc from 'fast-check';
import { OutcomeTable } from '../../src/coordinator/outcomes.js';
import type { SourceOutcome } from '../../src/types.js';

const flow = (i: number) => ({ idx: i % 65536, toAddress: `198.18.${i % 250}.2`, check: 'bgp' as const });

t.test('round trip of arbitrary outcomes; missing ones stay missing', async (t) => {
  const arb = fc.record({
    reply: fc.constantFrom(null, 'synack', 'rst', 'icmp'),
    replyFrom: fc.option(fc.constantFrom('198.18.1.1', '198.18.2.2'), { nil: null }),
    icmp: fc.option(fc.record({ type: fc.integer({ min: 0, max: 255 }), code: fc.integer({ min: 0, max: 255 }) }), { nil: null }),
    sendError: fc.option(fc.constantFrom('EPERM', 'ENETUNREACH'), { nil: null }),
    left: fc.constantFrom(null, true, false),
    leftOn: fc.option(fc.constantFrom('eth0', 'bond0.12'), { nil: null }),
    rttMs: fc.option(fc.double({ min: 0, max: 1e5, noNaN: true }), { nil: null }),
    attempts: fc.integer({ min: 0, max: 10 }),
    srcPort: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: null }),
  });
  fc.assert(
    fc.property(fc.array(arb, { minLength: 1, maxLength: 30 }), (list) => {
      const table = new OutcomeTable(list.length + 1, flow);
      list.forEach((o, i) => table.set(i, { ...flow(i), ...o } as SourceOutcome));
      const ok = list.every((o, i) => JSON.stringify(table.get(i)) === JSON.stringify({ ...flow(i), ...o }));
      return ok && table.get(list.length) === undefined && table.count === list.length;
    }),
  );
  t.throws(() => new OutcomeTable(1, flow).set(1, { ...flow(1) } as SourceOutcome), RangeError);
});

t.test('PackedFlows gives back every flow and lets the array go', async (t) => {
  const { PackedFlows } = await import('../../src/coordinator/outcomes.js');
  const flows = [
    { check: 'bgp' as const, transport: 'tcp' as const, from: 'a', to: 'b', toAddress: '198.18.2.2', port: 179, idx: 0 },
    { check: 'ipip' as const, transport: 'ipip' as const, from: 'b', to: 'a', toAddress: '198.18.1.2', port: null, idx: 65535 },
    { check: 'apiserver' as const, transport: 'tcp' as const, from: 'a', to: 'vip', toAddress: '198.18.0.100', port: 443, idx: 3, sourceOnly: true },
  ];
  const copy = flows.map((f) => ({ ...f }));
  const packed = PackedFlows.pack(flows);
  t.equal(flows.length, 0, 'the array is emptied');
  t.equal(packed.length, 3);
  t.same([0, 1, 2].map((i) => packed.get(i)), copy);
  t.throws(() => packed.get(3), RangeError);
});
