// The responder's control server: authenticated HTTP + JSON. Unauthenticated or replayed requests get
// 401 and nothing else (but GET /healthz: "ok"); bodies are capped; probes go only to the session's peers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { NonceCache, verifyRequest } from '../control/auth.js';
import {
  API,
  BadRequest,
  MAX_BODY_BYTES,
  parseOpenSession,
  parseProbeRequest,
  type InfoResponse,
  type ProbeStreamLine,
  type WitnessResponse,
} from '../control/protocol.js';
import { deriveSessionKey } from '../packets/probe.js';
import { witnessPorts } from '../checks/catalogue.js';
import type { Prober } from '../checks/prober.js';
import { Session, SessionError, type SessionStore } from './sessions.js';
import type { Witness } from './witness.js';
import type { SourceOutcome } from '../types.js';
import { EXPLAIN_PATH, handleExplain } from '../explain/route.js';
import type { Explainer } from '../explain/host.js';
import { PREFLIGHT_PATH, localPreflight, makePreflightHandler, type PreflightRunner } from '../preflight/route.js';

export interface ControlDeps {
  secret: Buffer;
  store: SessionStore;
  witness: Witness;
  prober: Prober;
  info: () => InfoResponse;
  /** --explain's tracing (absent: the call is 404). */
  explainer?: Explainer;
  /** preflight's host checks (default: this host's, src/preflight/route.ts; tests give a fake). */
  preflight?: PreflightRunner;
  log: (msg: string) => void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

export function createControlServer(deps: ControlDeps): Server {
  const nonces = new NonceCache();
  const preflight = makePreflightHandler(deps.preflight ?? localPreflight, deps.log);
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) send(res, err.status, { error: err.message });
      else if (err instanceof BadRequest) send(res, 400, { error: err.message });
      else if (err instanceof SessionError) send(res, err.status, { error: err.message });
      else {
        const id = randomUUID();
        deps.log(`internal error ${id}: ${(err as Error).stack ?? String(err)}`);
        send(res, 500, { error: `internal error ${id} (see the responder's log)` });
      }
    });
  });
  server.requestTimeout = 10 * 60_000;
  server.headersTimeout = 15_000;
  server.maxHeadersCount = 50;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    // The kubelet's readiness probe, before auth: it proves the server answers and tells nothing else.
    if ((method === 'GET' || method === 'HEAD') && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3, 'cache-control': 'no-store' });
      res.end(method === 'HEAD' ? undefined : 'ok\n');
      return;
    }
    const body = await readBody(req);
    const auth = verifyRequest(deps.secret, req.headers, method, req.url ?? '/', body, nonces);
    if (!auth.ok) {
      deps.log(`refused ${method} ${path} from ${req.socket.remoteAddress}: ${auth.reason}`);
      send(res, 401, { error: 'unauthorized' });
      return;
    }
    const now = Date.now();
    if (method === 'GET' && path === `${API}/info`) return send(res, 200, deps.info());
    if (method === 'POST' && path === `${API}/sessions`) {
      const o = parseOpenSession(parseJson(body));
      const idBytes = Buffer.from(o.id, 'hex');
      const s = deps.store.open(new Session(o.id, idBytes, deriveSessionKey(deps.secret, idBytes), new Set(o.peers), o.ports, now + o.ttlMs, o.expect), now);
      deps.witness.addPorts(witnessPorts(Object.entries(o.ports)));
      deps.witness.refresh(now);
      return send(res, 201, { id: s.id, expiresAtMs: s.expiresAtMs, capture: deps.witness.capture });
    }
    if (path === PREFLIGHT_PATH) return preflight(method, parseJson(body), (status, b) => send(res, status, b));
    const ex = deps.explainer ? EXPLAIN_PATH.exec(path) : null;
    if (ex) return handleExplain(deps.explainer!, deps.store.get(ex[1]!, now), method, parseJson(body), (status, b) => send(res, status, b));
    const m = /^\/v1\/sessions\/([0-9a-f]{16})(\/probe|\/witness)?$/.exec(path);
    if (!m) throw new HttpError(404, `no such endpoint: ${method} ${path}`);
    const session = deps.store.get(m[1]!, now);
    if (!session) throw new HttpError(404, `no such session ${m[1]} (expired?)`);
    if (method === 'DELETE' && !m[2]) {
      deps.store.close(session.id);
      deps.witness.refresh();
      void deps.explainer?.disarm(session.id);
      return send(res, 200, { closed: session.id });
    }
    if (method === 'GET' && m[2] === '/witness') {
      const rows: WitnessResponse['rows'] = [];
      for (const [idx, e] of session.witnessed) rows.push([idx, e.iface ? 1 : 0, e.ifname, e.socket ? 1 : 0, e.observedSource, e.count]);
      return send(res, 200, { capture: deps.witness.capture, dropped: session.droppedRecords, rows } satisfies WitnessResponse);
    }
    if (method === 'POST' && m[2] === '/probe') {
      const p = parseProbeRequest(parseJson(body));
      const outside = p.probes.find((x) => !session.peers.has(x.to));
      if (outside) throw new HttpError(403, `probe to ${outside.to} refused: not a peer of session ${session.id}`);
      if (session.probing) throw new HttpError(409, `session ${session.id} is already probing`);
      session.probing = true;
      const abort = new AbortController();
      res.on('close', () => abort.abort());
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const line = (l: ProbeStreamLine) => res.write(`${JSON.stringify(l)}\n`);
      const capture = deps.witness.capture;
      try {
        await deps.prober.run(
          { idBytes: session.idBytes, key: session.key, left: (dst, idx) => (capture ? session.left.get(`${dst}/${idx}`) : null) },
          p.probes,
          { tries: p.tries, timeouts: p.timeouts, concurrency: p.concurrency, spacingMs: p.spacingMs },
          (outcome: SourceOutcome) => line({ outcome }),
          abort.signal,
        );
        line({ done: true, capture });
      } catch (err) {
        line({ error: (err as Error).message });
      } finally {
        session.probing = false;
        res.end();
      }
      return;
    }
    throw new HttpError(405, `${method} not allowed on ${path}`);
  }
  return server;
}
