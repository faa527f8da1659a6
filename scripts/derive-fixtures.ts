/**
 * Derives the facts meshform's contract checks need from the upstream fixtures in ../shared/fixtures
 * (never copied into the project), and writes them, committed, where the suite and the library read them:
 *
 *   test/fixtures/consul-k8s-<chart>-values-keys.json   every key path of the chart's values.yaml and its kind
 *   constructs/private/data/consul-agent-config-keys.json every key Consul's agent config accepts (flat paths)
 *   test/fixtures/consul-k8s-<chart>-crds/<kind>.json   each config-entry CRD's OpenAPI schema, descriptions removed
 *   test/fixtures/consul-k8s-<chart>-values-defaults.json the chart's default of every value the hand-written
 *                                                        fail conditions (consul-k8s-<chart>-chart-fails.json)
 *                                                        read, and of the few other values the contract tests compare
 *
 * Usage: npm run derive-fixtures [-- --check]   (--check: exit 1 when a committed file is out of date)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '..');
export const SHARED_FIXTURES = path.resolve(ROOT, '..', 'shared', 'fixtures');
const CHART = '2.0.3';

/** Kind of a values.yaml entry: an object with known keys, a free-form map, a list, a scalar, or null. */
export type ValueKind = 'object' | 'map' | 'list' | 'scalar' | 'null';

/** Flattens a parsed values.yaml into `dotted.path -> kind`. */
export function valuesKeyKinds(values: unknown): { [path: string]: ValueKind } {
  const out: { [path: string]: ValueKind } = {};
  const walk = (node: unknown, prefix: string) => {
    for (const [key, value] of Object.entries(node as object)) {
      const p = prefix ? `${prefix}.${key}` : key;
      if (value === null) out[p] = 'null';
      else if (Array.isArray(value)) out[p] = 'list';
      else if (typeof value === 'object') {
        if (Object.keys(value).length === 0) out[p] = 'map';
        else {
          out[p] = 'object';
          walk(value, p);
        }
      } else out[p] = 'scalar';
    }
  };
  walk(values, '');
  return Object.fromEntries(
    Object.keys(out)
      .sort()
      .map((k) => [k, out[k]!]),
  );
}

/** Flattens Consul's agent config key tree into `dotted.path -> leaf|any` (`*` = any name). */
export function agentConfigKeyKinds(tree: unknown): { [path: string]: 'leaf' | 'any' } {
  const out: { [path: string]: 'leaf' | 'any' } = {};
  const walk = (node: unknown, prefix: string) => {
    for (const [key, value] of Object.entries(node as object)) {
      const p = prefix ? `${prefix}.${key}` : key;
      if (typeof value === 'string') out[p] = value === 'any' ? 'any' : 'leaf';
      else walk(value, p);
    }
  };
  walk(tree, '');
  return Object.fromEntries(
    Object.keys(out)
      .sort()
      .map((k) => [k, out[k]!]),
  );
}

/** CRDs meshform renders (the kinds of config entries it manages). */
export const CRD_FILES = [
  'crd-meshes.yaml',
  'crd-proxydefaults.yaml',
  'crd-servicedefaults.yaml',
  'crd-serviceintentions.yaml',
  'crd-serviceresolvers.yaml',
  'crd-servicerouters.yaml',
  'crd-servicesplitters.yaml',
] as const;

/** A schema with every `description` removed (they are documentation, not contract). */
export function withoutDescriptions(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDescriptions);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node as { [key: string]: unknown })
      .filter(([key, value]) => !(key === 'description' && typeof value === 'string'))
      .map(([key, value]) => [key, withoutDescriptions(value)]),
  );
}

/** The kind, group, version and OpenAPI schema of a chart CRD file (its Helm template lines dropped). */
export function crdSchema(text: string): { kind: string; group: string; version: string; schema: unknown } {
  const yaml = text
    .split('\n')
    .filter((line) => !/^\s*\{\{.*\}\}\s*$/.test(line))
    .map((line) => line.replace(/\{\{[^}]*\}\}/g, 'templated'))
    .join('\n');
  const crd = parse(yaml) as {
    spec: {
      group: string;
      names: { kind: string };
      versions: { name: string; served: boolean; storage?: boolean; schema: { openAPIV3Schema: unknown } }[];
    };
  };
  const version = crd.spec.versions.find((v) => v.storage) ?? crd.spec.versions[0]!;
  return {
    kind: crd.spec.names.kind,
    group: crd.spec.group,
    version: version.name,
    schema: withoutDescriptions(version.schema.openAPIV3Schema),
  };
}

/** Value paths (`.a.b`) a chart-fails condition reads, in order of first use. */
export function conditionPaths(condition: unknown): string[] {
  if (typeof condition === 'string') return condition.startsWith('.') ? [condition.slice(1)] : [];
  if (Array.isArray(condition)) return [...new Set(condition.slice(1).flatMap(conditionPaths))];
  return [];
}

/** Values (besides those the fail conditions read) whose chart default the contract tests compare with ours. */
export const COMPARED_DEFAULTS = [
  'global.name',
  'global.image',
  'global.imageK8S',
  'global.domain',
  'server.storageClass',
  'global.federation.primaryDatacenter',
  'global.acls.createReplicationToken',
  'connectInject.default',
] as const;

/** The chart default at a dotted path, or `undefined` when values.yaml has no such key. */
function valueAt(values: unknown, dotted: string): unknown {
  let node: unknown = values;
  for (const key of dotted.split('.')) {
    if (node === null || typeof node !== 'object' || !(key in (node as object))) return undefined;
    node = (node as { [key: string]: unknown })[key];
  }
  return node;
}

/** Every derived file: target path -> content. */
export function deriveAll(shared: string = SHARED_FIXTURES): { [file: string]: string } {
  const values = parse(fs.readFileSync(path.join(shared, `consul-k8s-${CHART}`, 'values.yaml'), 'utf8')) as unknown;
  const agent = JSON.parse(fs.readFileSync(path.join(shared, 'consul-agent-config-keys.json'), 'utf8')) as {
    source: unknown;
    tree: unknown;
    deprecated: string[];
  };
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  const fails = JSON.parse(
    fs.readFileSync(path.join(ROOT, 'test', 'fixtures', `consul-k8s-${CHART}-chart-fails.json`), 'utf8'),
  ) as { conditions: { when: unknown }[] };
  const paths = [...new Set([...fails.conditions.flatMap((c) => conditionPaths(c.when)), ...COMPARED_DEFAULTS])].sort();
  return {
    [`test/fixtures/consul-k8s-${CHART}-values-defaults.json`]: json({
      derivedFrom: `hashicorp/consul-k8s v${CHART} charts/consul/values.yaml`,
      defaults: Object.fromEntries(
        paths.flatMap((p) => (valueAt(values, p) === undefined ? [] : [[p, valueAt(values, p)]])),
      ),
      notInValues: paths.filter((p) => valueAt(values, p) === undefined),
    }),
    [`test/fixtures/consul-k8s-${CHART}-values-keys.json`]: json({
      derivedFrom: `hashicorp/consul-k8s v${CHART} charts/consul/values.yaml`,
      keys: valuesKeyKinds(values),
    }),
    'constructs/private/data/consul-agent-config-keys.json': json({
      derivedFrom: agent.source,
      keys: agentConfigKeyKinds(agent.tree),
      deprecated: [...agent.deprecated].sort(),
    }),
    ...Object.fromEntries(
      CRD_FILES.map((file) => {
        const crd = crdSchema(fs.readFileSync(path.join(shared, `consul-k8s-${CHART}`, 'crds', file), 'utf8'));
        return [
          `test/fixtures/consul-k8s-${CHART}-crds/${crd.kind}.json`,
          json({
            derivedFrom: `hashicorp/consul-k8s v${CHART} charts/consul/templates/${file}`,
            apiVersion: `${crd.group}/${crd.version}`,
            kind: crd.kind,
            schema: crd.schema,
          }),
        ];
      }),
    ),
  };
}

if (require.main === module) {
  const check = process.argv.includes('--check');
  if (!fs.existsSync(SHARED_FIXTURES)) {
    console.error(`derive-fixtures: ${SHARED_FIXTURES} not found; nothing derived`);
    process.exit(check ? 0 : 1);
  }
  let stale = 0;
  for (const [file, content] of Object.entries(deriveAll())) {
    const target = path.join(ROOT, file);
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
    if (current === content) continue;
    if (check) {
      console.error(`derive-fixtures: ${file} is out of date`);
      stale++;
    } else {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, content);
      console.log(`derive-fixtures: wrote ${file}`);
    }
  }
  process.exit(stale > 0 ? 1 : 0);
}
