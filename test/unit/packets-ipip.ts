import t from 'tap';
import fc from 'fast-check';
import { decodeIPv4, encodeIPv4, internetChecksum } from '../../src/packets/ipv4.js';
import { IPIP_MAGIC_OFFSET, buildIpipInner, findProbeInIpip } from '../../src/packets/ipip.js';
import { PROBE_MAGIC, deriveSessionKey, encodeProbePayload, padProbe, verifyProbePayload } from '../../src/packets/probe.js';
import { decodeUdp, udpChecksumOk } from '../../src/packets/udp.js';
import { withIpOptions } from '../helpers/packets.js';

const SESSION = Buffer.from('0000000000000001', 'hex');
const KEY = deriveSessionKey(Buffer.from('s'), SESSION);
const PROBE = encodeProbePayload({ key: KEY, sessionId: SESSION, src: '10.0.0.1', dst: '10.0.0.2', transport: 'ipip', port: null, check: 'ipip', idx: 3, attempt: 1, sendTimeMs: 5 });


t.test('inner packet', async (t) => {
  const inner = buildIpipInner({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: PROBE });
  t.equal(IPIP_MAGIC_OFFSET, 28);
  t.equal(inner.length, 28 + 54);
  t.equal(inner.readUInt32BE(IPIP_MAGIC_OFFSET), PROBE_MAGIC);
  const ip = decodeIPv4(inner);
  t.match(ip, { ihl: 5, protocol: 17, src: '10.0.0.1', dst: '10.0.0.2', checksumOk: true, ttl: 64 });
  const udp = decodeUdp(ip.payload);
  t.equal(udp.srcPort, 9);
  t.equal(udp.dstPort, 9);
  t.ok(udpChecksumOk('10.0.0.1', '10.0.0.2', ip.payload));
  t.same(udp.payload, PROBE);
  t.equal(decodeUdp(decodeIPv4(buildIpipInner({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: PROBE, port: 7 })).payload).dstPort, 7);

  // Through an outer header, as a raw proto-4 socket would receive it.
  const outer = encodeIPv4({ src: '192.0.2.1', dst: '192.0.2.2', protocol: 4, payload: inner });
  const found = findProbeInIpip(decodeIPv4(outer).payload);
  t.same(found, PROBE);
  t.ok(found && verifyProbePayload(found, KEY));
});

t.test('findProbeInIpip near misses and tolerances', async (t) => {
  const inner = buildIpipInner({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: PROBE });
  t.equal(findProbeInIpip(inner.subarray(0, 69)), null, 'cut inside the probe');
  t.equal(findProbeInIpip(PROBE), null);
  t.equal(findProbeInIpip(Buffer.alloc(0)), null);
  const noMagic = Buffer.from(inner);
  noMagic[IPIP_MAGIC_OFFSET + 3] = (noMagic[IPIP_MAGIC_OFFSET + 3] as number) ^ 0xff;
  t.equal(findProbeInIpip(noMagic), null);
  const tcp = encodeIPv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 6, payload: inner.subarray(20) });
  t.equal(findProbeInIpip(tcp), null, 'inner protocol not UDP');
  const frag = Buffer.from(inner);
  frag.writeUInt16BE(0x0003, 6);
  t.equal(findProbeInIpip(frag), null, 'non-first fragment');
  const padded = buildIpipInner({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: padProbe(PROBE, 148) });
  t.same(findProbeInIpip(padded.subarray(0, 82)), PROBE, 'capture truncated after the probe');
  const opts = withIpOptions(inner, 3);
  t.same(findProbeInIpip(opts), PROBE, 'inner IHL 8');
  t.not(opts.readUInt32BE(IPIP_MAGIC_OFFSET), PROBE_MAGIC);
  t.throws(() => buildIpipInner({ innerSrc: '10.0.0.1', innerDst: 'node-2', payload: PROBE }), TypeError);
});

t.test('property: findProbeInIpip never throws', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), (b, v4) => {
      const buf = Buffer.from(b);
      if (v4 && buf.length > 0) buf[0] = 0x45;
      const r = findProbeInIpip(buf);
      return r === null || r.length === 54;
    }),
    { numRuns: 2000 },
  );
  const inner = buildIpipInner({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: PROBE });
  fc.assert(
    fc.property(fc.nat(inner.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(inner.length), (at, v, cut) => {
      const b = Buffer.from(inner);
      b[at] = v;
      const r = findProbeInIpip(b.subarray(0, cut));
      return r === null || r.readUInt32BE(0) === PROBE_MAGIC;
    }),
  );
  t.pass();
});
