// The coordinator's side of the control channel: signed requests to one responder, with errors that say
// what went wrong in operator terms, and retries (p-retry) for the idempotent calls.
import { request as httpRequest, Agent } from 'node:http';
import pRetry, { AbortError } from 'p-retry';
import { signRequest } from '../control/auth.js';
import { API, type InfoResponse, type OpenSessionRequest, type ProbeRequestBody, type ProbeStreamLine, type WitnessResponse } from '../control/protocol.js';
import { EXIT, UserError } from '../errors.js';

/** Network errors worth another try; anything else (an HTTP answer, a bad secret) is final. */
export const RETRIED_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
export const RETRY_POLICY = { retries: 2, minTimeout: 200, maxTimeout: 1000, factor: 2 } as const;

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
export type ControlConnection = Pick<ControlClient, 'openSession' | 'probe' | 'witness' | 'closeSession' | 'close'>;

export class ControlClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  readonly target: string;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly secret: Buffer,
    private readonly timeoutMs = 5000,
  ) {
    this.target = `${host}:${port}`;
  }

  close(): void {
    this.agent.destroy();
  }

  /** One request; resolves with the response stream's lines (NDJSON) or the JSON body. */
  private raw(method: string, path: string, body: unknown, onLine?: (line: unknown) => void, signal?: AbortSignal, timeoutMs = this.timeoutMs): Promise<unknown> {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers = { ...signRequest(this.secret, method, path, text), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) };
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: this.host, port: this.port, method, path, headers, agent: this.agent, signal }, (res) => {
        const status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        let buf = '';
        let size = 0;
        res.on('data', (chunk: string) => {
          size += chunk.length;
          if (!onLine || status !== 200) {
            if (size < 64 << 20) buf += chunk;
            return;
          }
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const l = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (l.trim()) {
              try {
                onLine(JSON.parse(l));
              } catch (err) {
                req.destroy(err as Error);
                return;
              }
            }
          }
        });
        res.on('end', () => {
          if (status === 401) {
            reject(new ControlError(`${this.target} refused our credentials: the secret differs from the responder's (or the clocks are more than 30 s apart)`, 401, null));
            return;
          }
          let parsed: unknown = undefined;
          try {
            parsed = buf.trim() ? JSON.parse(buf) : undefined;
          } catch {
            if (!onLine || status !== 200) {
              reject(new ControlError(`${this.target} answered ${status} with something that is not JSON — is that port really a calico-nettest responder?`, status, null));
              return;
            }
          }
          if (status < 200 || status >= 300) {
            const msg = (parsed as { error?: string } | undefined)?.error ?? `HTTP ${status}`;
            reject(new ControlError(`${this.target}: ${msg}`, status, null));
            return;
          }
          resolve(parsed);
        });
        res.on('error', (err: NodeJS.ErrnoException) => reject(new ControlError(explain(err.code, this.target, timeoutMs), null, err.code ?? null)));
      });
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') reject(new ControlError(`request to ${this.target} aborted`, null, 'ABORT_ERR'));
        else reject(new ControlError(explain(err.code, this.target, timeoutMs), null, err.code ?? null));
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

  info(signal?: AbortSignal): Promise<InfoResponse> {
    return this.retried(() => this.raw('GET', `${API}/info`, undefined, undefined, signal) as Promise<InfoResponse>, signal);
  }

  openSession(body: OpenSessionRequest, signal?: AbortSignal): Promise<{ id: string; capture: boolean }> {
    return this.retried(() => this.raw('POST', `${API}/sessions`, body, undefined, signal) as Promise<{ id: string; capture: boolean }>, signal);
  }

  /** Stream the outcomes of this node's probes. */
  async probe(id: string, body: ProbeRequestBody, onLine: (l: ProbeStreamLine) => void, signal?: AbortSignal, timeoutMs = 10 * 60_000): Promise<void> {
    await this.raw('POST', `${API}/sessions/${id}/probe`, body, (l) => onLine(l as ProbeStreamLine), signal, timeoutMs);
  }

  witness(id: string, signal?: AbortSignal): Promise<WitnessResponse> {
    return this.retried(() => this.raw('GET', `${API}/sessions/${id}/witness`, undefined, undefined, signal, 60_000) as Promise<WitnessResponse>, signal);
  }

  /** --explain: arm tracing or collect what it saw (src/explain/route.ts). Not retried: arming twice is not idempotent. */
  explain<T>(id: string, body: unknown, signal?: AbortSignal, timeoutMs = 60_000): Promise<T> {
    return this.raw('POST', `${API}/sessions/${id}/explain`, body, undefined, signal, timeoutMs) as Promise<T>;
  }

  /** preflight: this node's findings (src/preflight/route.ts). Retried on network errors: it changes nothing on the node. */
  preflight(body: unknown, signal?: AbortSignal, timeoutMs = 60_000): Promise<unknown> {
    return this.retried(() => this.raw('POST', '/v1/preflight', body, undefined, signal, timeoutMs), signal);
  }

  async closeSession(id: string): Promise<void> {
    await this.raw('DELETE', `${API}/sessions/${id}`, undefined).catch(() => undefined);
  }
}
