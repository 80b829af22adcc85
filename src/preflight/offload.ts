// vxlan-checksum-offload: Calico's VXLAN devices with tx checksum offload on, read with `ethtool -k` (the
// kernel/driver bug that corrupts TCP over VXLAN: projectcalico/calico #3145, #9433, #11435).
import { run } from '../lab/sys.js';
import type { Finding, PreflightContext } from './findings.js';

/** The VXLAN devices Felix creates (IPv4 and IPv6 pools). */
export const CALICO_VXLAN_DEVICES = ['vxlan.calico', 'vxlan-v6.calico'] as const;

/** What was read of one device: its tx checksum features, or why they could not be read. */
export interface OffloadFact {
  device: string;
  /** `ethtool -k` features that offload tx checksums and are on (empty: all off). Null: could not read. */
  txChecksumOn: string[] | null;
  /** Why txChecksumOn is null (ethtool missing, ethtool failed). */
  error?: string;
}

/** `ethtool -k DEV` output → feature → on (fixed or not). Lines that are not `name: on|off` are skipped. */
export function parseEthtoolFeatures(text: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z0-9-]+):\s+(on|off)\b/.exec(line);
    if (m) out.set(m[1]!, m[2] === 'on');
  }
  return out;
}

/** The tx checksum features that are on: the summary `tx-checksumming` when no finer one is listed. */
export function txChecksumOn(features: Map<string, boolean>): string[] {
  const fine = [...features].filter(([k]) => k.startsWith('tx-checksum-'));
  if (fine.length) return fine.filter(([, on]) => on).map(([k]) => k);
  return features.get('tx-checksumming') ? ['tx-checksumming'] : [];
}

/** Read each Calico VXLAN device that exists on this host (in this network namespace). */
export async function readVxlanOffload(interfaces: readonly { name: string }[] | undefined): Promise<OffloadFact[]> {
  const present = CALICO_VXLAN_DEVICES.filter((d) => interfaces?.some((i) => i.name === d));
  const out: OffloadFact[] = [];
  for (const device of present) {
    const r = await run(['ethtool', '-k', device], { allowFail: true, timeoutMs: 10_000 }).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
    if (r.code !== 0) {
      out.push({ device, txChecksumOn: null, error: /not found/.test(r.stderr) ? 'ethtool is not installed' : `ethtool -k ${device} failed: ${r.stderr.trim().split('\n')[0] || `exit ${r.code}`}` });
      continue;
    }
    out.push({ device, txChecksumOn: txChecksumOn(parseEthtoolFeatures(r.stdout)) });
  }
  return out;
}

/**
 * Pure: a warning per device whose tx checksum offload is on (whether this kernel and driver have the bug
 * cannot be read from the host, so it is not called an error); an info where the features could not be read.
 */
export function offloadFindings(facts: readonly OffloadFact[], ctx: PreflightContext): Finding[] {
  const needed = ctx.checks.includes('vxlan');
  return facts.flatMap((f): Finding[] => {
    if (f.txChecksumOn === null) {
      return [{ node: ctx.node, id: 'vxlan-checksum-offload', severity: 'info', detail: `${f.device} exists, but its offload features could not be read: ${f.error ?? 'unknown error'}`, breaks: 'nothing known: TCP over VXLAN may be hit by the tx checksum offload bug', fix: `install ethtool and check: ethtool -k ${f.device} | grep tx-checksum` }];
    }
    if (f.txChecksumOn.length === 0) return [];
    return [{
      node: ctx.node, id: 'vxlan-checksum-offload', severity: 'warning',
      detail: `${f.device} has tx checksum offload on (${f.txChecksumOn.join(', ')}: on, per ethtool -k)${needed ? '' : ' (the vxlan check is not in this run)'}; on kernels and NICs with the known bug, the outer UDP checksum of VXLAN packets is wrong and the peer drops them (projectcalico/calico #3145, #9433, #11435)`,
      breaks: 'TCP over VXLAN between pods and to services (connections hang or stall; small packets such as pings still pass)',
      fix: `ethtool -K ${f.device} tx-checksum-ip-generic off (lasts until the device is recreated); to make Felix keep it off, set FELIX_FEATUREDETECTOVERRIDE=ChecksumOffloadBroken=true`,
    }];
  });
}
