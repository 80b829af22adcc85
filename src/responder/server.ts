// The responder's control server: authenticated HTTP + JSON, signed answers. A request is authenticated from
// its headers before a byte of body is read; bodies are capped per route and must arrive within seconds;
// connections are capped in all and per peer. Unauthenticated or replayed requests get 401 and nothing else
// (but GET /healthz: "ok");
// probes go only to the session's peers; a session ends when its coordinator's hold connection closes or its
// lease runs out.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { HEADER_INSTANCE, HEADER_SIGNATURE, NonceCache, bodyMatches, responseSignature, signLine, verifyRequestHeaders } from '../control/auth.js';
import {
  API,
  BODY_LIMITS,
  BadRequest,
  HEARTBEAT_MS,
  parseOpenSession,
  parseProbeRequest,
  unpackInbound,
  type InfoResponse,
  type ProbeStreamLine,
  type WitnessResponse,
  type WitnessRow,
} from '../control/protocol.js';
import { deriveSessionKey } from '../packets/probe.js';
import { CATALOGUE, witnessPorts } from '../checks/catalogue.js';
import type { Prober } from '../checks/prober.js';
import { Session, SessionError, type SessionStore } from './sessions.js';
import type { Witness } from './witness.js';
import type { KernelEvidence } from './kernel-evidence.js';
import { runOrdered } from './probe-order.js';
import type { SourceOutcome } from '../types.js';
import { EXPLAIN_PATH, handleExplain } from '../explain/route.js';
import type { Explainer } from '../explain/host.js';
import { PREFLIGHT_BODY_LIMIT, PREFLIGHT_PATH, localPreflight, makePreflightHandler, type PreflightRunner } from '../preflight/route.js';

export interface ControlDeps {
  secret: Buffer;
  /** This responder's address (requests must name it) and instance (requests must name this run). */
  address: string;
  instance: string;
  store: SessionStore;
  witness: Witness;
  prober: Prober;
  info: () => InfoResponse;
  /** --explain's tracing (absent: the call is 404). */
  explainer?: Explainer;
  /** preflight's host checks (default: this host's, src/preflight/route.ts; tests give a fake). */
  preflight?: PreflightRunner;
  log: (msg: string) => void;
  /** The node's own kernel's evidence (routes, rp_filter, conntrack); absent in tests that do not need it. */
  kernel?: KernelEvidence;
  limits?: Partial<ServerLimits>;
}

export interface ServerLimits {
  /** Connections open at once, all peers together. */
  maxConnections: number;
  /** Connections open at once from one address. */
  perPeerConnections: number;
  /** Headers must be complete within this. */
  headersTimeoutMs: number;
  /** An authenticated request's body must be complete within this. */
  bodyTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = { maxConnections: 256, perPeerConnections: 16, headersTimeoutMs: 5000, bodyTimeoutMs: 10_000 };

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Read exactly `length` bytes (the declared, authenticated length) within `timeoutMs`. */
function readBody(req: IncomingMessage, length: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (length === 0 && req.complete) {
      resolve(Buffer.alloc(0));
      return;
    }
    const body = Buffer.alloc(length);
    let size = 0;
    const timer = setTimeout(() => {
      reject(new HttpError(408, `body not complete within ${timeoutMs / 1000} s`));
      req.destroy();
    }, timeoutMs);
    req.on('data', (c: Buffer) => {
      if (size + c.length > length) {
        clearTimeout(timer);
        reject(new HttpError(400, 'body longer than its declared length'));
        req.destroy();
        return;
      }
      c.copy(body, size);
      size += c.length;
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(body.subarray(0, size));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

/** Refuse without reading the body, and close the connection (its unread body goes with it). */
function refuse(res: ServerResponse, status: number, message: string): void {
  const text = JSON.stringify({ error: message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), connection: 'close' });
  res.end(text, () => res.socket?.destroy());
}

const SESSION_PATH = /^\/v1\/sessions\/([0-9a-f]{16})(\/probe|\/witness|\/renew|\/hold|\/conntrack|\/release)?$/;

function bodyLimit(method: string, path: string): number {
  if (method === 'POST' && path === `${API}/sessions`) return BODY_LIMITS.openSession;
  if (method === 'POST' && path.endsWith('/probe')) return BODY_LIMITS.probe;
  if (method === 'POST' && EXPLAIN_PATH.test(path)) return BODY_LIMITS.explain;
  if (method === 'POST' && path === PREFLIGHT_PATH) return PREFLIGHT_BODY_LIMIT;
  return BODY_LIMITS.other;
}

export function createControlServer(deps: ControlDeps): Server {
  const limits = { ...DEFAULT_LIMITS, ...deps.limits };
  const nonces = new NonceCache();
  const preflight = makePreflightHandler(deps.preflight ?? localPreflight, deps.log);
  /** Sessions whose second-direction IP-in-IP probes wait for the coordinator's release. */
  const releases = new Map<string, () => void>();
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      // Bodies get their own per-request timer (readBody); a probe stream's request is long-lived on purpose.
      requestTimeout: 0,
      keepAliveTimeout: 5000,
      maxHeaderSize: 8192,
      // Check for stalled headers every second (the default, 30 s, lets slow-header connections linger).
      connectionsCheckingInterval: 1000,
    },
    (req, res) => {
      void handle(req, res).catch((err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (err instanceof HttpError) reply(res, err.status, { error: err.message });
        else if (err instanceof BadRequest) reply(res, 400, { error: err.message });
        else if (err instanceof SessionError) reply(res, err.status, { error: err.message });
        else {
          const id = randomUUID();
          deps.log(`internal error ${id}: ${(err as Error).stack ?? String(err)}`);
          reply(res, 500, { error: `internal error ${id} (see the responder's log)` });
        }
      });
    },
  );
  server.maxHeadersCount = 50;
  server.maxConnections = limits.maxConnections;
  const perPeer = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress ?? '?';
    const n = (perPeer.get(peer) ?? 0) + 1;
    if (n > limits.perPeerConnections) {
      socket.destroy();
      return;
    }
    perPeer.set(peer, n);
    socket.once('close', () => {
      const left = (perPeer.get(peer) ?? 1) - 1;
      if (left <= 0) perPeer.delete(peer);
      else perPeer.set(peer, left);
    });
  });

  /** The nonce of the request each response answers (responses to unauthenticated requests go unsigned). */
  const nonceOf = new WeakMap<ServerResponse, string>();
  function reply(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), [HEADER_INSTANCE]: deps.instance };
    const nonce = nonceOf.get(res);
    if (nonce) headers[HEADER_SIGNATURE] = responseSignature(deps.secret, { address: deps.address, instance: deps.instance, nonce, status, body: text });
    res.writeHead(status, headers);
    res.end(text);
  }

  /** A signed NDJSON stream with a heartbeat line every HEARTBEAT_MS; returns its writer and its closer. */
  function stream(res: ServerResponse): { line: (l: ProbeStreamLine) => void; end: () => void } {
    const nonce = nonceOf.get(res)!;
    let n = 0;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', [HEADER_INSTANCE]: deps.instance });
    const line = (l: ProbeStreamLine) => {
      if (res.writableEnded || res.destroyed) return;
      res.write(`${signLine(deps.secret, { address: deps.address, instance: deps.instance, nonce, n: n++, line: JSON.stringify(l) })}\n`);
    };
    const beat = setInterval(() => line({ alive: Date.now() }), HEARTBEAT_MS);
    return {
      line,
      end: () => {
        clearInterval(beat);
        res.end();
      },
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? '/';
    // The kubelet's readiness probe, before auth: it proves the server answers and tells nothing else.
    if ((method === 'GET' || method === 'HEAD') && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3, 'cache-control': 'no-store' });
      res.end(method === 'HEAD' ? undefined : 'ok\n');
      return;
    }
    const auth = verifyRequestHeaders(deps.secret, req.headers, method, url, { address: deps.address, instance: deps.instance }, nonces, {
      instanceOptional: method === 'GET' && path === `${API}/info`,
    });
    if (!auth.ok) {
      deps.log(`refused ${method} ${path} from ${req.socket.remoteAddress}: ${auth.reason}`);
      refuse(res, 401, 'unauthorized');
      return;
    }
    nonceOf.set(res, auth.nonce);
    const limit = bodyLimit(method, path);
    if (auth.length > limit) {
      // Authenticated, so worth an answer; the body is not read.
      reply(res, 413, { error: `body of ${auth.length} bytes is larger than the ${limit} allowed for ${method} ${path}` });
      res.once('finish', () => res.socket?.destroy());
      return;
    }
    const body = await readBody(req, auth.length, limits.bodyTimeoutMs);
    if (!bodyMatches(body, auth.length, auth.digest)) throw new HttpError(401, 'body does not match its signature');
    const now = Date.now();
    if (method === 'GET' && path === `${API}/info`) return reply(res, 200, deps.info());
    if (method === 'POST' && path === `${API}/sessions`) {
      const o = parseOpenSession(parseJson(body));
      const idBytes = Buffer.from(o.id, 'hex');
      const inbound = unpackInbound(o.inbound);
      const s = deps.store.open(new Session(o.id, idBytes, deriveSessionKey(deps.secret, idBytes), new Set(o.peers), o.ports, inbound, o.ttlMs, now, deps.witness.drops()), now);
      deps.witness.addPorts(witnessPorts(Object.entries(o.ports)));
      deps.witness.refresh(now);
      const tracking = deps.kernel ? await deps.kernel.open(s) : null;
      if (s.expiresAtMs === now + o.ttlMs) deps.log(`session ${s.id} opened from ${req.socket.remoteAddress}: ${inbound.size} inbound flows, lease ${o.ttlMs / 1000} s`);
      // `conntrack`: whether this node's kernel tracks connections (null: cannot tell): the coordinator orders IP-in-IP only where one does.
      return reply(res, 201, { id: s.id, expiresAtMs: s.expiresAtMs, capture: deps.witness.capture, conntrack: tracking });
    }
    if (path === PREFLIGHT_PATH) return preflight(method, parseJson(body), (status, b) => reply(res, status, b));
    const ex = deps.explainer ? EXPLAIN_PATH.exec(path) : null;
    if (ex) {
      const session = deps.store.get(ex[1]!, now);
      session?.renew(now);
      return handleExplain(deps.explainer!, session, method, parseJson(body), (status, b) => reply(res, status, b));
    }
    const m = SESSION_PATH.exec(path);
    if (!m) throw new HttpError(404, `no such endpoint: ${method} ${path}`);
    const session = deps.store.get(m[1]!, now);
    if (!session) throw new HttpError(404, `no such session ${m[1]} (expired?)`);
    session.renew(now);
    const end = () => {
      deps.store.close(session.id);
      deps.witness.refresh();
      void deps.explainer?.disarm(session.id);
      // Whatever ended it (DELETE, the hold connection closing): remove the conntrack entries its probes made.
      void deps.kernel?.close(session.id);
    };
    if (method === 'DELETE' && !m[2]) {
      end();
      return reply(res, 200, { closed: session.id });
    }
    if (method === 'POST' && m[2] === '/renew') return reply(res, 200, { id: session.id, expiresAtMs: session.expiresAtMs });
    if (method === 'GET' && m[2] === '/hold') {
      // The coordinator holds this open for the whole run: when it goes (killed, crashed, Ctrl-C), so does the session.
      session.holds++;
      const s = stream(res);
      s.line({ alive: now });
      res.on('close', () => {
        s.end();
        if (--session.holds === 0 && deps.store.get(session.id, Date.now()) === session) {
          deps.log(`session ${session.id} ended: its coordinator's hold connection closed`);
          end();
        }
      });
      return;
    }
    if (method === 'GET' && m[2] === '/witness') {
      // Read what is still queued before answering; if the queues cannot be drained (a flood), say so: lost >= 1.
      const caughtUp = await deps.witness.settle(2000);
      const rows: WitnessResponse['rows'] = [];
      // The sizes seen only for a sized check (catalogue `sizing`: mtu): its evidence; every other row stays short.
      for (const [idx, e] of session.witnessed) {
        const row: WitnessRow = [idx, e.iface ? 1 : 0, e.ifname, e.socket ? 1 : 0, e.observedSource, e.count, e.flow.src, e.flow.check, e.flow.port];
        if (CATALOGUE[e.flow.check].sizing) row.push(e.ifaceSize, e.socketSize);
        rows.push(row);
      }
      const lost = session.shed + Math.max(0, deps.witness.drops() - session.dropsAtOpen) || (caughtUp ? 0 : 1);
      const kernel = await deps.kernel?.facts(session);
      return reply(res, 200, { capture: deps.witness.capture, dropped: session.droppedRecords, forged: session.forged, lost, rows, ...(kernel ? { kernel } : {}) } satisfies WitnessResponse);
    }
    if (method === 'POST' && m[2] === '/conntrack') {
      return reply(res, 200, { deleted: (await deps.kernel?.clearConntrack(session)) ?? 0 });
    }
    if (method === 'POST' && m[2] === '/release') {
      releases.get(session.id)?.();
      return reply(res, 200, { released: session.id });
    }
    if (method === 'POST' && m[2] === '/probe') {
      const p = parseProbeRequest(parseJson(body));
      const outside = p.probes.find((x) => !session.peers.has(x.to));
      if (outside) throw new HttpError(403, `probe to ${outside.to} refused: not a peer of session ${session.id}`);
      if (session.probing) throw new HttpError(409, `session ${session.id} is already probing`);
      for (const x of p.probes) session.outbound.set(`${x.to}/${x.idx}`, { src: deps.address, check: x.check, transport: x.transport, port: x.port });
      session.probing = true;
      const abort = new AbortController();
      res.on('close', () => abort.abort());
      const s = stream(res);
      const capture = deps.witness.capture;
      // Whether "not seen leaving" still means something: not once the capture lost packets (a flood).
      const captureTrusted = () => session.shed === 0 && deps.witness.drops() === session.dropsAtOpen && !deps.witness.behind();
      try {
        await runOrdered({
          prober: deps.prober,
          session: { idBytes: session.idBytes, key: session.key, left: (dst, idx) => (capture && captureTrusted() ? session.left.get(`${dst}/${idx}`) : null) },
          probes: p.probes,
          opts: { tries: p.tries, timeouts: p.timeouts, concurrency: p.concurrency, spacingMs: p.spacingMs, burst: p.burst },
          onOutcome: (outcome: SourceOutcome) => s.line({ outcome }),
          clear: async () => (await deps.kernel?.clearConntrack(session)) ?? 0,
          released: new Promise<void>((r) => releases.set(session.id, r)),
          onCleared: (cleared) => s.line({ cleared }),
          signal: abort.signal,
        });
        s.line({ done: true, capture });
      } catch (err) {
        s.line({ error: (err as Error).message });
      } finally {
        releases.delete(session.id);
        session.probing = false;
        session.renew(Date.now());
        s.end();
      }
      return;
    }
    throw new HttpError(405, `${method} not allowed on ${path}`);
  }
  return server;
}
