import t, { type Test } from 'tap';
import fc from 'fast-check';
import { mkdtemp, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InventoryError, ipv4Problem, loadInventory, parseInventory, type Inventory } from '../../src/coordinator/inventory.js';

const F = 'inv.yaml';

/** Parse `text`; expect an InventoryError at `line` (and `column` when given) whose message matches `re`. */
function expectError(t: Test, text: string, line: number, re: RegExp, column?: number): InventoryError | undefined {
  try {
    parseInventory(text, F);
  } catch (err) {
    t.type(err, InventoryError);
    const e = err as InventoryError;
    t.equal(e.code, 'EINVENTORY');
    t.equal(e.file, F);
    t.equal(e.line, line, `line of: ${e.message}`);
    if (column !== undefined) t.equal(e.column, column, `column of: ${e.message}`);
    t.match(e.message, new RegExp(`^${F}:${line}:\\d+: `));
    t.match(e.message, re);
    return e;
  }
  t.fail('expected an InventoryError');
  return undefined;
}


const GOOD = `# three nodes
nodes:
  - name: node-a
    address: 198.18.0.1
    roles: [apiserver, etcd]
  - name: node-b
    address: 198.18.0.2
    control: 10.1.2.3:9000
  - name: node-c
    address: 198.18.0.3
    roles: [typha]
    control: "[fd00::1]:5478"
checks: [bgp, ipip, vxlan, typha]
ports: { bgp: 1179, vxlan: 8472 }
endpoints:
  - name: kube-api-vip
    address: 198.18.0.100
    port: 443
`;

t.test('a good inventory', async (t) => {
  const inv = parseInventory(GOOD, F);
  t.equal(inv.file, F);
  t.same(inv.nodes, [
    { name: 'node-a', address: '198.18.0.1', roles: ['apiserver', 'etcd'], control: { host: '198.18.0.1', port: 5478 } },
    { name: 'node-b', address: '198.18.0.2', roles: [], control: { host: '10.1.2.3', port: 9000 } },
    { name: 'node-c', address: '198.18.0.3', roles: ['typha'], control: { host: 'fd00::1', port: 5478 } },
  ]);
  t.same(inv.checks, ['bgp', 'ipip', 'vxlan', 'typha']);
  t.same(inv.ports, { bgp: 1179, ipip: null, vxlan: 8472, wireguard: 51820, typha: 5473, etcd: 2379, apiserver: 6443, mtu: null });
  t.same(inv.endpoints, [{ name: 'kube-api-vip', address: '198.18.0.100', port: 443, checks: ['apiserver'] }]);
});

t.test('defaults, the control port option and lenient forms', async (t) => {
  const inv = parseInventory('nodes:\n  - { name: a, address: 198.18.0.1, control: 6000 }\n  - name: b\n    address: 198.18.0.2\n    roles: etcd, typha\n', F, { controlPort: 7000 });
  t.equal(inv.checks, null);
  t.same(inv.endpoints, []);
  t.same(inv.nodes[0]?.control, { host: '198.18.0.1', port: 6000 }, 'a bare port keeps the address');
  t.same(inv.nodes[1]?.control, { host: '198.18.0.2', port: 7000 });
  t.same(inv.nodes[1]?.roles, ['etcd', 'typha'], 'roles as a comma string');
  const numeric = parseInventory('nodes:\n  - name: 007\n    address: 198.18.0.1\n', F);
  t.equal(numeric.nodes[0]?.name, '007', 'a numeric name keeps its text');
  const quoted = parseInventory('nodes: [{name: a, address: 198.18.0.1}]\nports: {bgp: "1179"}\n', F);
  t.equal(quoted.ports.bgp, 1179);
  const anchors = parseInventory('x-roles: &cp [apiserver, etcd]\nnodes:\n  - name: a\n    address: 198.18.0.1\n    roles: *cp\n', F);
  t.same(anchors.nodes[0]?.roles, ['apiserver', 'etcd'], 'x- keys hold anchors; aliases resolve');
  const endpoint = parseInventory('nodes: [{name: a, address: 198.18.0.1}]\nendpoints:\n  - name: lb\n    address: 198.18.0.9\n    checks: [etcd]\n', F);
  t.same(endpoint.endpoints, [{ name: 'lb', address: '198.18.0.9', port: null, checks: ['etcd'] }]);
});

t.test('JSON input', async (t) => {
  const inv = parseInventory('{"nodes": [{"name": "a", "address": "198.18.0.1", "roles": ["typha"]}], "checks": ["typha"]}', 'inv.json');
  t.same(inv.nodes[0]?.roles, ['typha']);
  t.same(inv.checks, ['typha']);
  try {
    parseInventory('{\n  "nodes": [\n    {"name": "a", "address": "198.18.0.1"}\n    {"name": "b", "address": "198.18.0.2"}\n  ]\n}\n', 'inv.json');
    t.fail('should throw');
  } catch (err) {
    const e = err as InventoryError;
    t.type(e, InventoryError);
    t.equal(e.line, 4, e.message);
    t.match(e.message, /^inv\.json:4:\d+: syntax error: .*reads as JSON/);
  }
  try {
    parseInventory('{"nodes": [{"name": "a", "address": "198.18.0.1"]}', 'inv.json');
    t.fail('should throw');
  } catch (err) {
    t.match((err as Error).message, /^inv\.json:1:\d+: syntax error/);
  }
});

t.test('syntax errors name the line', async (t) => {
  expectError(t, 'nodes:\n  - name: a\n     address: 198.18.0.1\n', 2, /syntax error: .*indent/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n   - name: b\n    address: 198.18.0.2\n', 4, /syntax error: .*same column/);
  expectError(t, 'nodes:\n  - name: a\n  address: 198.18.0.1\n', 3, /syntax error/);
  expectError(t, 'nodes:\n\t- name: a\n', 2, /Tabs.*\(indent with spaces, not tabs\)/, 1);
  expectError(t, 'nodes:\n  - name: a\n\taddress: 198.18.0.1\n', 3, /indent with spaces/);
  expectError(t, 'nodes:\n  - name: a\n    name: b\n    address: 198.18.0.1\n', 3, /unique.*appears twice/);
  expectError(t, 'nodes:\n  - name: "a\n', 2, /syntax error: .*quote.*never closed/, 11);
  expectError(t, "nodes:\n  - name: a\n    address: '198.18.0.1\n    roles: [etcd]\n", 3, /never closed/, 14);
  expectError(t, 'nodes: [{name: a, address: 198.18.0.1}]\n---\nnodes: []\n', 2, /more than one YAML document/);
});

t.test('empty and wrong-shaped files', async (t) => {
  expectError(t, '', 1, /the inventory is empty/, 1);
  expectError(t, '\n\n# only a comment\n', 1, /the inventory is empty/);
  expectError(t, '---\n', 1, /the inventory is empty/);
  expectError(t, '- name: a\n  address: 198.18.0.1\n', 1, /must be a mapping with a `nodes:` list, not a list/);
  expectError(t, 'just words\n', 1, /must be a mapping .* not the text 'just words'/);
  expectError(t, 'checks: [bgp]\nports: {bgp: 179}\n', 1, /missing `nodes:`/);
  expectError(t, 'nodes:\n', 1, /`nodes` must be a list of nodes, not an empty value/);
  expectError(t, 'nodes: []\n', 1, /`nodes` is empty/);
  expectError(t, 'nodes:\n  node-a: 198.18.0.1\n', 2, /`nodes` must be a list of nodes, not a mapping/);
  expectError(t, 'nodes:\n  - node-a\n', 2, /node 1 must be a mapping with name and address, not the text 'node-a'/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n  -\n', 4, /node 2 must be a mapping/);
  expectError(t, '? [a]\n: b\nnodes: []\n', 1, /keys must be plain names/);
});

t.test('unknown keys, with a guess', async (t) => {
  const e = expectError(t, 'nodes:\n  - name: a\n    adress: 198.18.0.1\n', 3, /unknown key 'adress' in node 1 \(a\) \(did you mean 'address'\? valid keys: name, address, roles, control\)/, 5);
  t.equal(e?.hint, "did you mean 'address'? valid keys: name, address, roles, control");
  t.equal(e?.reason, "unknown key 'adress' in node 1 (a)");
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    role: [etcd]\n', 4, /unknown key 'role' .*did you mean 'roles'/);
  expectError(t, 'node:\n  - name: a\n', 1, /unknown key 'node' at the top level \(did you mean 'nodes'\?/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\nchecks: [bgp]\nprots: {bgp: 1}\n', 5, /unknown key 'prots' .*did you mean 'ports'/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\nfirewall: none\n', 4, /unknown key 'firewall' at the top level \(valid keys/);
});

t.test('node fields', async (t) => {
  const two = (a: string, b: string) => `nodes:\n  - name: ${a}\n    address: 198.18.0.1\n  - name: ${b}\n    address: 198.18.0.2\n`;
  expectError(t, two('a', 'a'), 4, /duplicate node name 'a' \(first at line 2\)/, 11);
  expectError(t, two('a', 'bad name'), 4, /node name 'bad name' is not valid \(1 to 63 characters/);
  expectError(t, two('a', 'x'.repeat(64)), 4, /is not valid/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n  - name: b\n    address: 198.18.0.1\n', 5, /duplicate node address 198\.18\.0\.1 \(first at line 3\)/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.1.300\n', 3, /address of node a: '198\.18\.1\.300' is not an IPv4 address \(300 is out of range 0-255\)/, 14);
  expectError(t, 'nodes:\n  - name: a\n    address: node-a.example\n', 3, /is not an IPv4 address \(expected four numbers/);
  expectError(t, 'nodes:\n  - name: a\n    address: fd00::1\n', 3, /IPv6 is not supported yet/);
  expectError(t, 'nodes:\n  - name: a\n    address: 127.0.0.1\n', 3, /loopback/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.018.0.1\n', 3, /leading zero/);
  expectError(t, 'nodes:\n  - name: a\n    address: 10\n', 3, /'10' is not an IPv4 address/);
  expectError(t, 'nodes:\n  - name: a\n    address:\n', 3, /address of node a is empty/);
  expectError(t, 'nodes:\n  - name: a\n    address: [198.18.0.1]\n', 3, /must be a single value, not a list/);
  expectError(t, 'nodes:\n  - address: 198.18.0.1\n', 2, /node 1 has no name/);
  expectError(t, 'nodes:\n  - name: a\n    roles: [etcd]\n', 2, /node a has no address/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    roles: [etcd, api-server]\n', 4, /unknown role 'api-server' for node a \(did you mean 'apiserver'\? valid roles: typha, etcd, apiserver\)/, 19);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    roles: [master]\n', 4, /unknown role 'master'/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    roles: {etcd: true}\n', 4, /roles of node a must be a list, not a mapping/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    control: 198.18.0.1:70000\n', 4, /control of node a: port 70000 is out of range 1-65535/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    control: 198.18.0.1:0\n', 4, /port 0 is out of range/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    control: 198.18.0.1\n', 4, /is not host:port/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    control: 198.18.0.999:5478\n', 4, /'198\.18\.0\.999' is not an IPv4 address/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    control: bad_host!:5478\n', 4, /not a valid host name/);
  expectError(t, 'nodes:\n  - name: a\n    address: 198.18.0.1\n    control: 99999\n', 4, /control of node a: 99999 is not a port number 1-65535/);
});

t.test('checks and ports', async (t) => {
  const base = 'nodes:\n  - name: a\n    address: 198.18.0.1\n';
  expectError(t, `${base}checks: [bgp, vxaln]\n`, 4, /in checks: unknown check 'vxaln' \(did you mean 'vxlan'\?\); valid checks: bgp, ipip/, 15);
  expectError(t, `${base}checks:\n  - bgp\n  - wirguard\n`, 6, /did you mean 'wireguard'/, 5);
  expectError(t, `${base}checks: []\n`, 4, /`checks` is empty/);
  expectError(t, `${base}checks: {bgp: true}\n`, 4, /checks must be a list, not a mapping/);
  t.same(parseInventory(`${base}checks: bgp, ipip, bgp\n`, F).checks, ['bgp', 'ipip'], 'comma string, deduped');
  expectError(t, `${base}ports:\n  bgp: 70000\n`, 5, /port of bgp: 70000 is not a port number 1-65535/, 8);
  expectError(t, `${base}ports:\n  bgp: 0\n`, 5, /not a port number/);
  expectError(t, `${base}ports:\n  bgp: 17.9\n`, 5, /17\.9 is not a port number/);
  expectError(t, `${base}ports:\n  bgp: high\n`, 5, /must be a port number 1-65535, not the text 'high'/);
  expectError(t, `${base}ports:\n  ipip: 4\n`, 5, /ipip has no port \(it is IP protocol 4/, 3);
  expectError(t, `${base}ports:\n  bpg: 179\n`, 5, /in ports: unknown check 'bpg' \(did you mean 'bgp'\?\)/);
  expectError(t, `${base}ports: [179]\n`, 4, /`ports` must be a mapping of check to port/);
  t.same(parseInventory(`${base}ports:\n`, F).ports.bgp, 179, 'empty ports: keeps the defaults');
});

t.test('endpoints', async (t) => {
  const base = 'nodes:\n  - name: a\n    address: 198.18.0.1\nendpoints:\n';
  expectError(t, `${base}  - name: a\n    address: 198.18.0.9\n`, 5, /endpoint name 'a' is also a node's name/);
  expectError(t, `${base}  - name: vip\n    address: 198.18.0.9\n  - name: vip\n    address: 198.18.0.10\n`, 7, /duplicate endpoint name 'vip' \(first at line 5\)/);
  expectError(t, `${base}  - name: vip\n    address: 198.18.0.9\n    checks: [vxlan]\n`, 7, /checks of endpoint vip: vxlan is not allowed here \(endpoints have no responder.*allowed: bgp, typha, etcd, apiserver/);
  expectError(t, `${base}  - name: vip\n    address: 198.18.0.9\n    port: 70000\n`, 7, /port of endpoint vip: 70000/);
  expectError(t, `${base}  - name: vip\n    address: 198.18.0.9\n    checks: [etcd, apiserver]\n    port: 443\n`, 8, /one port but 2 checks/);
  expectError(t, `${base}  - name: vip\n    adress: 198.18.0.9\n`, 6, /unknown key 'adress' in endpoint 1 \(vip\) \(did you mean 'address'/);
  expectError(t, `${base}  - name: vip\n`, 5, /endpoint vip has no address/);
  expectError(t, `${base}  - name: vip\n    address: 198.18.0.256\n`, 6, /address of endpoint vip/);
  expectError(t, `${base}  name: vip\n`, 5, /`endpoints` must be a list/);
  t.same(parseInventory(`${base}`, F).endpoints, [], 'empty endpoints: is fine');
});

t.test('a huge inventory parses, and errors deep inside it keep their line', async (t) => {
  const n = 5000;
  const lines = ['nodes:'];
  for (let i = 0; i < n; i++) lines.push(`  - name: node${i}`, `    address: 10.${(i >> 8) & 255}.${i & 255}.1`, '    roles: [etcd]');
  const good = `${lines.join('\n')}\n`;
  const inv = parseInventory(good, F);
  t.equal(inv.nodes.length, n);
  const bad = [...lines];
  bad[bad.length - 2] = '    address: 10.19.135.300';
  expectError(t, `${bad.join('\n')}\n`, bad.length - 1, /'10\.19\.135\.300' is not an IPv4 address/);
  const dup = [...lines, '  - name: node17', '    address: 198.18.0.1'];
  expectError(t, `${dup.join('\n')}\n`, dup.length - 1, /duplicate node name 'node17' \(first at line 53\)/);
});

t.test('loadInventory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-inv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.yaml');
  await writeFile(good, GOOD);
  const inv: Inventory = await loadInventory(good);
  t.equal(inv.file, good);
  t.equal(inv.nodes.length, 3);
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, 'nodes:\n  - name: a\n    address: 1.2.3\n');
  await t.rejects(loadInventory(bad), { code: 'EINVENTORY', file: bad, line: 3, message: new RegExp(`^${bad}:3:14: `) });
  const missing = join(dir, 'nope.yaml');
  await t.rejects(loadInventory(missing), { code: 'EINVENTORY', file: missing, message: `${missing}: cannot load the inventory: file not found` });
  await t.rejects(loadInventory(dir), { code: 'EINVENTORY', message: /is a directory/ });
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked.yaml');
    await writeFile(locked, GOOD);
    await chmod(locked, 0o000);
    await t.rejects(loadInventory(locked), { code: 'EINVENTORY', message: /permission denied/ });
  }
});

t.test('ipv4Problem', async (t) => {
  for (const ok of ['198.18.0.1', '10.0.0.0', '1.1.1.1', '223.255.255.254']) t.equal(ipv4Problem(ok), null, ok);
  for (const bad of ['0.0.0.0', '255.255.255.255', '224.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', ' 1.2.3.4', '1.2.3.4/24', '']) {
    t.type(ipv4Problem(bad), 'string', bad);
  }
});

// Anything at all yields an Inventory or an InventoryError with a sane position: never another
// exception, never a crash.
function total(text: string): void {
  try {
    parseInventory(text, F);
  } catch (err) {
    if (!(err instanceof InventoryError)) throw err;
    const lines = text.split(/\r\n|\r|\n/).length;
    if (err.line === undefined || err.line < 1 || err.line > lines + 1) throw new Error(`bad line ${err.line} for ${JSON.stringify(text)}`);
    if (!err.message.startsWith(`${F}:${err.line}:${err.column}: `)) throw new Error(`bad message ${err.message}`);
  }
}

t.test('property: any input gives an Inventory or an InventoryError', async (t) => {
  const token = fc.constantFrom(
    'nodes', 'name', 'address', 'roles', 'control', 'checks', 'ports', 'endpoints', 'port', ':', ': ', '-', '- ', '  ', '\n', '\t',
    '[', ']', '{', '}', ',', '"', "'", '&a', '*a', '!!str', '!!binary', '?', '#', '---', '...', '198.18.0.1', '198.18.1.300',
    'bgp', 'ipip', 'etcd', 'typha', '179', '70000', '-1', '0x10', 'null', '~', 'true', '1e9', '|', '>', '%YAML 1.2', '\u00a0', '\ufeff', 'x-a',
  );
  fc.assert(fc.property(fc.array(token, { maxLength: 60 }).map((a) => a.join('')), (s) => total(s)), { numRuns: 3000 });
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => total(s)), { numRuns: 1000 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => total(Buffer.from(b).toString('utf8'))), { numRuns: 1000 });
  // Mutations of a valid file: one character inserted, deleted or replaced.
  fc.assert(
    fc.property(fc.nat(GOOD.length - 1), fc.constantFrom('', ' ', '\t', ':', '-', '"', '[', '\n', 'x', '9'), (at, ch) => {
      total(GOOD.slice(0, at) + ch + GOOD.slice(at + 1));
      total(GOOD.slice(0, at) + ch + GOOD.slice(at));
    }),
    { numRuns: 2000 },
  );
  t.pass('no other exception');
});

t.test('optional podCIDR and serviceCIDR (preflight)', async (t) => {
  const inv = parseInventory(`podCIDR: 192.168.0.0/16\nserviceCIDR: 10.96.0.0/12\nnodes:\n  - name: a\n    address: 198.18.0.1\n`, F);
  t.equal(inv.podCIDR, '192.168.0.0/16');
  t.equal(inv.serviceCIDR, '10.96.0.0/12');
  t.equal(parseInventory(`nodes:\n  - name: a\n    address: 198.18.0.1\n`, F).podCIDR, undefined);
  expectError(t, `podCIDR: 192.168.0.0/33\nnodes:\n  - name: a\n    address: 198.18.0.1\n`, 1, /`podCIDR` must be an IPv4 range/);
});
