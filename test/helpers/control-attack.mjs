// Run inside a lab's router namespace: hostile and broken requests against one responder's control port.
// Prints one JSON object: { case: status } for each case. Uses the built modules (dist/).
//   node control-attack.mjs HOST PORT SECRET [PEER] [OTHER_HOST]
// OTHER_HOST: a second responder, to replay a request signed for HOST at it.
import { request } from 'node:http';
import { HEADER_INSTANCE, signRequest } from '../../dist/control/auth.js';
import { packInbound } from '../../dist/control/protocol.js';

const [host, portText, secret, peer = '198.18.2.2', otherHost] = process.argv.slice(2);
const port = Number(portText);
const good = Buffer.from(secret, 'utf8');

function send(method, path, body, headers, to = host) {
  return new Promise((resolve) => {
    const req = request({ host: to, port, method, path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text, instance: res.headers[HEADER_INSTANCE] }));
    });
    req.on('error', (e) => resolve({ status: -1, text: e.code }));
    req.setTimeout(10_000, () => req.destroy());
    req.end(body);
  });
}

const out = {};
const sid = '0123456789abcdef';
const target = { address: host };
const info = await send('GET', '/v1/info', '', signRequest(good, 'GET', '/v1/info', '', target));
target.instance = JSON.parse(info.text).instance;
const inbound = packInbound([{ idx: 0, src: peer, check: 'bgp', transport: 'tcp', port: 179 }]);
const openBody = JSON.stringify({ id: sid, peers: [peer], ports: { bgp: 179 }, ttlMs: 60000, inbound });

out.noAuth = (await send('GET', '/v1/info', '', {})).status;
out.wrongSecret = (await send('GET', '/v1/info', '', signRequest(Buffer.from('not the secret at all, sorry!!'), 'GET', '/v1/info', '', target))).status;
out.noInstance = (await send('POST', '/v1/sessions', openBody, signRequest(good, 'POST', '/v1/sessions', openBody, { address: host }))).status;
const h = signRequest(good, 'POST', '/v1/sessions', openBody, target);
if (otherHost) out.otherNode = (await send('POST', '/v1/sessions', openBody, h, otherHost)).status;
out.open = (await send('POST', '/v1/sessions', openBody, h)).status;
out.replay = (await send('POST', '/v1/sessions', openBody, h)).status;
out.tamperedBody = (await send('POST', '/v1/sessions', openBody.replace('179', '180'), signRequest(good, 'POST', '/v1/sessions', openBody, target))).status;
const huge = 'x'.repeat(9 << 20);
out.oversized = (await send('POST', '/v1/sessions', huge, signRequest(good, 'POST', '/v1/sessions', huge, target))).status;
const probeOutside = JSON.stringify({ probes: [{ idx: 0, check: 'bgp', transport: 'tcp', to: '198.18.3.2', port: 179 }], tries: 1, timeouts: { initialMs: 100, minMs: 10, maxMs: 200 }, concurrency: 1, spacingMs: 0 });
const p = `/v1/sessions/${sid}/probe`;
out.probeOutside = (await send('POST', p, probeOutside, signRequest(good, 'POST', p, probeOutside, target))).status;
const notJson = '{"probes": [';
out.notJson = (await send('POST', p, notJson, signRequest(good, 'POST', p, notJson, target))).status;
const badShape = JSON.stringify({ probes: [{ idx: 70000 }] });
out.badShape = (await send('POST', p, badShape, signRequest(good, 'POST', p, badShape, target))).status;
out.stillServing = (await send('GET', '/v1/info', '', signRequest(good, 'GET', '/v1/info', '', target))).status;
// The captured, signed open request, for a replay after a restart (printed, not sent again here).
out.captured = { headers: h, body: openBody };
process.stdout.write(JSON.stringify(out));
