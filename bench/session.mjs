// Helper process (not a benchmark): opens or closes a session on one responder over its signed control
// channel, like test/helpers/control-attack.mjs (dist/coordinator/client.js). Run it inside the
// lab's router namespace (it reaches every node). Prints one JSON line { status, body } and exits 0 on
// a 2xx answer, 1 otherwise. Bounded: one request, 10 s timeout.
//
//   node bench/session.mjs open  HOST PORT SECRET_FILE ID PEER [TTL_MS]
//   node bench/session.mjs close HOST PORT SECRET_FILE ID
import { readFileSync } from 'node:fs';

const [action, host, portText, secretFile, id, peer, ttlText] = process.argv.slice(2);
if (!host?.startsWith('198.18.') || !/^[0-9a-f]{16}$/.test(id ?? '')) {
  console.error('session: usage: open|close HOST(198.18.x.y) PORT SECRET_FILE ID(16 hex) [PEER] [TTL_MS]');
  process.exit(2);
}
const { ControlClient } = await import('../dist/coordinator/client.js');
const { packInbound } = await import('../dist/control/protocol.js');
const secret = Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'utf8');
// The responder signs its answers and checks that requests name it: HOST is its node address.
const client = new ControlClient(host, Number(portText), secret, host, 10_000);

let r;
try {
  if (action === 'open') {
    const ports = { bgp: 179, typha: 5473, etcd: 2379, apiserver: 6443, vxlan: 4789, wireguard: 51820 };
    // The flows PEER may send this node (idx 0..5, one per check), so probes from it can be witnessed.
    const inbound = packInbound(Object.entries(ports).map(([check, port], idx) => ({ idx, src: peer, check, transport: check === 'vxlan' || check === 'wireguard' ? 'udp' : 'tcp', port })));
    const body = await client.openSession({ id, peers: [peer], ports, ttlMs: Math.min(Number(ttlText ?? 60_000), 300_000), inbound });
    r = { status: 201, body };
  } else if (action === 'close') {
    await client.closeSession(id);
    r = { status: 200, body: null };
  } else {
    console.error(`session: unknown action ${action}`);
    process.exit(2);
  }
} catch (err) {
  r = { status: err.status ?? -1, body: err.message };
}
client.close();
process.stdout.write(`${JSON.stringify(r)}\n`);
process.exit(r.status >= 200 && r.status < 300 ? 0 : 1);
