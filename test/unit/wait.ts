import t from 'tap';
import { exited, waitFor, waitOut } from '../helpers/wait.js';

t.test('waitFor returns the first truthy value, sync or async', async (t) => {
  let n = 0;
  t.equal(await waitFor(() => (++n >= 3 ? n : 0), { timeout: 5000, what: 'three polls', every: 1 }), 3);
  t.equal(await waitFor(async () => 'yes', { timeout: 10, what: 'x' }), 'yes');
});

t.test('waitFor fails after the timeout, saying what it waited for', async (t) => {
  const t0 = Date.now();
  await t.rejects(waitFor(() => false, { timeout: 50, what: "node3's responder to exit" }), { message: "timed out after 50 ms waiting for node3's responder to exit" });
  t.ok(Date.now() - t0 >= 50);
  await t.rejects(waitFor(() => Promise.reject(new Error('boom')), { timeout: 50, what: 'x' }), { message: 'boom' }, 'a failing predicate fails the wait');
});

t.test('waitOut waits; exited tells a live process from a gone one', async (t) => {
  const t0 = Date.now();
  await waitOut(30, 'nothing should happen');
  t.ok(Date.now() - t0 >= 25);
  t.equal(exited(process.pid), false);
  t.equal(exited(2 ** 22 + 12345), true, 'a pid above pid_max does not exist');
});
