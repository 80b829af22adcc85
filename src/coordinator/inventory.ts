// The inventory (DESIGN §5): which nodes exist, their roles and control endpoints, which checks and
// ports to use. Parsed from the YAML syntax tree so that every error names the file, line and column.
import { readFile } from 'node:fs/promises';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type YAMLMap } from 'yaml';
import { CATALOGUE, defaultPorts, didYouMean, isCheckId, unknownCheckMessage } from '../checks/catalogue.js';
import { CHECK_IDS, type CheckId, type Role } from '../types.js';

export interface InventoryNode {
  name: string;
  address: string;
  roles: Role[];
  control: { host: string; port: number };
}

/** A target that runs no responder (an apiserver VIP, a load balancer): only TCP checks, judged at the source. */
export interface InventoryEndpoint {
  name: string;
  address: string;
  /** null: the check's port. */
  port: number | null;
  checks: CheckId[];
}

export interface Inventory {
  file: string;
  nodes: InventoryNode[];
  endpoints: InventoryEndpoint[];
  /** The file's explicit `checks:` list, or null for the catalogue's default. */
  checks: CheckId[] | null;
  /** Catalogue defaults merged with the file's `ports:` overrides. */
  ports: Record<CheckId, number | null>;
}

export interface InventoryOptions {
  /** Control port for nodes without `control:`. */
  controlPort?: number;
}

export class InventoryError extends Error {
  readonly code = 'EINVENTORY' as const;
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  /** What is wrong, without the location. */
  readonly reason: string;
  readonly hint?: string;

  constructor(file: string, reason: string, where?: { line: number; column: number }, hint?: string) {
    const loc = where ? `${file}:${where.line}:${where.column}` : file;
    super(`${loc}: ${reason}${hint ? ` (${hint})` : ''}`);
    this.name = 'InventoryError';
    this.file = file;
    this.reason = reason;
    if (where) {
      this.line = where.line;
      this.column = where.column;
    }
    if (hint) this.hint = hint;
  }
}

export const DEFAULT_CONTROL_PORT = 5478;
export const ROLES: readonly Role[] = ['typha', 'etcd', 'apiserver'];

const TOP_KEYS = ['nodes', 'checks', 'ports', 'endpoints'] as const;
const NODE_KEYS = ['name', 'address', 'roles', 'control'] as const;
const ENDPOINT_KEYS = ['name', 'address', 'port', 'checks'] as const;
const NAME_RE = /^[A-Za-z0-9._-]{1,63}$/;
const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const TCP_CHECKS = CHECK_IDS.filter((c) => CATALOGUE[c].transport === 'tcp');

/** Read and parse an inventory file. Every failure, including a missing file, is an InventoryError. */
export async function loadInventory(path: string, opts: InventoryOptions = {}): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'file not found'
      : code === 'EACCES' ? 'permission denied'
      : code === 'EISDIR' ? 'is a directory, not a file'
      : `cannot read it (${code ?? (err as Error).message})`;
    throw new InventoryError(path, `cannot load the inventory: ${why}`);
  }
  return parseInventory(text, path, opts);
}

/** Parse inventory text (YAML, or JSON which is YAML too). `file` is only used in messages. */
export function parseInventory(text: string, file: string, opts: InventoryOptions = {}): Inventory {
  return new Parser(text, file, opts.controlPort ?? DEFAULT_CONTROL_PORT).parse();
}

type Where = { line: number; column: number };
type Entry = { key: string; keyNode: unknown; value: unknown };

class Parser {
  private readonly lc = new LineCounter();
  private doc!: Document.Parsed;

  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly controlPort: number,
  ) {}

  parse(): Inventory {
    this.doc = parseDocument(this.text, { lineCounter: this.lc, prettyErrors: false, uniqueKeys: true });
    const yamlErr = this.doc.errors[0];
    if (yamlErr) throw this.syntaxError(yamlErr.code, yamlErr.message, yamlErr.pos[0]);

    const root = this.deref(this.doc.contents);
    if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) {
      throw this.error(root ?? 0, 'the inventory is empty', 'it needs at least `nodes:` with one node, each with a name and an address');
    }
    if (!isMap(root)) {
      throw this.error(root, `the inventory must be a mapping with a \`nodes:\` list, not ${this.describe(root)}`);
    }
    const top = this.entries(root, TOP_KEYS, 'at the top level');
    const nodesEntry = top.get('nodes');
    if (!nodesEntry) throw this.error(root, 'missing `nodes:`', 'list the nodes, each with a name and an address');

    const nodes = this.nodes(nodesEntry);
    const checks = top.has('checks') ? this.checkList(top.get('checks')!, 'checks', CHECK_IDS) : null;
    const ports = defaultPorts();
    const portsEntry = top.get('ports');
    if (portsEntry) this.ports(portsEntry, ports);
    const endpointsEntry = top.get('endpoints');
    const endpoints = endpointsEntry ? this.endpoints(endpointsEntry, nodes) : [];
    return { file: this.file, nodes, endpoints, checks, ports };
  }

  // ---- sections -------------------------------------------------------------------------------

  private nodes(entry: Entry): InventoryNode[] {
    const seq = this.deref(entry.value);
    if (!isSeq(seq)) throw this.error(seq ?? entry.keyNode, `\`nodes\` must be a list of nodes, not ${this.describe(seq)}`);
    if (seq.items.length === 0) throw this.error(seq, '`nodes` is empty', 'list at least one node, each with a name and an address');
    const out: InventoryNode[] = [];
    const names = new Map<string, number>();
    const addresses = new Map<string, number>();
    seq.items.forEach((raw, i) => {
      const item = this.deref(raw);
      const label = this.itemLabel('node', item, i);
      if (!isMap(item)) throw this.error(item ?? seq, `${label} must be a mapping with name and address, not ${this.describe(item)}`);
      const f = this.entries(item, NODE_KEYS, `in ${label}`);
      const name = this.name(f.get('name'), item, label, names, 'node');
      const address = this.address(f.get('address'), item, `node ${name}`, addresses, 'node');
      const roles = f.has('roles') ? this.roles(f.get('roles')!, name) : [];
      const control = f.has('control') ? this.control(f.get('control')!, name, address) : { host: address, port: this.controlPort };
      out.push({ name, address, roles, control });
    });
    return out;
  }

  private endpoints(entry: Entry, nodes: InventoryNode[]): InventoryEndpoint[] {
    const seq = this.deref(entry.value);
    if (isScalar(seq) && seq.value === null) return [];
    if (!isSeq(seq)) throw this.error(seq ?? entry.keyNode, `\`endpoints\` must be a list, not ${this.describe(seq)}`);
    const nodeNames = new Set(nodes.map((n) => n.name));
    const names = new Map<string, number>();
    const out: InventoryEndpoint[] = [];
    seq.items.forEach((raw, i) => {
      const item = this.deref(raw);
      const label = this.itemLabel('endpoint', item, i);
      if (!isMap(item)) throw this.error(item ?? seq, `${label} must be a mapping with name and address, not ${this.describe(item)}`);
      const f = this.entries(item, ENDPOINT_KEYS, `in ${label}`);
      const nameEntry = f.get('name');
      const name = this.name(nameEntry, item, label, names, 'endpoint');
      if (nodeNames.has(name)) {
        throw this.error(nameEntry!.value, `endpoint name '${name}' is also a node's name`, 'endpoint names must differ from node names');
      }
      const address = this.address(f.get('address'), item, `endpoint ${name}`, new Map(), 'endpoint');
      const checks = f.has('checks')
        ? this.checkList(f.get('checks')!, `checks of endpoint ${name}`, TCP_CHECKS, 'endpoints have no responder, so only TCP checks can be judged there')
        : (['apiserver'] as CheckId[]);
      let port: number | null = null;
      const portEntry = f.get('port');
      if (portEntry) {
        port = this.port(portEntry.value, `port of endpoint ${name}`);
        if (checks.length > 1) {
          throw this.error(portEntry.keyNode, `endpoint ${name} has one port but ${checks.length} checks (${checks.join(', ')})`, 'list one endpoint per check when they use different ports');
        }
      }
      out.push({ name, address, port, checks });
    });
    return out;
  }

  private ports(entry: Entry, ports: Record<CheckId, number | null>): void {
    const map = this.deref(entry.value);
    if (isScalar(map) && map.value === null) return;
    if (!isMap(map)) throw this.error(map ?? entry.keyNode, `\`ports\` must be a mapping of check to port (e.g. { bgp: 179 }), not ${this.describe(map)}`);
    for (const pair of map.items) {
      const key = this.keyText(pair.key);
      if (!isCheckId(key)) throw this.error(pair.key, `in ports: ${unknownCheckMessage(key)}`);
      if (CATALOGUE[key].defaultPort === null) {
        throw this.error(pair.key, `in ports: ${key} has no port (it is IP protocol 4, not TCP or UDP)`, 'remove this entry');
      }
      ports[key] = this.port(pair.value ?? pair.key, `port of ${key}`);
    }
  }

  // ---- fields ---------------------------------------------------------------------------------

  private name(entry: Entry | undefined, item: YAMLMap, label: string, seen: Map<string, number>, kind: string): string {
    if (!entry) throw this.error(item, `${label} has no name`, `every ${kind} needs name: and address:`);
    const text = this.text1(entry.value, `name of ${label}`);
    if (!NAME_RE.test(text)) {
      throw this.error(entry.value, `${kind} name '${text}' is not valid`, '1 to 63 characters from A-Z a-z 0-9 . _ -');
    }
    const first = seen.get(text);
    if (first !== undefined) throw this.error(entry.value, `duplicate ${kind} name '${text}' (first at line ${first})`);
    seen.set(text, this.where(entry.value).line);
    return text;
  }

  private address(entry: Entry | undefined, item: YAMLMap, label: string, seen: Map<string, number>, kind: string): string {
    if (!entry) throw this.error(item, `${label} has no address`, `the IPv4 address probes are sent to and from`);
    const text = this.text1(entry.value, `address of ${label}`);
    const problem = ipv4Problem(text);
    if (problem) throw this.error(entry.value, `address of ${label}: '${text}' ${problem}`);
    const first = seen.get(text);
    if (first !== undefined) throw this.error(entry.value, `duplicate ${kind} address ${text} (first at line ${first})`, `each ${kind} must have its own address`);
    seen.set(text, this.where(entry.value).line);
    return text;
  }

  private roles(entry: Entry, node: string): Role[] {
    const out: Role[] = [];
    for (const { text, node: at } of this.list(entry, `roles of node ${node}`)) {
      const role = ROLES.find((r) => r === text);
      if (!role) {
        const guess = didYouMean(text, ROLES);
        throw this.error(at, `unknown role '${text}' for node ${node}`, `${guess ? `did you mean '${guess}'? ` : ''}valid roles: ${ROLES.join(', ')}`);
      }
      if (!out.includes(role)) out.push(role);
    }
    return out;
  }

  private control(entry: Entry, node: string, address: string): { host: string; port: number } {
    const v = this.deref(entry.value);
    const label = `control of node ${node}`;
    if (isScalar(v) && typeof v.value === 'number') return { host: address, port: this.port(v, label) };
    const text = this.text1(v, label);
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\s]+):(\d+)$/.exec(text) ?? /^()(\d+)$/.exec(text);
    if (!m) throw this.error(v, `${label}: '${text}' is not host:port`, 'e.g. 198.18.0.1:5478');
    const host = m[1] || address;
    const port = Number(m[2]);
    if (!(port >= 1 && port <= 65535)) throw this.error(v, `${label}: port ${m[2]} is out of range 1-65535`);
    if (!text.startsWith('[') && /^[\d.]+$/.test(host)) {
      const problem = ipv4Check(host);
      // Loopback is fine for a control address: a channel forwarded through an SSH tunnel (ssh -L) looks like this.
      if (problem && problem.kind !== 'loopback') throw this.error(v, `${label}: '${host}' ${problem.message}`);
    } else if (!text.startsWith('[') && !HOSTNAME_RE.test(host)) {
      throw this.error(v, `${label}: '${host}' is not a valid host name or address`);
    }
    return { host, port };
  }

  private checkList(entry: Entry, label: string, allowed: readonly CheckId[], whyNot?: string): CheckId[] {
    const out: CheckId[] = [];
    const items = this.list(entry, label);
    if (items.length === 0) {
      throw this.error(entry.value ?? entry.keyNode, `\`${label}\` is empty`, 'list at least one check, or remove it to use the default');
    }
    for (const { text, node } of items) {
      const id = text.toLowerCase();
      if (!isCheckId(id)) throw this.error(node, `in ${label}: ${unknownCheckMessage(text)}`);
      if (!allowed.includes(id)) throw this.error(node, `in ${label}: ${id} is not allowed here`, `${whyNot ? `${whyNot}; ` : ''}allowed: ${allowed.join(', ')}`);
      if (!out.includes(id)) out.push(id);
    }
    return out;
  }

  private port(raw: unknown, label: string): number {
    const v = this.deref(raw);
    let n: number | null = null;
    if (isScalar(v)) {
      if (typeof v.value === 'number') n = v.value;
      else if (typeof v.value === 'string' && /^\d{1,6}$/.test(v.value.trim())) n = Number(v.value.trim());
    }
    if (n === null) throw this.error(v ?? 0, `${label} must be a port number 1-65535, not ${this.describe(v)}`);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw this.error(v ?? 0, `${label}: ${this.sourceOf(v) ?? n} is not a port number 1-65535`);
    return n;
  }

  // ---- syntax-tree helpers ----------------------------------------------------------------------

  /** "node 3 (node-c)" when the item has a usable name, else "node 3". */
  private itemLabel(kind: string, item: unknown, i: number): string {
    if (isMap(item)) {
      const name = item.items.find((p) => isScalar(p.key) && p.key.value === 'name')?.value;
      if (isScalar(name) && typeof name.value === 'string' && NAME_RE.test(name.value)) return `${kind} ${i + 1} (${name.value})`;
    }
    return `${kind} ${i + 1}`;
  }

  /** Keys of a mapping, each checked against `known` (with a did-you-mean for typos). */
  private entries(map: YAMLMap, known: readonly string[], what: string): Map<string, Entry> {
    const out = new Map<string, Entry>();
    for (const pair of map.items) {
      const key = this.keyText(pair.key);
      // `x-` keys are free for YAML anchors and notes, as in docker-compose files.
      if (key.startsWith('x-')) continue;
      if (!known.includes(key)) {
        const guess = didYouMean(key, known);
        throw this.error(pair.key, `unknown key '${key}' ${what}`, `${guess ? `did you mean '${guess}'? ` : ''}valid keys: ${known.join(', ')}`);
      }
      out.set(key, { key, keyNode: pair.key, value: pair.value });
    }
    return out;
  }

  /** A list given as a YAML sequence of scalars, or as one comma-separated string. */
  private list(entry: Entry, label: string): Array<{ text: string; node: unknown }> {
    const v = this.deref(entry.value);
    if (isSeq(v)) return v.items.map((item) => ({ text: this.text1(item, `an item of ${label}`), node: item }));
    if (isScalar(v) && typeof v.value === 'string') {
      return v.value.split(',').map((s) => s.trim()).filter(Boolean).map((text) => ({ text, node: v }));
    }
    if (isScalar(v) && v.value === null) return [];
    throw this.error(v ?? entry.keyNode, `${label} must be a list, not ${this.describe(v)}`);
  }

  private keyText(key: unknown): string {
    const k = this.deref(key);
    if (isScalar(k) && k.value !== null && typeof k.value !== 'object') return this.sourceOf(k) ?? String(k.value);
    throw this.error(k ?? 0, `keys must be plain names, not ${this.describe(k)}`);
  }

  /** The text of a scalar (numbers and booleans as written), or an error naming `label`. */
  private text1(raw: unknown, label: string): string {
    const v = this.deref(raw);
    if (isScalar(v)) {
      if (typeof v.value === 'string' && v.value.trim() !== '') return v.value.trim();
      if (typeof v.value === 'number' || typeof v.value === 'boolean') return this.sourceOf(v) ?? String(v.value);
      if (v.value === null || v.value === '') throw this.error(v, `${label} is empty`);
    }
    throw this.error(v ?? 0, `${label} must be a single value, not ${this.describe(v)}`);
  }

  private sourceOf(v: unknown): string | null {
    return isScalar(v) && typeof v.source === 'string' && v.source !== '' ? v.source : null;
  }

  private deref(v: unknown): unknown {
    for (let i = 0; i < 8 && isAlias(v); i++) v = v.resolve(this.doc);
    return v ?? null;
  }

  private describe(v: unknown): string {
    if (v === null || v === undefined) return 'nothing';
    if (isMap(v)) return 'a mapping';
    if (isSeq(v)) return 'a list';
    if (isScalar(v)) {
      if (v.value === null) return 'an empty value';
      const s = this.sourceOf(v) ?? String(v.value);
      return `${typeof v.value === 'string' ? 'the text' : `the ${typeof v.value}`} '${s.length > 40 ? `${s.slice(0, 40)}…` : s}'`;
    }
    return 'an unexpected value';
  }

  private where(at: unknown): Where {
    let offset = 0;
    if (typeof at === 'number') offset = at;
    else if (at && typeof at === 'object' && 'range' in at) {
      const range = (at as { range?: [number, number, number] | null }).range;
      offset = range?.[0] ?? 0;
    }
    const pos = this.lc.linePos(Math.min(Math.max(offset, 0), this.text.length));
    return { line: pos.line, column: pos.col };
  }

  private error(at: unknown, reason: string, hint?: string): InventoryError {
    return new InventoryError(this.file, reason, this.where(at), hint);
  }

  private syntaxError(code: string, message: string, offset: number): InventoryError {
    const looksJson = /^\s*[{[]/.test(this.text);
    const quote = /^Missing closing (["'])quote/.exec(message)?.[1];
    let hint: string | undefined;
    if (quote) {
      // The parser notices at the end of the file; the culprit is the quote that opened the value.
      const open = this.text.lastIndexOf(quote, offset - 1);
      if (open >= 0) offset = open;
      hint = 'this quote is never closed';
    } else if (code === 'MULTIPLE_DOCS') {
      message = 'the file holds more than one YAML document';
      hint = 'one inventory per file: remove the extra `---`';
    } else {
      hint =
        code === 'TAB_AS_INDENT' ? 'indent with spaces, not tabs'
        : code === 'DUPLICATE_KEY' ? 'a key appears twice in the same mapping'
        : looksJson ? 'the file reads as JSON: check commas, quotes and brackets near here'
        : code === 'BAD_INDENT' || code === 'MISSING_CHAR' ? 'check the indentation: items of one list or mapping must start in the same column'
        : code === 'BLOCK_AS_IMPLICIT_KEY' || code === 'MULTILINE_IMPLICIT_KEY' ? 'the next line is indented further than this one: check the indentation'
        : undefined;
    }
    return new InventoryError(this.file, `syntax error: ${message.replace(/\s+/g, ' ').trim()}`, this.where(offset), hint);
  }
}

/** What is wrong with an address, as data: the kind (for code) and the words (for people). */
export type Ipv4ProblemKind = 'ipv6' | 'syntax' | 'out-of-range' | 'leading-zero' | 'this-network' | 'loopback' | 'not-unicast';

/** Why `s` is not a usable unicast IPv4 address (kind and message), or null if it is. */
export function ipv4Check(s: string): { kind: Ipv4ProblemKind; message: string } | null {
  const no = (kind: Ipv4ProblemKind, message: string) => ({ kind, message });
  if (s.includes(':')) return no('ipv6', 'is not an IPv4 address (IPv6 is not supported yet)');
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) return no('syntax', 'is not an IPv4 address (expected four numbers 0-255, like 198.18.0.1)');
  const parts = s.split('.');
  for (const p of parts) {
    if (Number(p) > 255) return no('out-of-range', `is not an IPv4 address (${p} is out of range 0-255)`);
    if (p.length > 1 && p.startsWith('0')) return no('leading-zero', `is ambiguous (leading zero in '${p}')`);
  }
  const a = Number(parts[0]);
  if (a === 0) return no('this-network', 'is not a host address (0.0.0.0/8)');
  if (a === 127) return no('loopback', 'is a loopback address; give the address the other nodes reach this node at');
  if (a >= 224) return no('not-unicast', 'is not a unicast address (multicast, reserved or broadcast)');
  return null;
}

/** Why `s` is not a usable unicast IPv4 address, or null if it is. */
export function ipv4Problem(s: string): string | null {
  return ipv4Check(s)?.message ?? null;
}
