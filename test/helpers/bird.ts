// Test helpers for real services in lab namespaces: wait for a condition, see who listens, run BIRD.
import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inNs, run, start } from '../../src/lab/sys.js';

export async function waitFor(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `ss` lines of the sockets listening on `port` in namespace `ns` ('' when none), with their processes. */
export async function listeners(ns: string, proto: 'tcp' | 'udp', port: number): Promise<string> {
  const { stdout } = await run(inNs(ns, ['ss', '-Hnp', proto === 'tcp' ? '-tl' : '-ul', `sport = :${port}`]), { allowFail: true });
  return stdout.trim();
}

export interface Bird {
  pid: number;
  log: string;
  ctl: string;
}

/** BIRD in `ns` with a BGP session to every peer (import/export nothing: only the sessions matter). */
export async function startBird(dir: string, ns: string, address: string, peers: string[]): Promise<Bird> {
  const name = ns.replace(/[^a-z0-9]/gi, '_');
  const log = join(dir, `bird-${name}.log`);
  const ctl = join(dir, `bird-${name}.ctl`);
  const conf = join(dir, `bird-${name}.conf`);
  const protocols = peers.map(
    (p, i) => `protocol bgp peer${i} {\n  local ${address} as 64512;\n  neighbor ${p} as 64512;\n  connect retry time 2;\n  ipv4 { import none; export none; };\n}\n`,
  );
  await writeFile(conf, `log "${log}" all;\nrouter id ${address};\nprotocol device {}\n${protocols.join('')}`);
  const out = openSync(join(dir, `bird-${name}.out`), 'a');
  try {
    const child = start(inNs(ns, ['bird', '-f', '-c', conf, '-s', ctl]), { stdio: ['ignore', out, out], detached: true });
    child.unref();
    return { pid: child.pid!, log, ctl };
  } finally {
    closeSync(out);
  }
}

/** `birdc show protocols` of a running BIRD. */
export async function birdProtocols(ns: string, bird: Bird): Promise<string> {
  const { stdout } = await run(inNs(ns, ['birdc', '-s', bird.ctl, 'show', 'protocols']), { allowFail: true });
  return stdout;
}
