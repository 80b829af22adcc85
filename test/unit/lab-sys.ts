// isRunning: what the lab uses to tell a running responder from an ended one (zombies included).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { isRunning } from '../../src/lab/sys.js';

t.test('isRunning', async (t) => {
  t.equal(isRunning(process.pid), true, 'this process runs');
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  t.equal(isRunning(Number(child.stdout)), false, 'an ended, reaped child does not');
  t.equal(isRunning(2 ** 22 + 1), false, 'a pid beyond pid_max does not');
});
