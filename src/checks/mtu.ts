// The mtu check's domain rules, read from the catalogue: which encapsulation carries a sized check's probes
// in a plan (its `carriedBy`), the shape that gives them, and the Calico MTU a measured path MTU allows
// (each encapsulation's `overhead`: Calico's MTU docs, IPv4 IP-in-IP 20, VXLAN 50, WireGuard 60 bytes).
import type { CheckId, Transport } from '../types.js';
import { CATALOGUE, carrierOf, checkIds, type Framing } from './catalogue.js';

/** How a sized check's probes travel in a plan: the carrier check, its transport, port and framing. */
export interface CarriedShape {
  carrier: CheckId;
  transport: Transport;
  port: number | null;
  framing: Framing;
}

/** The shape `check`'s probes take in a plan of `checks` with these ports (the check's own when it is not carried). */
export function carriedShape(check: CheckId, checks: readonly CheckId[], ports: Readonly<Partial<Record<CheckId, number | null>>>): CarriedShape {
  const carrier = carrierOf(check, checks);
  const def = CATALOGUE[carrier];
  return { carrier, transport: def.transport, port: def.defaultPort === null ? null : ports[carrier] ?? def.defaultPort, framing: def.probe.framing };
}

/** The largest Calico MTU (veth_mtu / FelixConfiguration mtu) a path MTU carries, per encapsulation (checks with an overhead). */
export function calicoMtuFor(pathMtu: number): Partial<Record<CheckId, number>> {
  const out: Partial<Record<CheckId, number>> = {};
  for (const id of checkIds()) {
    const o = CATALOGUE[id].overhead;
    if (o !== undefined) out[id] = pathMtu - o;
  }
  return out;
}

/** "set Calico's MTU (veth_mtu / FelixConfiguration mtu) to at most 1380 for IP-in-IP, 1350 for VXLAN, 1340 for WireGuard, or fix the link" */
export function calicoMtuAdvice(pathMtu: number): string {
  const m = calicoMtuFor(pathMtu);
  const each = (Object.keys(m) as CheckId[]).map((id) => `${m[id]} for ${CATALOGUE[id].title}`);
  return `set Calico's MTU (veth_mtu / FelixConfiguration mtu) to at most ${each.join(', ')}, or fix the link`;
}
