// Run inside a lab's router namespace: connections without the secret that try to make a responder hold memory
// or sockets — big declared bodies trickled slowly, slow headers, forged signatures with big bodies. Bounded:
// CONNS connections, MS milliseconds. Prints { opened, closedByServer, openAtEnd, answered } as one JSON line.
//   node body-attack.mjs HOST PORT CONNS MS
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
const [host, portText, connsText, msText] = process.argv.slice(2);
if (!host?.startsWith('198.18.')) throw new Error('lab addresses only (198.18.0.0/15)');
const conns = Math.min(Number(connsText), 5000);
const ms = Math.min(Number(msText), 60_000);
let opened = 0;
let closedByServer = 0;
let answered = 0;
const open = new Set();
const chunk = Buffer.alloc(64 << 10, 0x7b);
for (let i = 0; i < conns; i++) {
  const s = connect(Number(portText), host);
  s.on('error', () => undefined);
  s.on('data', () => answered++);
  s.on('connect', () => {
    opened++;
    open.add(s);
    const kind = i % 3;
    const len = 8 << 20;
    if (kind === 0) {
      // No authentication at all, a huge declared body, sent as fast as the server takes it.
      s.write(`POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n`);
      const pump = () => {
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
    } else if (kind === 1) {
      // Slow headers: a byte every 200 ms, never finished.
      s.write('POST /v1/sessions HTTP/1.1\r\nHost: x\r\n');
      const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write('X')), 200);
    } else {
      // Forged authentication headers (well-formed, wrong signature), then a slow body.
      const h = ['x-cnt-time: ' + Date.now(), 'x-cnt-nonce: ' + randomBytes(16).toString('hex'), 'x-cnt-for: ' + host, 'x-cnt-instance: ' + 'a'.repeat(32), 'x-cnt-body-sha256: ' + 'b'.repeat(64), 'x-cnt-signature: ' + randomBytes(32).toString('hex')];
      s.write(`POST /v1/sessions HTTP/1.1\r\nHost: x\r\n${h.join('\r\n')}\r\nContent-Length: ${len}\r\n\r\n`);
      const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write(chunk.subarray(0, 1024))), 100);
    }
  });
  s.on('close', () => {
    if (open.delete(s)) closedByServer++;
  });
}
setTimeout(() => {
  const openAtEnd = open.size;
  for (const s of open) {
    open.delete(s);
    s.destroy();
  }
  process.stdout.write(`${JSON.stringify({ opened, closedByServer, openAtEnd, answered })}\n`);
  process.exit(0);
}, ms);
