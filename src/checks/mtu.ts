// The mtu check's domain rules: which encapsulation's framing its probes take, what each encapsulation
// costs, and the Calico MTU a measured path MTU allows (Calico's MTU docs: IPv4 IP-in-IP 20, VXLAN 50,
// WireGuard 60 bytes of overhead).
import type { MtuFraming } from '../packets/mtu-probe.js';
import type { CheckId, Transport } from '../types.js';

export type { MtuFraming };

/** Bytes each encapsulation adds to a pod packet (IPv4). */
export const ENCAP_OVERHEAD: Readonly<Record<MtuFraming, number>> = Object.freeze({ ipip: 20, vxlan: 50, wireguard: 60 });

const FRAMING_ORDER: readonly MtuFraming[] = ['ipip', 'vxlan', 'wireguard'];

/** The first enabled encapsulation (IP-in-IP, else VXLAN, else WireGuard); IP-in-IP when none is. */
export function mtuFraming(checks: readonly CheckId[]): MtuFraming {
  return FRAMING_ORDER.find((f) => checks.includes(f)) ?? 'ipip';
}

/** How mtu probes travel in that framing: transport and port (the encapsulation's own port). */
export function mtuShape(checks: readonly CheckId[], ports: Readonly<Partial<Record<CheckId, number | null>>>): { transport: Transport; port: number | null; framing: MtuFraming } {
  const framing = mtuFraming(checks);
  if (framing === 'ipip') return { transport: 'ipip', port: null, framing };
  return { transport: 'udp', port: ports[framing] ?? null, framing };
}

/** The framing a planned mtu flow uses, from its transport and port. */
export function framingOf(transport: Transport, port: number | null, ports: Readonly<Partial<Record<CheckId, number | null>>>): MtuFraming {
  if (transport === 'ipip') return 'ipip';
  return port !== null && port === ports.wireguard && port !== ports.vxlan ? 'wireguard' : 'vxlan';
}

/** The largest Calico MTU (veth_mtu / FelixConfiguration mtu) per encapsulation that a path MTU carries. */
export function calicoMtuFor(pathMtu: number): Record<MtuFraming, number> {
  return { ipip: pathMtu - ENCAP_OVERHEAD.ipip, vxlan: pathMtu - ENCAP_OVERHEAD.vxlan, wireguard: pathMtu - ENCAP_OVERHEAD.wireguard };
}

/** "set Calico's MTU (veth_mtu / FelixConfiguration mtu) to at most 1380 for IP-in-IP, 1350 for VXLAN, 1340 for WireGuard, or fix the link" */
export function calicoMtuAdvice(pathMtu: number): string {
  const m = calicoMtuFor(pathMtu);
  return `set Calico's MTU (veth_mtu / FelixConfiguration mtu) to at most ${m.ipip} for IP-in-IP, ${m.vxlan} for VXLAN, ${m.wireguard} for WireGuard, or fix the link`;
}
