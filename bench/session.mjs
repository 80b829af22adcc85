// Helper process (not a benchmark): opens or closes a session on one responder over its signed control
// channel, like test/helpers/control-attack.mjs (dist/control/auth.js signRequest). Run it inside the
// lab's router namespace (it reaches every node). Prints one JSON line { status, body } and exits 0 on
// a 2xx answer, 1 otherwise. Bounded: one request, 10 s timeout.
//
//   node bench/session.mjs open  HOST PORT SECRET_FILE ID PEER [TTL_MS]
//   node bench/session.mjs close HOST PORT SECRET_FILE ID
import { request } from 'node:http';
import { readFileSync } from 'node:fs';

const [action, host, portText, secretFile, id, peer, ttlText] = process.argv.slice(2);
if (!host?.startsWith('198.18.') || !/^[0-9a-f]{16}$/.test(id ?? '')) {
  console.error('session: usage: open|close HOST(198.18.x.y) PORT SECRET_FILE ID(16 hex) [PEER] [TTL_MS]');
  process.exit(2);
}
const { signRequest } = await import('../dist/control/auth.js');
const secret = Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'utf8');

function send(method, path, body) {
  return new Promise((resolve) => {
    const headers = { 'content-type': 'application/json', ...signRequest(secret, method, path, body) };
    const req = request({ host, port: Number(portText), method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', (e) => resolve({ status: -1, body: e.code ?? e.message }));
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

let r;
if (action === 'open') {
  const body = JSON.stringify({
    id,
    peers: [peer],
    ports: { bgp: 179, typha: 5473, etcd: 2379, apiserver: 6443, vxlan: 4789, wireguard: 51820 },
    ttlMs: Number(ttlText ?? 60_000),
    expect: 64,
  });
  r = await send('POST', '/v1/sessions', body);
} else if (action === 'close') {
  r = await send('DELETE', `/v1/sessions/${id}`, '');
} else {
  console.error(`session: unknown action ${action}`);
  process.exit(2);
}
process.stdout.write(`${JSON.stringify(r)}\n`);
process.exit(r.status >= 200 && r.status < 300 ? 0 : 1);
