// The pure parts of the SSH launcher and of --ssh/--kubernetes option handling: argv, quoting, what the
// node says about itself, failures in plain words, and the usage errors (exit 2, nothing run).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { explainNodeErrors } from '../../src/remote/prepare.js';
import { explainSshFailure, factsProblem, parseFacts, shQuote, sshArgv, unameMachine } from '../../src/remote/ssh.js';
import type { Report } from '../../src/types.js';

t.test('sshArgv: batch mode, timeouts, the user\'s choices, then the destination', async (t) => {
  const argv = sshArgv({ user: 'root', key: '/k', port: 2222, options: ['StrictHostKeyChecking=accept-new'] }, '10.0.0.1', 'true');
  t.equal(argv[0], 'ssh');
  t.ok(argv.includes('BatchMode=yes'));
  t.ok(argv.includes('ConnectTimeout=10'));
  t.same(argv.slice(argv.indexOf('-p'), argv.indexOf('-p') + 2), ['-p', '2222']);
  t.same(argv.slice(argv.indexOf('-l'), argv.indexOf('-l') + 2), ['-l', 'root']);
  t.same(argv.slice(argv.indexOf('-i'), argv.indexOf('-i') + 2), ['-i', '/k']);
  t.ok(argv.includes('StrictHostKeyChecking=accept-new'));
  t.same(argv.slice(-3), ['--', '10.0.0.1', 'true']);
  const plain = sshArgv({}, 'h', 'x');
  t.notOk(plain.includes('-l') || plain.includes('-i') || plain.includes('-p'), 'nothing forced: ~/.ssh/config decides');
  t.notOk(plain.some((a) => /StrictHostKeyChecking/.test(a)), 'known_hosts policy: the user\'s own by default');
});

t.test('shQuote survives the remote shell', async (t) => {
  for (const s of ['plain', 'with space', "it's", '$(rm -rf /)', '`x`', 'a"b', '']) {
    const out = await new Promise<string>((resolve, reject) =>
      execFile('sh', ['-c', `printf %s ${shQuote(s)}`], (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    t.equal(out, s, JSON.stringify(s));
  }
});

const SUM = 'a'.repeat(64);
t.test('parseFacts and factsProblem', async (t) => {
  const facts = parseFacts(`uid=0\nuser=root\narch=x86_64\nnode=/usr/bin/node\nnodeversion=v20.11.1\nsum=${SUM}  calico-nettest.mjs\nend=1\n`)!;
  t.equal(facts.uid, 0);
  t.equal(facts.sums.get('calico-nettest.mjs'), SUM);
  t.equal(factsProblem(facts, 'x86_64'), null);
  t.equal(parseFacts('uid=0\n'), null, 'a cut-off answer is no answer');
  t.match(factsProblem({ ...facts, node: '' }, 'x86_64'), /Node\.js is not installed/);
  t.match(factsProblem({ ...facts, nodeVersion: 'v18.19.0' }, 'x86_64'), /Node\.js v18\.19\.0 at \/usr\/bin\/node is too old; the responder needs Node\.js 20 or newer/);
  t.match(factsProblem({ ...facts, uid: 1000, user: 'alice', sudo: false }, 'x86_64'), /logged in as alice, which is not root and cannot sudo without a password/);
  t.equal(factsProblem({ ...facts, uid: 1000, user: 'alice', sudo: true }, 'x86_64'), null, 'passwordless sudo will do');
  t.match(factsProblem({ ...facts, arch: 'aarch64' }, 'x86_64'), /the node is aarch64, but the bundled native addon was built for x86_64/);
  t.equal(unameMachine('x64'), 'x86_64');
  t.equal(unameMachine('arm64'), 'aarch64');
});

t.test('explainSshFailure: OpenSSH\'s messages in plain words', async (t) => {
  const at = { host: '10.0.0.5', user: 'root' };
  t.match(explainSshFailure('ssh: connect to host 10.0.0.5 port 22: No route to host\r\n', 255, at), /^no route to 10\.0\.0\.5:22/);
  t.match(explainSshFailure('ssh: connect to host 10.0.0.5 port 22: Connection refused\r\n', 255, at), /nothing accepts SSH connections at 10\.0\.0\.5:22 \(connection refused\): is sshd running there\?/);
  t.match(explainSshFailure('ssh: connect to host 10.0.0.5 port 22: Connection timed out\r\n', 255, at), /SSH to 10\.0\.0\.5:22 timed out/);
  t.match(explainSshFailure('root@10.0.0.5: Permission denied (publickey).\r\n', 255, at), /SSH refused the login as root at 10\.0\.0\.5:22 \(the key was not accepted\)/);
  t.match(explainSshFailure('Host key verification failed.\r\n', 255, at), /not in your known_hosts .*StrictHostKeyChecking=accept-new/);
  t.match(explainSshFailure('ssh: Could not resolve hostname nodex: Name or service not known\r\n', 255, { host: 'nodex' }), /cannot resolve the host name nodex/);
  t.match(explainSshFailure('weird\n', 255, at), /SSH failed at 10\.0\.0\.5:22: weird/);
});

t.test('explainNodeErrors: unknown flows of a node without responder say why', async (t) => {
  const r = (from: string, to: string, verdict: 'pass' | 'unknown') => ({ check: 'bgp' as const, from, to, verdict, cause: verdict === 'unknown' ? ('responder-unreachable' as const) : null, rejectedBy: null, detail: 'd', rttMs: null, attempts: 1, observedSource: null });
  const report = { results: [r('a', 'b', 'pass'), r('a', 'c', 'unknown'), r('c', 'a', 'unknown')] } as unknown as Report;
  const out = explainNodeErrors(report, [{ node: 'c', message: 'sshd is down' }]);
  t.same(out.results.map((x) => x.detail), ['d', 'no responder on c for this run: sshd is down', 'no responder on c for this run: sshd is down']);
  t.same(out.results.map((x) => x.facts), [undefined, { responder: 'c', errorKind: 'no-responder', error: 'sshd is down' }, { responder: 'c', errorKind: 'no-responder', error: 'sshd is down' }], 'the facts say it too');
  // A flow into c judged from the sender's side (c's kernel answered a reset): the detail adds why c had no responder.
  const judged = { ...r('a', 'c', 'pass'), detail: "reset by 10.0.0.3: reachable, no listener (c's responder could not be asked what it saw, so only a's side judges).", facts: { responder: 'c', errorKind: 'refused' } };
  const [j] = explainNodeErrors({ results: [judged] } as unknown as Report, [{ node: 'c', message: 'is sshd running there?' }]).results;
  t.equal(j!.verdict, 'pass', 'its verdict stands');
  t.equal(j!.detail, `${judged.detail} No responder on c for this run: is sshd running there?`);
  t.same(j!.facts, { responder: 'c', errorKind: 'no-responder', error: 'is sshd running there?' });
  t.equal(explainNodeErrors({ ...report, diagnosis: [] }, [{ node: 'c', message: 'x' }]).diagnosis, undefined, 'a diagnosis made before is dropped');
  t.equal(explainNodeErrors(report, []), report, 'nothing to say: the same report');
});

t.test('the diagnosis of a node without a responder says why, as its flows do (not "not reachable")', async (t) => {
  const { mesh, unknown } = await import('../helpers/report-fixtures.js');
  const { diagnose } = await import('../../src/report/diagnosis.js');
  const r = mesh(3, { fault: (_c, f, to) => (f === 'node3' || to === 'node3' ? unknown({ facts: { responder: 'node3', control: '198.18.3.1:5478', errorKind: 'refused' } }) : undefined) });
  t.match(diagnose(r)[0]!.text, /^node3: responder not reachable at 198\.18\.3\.1:5478/);
  const out = explainNodeErrors(r, [{ node: 'node3', message: 'SSH to 198.18.3.1:22 timed out' }]);
  const [st] = diagnose(out);
  t.equal(st!.text, 'node3: no responder for this run (12 flows unknown)');
  t.match(st!.advice, /No calico-nettest responder ran on node3 \(198\.18\.3\.1\) for this run: SSH to 198\.18\.3\.1:22 timed out\./);
  t.equal(st!.where, 'responder');
});

const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));
const cli = (args: string[]) =>
  new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1' } }, (err, _o, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stderr })),
  );

t.test('usage errors of the remote options: exit 2, a clear message, nothing run', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['mesh', '--secret-file', '/nonexistent'], /--inventory is required \(or --kubernetes to discover the nodes from the cluster\)/],
    [['mesh', '--kubernetes', '--inventory', 'x.yaml', '--secret-file', 's'], /give either --inventory or --kubernetes, not both/],
    [['mesh', '--inventory', 'x.yaml'], /--secret-file is required: the secret the responders were started with \(with --ssh, a fresh one is made for the run\)/],
    [['pair', 'a', 'b', '--inventory', 'x.yaml', '--secret-file', 's', '--ssh-user', 'root'], /--ssh-user, --ssh-key, --ssh-port and --ssh-option need --ssh/],
    [['verify', '--baseline', '/nonexistent.json', '--inventory', 'x.yaml', '--secret-file', 's', '--context', 'c'], /cannot read baseline|--context needs --kubernetes/],
    [['mesh', '--inventory', '/nonexistent.yaml', '--ssh'], /\/nonexistent\.yaml: .*(not found|no such file)/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    t.equal(r.code, 2, `${args.join(' ')} -> exit 2`);
    t.match(r.stderr, re, args.join(' '));
  }
});
