// The memory estimate made before planning: what fits runs, what does not is refused with figures and
// what to do; the CLI refuses a 10,000-node mesh in seconds with exit 3 (not a V8 heap OOM, exit 134).
import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { BASE_BYTES, BYTES_PER_FLOW, checkRunMemory, estimateRunBytes, nodesThatFit } from '../../src/coordinator/budget.js';
import { parseInventory } from '../../src/coordinator/inventory.js';
import { countFlows } from '../../src/coordinator/plan.js';

const GB = 1024 ** 3;
const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));

function inventory(n: number): string {
  const lines = ['nodes:'];
  for (let i = 1; i <= n; i++) lines.push(`  - name: node-${i}`, `    address: 198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, '    control: 127.0.0.1:1');
  return `${lines.join('\n')}\n`;
}

t.test('the estimate and its verdict', async (t) => {
  t.equal(estimateRunBytes(0), BASE_BYTES);
  t.equal(estimateRunBytes(1000), BASE_BYTES + 1000 * BYTES_PER_FLOW);
  // The 1000-node mesh measured (4 011 984 flows, 1.47 GB peak) fits Node's default 4 GB heap here.
  t.ok(checkRunMemory({ nodes: 1000, flows: 4_011_984, command: 'mesh' }, { heapLimit: 4 * GB, totalMem: 24 * GB }).fits);
  const no = checkRunMemory({ nodes: 10_000, flows: 400_119_984, command: 'mesh' }, { heapLimit: 4 * GB, totalMem: 24 * GB });
  t.notOk(no.fits);
  t.match(no.message, /a mesh of 10000 nodes has 400,119,984 flows and would need about 138 GB.*may use 4\.0 GB.*Nothing was run\./s);
  t.ok(checkRunMemory({ nodes: 1000, flows: 4_011_984, command: 'mesh' }, { heapLimit: 1072 * 1048576, totalMem: 24 * GB }).fits, 'it ran with --max-old-space-size=1024 (heap limit 1072 MB)');
  t.match(no.message, /groups of at most \d+ nodes.*--checks.*no --max-old-space-size makes it hold this run/s);
  const raise = checkRunMemory({ nodes: 2000, flows: 16_000_000, command: 'verify' }, { heapLimit: 2 * GB, totalMem: 24 * GB });
  t.notOk(raise.fits);
  t.match(raise.message, /NODE_OPTIONS=--max-old-space-size=\d+ calico-nettest verify/);
  t.notOk(checkRunMemory({ nodes: 2000, flows: 16_000_000, command: 'mesh' }, { heapLimit: 64 * GB, totalMem: 4 * GB }).fits, 'the machine bounds a large heap limit');
});

t.test('nodesThatFit: a group of that size fits, one twice as big does not', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 10, max: 20_000 }), fc.integer({ min: 1, max: 64 }), (n, limitGb) => {
      const flows = 4 * n * (n - 1);
      const bytes = limitGb * GB;
      const k = nodesThatFit(n, flows, bytes);
      if (k < 2 || k > n) return false;
      const kFlows = 4 * k * (k - 1);
      return k === n || k === 2 || (estimateRunBytes(kFlows) <= bytes * 1.01 && estimateRunBytes(4 * 2 * k * (2 * k - 1)) > bytes);
    }),
  );
  // The verdict's own group size fits under both limits.
  fc.assert(
    fc.property(fc.integer({ min: 100, max: 20_000 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 2, max: 64 }), (n, heapGb, memGb) => {
      const limits = { heapLimit: heapGb * GB, totalMem: memGb * GB };
      const v = checkRunMemory({ nodes: n, flows: 4 * n * (n - 1), command: 'mesh' }, limits);
      if (v.fits) return true;
      const k = Number(/groups of at most (\d+) nodes/.exec(v.message!)![1]);
      return k <= 2 || checkRunMemory({ nodes: k, flows: 4 * k * (k - 1), command: 'mesh' }, limits).fits;
    }),
  );
});

t.test('countFlows counts a 10,000-node mesh without making its flows', async (t) => {
  const inv = parseInventory(inventory(10_000), 'big.yaml');
  const n = countFlows(inv, { checks: ['bgp', 'ipip', 'vxlan', 'wireguard'] });
  t.equal(n, 4 * 10_000 * 9_999);
});

t.test('CLI: a 10,000-node mesh exits 3 at once with what it needs and what to do', async (t) => {
  const dir = t.testdir({ secret: `${randomBytes(32).toString('base64')}\n` });
  await writeFile(join(dir, 'big.yaml'), inventory(10_000));
  const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [BIN, 'mesh', '-i', join(dir, 'big.yaml'), '-s', join(dir, 'secret')], { timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } }, (err, _o, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }),
    ),
  );
  t.equal(r.code, 3, r.stderr);
  t.match(r.stderr, /a mesh of 10000 nodes has [\d,]+ flows and would need about \d+ GB of memory.*Nothing was run/s);
  t.match(r.stderr, /split the inventory into groups of at most \d+ nodes/);
  t.notMatch(r.stderr, /heap out of memory|\n\s+at /);
});
