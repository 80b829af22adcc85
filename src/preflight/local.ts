// Preflight on this host: read its facts, try its kernel, and judge them for the checks the run needs.
import { readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { CheckId } from '../types.js';
import { evaluateHost, type Finding } from './findings.js';
import { readHostFacts } from './host.js';
import { iptablesBackendFindings, iptablesRuleCounts, kernelModuleFindings, readKernelConfig, tryFeatures } from './kernel.js';
import { offloadFindings, readVxlanOffload } from './offload.js';

export interface LocalPreflightOptions {
  root?: string;
  node?: string;
  checks: readonly CheckId[];
  podCIDR?: string;
  serviceCIDR?: string;
  addresses?: string[];
}

export async function preflightLocal(o: LocalPreflightOptions): Promise<Finding[]> {
  const root = o.root ?? '/';
  const ctx = { node: o.node ?? hostname(), checks: o.checks, podCIDR: o.podCIDR, serviceCIDR: o.serviceCIDR };
  const facts = await readHostFacts(root);
  if (o.addresses) facts.addresses = o.addresses;
  const config = await readKernelConfig(root, facts.kernelRelease ?? null);
  const sysModules = await readdir(join(root, 'sys/module')).catch(() => [] as string[]);
  const live = root === '/'; // only this host's own kernel can be tried, and only its own iptables read
  const tried = live ? await tryFeatures() : null;
  const findings = [...evaluateHost(facts, ctx), ...kernelModuleFindings({ tried, config, sysModules }, ctx)];
  if (live) findings.push(...iptablesBackendFindings(await iptablesRuleCounts(), ctx), ...offloadFindings(await readVxlanOffload(facts.interfaces), ctx));
  return findings;
}

export const SEVERITY_ORDER = { error: 0, warning: 1, info: 2 } as const;
export const sortFindings = (fs: Finding[]) => [...fs].sort((a, b) => a.node.localeCompare(b.node) || SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.id.localeCompare(b.id));
