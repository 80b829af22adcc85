// Run inside a lab's router namespace: hostile and broken requests against one responder's control port.
// Prints one JSON object: { case: status } for each case. Uses the built modules (dist/).
import { request } from 'node:http';
import { signRequest } from '../../dist/control/auth.js';

const [host, portText, secret, peer = '198.18.2.2'] = process.argv.slice(2);
const port = Number(portText);
const good = Buffer.from(secret, 'utf8');

function send(method, path, body, headers) {
  return new Promise((resolve) => {
    const req = request({ host, port, method, path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', (e) => resolve({ status: -1, text: e.code }));
    req.setTimeout(10_000, () => req.destroy());
    req.end(body);
  });
}

const out = {};
const sid = '0123456789abcdef';
const openBody = JSON.stringify({ id: sid, peers: [peer], ports: { bgp: 179 }, ttlMs: 60000, expect: 8 });

out.noAuth = (await send('GET', '/v1/info', '', {})).status;
out.wrongSecret = (await send('GET', '/v1/info', '', signRequest(Buffer.from('not the secret at all, sorry!!'), 'GET', '/v1/info', ''))).status;
const h = signRequest(good, 'POST', '/v1/sessions', openBody);
out.open = (await send('POST', '/v1/sessions', openBody, h)).status;
out.replay = (await send('POST', '/v1/sessions', openBody, h)).status;
out.tamperedBody = (await send('POST', '/v1/sessions', openBody.replace('179', '180'), signRequest(good, 'POST', '/v1/sessions', openBody))).status;
const huge = 'x'.repeat(9 << 20);
out.oversized = (await send('POST', '/v1/sessions', huge, signRequest(good, 'POST', '/v1/sessions', huge))).status;
const probeOutside = JSON.stringify({ probes: [{ idx: 0, check: 'bgp', transport: 'tcp', to: '198.18.3.2', port: 179 }], tries: 1, timeouts: { initialMs: 100, minMs: 10, maxMs: 200 }, concurrency: 1, spacingMs: 0 });
const p = `/v1/sessions/${sid}/probe`;
out.probeOutside = (await send('POST', p, probeOutside, signRequest(good, 'POST', p, probeOutside))).status;
const notJson = '{"probes": [';
out.notJson = (await send('POST', p, notJson, signRequest(good, 'POST', p, notJson))).status;
const badShape = JSON.stringify({ probes: [{ idx: 70000 }] });
out.badShape = (await send('POST', p, badShape, signRequest(good, 'POST', p, badShape))).status;
out.stillServing = (await send('GET', '/v1/info', '', signRequest(good, 'GET', '/v1/info', ''))).status;
process.stdout.write(JSON.stringify(out));
