// The responder under hostile input: wrong secrets, replays, oversized bodies, probes outside the
// session, garbage at every witnessed port. Everything is refused and the responder keeps serving.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { loadNative } from '../../src/native.js';
import { encodeIPv4 } from '../../src/packets/ipv4.js';
import { encodeUdp } from '../../src/packets/udp.js';
import { encodeTcp, TCP_FLAGS } from '../../src/packets/tcp.js';
import { PROBE_MAGIC } from '../../src/packets/probe.js';
import { inNs } from '../../src/lab/sys.js';
import { labReport, needsRoot, runIn, withLab } from '../helpers/lab.js';

const attack = fileURLToPath(new URL('../helpers/control-attack.mjs', import.meta.url));

t.test('control channel refuses what it must, and keeps serving', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2 });
  const secret = (await readFile(lab.secretFile, 'utf8')).trim();
  const r = await runIn(inNs(lab.router, [process.execPath, attack, lab.nodes[0]!.address, '5478', secret, lab.nodes[1]!.address, lab.nodes[1]!.address]));
  t.equal(r.code, 0, r.stderr);
  const { captured: _, ...out } = JSON.parse(r.stdout) as Record<string, number>;
  t.same(out, {
    noAuth: 401,
    wrongSecret: 401,
    noInstance: 401,
    otherNode: 401,
    open: 201,
    replay: 401,
    tamperedBody: 401,
    oversized: 413,
    probeOutside: 403,
    notJson: 400,
    badShape: 400,
    stillServing: 200,
  });
});

t.test('garbage at every witnessed port is ignored; the responder still witnesses real probes', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2 });
  const [n1, n2] = [lab.nodes[0]!, lab.nodes[1]!];
  // An open session on node2 (the attack script opens one), so garbage really meets the probe checks.
  const secret = (await readFile(lab.secretFile, 'utf8')).trim();
  const opened = await runIn(inNs(lab.router, [process.execPath, attack, n2.address, '5478', secret, n1.address]));
  t.equal(JSON.parse(opened.stdout).open, 201, 'a session is open on node2');
  const native = loadNative();
  const sock = native.open({ kind: 'raw', protocol: 255, hdrincl: true, netns: `/run/netns/${n1.ns}` });
  t.teardown(() => sock.close());
  const send = (protocol: number, payload: Buffer) => sock.send(encodeIPv4({ src: n1.address, dst: n2.address, protocol, payload }), n2.address);
  for (let i = 0; i < 300; i++) {
    const junk = randomBytes(1 + (i % 200));
    // Fake probes: the right magic, random rest (a forged HMAC).
    const forged = Buffer.concat([Buffer.from([0x43, 0x4e, 0x54, 0x50]), randomBytes(60)]);
    if (forged.readUInt32BE(0) !== PROBE_MAGIC) throw new Error('magic changed');
    for (const port of [4789, 51820]) send(17, encodeUdp({ srcAddr: n1.address, dstAddr: n2.address, srcPort: 40000 + i, dstPort: port, payload: i % 2 ? junk : forged }));
    for (const port of [179, 5473, 2379, 6443])
      send(6, encodeTcp({ srcAddr: n1.address, dstAddr: n2.address, srcPort: 40000 + i, dstPort: port, seq: randomBytes(4).readUInt32BE(0), flags: TCP_FLAGS.SYN }));
    send(4, i % 2 ? junk : Buffer.concat([encodeIPv4({ src: n1.address, dst: n2.address, protocol: 17, payload: Buffer.alloc(8) }).subarray(0, 28), forged]));
  }
  const log = await readFile(n2.log, 'utf8');
  t.notMatch(log, /"event":"witness"/, 'no garbage or forgery was taken for a probe');
  const { run, report } = await labReport(lab, ['pair', 'node1', 'node2']);
  t.equal(run.code, 0, `still working: ${run.stderr}`);
  t.equal(report.summary.fail, 0);
});
