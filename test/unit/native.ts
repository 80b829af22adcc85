// The native addon's loader and argument checks, its error bridge, and the capability message a
// user without CAP_NET_RAW gets. No packet is sent: sockets opened here keep their drop-all filter.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addonCandidates,
  isNativeError,
  loadNative,
  loadNativeFrom,
  packageRoot,
  type BpfInstruction,
  type NativeSocket,
  type SocketOptions,
} from '../../src/native.js';

const isRoot = process.getuid?.() === 0;
const ACCEPT_ALL: BpfInstruction[] = [{ code: 0x06, jt: 0, jf: 0, k: 0xffff }];

/** Bypasses the static types, to hand the addon what a JS caller could. */
const loose = <T>(value: unknown): T => value as T;

/** Asserts that `fn` throws an error that `check` accepts (tap's t.throws treats functions as classes). */
function throwsWhere(t: Test, fn: () => unknown, check: (err: unknown) => boolean, what: string): void {
  try {
    fn();
    t.fail(`${what}: did not throw`);
  } catch (err) {
    t.ok(check(err), `${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

t.test('loader', async (t) => {
  const native = loadNative();
  t.equal(typeof native.open, 'function');
  t.equal(typeof native.ifIndex, 'function');
  t.equal(loadNative(), native, 'cached');
  t.same(addonCandidates('/pkg'), ['/pkg/build/Release/calico_nettest.node', '/pkg/build/Debug/calico_nettest.node']);
  t.ok(existsSync(join(packageRoot, 'package.json')), 'packageRoot is the package root');

  const tried = ['/nonexistent/a/calico_nettest.node', '/nonexistent/b/calico_nettest.node'];
  throwsWhere(t, () => loadNativeFrom(tried, '/somewhere'), (err: unknown) => {
    if (!(err instanceof Error)) return false;
    return (
      err.message.includes(tried[0]!) &&
      err.message.includes(tried[1]!) &&
      /Last error: .*Cannot find module/.test(err.message) &&
      err.message.includes('npm install') &&
      err.message.includes('apt-get install build-essential python3') &&
      err.cause instanceof Error
    );
  }, 'the loader lists what it tried and how to build');
  // A module that loads but is not the addon is refused too.
  t.throws(() => loadNativeFrom([join(packageRoot, 'package.json')]), /not this project's addon/);
});

t.test('open() checks its options before any system call', async (t) => {
  const { open } = loadNative();
  const bad: [unknown, RegExp][] = [
    [undefined, /^options must be an object\. Usage: open\(\{ kind: 'raw', protocol: number/],
    [null, /^options must be an object/],
    ['raw', /^options must be an object/],
    [{}, /^options\.kind must be 'raw' or 'packet'/],
    [{ kind: 'udp' }, /^options\.kind must be 'raw' or 'packet'/],
    [{ kind: 'raw' }, /^options\.protocol must be .*Usage: open\(\{ kind: 'raw', protocol: number/],
    [{ kind: 'raw', protocol: '4' }, /^options\.protocol/],
    [{ kind: 'raw', protocol: 0 }, /^options\.protocol/],
    [{ kind: 'raw', protocol: 256 }, /^options\.protocol/],
    [{ kind: 'raw', protocol: 4.5 }, /^options\.protocol/],
    [{ kind: 'raw', protocol: 4, bindAddress: 'not-an-ip' }, /^options\.bindAddress must be a dotted IPv4/],
    [{ kind: 'raw', protocol: 4, bindAddress: '::1' }, /^options\.bindAddress/],
    [{ kind: 'raw', protocol: 4, bindAddress: 7 }, /^options\.bindAddress must be a string/],
    [{ kind: 'raw', protocol: 4, hdrincl: 1 }, /^options\.hdrincl must be a boolean/],
    [{ kind: 'raw', protocol: 4, rcvbuf: 0 }, /^options\.rcvbuf/],
    [{ kind: 'raw', protocol: 4, rcvbuf: 2 ** 31 }, /^options\.rcvbuf/],
    [{ kind: 'raw', protocol: 4, netns: '' }, /^options\.netns/],
    [{ kind: 'raw', protocol: 4, netns: 3 }, /^options\.netns must be a string/],
    [{ kind: 'packet', ifname: '' }, /^options\.ifname/],
    [{ kind: 'packet', ifname: 'x'.repeat(16) }, /^options\.ifname/],
    [{ kind: 'packet', ifname: 3 }, /^options\.ifname must be a string/],
  ];
  for (const [options, message] of bad) {
    t.throws(() => open(loose<SocketOptions>(options)), TypeError, `TypeError for ${JSON.stringify(options)}`);
    t.throws(() => open(loose<SocketOptions>(options)), message);
  }
});

t.test('ifIndex', async (t) => {
  const { ifIndex } = loadNative();
  t.ok(ifIndex('lo') > 0, 'lo exists');
  t.equal(ifIndex('no-such-if0'), 0);
  t.throws(() => ifIndex(loose<string>(1)), { name: 'TypeError', message: /^name must be a string/ });
});

t.test('isNativeError', async (t) => {
  t.notOk(isNativeError(new Error('x')));
  t.notOk(isNativeError(new TypeError('x')));
  t.notOk(isNativeError({ code: 'EPERM', errno: 1, syscall: 'sendto', message: 'not an Error' }));
  t.ok(isNativeError(Object.assign(new Error('x'), { code: 'EPERM', errno: 1, syscall: 'sendto' })));
});

t.test('sockets (needs root: opens a raw and a packet socket, sends nothing)', { skip: isRoot ? false : 'not root: cannot open raw sockets' }, async (t) => {
  const { open } = loadNative();
  const sockets: NativeSocket[] = [];
  t.teardown(() => sockets.forEach((s) => s.close()));
  const raw = open({ kind: 'raw', protocol: 4, rcvbuf: 1 << 20 });
  const packet = open({ kind: 'packet', ifname: 'lo' });
  sockets.push(raw, packet);
  t.equal(raw.kind, 'raw');
  t.equal(packet.kind, 'packet');
  t.ok(raw.fd >= 0 && packet.fd >= 0);
  t.equal(raw.closed, false);

  t.test('attachFilter checks the program', async (t) => {
    const insn = { code: 0x06, jt: 0, jf: 0, k: 0 };
    const bad: [unknown, RegExp][] = [
      [undefined, /^program must be an array of BPF instructions/],
      [{ code: 6 }, /^program must be an array/],
      [[], /^program must have 1\.\.4096 instructions, not 0/],
      [Array.from({ length: 4097 }, () => insn), /^program must have 1\.\.4096 instructions, not 4097/],
      [[null], /^program\[0\] must be an object/],
      [[insn, 6], /^program\[1\] must be an object/],
      [[[6, 0, 0, 0]], /^program\[0\] must be an object/],
      [[{ ...insn, code: 0x10000 }], /^program\[0\]\.code must be an integer in 0\.\.65535/],
      [[{ ...insn, code: -1 }], /^program\[0\]\.code/],
      [[insn, { ...insn, jt: 256 }], /^program\[1\]\.jt must be an integer in 0\.\.255/],
      [[{ ...insn, jf: 1.5 }], /^program\[0\]\.jf/],
      [[{ ...insn, k: 2 ** 32 }], /^program\[0\]\.k must be an integer in 0\.\.4294967295/],
      [[{ ...insn, k: Number.NaN }], /^program\[0\]\.k/],
      [[{ code: 6, jt: 0, jf: 0 }], /^program\[0\]\.k/],
      [[{ ...insn, k: '0' }], /^program\[0\]\.k/],
    ];
    for (const [program, message] of bad) {
      t.throws(() => raw.attachFilter(loose<BpfInstruction[]>(program)), TypeError);
      t.throws(() => raw.attachFilter(loose<BpfInstruction[]>(program)), message);
    }
    // Full-range values and the longest program are accepted (the kernel then judges the program).
    t.doesNotThrow(() => raw.attachFilter([{ code: 0x06, jt: 255, jf: 255, k: 0xffffffff }]));
    t.doesNotThrow(() => raw.attachFilter(Array.from({ length: 4096 }, () => insn)));
    t.doesNotThrow(() => packet.attachFilter(ACCEPT_ALL));
    // The kernel's own verdict comes back as a NativeError: a jump past the end is EINVAL.
    t.throws(() => raw.attachFilter([{ code: 0x05, jt: 0, jf: 0, k: 5 }]), { code: 'EINVAL', syscall: 'setsockopt' });
  });

  t.test('send checks its arguments', async (t) => {
    const data = Buffer.alloc(20);
    t.throws(() => raw.send(loose<Buffer>('abc'), '198.18.2.2'), { name: 'TypeError', message: /^data must be a Buffer/ });
    t.throws(() => raw.send(data, 'not-an-address'), { name: 'TypeError', message: /^address must be a dotted IPv4 address/ });
    t.throws(() => raw.send(data, loose<string>(42)), { name: 'TypeError', message: /^address must be/ });
    t.throws(() => raw.send(data, '198.18.2.256'), TypeError);
    t.throws(() => packet.send(data, '198.18.2.2'), { name: 'TypeError', message: /packet socket only witnesses/ });
  });

  t.test('start checks its arguments', async (t) => {
    const cb = (): void => undefined;
    t.throws(() => raw.start(loose<typeof cb>(null), cb), { name: 'TypeError', message: /^onPackets must be a function/ });
    t.throws(() => raw.start(cb, loose<typeof cb>(1)), { name: 'TypeError', message: /^onError must be a function/ });
    t.throws(() => raw.start(cb, cb, 0), { name: 'TypeError', message: /^batch must be an integer in 1\.\.1024/ });
    t.throws(() => raw.start(cb, cb, 1025), TypeError);
    t.throws(() => raw.start(cb, cb, 2.5), TypeError);
  });

  t.test('undefined options count as absent', async (t) => {
    const a = open(loose<SocketOptions>({ kind: 'raw', protocol: 4, bindAddress: undefined, hdrincl: undefined, rcvbuf: undefined, netns: undefined }));
    const b = open(loose<SocketOptions>({ kind: 'packet', ifname: undefined, netns: undefined }));
    t.equal(a.closed || b.closed, false);
    a.close();
    b.close();
  });

  t.test('a bad address to bind to is EADDRNOTAVAIL', async (t) => {
    throwsWhere(t, () => open({ kind: 'raw', protocol: 4, bindAddress: '198.18.254.254' }), (err: unknown) =>
      isNativeError(err) && err.code === 'EADDRNOTAVAIL' && err.syscall === 'bind' && /^bind\(2\) failed: EADDRNOTAVAIL/.test(err.message),
      'bind to a foreign address');
    t.throws(() => open({ kind: 'packet', ifname: 'no-such-if0' }), { code: 'ENODEV' });
    t.throws(() => open({ kind: 'raw', protocol: 4, netns: '/nonexistent/netns' }), { code: 'ENOENT', syscall: 'open' });
    t.throws(() => open({ kind: 'raw', protocol: 4, netns: '/proc/self/ns/uts' }), { code: 'EINVAL', syscall: 'setns' });
  });

  t.test('close is idempotent and later calls fail with EBADF', async (t) => {
    const s = open({ kind: 'raw', protocol: 4 });
    s.start(() => undefined, () => undefined);
    s.close();
    t.equal(s.closed, true);
    t.doesNotThrow(() => s.close());
    t.doesNotThrow(() => s.stop());
    t.equal(s.closed, true);
    t.same(s.stats(), { received: 0, batches: 0, drops: 0 });
    const ebadf = (syscall: string) => (err: unknown): boolean =>
      isNativeError(err) && err.code === 'EBADF' && err.errno === 9 && err.syscall === syscall && err instanceof Error;
    throwsWhere(t, () => s.attachFilter(ACCEPT_ALL), ebadf('setsockopt'), 'attachFilter after close');
    throwsWhere(t, () => s.send(Buffer.alloc(20), '198.18.2.2'), ebadf('sendto'), 'send after close');
    throwsWhere(t, () => s.start(() => undefined, () => undefined), ebadf('recvmmsg'), 'start after close');
  });
});

const capabilityMessage = /needs CAP_NET_RAW: run as root, or grant it \(setcap cap_net_raw,cap_net_admin\+ep .*securityContext\.capabilities\.add: \[NET_RAW, NET_ADMIN\]\)/;

t.test('without CAP_NET_RAW, open() says which capability is missing', async (t) => {
  if (!isRoot) {
    const { open } = loadNative();
    for (const options of [{ kind: 'raw', protocol: 4 }, { kind: 'packet' }] as SocketOptions[]) {
      throwsWhere(t, () => open(options), (err: unknown) =>
        isNativeError(err) && (err.code === 'EPERM' || err.code === 'EACCES') && err.syscall === 'socket' &&
        capabilityMessage.test(err.message), `open(${JSON.stringify(options)}) unprivileged`);
    }
    return;
  }
  // As root, drop to nobody (setpriv clears the capabilities with the uid) and ask a child.
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  const addon = addonCandidates().find((p) => existsSync(p));
  if (!setpriv || !addon) {
    t.pass(`skipped: ${!setpriv ? 'setpriv(1) is not installed, cannot drop to nobody' : 'the addon is not built'}`);
    return;
  }
  // The child runs as nobody: it must not depend on reading this checkout (a clone under /root or any 0700
  // directory) nor inherit tap's NODE_OPTIONS, which imports a file from inside the checkout. So it gets a
  // copy of the addon in a directory of its own, that directory as its cwd, and an environment of just PATH.
  const dir = mkdtempSync(join(tmpdir(), 'cnt-nobody-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const copy = join(dir, 'calico_nettest.node');
  copyFileSync(addon, copy);
  chmodSync(copy, 0o644);
  const script = `
    const m = require(${JSON.stringify(copy)});
    const out = [];
    for (const o of [{ kind: 'raw', protocol: 4 }, { kind: 'packet' }]) {
      try { m.open(o).close(); out.push(null); }
      catch (e) { out.push({ isError: e instanceof Error, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }); }
    }
    process.stdout.write(JSON.stringify(out));`;
  // tap's process tracking puts NODE_OPTIONS back into any child's environment: `env -u` drops it at exec.
  const child = spawnSync(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/env', '-u', 'NODE_OPTIONS', process.execPath, '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  t.equal(child.status, 0, `child exited cleanly: ${child.stderr}`);
  const results = JSON.parse(child.stdout) as ({ isError: boolean; code: string; errno: number; syscall: string; message: string } | null)[];
  t.equal(results.length, 2);
  for (const r of results) {
    t.ok(r, 'open failed as nobody');
    if (!r) continue;
    t.equal(r.isError, true);
    t.equal(r.code, 'EPERM');
    t.equal(r.errno, 1);
    t.equal(r.syscall, 'socket');
    t.match(r.message, /^socket\(2\) failed: EPERM \(Operation not permitted\): opening a (raw|packet) socket/);
    t.match(r.message, capabilityMessage);
  }
});

t.test('restrictProcess(): no_new_privs on every thread and not dumpable, read back from /proc', async (t) => {
  const addon = addonCandidates().find((p) => existsSync(p));
  if (!addon) {
    t.pass('skipped: the addon is not built');
    return;
  }
  // In a child (the flags cannot be undone); a clean environment: no tap loader to import.
  const script = `
    const fs = require('fs');
    const m = require(${JSON.stringify(addon)});
    const bad = [];
    for (const a of ['x', { dumpable: 'no' }]) { try { m.restrictProcess(a); bad.push('accepted'); } catch (e) { bad.push(e.constructor.name + ': ' + e.message); } }
    const before = /^NoNewPrivs:\\s+(\\d)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
    const r = m.restrictProcess(${'${ARG}'});
    const tasks = fs.readdirSync('/proc/self/task').map((id) => /^NoNewPrivs:\\s+(\\d)/m.exec(fs.readFileSync('/proc/self/task/' + id + '/status', 'utf8'))[1]);
    process.stdout.write(JSON.stringify({ bad, before, r: { ...r, threadsError: r.threadsError && r.threadsError.message }, tasks }));`;
  for (const [arg, dumpable] of [['undefined', false], ['{ dumpable: true }', true]] as const) {
    const child = spawnSync(process.execPath, ['-e', script.replace('${ARG}', arg)], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH } });
    t.equal(child.status, 0, `child exited cleanly: ${child.stderr}`);
    const got = JSON.parse(child.stdout) as { bad: string[]; before: string; r: { noNewPrivs: boolean; allThreads: boolean; threadsError: string | null; dumpable: boolean }; tasks: string[] };
    t.match(got.bad, [/^TypeError: options must be an object\. Usage: restrictProcess/, /^TypeError: options\.dumpable must be a boolean/], 'bad options: TypeError, nothing changed');
    t.equal(got.before, '0', 'no_new_privs was not set before');
    t.same(got.r, { noNewPrivs: true, allThreads: true, threadsError: null, dumpable }, `restrictProcess(${arg})`);
    t.ok(got.tasks.length > 1 && got.tasks.every((x) => x === '1'), `every thread has NoNewPrivs 1 (${got.tasks.join(',')})`);
  }
});

t.test('interfaceMtu and routeMtu', async (t) => {
  const native = loadNative();
  const lo = native.interfaceMtu('127.0.0.1');
  t.ok(lo, 'loopback holds 127.0.0.1');
  t.equal(lo?.ifname, 'lo');
  t.ok((lo?.mtu ?? 0) >= 1500, `lo MTU ${lo?.mtu}`);
  t.equal(native.interfaceMtu('198.18.255.254'), null, 'an address no interface holds');
  t.equal(native.routeMtu('127.0.0.1'), Math.min(lo?.mtu ?? 0, 65535), 'the route to loopback has lo’s MTU (IP_MTU stops at 65535)');
  t.equal(native.routeMtu('127.0.0.1', { bindAddress: '127.0.0.1' }), Math.min(lo?.mtu ?? 0, 65535));
  t.throws(() => native.interfaceMtu('nope'), { name: 'TypeError', message: /^address must be a dotted IPv4 address/ });
  t.throws(() => native.routeMtu(loose<string>(3)), { name: 'TypeError', message: /^destination must be/ });
  t.throws(() => native.routeMtu('127.0.0.1', loose({ bindAddress: 'x' })), { name: 'TypeError', message: /bindAddress must be/ });
  throwsWhere(t, () => native.routeMtu('127.0.0.1', { bindAddress: '198.18.255.254' }), (e) => isNativeError(e) && e.code === 'EADDRNOTAVAIL', 'bind to a foreign address');
  throwsWhere(t, () => native.interfaceMtu('127.0.0.1', '/nonexistent/netns'), (e) => isNativeError(e) && e.code === 'ENOENT', 'a missing namespace');
  if (isRoot) {
    const s = native.open({ kind: 'raw', protocol: 255, hdrincl: true, pmtudisc: 'probe' });
    t.ok(s.fd > 0, 'a raw socket with IP_PMTUDISC_PROBE');
    s.close();
  }
  t.throws(() => native.open(loose({ kind: 'raw', protocol: 255, pmtudisc: 'sometimes' })), { name: 'TypeError', message: /pmtudisc must be/ });
});
