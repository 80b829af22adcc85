// cli/interruptible.ts: one optional step that Ctrl-C stops on its own (--explain, mesh's preflight).
import t from 'tap';
import { interruptibleStep } from '../../src/cli/interruptible.js';

const listeners = () => ({ int: process.listeners('SIGINT'), term: process.listeners('SIGTERM') });

t.test('not interrupted: the value, and no handler left behind', async (t) => {
  const before = listeners();
  const lines: string[] = [];
  let seen: AbortSignal | undefined;
  const r = await interruptibleStep('not naming the rules', (l) => lines.push(l), async (signal) => {
    seen = signal;
    t.equal(process.listeners('SIGINT').length, before.int.length + 1, 'a SIGINT handler while it runs');
    return 42;
  });
  t.same(r, { value: 42, interrupted: false });
  t.equal(seen?.aborted, false);
  t.same(lines, []);
  t.same(listeners(), before, 'SIGINT and SIGTERM handlers as they were');
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${sig} while it runs: the step's signal aborts, the note is said, the step's own result is kept`, async (t) => {
    const before = listeners();
    const lines: string[] = [];
    const r = await interruptibleStep('not asking for preflight findings; writing the report', (l) => lines.push(l), (signal) => {
      setImmediate(() => process.emit(sig as 'SIGINT'));
      return new Promise<string>((resolve) => signal.addEventListener('abort', () => resolve('what it had'), { once: true }));
    });
    t.same(r, { value: 'what it had', interrupted: true });
    t.same(lines, ['\ninterrupted: not asking for preflight findings; writing the report (Ctrl-C again to quit at once)']);
    t.same(process.listeners('SIGTERM'), before.term, 'its SIGTERM handler is gone');
    // What is left: the one-shot "Ctrl-C again quits at once" (exit 130). Taken off here, as the test must not exit.
    const extra = process.listeners('SIGINT').filter((l) => !before.int.includes(l));
    t.equal(extra.length, 1, 'a second Ctrl-C quits at once');
    for (const l of extra) process.off('SIGINT', l);
  });
}

t.test('a step that fails: the error passes through, the handlers are removed', async (t) => {
  const before = listeners();
  await t.rejects(interruptibleStep('x', () => undefined, async () => {
    throw new Error('tracing failed');
  }), /tracing failed/);
  t.same(listeners(), before);
});
