// The coordinator's side of the control channel: signed requests to one responder (naming it and its
// instance), answers accepted only when the responder signed them, a deadline on every call, errors that say
// what went wrong in operator terms, and retries (p-retry) for the idempotent calls.
import { request as httpRequest, Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import pRetry, { AbortError } from 'p-retry';
import { HEADER_NONCE, HEADER_SIGNATURE, openLine, responseSignature, sameSignature, signRequest } from '../control/auth.js';
import {
  API,
  HEARTBEAT_DEADLINE_MS,
  type InfoResponse,
  type OpenSessionRequest,
  type ProbeRequestBody,
  type ProbeStreamLine,
  type WitnessResponse,
} from '../control/protocol.js';
import { EXIT, UserError } from '../errors.js';

/** Network errors worth another try; anything else (an HTTP answer, a bad secret, a missed deadline) is final. */
export const RETRIED_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
export const RETRY_POLICY = { retries: 2, minTimeout: 200, maxTimeout: 1000, factor: 2 } as const;
/** The whole of one call may take this long (a witness log of 65,536 rows is a few MB). */
export const CALL_DEADLINE_MS = { default: 10_000, witness: 60_000 } as const;

export class ControlError extends UserError {
  readonly code = 'ECONTROL';
  constructor(
    message: string,
    readonly status: number | null,
    readonly errno: string | null,
  ) {
    super(message, EXIT.cannotRun);
    this.name = 'ControlError';
  }
}

function explain(errno: string | undefined, target: string, timeoutMs: number): string {
  switch (errno) {
    case 'ECONNREFUSED':
      return `nothing listens on ${target} (is the responder running there, on that control port?)`;
    case 'ETIMEDOUT':
      return `no answer from ${target} within ${timeoutMs / 1000} s (a firewall dropping the control port?)`;
    case 'EDEADLINE':
      return `responder stopped answering: ${target} said nothing for ${timeoutMs / 1000} s (stopped, frozen or overloaded?)`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to ${target}`;
    case 'ECONNRESET':
      return `${target} closed the connection`;
    default:
      return `cannot reach ${target}: ${errno ?? 'unknown error'}`;
  }
}

/** What a run needs of one responder's control channel: the seam runPlan's tests fill with a fake. */
export type ControlConnection = Pick<ControlClient, 'openSession' | 'probe' | 'witness' | 'closeSession' | 'hold' | 'renew' | 'explain' | 'close'> &
  Partial<Pick<ControlClient, 'release' | 'clearConntrack'>>;

interface CallOptions {
  onLine?: (line: unknown) => void;
  signal?: AbortSignal;
  /** Whole-call deadline (non-streaming calls). */
  deadlineMs?: number;
  /** Silence allowed on this call (default: the client's); a call the responder answers only after waiting needs more. */
  idleMs?: number;
}

export class ControlClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  readonly target: string;
  /** The responder's instance (from its signed /v1/info): every later request names it. */
  private instance: string | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly secret: Buffer,
    /** The responder's node address: requests name it, and it signs its answers with it. */
    readonly address: string,
    /** Silence longer than this (no byte, no heartbeat) means the responder stopped answering. */
    private readonly timeoutMs = 5000,
  ) {
    this.target = `${host}:${port}`;
  }

  close(): void {
    this.agent.destroy();
  }

  /** One request; resolves with the JSON body, or (streams) after the last signed line. */
  private raw(method: string, path: string, body: unknown, o: CallOptions = {}): Promise<unknown> {
    const text = body === undefined ? '' : JSON.stringify(body);
    const signed = signRequest(this.secret, method, path, text, { address: this.address, instance: this.instance });
    const nonce = signed[HEADER_NONCE]!;
    const headers = { ...signed, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) };
    const idleMs = o.idleMs ?? (o.onLine ? Math.max(this.timeoutMs, HEARTBEAT_DEADLINE_MS) : this.timeoutMs);
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: ControlError) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        reject(err);
        req.destroy();
      };
      const ok = (v: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(v);
      };
      const req: ClientRequest = httpRequest({ host: this.host, port: this.port, method, path, headers, agent: this.agent, signal: o.signal }, (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const instance = String(res.headers['x-cnt-instance'] ?? '');
        res.setEncoding('utf8');
        let buf = '';
        let size = 0;
        let n = 0;
        const streaming = !!o.onLine && status === 200;
        res.on('data', (chunk: string) => {
          size += chunk.length;
          if (!streaming) {
            if (size < 64 << 20) buf += chunk;
            return;
          }
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const signedLine = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!signedLine.trim()) continue;
            const l = openLine(this.secret, { address: this.address, instance, nonce, n: n++ }, signedLine);
            if (l === null) return fail(new ControlError(`${this.target} streamed a line without our responder's signature — is that port really our responder (an impostor)?`, status, 'EBADSIG'));
            try {
              o.onLine!(JSON.parse(l));
            } catch (err) {
              return fail(new ControlError(`${this.target}: ${(err as Error).message}`, status, null));
            }
          }
        });
        res.on('end', () => {
          if (streaming) return ok(undefined);
          const sig = res.headers[HEADER_SIGNATURE];
          const genuine =
            typeof sig === 'string' && sameSignature(sig, responseSignature(this.secret, { address: this.address, instance, nonce, status, body: buf }));
          if (status === 401 && !genuine) {
            return fail(new ControlError(`${this.target} refused our credentials: the secret differs from the responder's (or the clocks are more than 30 s apart)`, 401, null));
          }
          if (!genuine) {
            return fail(
              new ControlError(`${this.target} answered ${status} without our responder's signature — a process there without the secret (an impostor?), or not a calico-nettest responder of this version`, status, 'EBADSIG'),
            );
          }
          let parsed: unknown = undefined;
          try {
            parsed = buf.trim() ? JSON.parse(buf) : undefined;
          } catch {
            return fail(new ControlError(`${this.target} answered ${status} with something that is not JSON`, status, null));
          }
          if (status < 200 || status >= 300) {
            const msg = (parsed as { error?: string } | undefined)?.error ?? `HTTP ${status}`;
            return fail(new ControlError(`${this.target}: ${msg}`, status, null));
          }
          if (instance) this.instance ??= instance;
          ok(parsed);
        });
        res.on('error', (err: NodeJS.ErrnoException) => fail(new ControlError(explain(err.code, this.target, idleMs), null, err.code ?? null)));
      });
      // Silence: no byte (and, on a stream, no heartbeat) for idleMs. Whole call: deadlineMs (streams: none).
      req.setTimeout(idleMs, () => fail(new ControlError(explain('EDEADLINE', this.target, idleMs), null, 'EDEADLINE')));
      const deadline = setTimeout(
        () => fail(new ControlError(explain('EDEADLINE', this.target, o.deadlineMs ?? 0), null, 'EDEADLINE')),
        o.onLine ? 2 ** 31 - 1 : (o.deadlineMs ?? CALL_DEADLINE_MS.default),
      );
      deadline.unref();
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') fail(new ControlError(`request to ${this.target} aborted`, null, 'ABORT_ERR'));
        else fail(new ControlError(explain(err.code, this.target, idleMs), null, err.code ?? null));
      });
      req.end(text);
    });
  }

  /** Idempotent calls are retried on network errors only. */
  private retried<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return pRetry(
      async () => {
        try {
          return await fn();
        } catch (err) {
          if (err instanceof ControlError && err.errno && RETRIED_CODES.has(err.errno) && !signal?.aborted) throw err;
          throw new AbortError(err as Error);
        }
      },
      { ...RETRY_POLICY, signal },
    );
  }

  /** The responder's signed self-description; learns its instance, which every later request names. */
  async info(signal?: AbortSignal): Promise<InfoResponse> {
    const r = (await this.retried(() => this.raw('GET', `${API}/info`, undefined, { signal }), signal)) as InfoResponse;
    if (r.address !== this.address) throw new ControlError(`${this.target} is the responder for ${r.address}, not ${this.address} (inventory and --listen disagree?)`, 200, null);
    this.instance = r.instance;
    return r;
  }

  private async known(signal?: AbortSignal): Promise<void> {
    if (!this.instance) await this.info(signal);
  }

  /** `conntrack`: whether the node's kernel tracks connections (null or absent: cannot tell, or an older responder). */
  async openSession(body: OpenSessionRequest, signal?: AbortSignal): Promise<{ id: string; capture: boolean; conntrack?: boolean | null }> {
    await this.known(signal);
    return (await this.retried(() => this.raw('POST', `${API}/sessions`, body, { signal }), signal)) as { id: string; capture: boolean; conntrack?: boolean | null };
  }

  /** Stream the outcomes of this node's probes (heartbeats keep it alive; silence past the deadline ends it). */
  async probe(id: string, body: ProbeRequestBody, onLine: (l: ProbeStreamLine) => void, signal?: AbortSignal): Promise<void> {
    await this.known(signal);
    await this.raw('POST', `${API}/sessions/${id}/probe`, body, { onLine: (l) => onLine(l as ProbeStreamLine), signal });
  }

  /**
   * Hold the session: a stream the responder keeps open, whose close ends the session there (a killed coordinator
   * leaves nothing behind). Resolves when the hold ends, for whatever reason; never rejects.
   */
  async hold(id: string, signal: AbortSignal): Promise<string | null> {
    try {
      await this.raw('GET', `${API}/sessions/${id}/hold`, undefined, { onLine: () => undefined, signal });
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** Renew the session's lease (in case the hold connection itself is what broke). */
  async renew(id: string, signal?: AbortSignal): Promise<void> {
    await this.raw('POST', `${API}/sessions/${id}/renew`, undefined, { signal });
  }

  witness(id: string, signal?: AbortSignal, deadlineMs: number = CALL_DEADLINE_MS.witness): Promise<WitnessResponse> {
    return this.retried(() => this.raw('GET', `${API}/sessions/${id}/witness`, undefined, { signal, deadlineMs }) as Promise<WitnessResponse>, signal);
  }

  /** --explain: arm tracing or collect what it saw (src/explain/route.ts). Not retried: arming twice is not idempotent. */
  async explain<T>(id: string, body: unknown, signal?: AbortSignal, timeoutMs = 60_000): Promise<T> {
    await this.known(signal);
    return (await this.raw('POST', `${API}/sessions/${id}/explain`, body, { signal, deadlineMs: timeoutMs, idleMs: timeoutMs })) as T;
  }

  /** preflight: this node's findings (src/preflight/route.ts). Retried on network errors: it changes nothing on the node. */
  async preflight(body: unknown, signal?: AbortSignal, timeoutMs = 60_000): Promise<unknown> {
    await this.known(signal);
    return this.retried(() => this.raw('POST', '/v1/preflight', body, { signal, deadlineMs: timeoutMs, idleMs: timeoutMs }), signal);
  }

  /** Have the responder remove the IP-in-IP conntrack entries this session's probes made. */
  async clearConntrack(id: string, signal?: AbortSignal): Promise<number> {
    const r = (await this.raw('POST', `${API}/sessions/${id}/conntrack`, undefined, { signal })) as { deleted?: number } | undefined;
    return r?.deleted ?? 0;
  }

  /** Let the session's second-direction IP-in-IP probes go (every node has cleared its conntrack entries). */
  async release(id: string, signal?: AbortSignal): Promise<void> {
    await this.raw('POST', `${API}/sessions/${id}/release`, undefined, { signal });
  }

  async closeSession(id: string, deadlineMs: number = CALL_DEADLINE_MS.default): Promise<void> {
    await this.raw('DELETE', `${API}/sessions/${id}`, undefined, { deadlineMs }).catch(() => undefined);
  }
}
