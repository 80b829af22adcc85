// What this machine's kernel can do, found by trying it in a namespace of the test's own (never hard-coded).
import { randomBytes } from 'node:crypto';
import { run } from '../../src/lab/sys.js';

/** Whether `ip link add k0 type …` works here (e.g. ['ipip'], ['vxlan', 'id', '7', 'dstport', '4789']). */
export async function kernelCan(type: string[]): Promise<boolean> {
  const name = `cnt-pfk-${randomBytes(3).toString('hex')}`;
  await run(['ip', 'netns', 'add', name]);
  try {
    return (await run(['ip', 'netns', 'exec', name, 'ip', 'link', 'add', 'k0', 'type', ...type], { allowFail: true })).code === 0;
  } finally {
    await run(['ip', 'netns', 'delete', name], { allowFail: true });
  }
}
