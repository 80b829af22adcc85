// `calico-nettest responder`: witness sockets + prober + control server on one node. Opens every raw
// socket and privileged port first, then (with --user) drops privileges; SIGTERM/SIGINT close it all.
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { Server } from 'node:http';
import type { NativeBinding } from '../native-types.js';
import { CATALOGUE } from '../checks/catalogue.js';
import { Prober } from '../checks/prober.js';
import { DEFAULT_CONTROL_PORT, type InfoResponse } from '../control/protocol.js';
import { ConfigError } from '../secret.js';
import type { CheckId } from '../types.js';
import { VERSION } from '../version.js';
import { holdPorts, inspectPorts, type HeldPorts } from './ports.js';
import { describeDrop, dropPrivileges } from './privileges.js';
import { SessionStore } from './sessions.js';
import { createControlServer } from './server.js';
import { Witness, type WitnessEvent } from './witness.js';
import { Explainer } from '../explain/host.js';
import { KernelEvidence } from './kernel-evidence.js';
import { openDropWatch, type DropWatchResult } from '../kernel/drop-watch.js';

export interface ResponderOptions {
  native: NativeBinding;
  address: string;
  controlPort?: number;
  /** Address the control server listens on (default: the node address). */
  controlAddress?: string;
  secret: Buffer;
  checks: CheckId[];
  ports: Partial<Record<CheckId, number>>;
  /** Drop to this user after opening sockets. */
  user?: string;
  /** Listen on the checks' free TCP ports (--hold). Default: hold nothing, only look who holds them.
   *  (`noHold` is the old name of the default, still accepted: `hold` wins when both are given.) */
  hold?: boolean;
  noHold?: boolean;
  logFormat?: 'text' | 'json';
  log?: (line: string) => void;
}

export interface RunningResponder {
  info(): InfoResponse;
  controlPort: number;
  close(): Promise<void>;
}

export { lookupUser } from './privileges.js';

export function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4') out.add(a.address);
  return out;
}

function portsFor(checks: CheckId[], overrides: Partial<Record<CheckId, number>>): { tcp: number[]; udp: number[]; byCheck: Partial<Record<CheckId, number>> } {
  const tcp: number[] = [];
  const udp: number[] = [];
  const byCheck: Partial<Record<CheckId, number>> = {};
  for (const c of checks) {
    const def = CATALOGUE[c];
    const port = overrides[c] ?? def.defaultPort;
    if (port === null) continue;
    byCheck[c] = port;
    if (def.listen === 'udp') udp.push(port);
    else if (def.listen === 'tcp-syn') tcp.push(port);
  }
  return { tcp, udp, byCheck };
}

export async function startResponder(o: ResponderOptions): Promise<RunningResponder> {
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const emit = (event: string, text: string, fields: Record<string, unknown> = {}) =>
    log(o.logFormat === 'json' ? JSON.stringify({ time: new Date().toISOString(), event, ...fields, message: text }) : `${new Date().toISOString()} ${text}`);

  if (!localAddresses().has(o.address)) {
    throw new ConfigError(`--listen ${o.address} is not an address of this host (its IPv4 addresses: ${[...localAddresses()].join(', ')}) — give the node's own address, the one in the inventory`);
  }
  const { tcp, udp, byCheck } = portsFor(o.checks, o.ports);
  const store = new SessionStore();
  const witness = new Witness({
    native: o.native,
    address: o.address,
    ports: { tcp, udp },
    store,
    onEvent: (e: WitnessEvent) => {
      const s = e.sighting;
      const what = `${s.flow.check}${s.flow.port ? `/${s.flow.port}` : ''} probe #${s.flow.idx}`;
      if (e.layer === 'left') return;
      emit('witness', `witnessed ${what} from ${s.src} at the ${e.layer === 'iface' ? `interface ${e.ifname ?? '?'}` : 'socket layer'} (session ${s.session.id})`, {
        check: s.flow.check,
        idx: s.flow.idx,
        source: s.src,
        layer: e.layer,
        ifname: e.ifname,
        session: s.session.id,
      });
    },
    onError: (err) => emit('error', `witness receive error: ${err.message}`),
  });
  const prober = new Prober(o.native, o.address);
  const explainer = new Explainer({ address: o.address, log: (m) => emit('explain', m) });
  // This run of the responder: requests made for an earlier run (a replay after a restart) name another.
  const instance = randomBytes(16).toString('hex');
  let held: HeldPorts | null = null;
  let server: Server | null = null;
  let dropWatch: DropWatchResult | null = null;
  const closeAll = async () => {
    // Held ports first, at once: a service waiting to bind them (BIRD, Typha, etcd) must not wait for us.
    const heldPorts = held?.holdings.filter((h) => h.ours).map((h) => h.port) ?? [];
    const released = held?.close().then(() => {
      if (heldPorts.length) emit('stop', `released port${heldPorts.length > 1 ? 's' : ''} ${heldPorts.join(', ')}`, { released: heldPorts });
    });
    witness.close();
    prober.close();
    if (dropWatch && 'watch' in dropWatch) dropWatch.watch.close();
    await explainer.close();
    if (server) {
      const s = server;
      const closed = new Promise<void>((r) => s.close(() => r()));
      s.closeAllConnections(); // a probe stream in flight must not keep the process (and its ports) alive
      await closed;
    }
    await released;
  };
  try {
    witness.open();
    prober.open();
    // A crashed or SIGKILLed run may have left its trace table: the host's ruleset must be as before.
    await explainer.removeStale();
    const hold = o.hold ?? (o.noHold === undefined ? false : !o.noHold);
    held = hold ? await holdPorts(o.address, { tcp, udp }) : { holdings: await inspectPorts({ tcp, udp }), close: async () => undefined };
    const controlPort = o.controlPort ?? DEFAULT_CONTROL_PORT;
    const info = (): InfoResponse => ({
      tool: 'calico-nettest',
      version: VERSION,
      address: o.address,
      instance,
      capture: witness.capture,
      captureError: witness.captureError,
      ports: held?.holdings ?? [],
      sessions: store.size,
      timeMs: Date.now(),
    });
    // The drop watch needs privileges (bpf(2)): opened here, before they are dropped, for this node's address.
    dropWatch = await openDropWatch(o.native.bpf, o.address);
    const kernel = new KernelEvidence(o.address, undefined, undefined, undefined, dropWatch);
    server = createControlServer({ secret: o.secret, address: o.address, instance, store, witness, prober, info, explainer, log: (m) => emit('control', m), kernel });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new ConfigError(`control port ${controlPort} on ${o.controlAddress ?? o.address} is in use — is another responder running? (choose another with --control-port)`)
            : err,
        ),
      );
      server!.listen(controlPort, o.controlAddress ?? o.address, () => resolve());
    });
    if (o.user) {
      const d = describeDrop(o.user, await dropPrivileges(o.user, o.native));
      emit('start', d.info);
      for (const w of d.warnings) emit('warning', `warning: ${w}`);
    }
    for (const c of o.checks) {
      const port = byCheck[c];
      if (port === undefined) {
        emit('start', `${c}: witnessing IP protocol 4 on ${o.address}`);
        continue;
      }
      const h = held.holdings.find((x) => x.port === port && x.proto === (CATALOGUE[c].listen === 'udp' ? 'udp' : 'tcp'));
      emit(
        'start',
        h?.ours
          ? `${c}: holding port ${port} (--hold) and witnessing it — until this responder stops, nothing else on this node can listen on ${port}: a ${CATALOGUE[c].title} server started meanwhile fails with "address already in use"`
          : h && h.holder !== 'nobody'
            ? `${c}: port ${port} is held by ${h.holder}; witnessing it with a raw socket instead`
            : `${c}: port ${port} is free; witnessing it with a raw socket${hold ? '' : ' (not holding it: whatever starts there later binds it as usual)'}`,
        { check: c, port, holder: h?.holder ?? null, held: h?.ours ?? false },
      );
    }
    emit(
      'start',
      'watch' in dropWatch ? `drop watch: the kernel's reason for every dropped packet to ${o.address} is counted while a session is live (eBPF on kfree_skb)` : `no drop reasons: ${dropWatch.unavailable}`,
      { dropWatch: 'watch' in dropWatch, ...('unavailable' in dropWatch ? { dropWatchError: dropWatch.unavailable } : {}) },
    );
    if (!witness.capture) emit('start', `no packet capture (${witness.captureError}): path and ingress drops will be reported together as "blocked"`);
    emit('start', `calico-nettest responder ${VERSION} on ${o.address}, control port ${controlPort}`, { address: o.address, controlPort });
    return { info, controlPort, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
