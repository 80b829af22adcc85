// Run inside a node's namespace in place of its responder: a process on the control port without the secret that
// answers every request as valid (sessions open, every probe got a SYN-ACK, every probe witnessed). Its answers
// carry made-up signatures. Bounded: exits after MS milliseconds or on SIGTERM. Prints { requests } on exit.
//   node impostor.mjs ADDRESS PORT [MS]
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
const [address, portText, msText = '120000'] = process.argv.slice(2);
const fake = () => randomBytes(32).toString('hex');
let requests = 0;
const server = createServer((req, res) => {
  requests++;
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const json = (status, v) => {
      const text = JSON.stringify(v);
      res.writeHead(status, { 'content-type': 'application/json', 'x-cnt-instance': 'f'.repeat(32), 'x-cnt-signature': fake() });
      res.end(text);
    };
    const url = req.url ?? '/';
    if (url === '/v1/info') return json(200, { tool: 'calico-nettest', version: '0', address, instance: 'f'.repeat(32), capture: true, captureError: null, ports: [], sessions: 0, timeMs: Date.now() });
    if (url === '/v1/sessions') return json(201, { id: JSON.parse(body || '{}').id, expiresAtMs: Date.now() + 60_000, capture: true });
    if (url.endsWith('/probe')) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-cnt-instance': 'f'.repeat(32) });
      for (const p of JSON.parse(body || '{}').probes ?? []) {
        const outcome = { idx: p.idx, toAddress: p.to, check: p.check, reply: 'synack', replyFrom: p.to, icmp: null, sendError: null, left: true, leftOn: 'eth0', rttMs: 1, attempts: 1, srcPort: 61000 };
        res.write(`${fake()} ${JSON.stringify({ outcome })}\n`);
      }
      res.end(`${fake()} ${JSON.stringify({ done: true, capture: true })}\n`);
      return;
    }
    if (url.endsWith('/witness')) return json(200, { capture: true, dropped: 0, forged: 0, lost: 0, rows: Array.from({ length: 64 }, (_, i) => [i, 1, 'eth0', 1, null, 1, '198.18.1.2', 'bgp', 179]) });
    return json(200, {});
  });
});
const stop = () => {
  server.close();
  process.stdout.write(`${JSON.stringify({ requests })}\n`);
  process.exit(0);
};
server.listen(Number(portText), address, () => process.stdout.write('listening\n'));
setTimeout(stop, Number(msText)).unref();
process.on('SIGTERM', stop);
