/**
 * Reading a saved Terraform plan file directly, for what `summarizeTerraformPlan` needs, instead of running
 * `terraform show -json` (which loads every provider's schema again: seconds per stack for the AWS provider).
 *
 * The facts this rests on (hashicorp/terraform, tag v1.11.4):
 * - internal/plans/planfile/writer.go: a plan file is a zip archive; its `tfplan` entry is the plan (protobuf),
 *   `tfstate` the prior state (the state JSON, version 4) that `show -json` reports as `prior_state`.
 * - internal/plans/planproto/planfile.proto: the `tfplan` message (field numbers below).
 * - internal/plans/planfile/tfplan.go: `tfplanFormatVersion = 3` (readers must refuse any other version);
 *   output values are written as cty.DynamicPseudoType (msgpack `[type JSON, value]`), as are the element keys
 *   of paths.
 * - internal/command/jsonplan/plan.go: how `show -json` turns the plan into `resource_changes` (sorted by
 *   address, a data source's delete left out), `output_changes` (`before` absent for a create) and the
 *   actions' names; internal/addrs (resource.go, module_instance.go, instance_key.go): the address order.
 * - internal/command/jsonstate/state.go: `prior_state` lists each current and deposed object of the root
 *   module's resources.
 *
 * Anything else (another format version, zip64, an unknown wire type, a msgpack extension) is not decoded:
 * `readPlanFile` returns undefined, and the caller asks `terraform show -json` instead.
 */
import { inflateRawSync } from 'node:zlib';
import type { PlanJson } from './terraform-plan';

/** The `tfplan` format version this decoder reads (tfplan.go, tfplanFormatVersion). */
export const TFPLAN_FORMAT_VERSION = 3;

class Unsupported extends Error {}

/** The entries of a zip archive (no zip64, stored or deflated), by name. */
function unzip(zip: Buffer, wanted: readonly string[]): Map<string, Buffer> {
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Unsupported('not a zip archive');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  if (count === 0xffff || at === 0xffffffff) throw new Unsupported('zip64');
  const out = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Unsupported('bad zip central directory');
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (!wanted.includes(name)) continue;
    if (size === 0xffffffff || local === 0xffffffff) throw new Unsupported('zip64');
    if (zip.readUInt32LE(local) !== 0x04034b50) throw new Unsupported('bad zip entry');
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + size);
    if (method === 0) out.set(name, data);
    else if (method === 8) out.set(name, inflateRawSync(data));
    else throw new Unsupported(`zip compression method ${method}`);
  }
  return out;
}

/** One protobuf field: its number and either a varint or the bytes of a length-delimited value. */
interface Field {
  readonly field: number;
  readonly varint?: bigint;
  readonly bytes?: Buffer;
}

/** The fields of one protobuf message, in order (fixed 32/64-bit values are skipped: none is read here). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (at >= buf.length) throw new Unsupported('truncated varint');
      const byte = buf[at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Unsupported('varint too long');
    }
  };
  while (at < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) out.push({ field, varint: varint() });
    else if (wire === 2) {
      const length = Number(varint());
      if (at + length > buf.length) throw new Unsupported('truncated field');
      out.push({ field, bytes: buf.subarray(at, at + length) });
      at += length;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Unsupported(`protobuf wire type ${wire}`);
  }
  return out;
}

const bytesOf = (fs: readonly Field[], n: number): Buffer[] =>
  fs.filter((f) => f.field === n && f.bytes !== undefined).map((f) => f.bytes!);
const stringOf = (fs: readonly Field[], n: number): string => bytesOf(fs, n).at(-1)?.toString('utf8') ?? '';
const numberOf = (fs: readonly Field[], n: number): number =>
  Number(fs.filter((f) => f.field === n).at(-1)?.varint ?? 0n);

/**
 * The msgpack types with a fixed-width field after the type byte: the field's width, how to read it, and what
 * it is (the number itself, or the length of a string, binary, array or map that follows).
 */
const SIZED_TYPES = new Map<
  number,
  readonly [number, (buf: Buffer, offset: number) => number | bigint, 'number' | 'str' | 'bin' | 'array' | 'map']
>([
  [0xc4, [1, (b, o) => b.readUInt8(o), 'bin']],
  [0xc5, [2, (b, o) => b.readUInt16BE(o), 'bin']],
  [0xc6, [4, (b, o) => b.readUInt32BE(o), 'bin']],
  [0xca, [4, (b, o) => b.readFloatBE(o), 'number']],
  [0xcb, [8, (b, o) => b.readDoubleBE(o), 'number']],
  [0xcc, [1, (b, o) => b.readUInt8(o), 'number']],
  [0xcd, [2, (b, o) => b.readUInt16BE(o), 'number']],
  [0xce, [4, (b, o) => b.readUInt32BE(o), 'number']],
  [0xcf, [8, (b, o) => b.readBigUInt64BE(o), 'number']],
  [0xd0, [1, (b, o) => b.readInt8(o), 'number']],
  [0xd1, [2, (b, o) => b.readInt16BE(o), 'number']],
  [0xd2, [4, (b, o) => b.readInt32BE(o), 'number']],
  [0xd3, [8, (b, o) => b.readBigInt64BE(o), 'number']],
  [0xd9, [1, (b, o) => b.readUInt8(o), 'str']],
  [0xda, [2, (b, o) => b.readUInt16BE(o), 'str']],
  [0xdb, [4, (b, o) => b.readUInt32BE(o), 'str']],
  [0xdc, [2, (b, o) => b.readUInt16BE(o), 'array']],
  [0xdd, [4, (b, o) => b.readUInt32BE(o), 'array']],
  [0xde, [2, (b, o) => b.readUInt16BE(o), 'map']],
  [0xdf, [4, (b, o) => b.readUInt32BE(o), 'map']],
]);

/** A msgpack value as go-cty writes it (no extension: an unknown value cannot be a prior value). */
function msgpack(buf: Buffer): unknown {
  let at = 0;
  const need = (n: number) => {
    if (at + n > buf.length) throw new Unsupported('truncated msgpack');
  };
  const str = (n: number) => {
    need(n);
    const s = buf.toString('utf8', at, at + n);
    at += n;
    return s;
  };
  const bin = (n: number) => {
    need(n);
    const b = buf.subarray(at, at + n);
    at += n;
    return b;
  };
  const array = (n: number): unknown[] => Array.from({ length: n }, () => value());
  const map = (n: number) => {
    const o: { [k: string]: unknown } = {};
    for (let i = 0; i < n; i++) {
      const k = value();
      o[String(k)] = value();
    }
    return o;
  };
  const read = <T>(n: number, f: (offset: number) => T): T => {
    need(n);
    const v = f(at);
    at += n;
    return v;
  };
  const sizedValue = { str, bin, array, map };
  const value = (): unknown => {
    const b = read(1, (o) => buf[o]!);
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
    if (b >= 0x90 && b <= 0x9f) return array(b & 0x0f);
    if (b >= 0x80 && b <= 0x8f) return map(b & 0x0f);
    if (b === 0xc0) return null;
    if (b === 0xc2 || b === 0xc3) return b === 0xc3;
    const sized = SIZED_TYPES.get(b);
    if (!sized) throw new Unsupported(`msgpack type 0x${b.toString(16)}`);
    const [width, readAt, kind] = sized;
    const n = Number(read(width, (o) => readAt(buf, o)));
    return kind === 'number' ? n : sizedValue[kind](n);
  };
  const v = value();
  if (at !== buf.length) throw new Unsupported('trailing msgpack bytes');
  return v;
}

/** A value written as cty.DynamicPseudoType: `[type JSON, value]` (or nil for a null of unknown type). */
function dynamicValue(dynamicValueMessage: Buffer): unknown {
  const encoded = bytesOf(fields(dynamicValueMessage), 1)[0];
  if (encoded === undefined) throw new Unsupported('a value with no msgpack encoding');
  const v = msgpack(encoded);
  if (v === null) return null;
  if (!Array.isArray(v) || v.length !== 2 || !Buffer.isBuffer(v[0])) throw new Unsupported('not a dynamic value');
  return v[1];
}

/** The Action enum of planfile.proto, as `show -json` names it (jsonplan.go, actionString). */
const ACTIONS: { readonly [n: number]: readonly string[] } = {
  0: ['no-op'],
  1: ['create'],
  2: ['read'],
  3: ['update'],
  5: ['delete'],
  6: ['delete', 'create'],
  7: ['create', 'delete'],
  8: ['forget'],
  9: ['create', 'forget'],
};

/** A path (planfile.proto, Path): each step an attribute name or an element key. */
function pathOf(message: Buffer): (string | number)[] {
  return bytesOf(fields(message), 1).map((step) => {
    const s = fields(step);
    const name = s.find((f) => f.field === 1);
    if (name?.bytes) return name.bytes.toString('utf8');
    const key = bytesOf(s, 2)[0];
    if (!key) throw new Unsupported('an empty path step');
    const k = dynamicValue(key);
    if (typeof k !== 'string' && typeof k !== 'number')
      throw new Unsupported('a path key that is not a string or number');
    return k;
  });
}

type InstanceKey = undefined | number | string;

/** A resource instance address, split as Terraform's addrs package reads it. */
interface Address {
  readonly modules: readonly { readonly name: string; readonly key: InstanceKey }[];
  readonly mode: 'managed' | 'data';
  readonly type: string;
  readonly name: string;
  readonly key: InstanceKey;
}

/** Splits `module.a["x"].data.t.n[0]` into its parts (dots inside brackets and quotes do not split). */
function parseAddress(address: string): Address {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address[i]!;
    if (quoted) {
      current += c;
      if (c === '\\') current += address[++i] ?? '';
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '[') depth++;
    else if (c === ']') depth--;
    if (c === '.' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  const split = (part: string): { name: string; key: InstanceKey } => {
    const open = part.indexOf('[');
    if (open < 0) return { name: part, key: undefined };
    const inner = part.slice(open + 1, -1);
    const key = inner.startsWith('"') ? (JSON.parse(inner) as string) : Number(inner);
    if (typeof key === 'number' && !Number.isInteger(key)) throw new Unsupported(`address ${address}`);
    return { name: part.slice(0, open), key };
  };
  const modules: { name: string; key: InstanceKey }[] = [];
  let i = 0;
  while (parts[i] === 'module' && i + 2 < parts.length) {
    modules.push(split(parts[i + 1]!));
    i += 2;
  }
  const mode = parts[i] === 'data' ? 'data' : 'managed';
  if (mode === 'data') i++;
  if (parts.length - i !== 2) throw new Unsupported(`address ${address}`);
  const resource = split(parts[i + 1]!);
  return { modules, mode, type: parts[i]!, name: resource.name, key: resource.key };
}

/** instance_key.go, InstanceKeyLess: no key first, then integers (`I`) before strings (`S`). */
function keyCompare(a: InstanceKey, b: InstanceKey): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  if (typeof a !== typeof b) return typeof a === 'number' ? -1 : 1;
  return a < b ? -1 : 1;
}

const textCompare = (a: string, b: string) => (a === b ? 0 : Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** The order of `show -json`'s resource changes (jsonplan.go: AbsResourceInstance.Less, then the deposed key). */
function addressCompare(a: Address, b: Address): number {
  if (a.modules.length !== b.modules.length) return a.modules.length - b.modules.length;
  for (let i = 0; i < a.modules.length; i++) {
    const c = textCompare(a.modules[i]!.name, b.modules[i]!.name) || keyCompare(a.modules[i]!.key, b.modules[i]!.key);
    if (c !== 0) return c;
  }
  if (a.mode !== b.mode) return a.mode === 'data' ? -1 : 1;
  return textCompare(a.type, b.type) || textCompare(a.name, b.name) || keyCompare(a.key, b.key);
}

/** The prior state's managed objects of the root module, as `prior_state` lists them (current and deposed). */
function priorResources(stateJson: Buffer | undefined): { mode: string }[] {
  if (!stateJson) return [];
  const state = JSON.parse(stateJson.toString('utf8')) as {
    version?: number;
    resources?: { module?: string; mode?: string; instances?: unknown[] }[];
  };
  if (state.version !== 4) throw new Unsupported(`state format version ${state.version}`);
  return (state.resources ?? [])
    .filter((r) => r.module === undefined || r.module === '')
    .flatMap((r) => (r.instances ?? []).map(() => ({ mode: r.mode ?? 'managed' })));
}

/**
 * The parts of `terraform show -json <planFile>` that `summarizeTerraformPlan` reads, decoded from the plan
 * file itself; undefined when the file is not in the format decoded here (then ask `terraform show -json`).
 */
export function readPlanFile(planFile: Buffer): PlanJson | undefined {
  try {
    const entries = unzip(planFile, ['tfplan', 'tfstate']);
    const tfplan = entries.get('tfplan');
    if (!tfplan) return undefined;
    const plan = fields(tfplan);
    if (numberOf(plan, 1) !== TFPLAN_FORMAT_VERSION) return undefined;
    const changes = bytesOf(plan, 3).map((message) => {
      const rc = fields(message);
      const address = stringOf(rc, 13);
      const change = fields(bytesOf(rc, 9)[0] ?? Buffer.alloc(0));
      const actions = ACTIONS[numberOf(change, 1)];
      if (!actions) throw new Unsupported(`action ${numberOf(change, 1)}`);
      const replacePaths = bytesOf(rc, 11).map(pathOf);
      return { parsed: parseAddress(address), address, deposed: stringOf(rc, 7), actions, replacePaths };
    });
    changes.sort((a, b) => addressCompare(a.parsed, b.parsed) || textCompare(a.deposed, b.deposed));
    const outputChanges: {
      [name: string]: { actions: readonly string[]; before?: unknown; before_sensitive: boolean };
    } = {};
    for (const message of bytesOf(plan, 4)) {
      const oc = fields(message);
      const change = fields(bytesOf(oc, 2)[0] ?? Buffer.alloc(0));
      const action = numberOf(change, 1);
      const actions = ACTIONS[action];
      if (!actions) throw new Unsupported(`action ${action}`);
      // tfplan.go, changeFromTfplan: the first value is the prior one, except for a create (which has none)
      const values = bytesOf(change, 2);
      const hasBefore = action !== 1;
      if (hasBefore && values.length === 0) throw new Unsupported('an output change with no prior value');
      outputChanges[stringOf(oc, 1)] = {
        actions,
        ...(hasBefore ? { before: dynamicValue(values[0]!) } : {}),
        before_sensitive: numberOf(oc, 3) !== 0,
      };
    }
    return {
      resource_changes: changes
        // jsonplan.go: a data source's delete only cleans up the state; show -json leaves it out
        .filter((c) => !(c.parsed.mode === 'data' && c.actions.length === 1 && c.actions[0] === 'delete'))
        .map((c) => ({
          address: c.address,
          type: c.parsed.type,
          name: c.parsed.name,
          mode: c.parsed.mode,
          change: { actions: c.actions, ...(c.replacePaths.length > 0 ? { replace_paths: c.replacePaths } : {}) },
        })),
      // encoding/json writes a map's keys sorted (jsonplan.go: output_changes is a map)
      output_changes: Object.fromEntries(Object.entries(outputChanges).sort(([a], [b]) => textCompare(a, b))),
      prior_state: { values: { root_module: { resources: priorResources(entries.get('tfstate')) } } },
    };
  } catch {
    // whatever this reader cannot make sense of (Unsupported, a damaged archive, a JSON or bounds error) goes to
    // `terraform show -json`, which reads every plan file its version wrote
    return undefined;
  }
}
