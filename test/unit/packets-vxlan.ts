import t from 'tap';
import fc from 'fast-check';
import { DecodeError } from '../../src/packets/errors.js';
import { decodeIPv4, internetChecksum } from '../../src/packets/ipv4.js';
import { PROBE_MAGIC, decodeProbePayload, deriveSessionKey, encodeProbePayload, padProbe, verifyProbePayload } from '../../src/packets/probe.js';
import { decodeUdp, udpChecksumOk } from '../../src/packets/udp.js';
import {
  ETHERTYPE_IPV4,
  PROBE_VNI,
  VXLAN_MAGIC_OFFSET,
  buildVxlanProbe,
  bytesToMac,
  decodeEthernet,
  decodeVxlan,
  encodeEthernet,
  encodeVxlan,
  findProbeInVxlan,
  macToBytes,
} from '../../src/packets/vxlan.js';
import { withIpOptions } from '../helpers/packets.js';

const SESSION = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');
const KEY = deriveSessionKey(Buffer.from('secret'), SESSION);
const PROBE = encodeProbePayload({ key: KEY, sessionId: SESSION, src: '10.0.0.1', dst: '10.0.0.2', transport: 'udp', port: 4789, check: 'vxlan', idx: 7, attempt: 0, sendTimeMs: 1000 });


t.test('MAC addresses', async (t) => {
  t.same([...macToBytes('02:CA:11:c0:00:01')], [2, 0xca, 0x11, 0xc0, 0, 1]);
  t.equal(bytesToMac(Buffer.from([2, 0xca, 0x11, 0xc0, 0, 1])), '02:ca:11:c0:00:01');
  t.same(macToBytes(Buffer.alloc(6, 0xff)), Buffer.alloc(6, 0xff));
  for (const bad of ['02:ca:11:c0:00', '02-ca-11-c0-00-01', 'zz:ca:11:c0:00:01', '']) t.throws(() => macToBytes(bad), TypeError);
  t.throws(() => macToBytes(Buffer.alloc(5)), TypeError);
  t.throws(() => bytesToMac(Buffer.alloc(5)), DecodeError);
});

t.test('Ethernet', async (t) => {
  const f = encodeEthernet({ dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:00:01', etherType: 0x0806, payload: Buffer.from('arp') });
  t.equal(f.toString('hex'), 'ffffffffffff' + '020000000001' + '0806' + Buffer.from('arp').toString('hex'));
  const d = decodeEthernet(f);
  t.same({ ...d, payload: d.payload.toString() }, { dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:00:01', etherType: 0x0806, vlan: null, payload: 'arp' });
  const tagged = Buffer.concat([f.subarray(0, 12), Buffer.from('8100' + '2064' + '0800', 'hex'), Buffer.from('x')]);
  const dt = decodeEthernet(tagged);
  t.equal(dt.vlan, 100);
  t.equal(dt.etherType, 0x0800);
  t.equal(dt.payload.toString(), 'x');
  t.throws(() => decodeEthernet(f.subarray(0, 13)), DecodeError);
  t.throws(() => decodeEthernet(tagged.subarray(0, 17)), DecodeError);
  t.throws(() => encodeEthernet({ dst: f.subarray(0, 6), src: f.subarray(6, 12), etherType: 0x10000, payload: Buffer.alloc(0) }), RangeError);
});

t.test('VXLAN header', async (t) => {
  t.equal(PROBE_VNI, 0xca11c0);
  t.ok(PROBE_VNI < 2 ** 24);
  t.not(PROBE_VNI, 4096, 'not Calico IPv4 VNI');
  t.not(PROBE_VNI, 4097, 'not Calico IPv6 VNI');
  t.not(PROBE_VNI, 1, 'not flannel VNI');
  const v = encodeVxlan({ vni: PROBE_VNI, payload: Buffer.from('frame') });
  t.equal(v.toString('hex', 0, 8), '08000000ca11c000');
  const d = decodeVxlan(v);
  t.equal(d.flags, 0x08);
  t.equal(d.vni, PROBE_VNI);
  t.equal(d.payload.toString(), 'frame');
  t.equal(decodeVxlan(encodeVxlan({ vni: 0xffffff, payload: Buffer.alloc(0) })).vni, 0xffffff);
  const noI = Buffer.from(v);
  noI[0] = 0;
  t.throws(() => decodeVxlan(noI), DecodeError);
  t.throws(() => decodeVxlan(v.subarray(0, 7)), DecodeError);
  t.throws(() => encodeVxlan({ vni: 2 ** 24, payload: Buffer.alloc(0) }), RangeError);
  t.throws(() => encodeVxlan({ vni: -1, payload: Buffer.alloc(0) }), RangeError);
});

t.test('VXLAN probe', async (t) => {
  const probe = buildVxlanProbe({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: PROBE });
  t.equal(VXLAN_MAGIC_OFFSET, 50);
  t.equal(probe.length, 50 + 54);
  t.equal(probe.readUInt32BE(VXLAN_MAGIC_OFFSET), PROBE_MAGIC, 'magic at offset 50');
  const vx = decodeVxlan(probe);
  t.equal(vx.vni, PROBE_VNI);
  const eth = decodeEthernet(vx.payload);
  t.equal(eth.etherType, ETHERTYPE_IPV4);
  for (const mac of [eth.src, eth.dst]) {
    const first = macToBytes(mac)[0] as number;
    t.equal(first & 0x02, 0x02, `${mac} locally administered`);
    t.equal(first & 0x01, 0, `${mac} unicast`);
  }
  t.not(eth.src, eth.dst);
  const ip = decodeIPv4(eth.payload);
  t.match(ip, { ihl: 5, protocol: 17, src: '10.0.0.1', dst: '10.0.0.2', checksumOk: true, truncated: false });
  const udp = decodeUdp(ip.payload);
  t.equal(udp.dstPort, 9);
  t.ok(udpChecksumOk('10.0.0.1', '10.0.0.2', ip.payload));
  t.same(udp.payload, PROBE);
  t.equal(decodeVxlan(buildVxlanProbe({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: PROBE, vni: 42 })).vni, 42);

  const found = findProbeInVxlan(probe);
  t.ok(found);
  t.same(found, PROBE);
  t.ok(found && verifyProbePayload(found, KEY));
});

t.test('findProbeInVxlan near misses and tolerances', async (t) => {
  const probe = buildVxlanProbe({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: PROBE });
  t.equal(findProbeInVxlan(probe.subarray(0, 91)), null, 'cut inside the probe');
  t.equal(findProbeInVxlan(PROBE), null, 'bare probe, no VXLAN framing');
  const noMagic = Buffer.from(probe);
  noMagic[VXLAN_MAGIC_OFFSET] = 0;
  t.equal(findProbeInVxlan(noMagic), null);
  const noI = Buffer.from(probe);
  noI[0] = 0;
  t.equal(findProbeInVxlan(noI), null, 'I flag clear');
  const arp = Buffer.from(probe);
  arp.writeUInt16BE(0x0806, 8 + 12);
  t.equal(findProbeInVxlan(arp), null, 'not IPv4 inside');
  const tcp = Buffer.from(probe);
  tcp[8 + 14 + 9] = 6;
  t.equal(findProbeInVxlan(tcp), null, 'inner protocol not UDP');
  const frag = Buffer.from(probe);
  frag.writeUInt16BE(0x0001, 8 + 14 + 6);
  t.equal(findProbeInVxlan(frag), null, 'non-first fragment');

  const padded = buildVxlanProbe({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: padProbe(PROBE, 148) });
  t.same(findProbeInVxlan(padded.subarray(0, 104)), PROBE, 'capture truncated after the probe');

  const frame = decodeVxlan(probe).payload;
  const inner = withIpOptions(Buffer.from(frame.subarray(14)), 2);
  const withOpts = encodeVxlan({ vni: PROBE_VNI, payload: Buffer.concat([frame.subarray(0, 14), inner]) });
  t.same(findProbeInVxlan(withOpts), PROBE, 'inner IP options are skipped by reading the IHL');
  t.not(withOpts.readUInt32BE(VXLAN_MAGIC_OFFSET), PROBE_MAGIC);
});

t.test('property: decoders and findProbeInVxlan on random bytes', async (t) => {
  const probe = buildVxlanProbe({ innerSrc: '10.0.0.1', innerDst: '10.0.0.2', payload: PROBE });
  const ok = (f: () => unknown) => {
    try {
      f();
      return true;
    } catch (err) {
      return err instanceof DecodeError;
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
      const found = findProbeInVxlan(b);
      return ok(() => decodeVxlan(b)) && ok(() => decodeEthernet(b)) && (found === null || found.length === 54);
    }),
    { numRuns: 2000 },
  );
  // Random corruption of a real probe: either still found (and structurally a probe) or null.
  fc.assert(
    fc.property(fc.nat(probe.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(probe.length), (at, v, cut) => {
      const b = Buffer.from(probe);
      b[at] = v;
      const found = findProbeInVxlan(b.subarray(0, cut));
      return found === null || (found.length === 54 && ok(() => decodeProbePayload(found)));
    }),
  );
  t.pass();
});
