// Dropping privileges: who else could signal the responder (read from a /proc-shaped directory) and
// what the start log says about it.
import t from 'tap';
import { join } from 'node:path';
import { describeDrop, lookupUser, processesOfUser } from '../../src/responder/privileges.js';

const status = (real: number, eff: number) => `Name:\tx\nUid:\t${real}\t${eff}\t${real}\t${real}\n`;

t.test('processesOfUser: real or effective uid matches, self and non-pids left out', async (t) => {
  const proc = t.testdir({
    '10': { status: status(65534, 65534) },
    '11': { status: status(0, 65534) },
    '12': { status: status(1000, 1000) },
    '13': { status: status(65534, 65534) },
    self: { status: status(65534, 65534) },
    '14': {},
  });
  t.same((await processesOfUser(65534, 13, proc)).sort(), [10, 11]);
  t.same(await processesOfUser(65534, 1, join(proc, 'missing')), [], 'no /proc: nothing known');
  t.ok((await processesOfUser(process.getuid!())).length >= 0, 'the real /proc reads');
});

t.test('describeDrop names what was locked and warns about a shared user', async (t) => {
  const restrictions = { noNewPrivs: true, allThreads: true, threadsError: null, dumpable: false };
  const alone = describeDrop('cnt', { uid: 998, gid: 998, restrictions, sharedWith: [] });
  t.equal(alone.info, 'dropped privileges to cnt (uid 998, gid 998); open sockets keep working; no_new_privs on every thread, not dumpable (no ptrace or /proc access by other uid 998 processes)');
  t.same(alone.warnings, []);
  const shared = describeDrop('nobody', { uid: 65534, gid: 65534, restrictions: { ...restrictions, allThreads: false, threadsError: Object.assign(new Error('seccomp(2) failed: EINVAL'), { code: 'EINVAL', errno: 22, syscall: 'seccomp' }) }, sharedWith: [5, 6] });
  t.match(shared.info, /no_new_privs on the main thread, not dumpable/);
  t.match(shared.warnings, [/main thread only \(seccomp\(2\) failed: EINVAL\)/, /^2 other processes run as nobody \(uid 65534\): .*dedicated user: useradd --system/]);
  t.equal(describeDrop('x', { uid: 1, gid: 1, restrictions: null, sharedWith: [] }).info, 'dropped privileges to x (uid 1, gid 1); open sockets keep working');
});

t.test('lookupUser', async (t) => {
  t.match(await lookupUser('root'), { uid: 0, gid: 0 });
  t.match(await lookupUser('4242'), { uid: 4242 });
  await t.rejects(lookupUser('no-such-user-here'), { code: 'ECONFIG', message: /no such user/ });
});
