// The lab and the demo as a user drives them: the CLI, real namespaces, nothing left behind.
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/lab/sys.js';
import { listLabs } from '../../src/lab/lab.js';
import { needsRoot } from '../helpers/lab.js';

const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));

function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const namespaces = async (prefix: string) => (await run(['ip', 'netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(prefix)).length;

t.test('demo: verdicts match its faults, and it leaves no namespace behind', { skip: needsRoot }, async (t) => {
  const r = await cli(['demo', '--no-color']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Diagnosis/);
  t.match(r.stdout, /node2's own firewall drops IP-in-IP/);
  t.match(r.stdout, /the path from 198\.18\.1\.0\/24 to 198\.18\.3\.0\/24 drops VXLAN/);
  t.match(r.stdout, /node4's own firewall blocks BGP/);
  t.match(r.stdout, /node2's own firewall rejects Typha/);
  t.match(r.stdout, /Every one of the \d+ flows got the verdict the injected faults imply/);
  const prefix = /lab (cnt-[0-9a-f]{6}) removed/.exec(r.stderr)?.[1];
  t.ok(prefix, 'the demo says which lab it removed');
  t.equal(await namespaces(prefix!), 0, 'no namespace of the demo is left');
  t.notOk((await listLabs()).some((l) => l.prefix === prefix), 'no lab state left');
});

t.test('lab up / status / fault add / fault clear / down through the CLI', { skip: needsRoot }, async (t) => {
  const up = await cli(['lab', 'up', '--nodes', '2', '--fault', 'drop:ipip@node2:in']);
  t.equal(up.code, 0, up.stderr);
  const prefix = /Lab (cnt-[0-9a-f]{6}) is up/.exec(up.stdout)?.[1];
  t.ok(prefix);
  t.teardown(() => cli(['lab', 'down', '--lab', prefix!]));
  t.match(up.stdout, new RegExp(`ip netns exec ${prefix}-r .*calico-nettest mesh --inventory`), 'prints the exact mesh command');
  t.equal(await namespaces(prefix!), 3, 'two nodes and the router');
  const st = await cli(['lab', 'status']);
  t.match(st.stdout, new RegExp(`${prefix}.*faults: drop:ipip@node2:in`));
  t.match(st.stdout, /node1 +198\.18\.1\.2 +responder running/);
  t.equal((await cli(['lab', 'fault', 'add', 'reject:bgp@node1:in', '--lab', prefix!])).code, 0);
  const bad = await cli(['lab', 'fault', 'add', 'drop:ipip@node9:in', '--lab', prefix!]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown node 'node9'/);
  const bad2 = await cli(['lab', 'fault', 'add', 'dorp:ipip@node1:in', '--lab', prefix!]);
  t.equal(bad2.code, 2);
  t.match(bad2.stderr, /did you mean 'drop'/);
  t.match(bad2.stderr, /ACTION:CHECK@WHERE/, 'names the grammar');
  const cleared = await cli(['lab', 'fault', 'clear', '--lab', prefix!]);
  t.match(cleared.stdout, /removed 2 fault rules/);
  const down = await cli(['lab', 'down', '--lab', prefix!]);
  t.equal(down.code, 0);
  t.equal(await namespaces(prefix!), 0, 'lab down removes every namespace');
});

t.test('lab down removes a half-built lab', { skip: needsRoot }, async (t) => {
  // A lab whose build fails half-way (a bad fault is found only after the namespaces exist would be
  // refused earlier, so simulate: namespaces by that prefix without any state or processes).
  const prefix = 'cnt-0badc0';
  await run(['ip', 'netns', 'add', `${prefix}-r`]);
  await run(['ip', 'netns', 'add', `${prefix}-n1`]);
  t.teardown(async () => {
    await run(['ip', 'netns', 'del', `${prefix}-r`], { allowFail: true });
    await run(['ip', 'netns', 'del', `${prefix}-n1`], { allowFail: true });
  });
  const { labDown } = await import('../../src/lab/lab.js');
  await labDown({ prefix, dir: `/tmp/${prefix}-nonexistent`, nodes: [] });
  t.equal(await namespaces(prefix), 0);
});

t.test('an unknown fault node is refused before anything is built', { skip: needsRoot }, async (t) => {
  const r = await cli(['lab', 'up', '--nodes', '2', '--fault', 'drop:bgp@node7:in']);
  t.equal(r.code, 2);
  t.match(r.stderr, /unknown node 'node7'/);
});
