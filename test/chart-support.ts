/**
 * What the consul-k8s v2.0.3 chart does with meshform's values, as data and small models of its templates, for
 * the contract tests (test/chart-contract.test.ts). The facts come from test/fixtures (hand-written with their
 * upstream source, or derived by scripts/derive-fixtures.ts); nothing here is upstream code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXAMPLES } from '../examples';
import { CertificateAuthority } from '../constructs/certificate-authority';
import type { ConsulHelmValuesInput } from '../constructs/private/helm-values';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { helmValues, REPO, resources, StackJson, synth, Synthesized } from './support';

function fixture<T>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(REPO, 'test', 'fixtures', name), 'utf8')) as T;
}

/** The consulHelmValues inputs of a plain secondary (dc2 of dc1, NodePort gateway), to vary one setting at a time. */
export const SECONDARY_INPUT: ConsulHelmValuesInput = {
  datacenter: 'dc2',
  domain: 'consul',
  consulImage: 'hashicorp/consul:2.0.3',
  controlPlaneImage: 'hashicorp/consul-k8s-control-plane:2.0.3',
  servers: 3,
  primary: false,
  primaryDatacenter: 'dc1',
  primaryGateways: ['192.0.2.1:443'],
  kubernetesApiUrl: 'https://192.0.2.2',
  secrets: {
    caBundle: { secretName: 'a', secretKey: 'tls.crt' },
    serverCertSecret: 'b',
    gossipKey: { secretName: 'c', secretKey: 'key' },
    aclToken: { secretName: 'd', secretKey: 'token' },
  },
  connect: CertificateAuthority.offline().connectConfig({
    name: 'dc2',
    hosting: 'kubernetes',
    primary: false,
    providerFileDirectory: '/consul/userconfig/x',
  }),
  meshGateway: { replicas: 1, serviceType: 'NodePort', port: 443, nodePort: 30443, annotations: {} },
};

/** A fail condition of the chart's templates (test/fixtures/consul-k8s-2.0.3-chart-fails.json). */
export interface ChartFail {
  readonly template: string;
  readonly define?: string;
  readonly what: string;
  readonly when: unknown;
}

export const CHART_FAILS = fixture<{ conditions: ChartFail[] }>('consul-k8s-2.0.3-chart-fails.json').conditions;

/** The chart's defaults of the values the fail conditions and the contract tests read (derived). */
export const CHART_DEFAULTS = fixture<{ defaults: { [path: string]: unknown }; notInValues: string[] }>(
  'consul-k8s-2.0.3-values-defaults.json',
);

export const SERVER_NAMES = fixture<{
  serverTLSAltNames: { dnsNames: string[]; ipAddresses: string[] };
  dialed: { name: string; by: string; path: string }[];
}>('consul-k8s-2.0.3-server-names.json');

export const ACL_REPLICATION = fixture<{
  grants: { rules: { [permission: string]: 'read' | 'write' } };
  needs: { who: string; permission: string; level: 'read' | 'write'; source: string }[];
}>('consul-k8s-2.0.3-acl-replication.json');

/** The value at a dotted path of our values, else the chart's default (values.yaml), else undefined. */
export function chartValue(values: unknown, dotted: string): unknown {
  let node: unknown = values;
  for (const key of dotted.split('.')) {
    if (node === null || typeof node !== 'object' || !(key in (node as object))) {
      return CHART_DEFAULTS.defaults[dotted];
    }
    node = (node as { [key: string]: unknown })[key];
  }
  return node;
}

/** Go template truthiness: false, 0, nil and empty strings, lists and maps are false. */
function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** Evaluates a fail condition (the fixture's syntax) against chart values. */
export function evaluate(expr: unknown, values: unknown): unknown {
  if (typeof expr === 'string') return expr.startsWith('.') ? chartValue(values, expr.slice(1)) : expr;
  if (!Array.isArray(expr)) return expr;
  const [op, ...args] = expr as [string, ...unknown[]];
  const arg = (i: number) => evaluate(args[i], values);
  switch (op) {
    case 'and':
      return args.every((a) => truthy(evaluate(a, values)));
    case 'or':
      return args.some((a) => truthy(evaluate(a, values)));
    case 'not':
      return !truthy(arg(0));
    case 'eq':
      return arg(0) === arg(1);
    case 'ne':
      return arg(0) !== arg(1);
    case 'lt':
      return Number(arg(0)) < Number(arg(1));
    case 'contains':
      return String(arg(1) ?? '').includes(String(arg(0)));
    case 'lower':
      return String(arg(0) ?? '').toLowerCase();
    default:
      throw new Error(`unknown operator ${op} in the chart-fails fixture`);
  }
}

/** The fail conditions `values` trips, as `template: what`. */
export function trippedFails(values: unknown): string[] {
  return CHART_FAILS.filter((f) => truthy(evaluate(f.when, values))).map((f) => `${f.template}: ${f.what}`);
}

/** One Kubernetes datacenter of a synthesized example, with its release values and stack. */
export interface KubernetesDatacenterOutput {
  readonly example: string;
  readonly stackName: string;
  readonly stack: StackJson;
  readonly values: any;
  readonly manifest: MeshManifest;
  readonly out: Synthesized;
}

/** Every Kubernetes datacenter (a stack with the consul-k8s release) of every example, synthesized once. */
export function kubernetesDatacentersOfExamples(): KubernetesDatacenterOutput[] {
  return EXAMPLES.flatMap((example) => {
    const out = synth(example.define);
    return out
      .stackNames()
      .filter((name) => out.stack(name).resource?.helm_release)
      .map((stackName) => {
        const stack = out.stack(stackName);
        const values = helmValues(stack);
        const manifest = manifestOf(out, values.global.datacenter as string);
        return { example: example.name, stackName, stack, values, manifest, out };
      });
  });
}

/** The manifest of the mesh that has `datacenter`. */
function manifestOf(out: Synthesized, datacenter: string): MeshManifest {
  const dir = path.join(out.outdir, 'meshform');
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const manifest = out.mesh(file.replace(/\.json$/, ''));
    if (manifest.datacenters.some((d) => d.name === datacenter)) return manifest;
  }
  throw new Error(`no mesh manifest holds ${datacenter}`);
}

/** The data of the Kubernetes secret a stack creates under `name` (write-only `data_wo`, or public `data`). */
export function secretData(stack: StackJson, name: string): { [key: string]: unknown } | undefined {
  const secret = resources(stack, 'kubernetes_secret_v1').find((s) => (s.metadata as { name: string }).name === name);
  return (secret?.data_wo ?? secret?.data) as { [key: string]: unknown } | undefined;
}

/**
 * The auth method (and the datacenter it lives in) the connect injector and the mesh gateway log in through:
 * consul-k8s v2.0.3 charts/consul/templates/connect-inject-deployment.yaml and mesh-gateway-deployment.yaml
 * (CONSUL_LOGIN_AUTH_METHOD / CONSUL_LOGIN_DATACENTER, -login-auth-method / -login-datacenter).
 */
export function componentLogin(values: any): { authMethod: string; datacenter: string } {
  const name = (chartValue(values, 'global.name') as string) ?? 'consul';
  const fed = values.global.federation ?? {};
  if (fed.enabled && fed.primaryDatacenter) {
    return {
      authMethod: `${name}-k8s-component-auth-method-${values.global.datacenter}`,
      datacenter: fed.primaryDatacenter,
    };
  }
  return { authMethod: `${name}-k8s-component-auth-method`, datacenter: values.global.datacenter };
}

/**
 * The auth methods server-acl-init creates for a datacenter, each with the datacenter it lives in:
 * consul-k8s v2.0.3 control-plane/subcommand/server-acl-init/command.go creates the local component auth method
 * in its own datacenter, and the global one (`-<dc>`) in the primary only when it is not the primary and has an
 * auth method host. Which datacenter is primary is Consul's primary_datacenter, its own datacenter when the
 * chart leaves it empty (hashicorp/consul agent/config/builder.go).
 */
export function createdAuthMethods(values: any): { authMethod: string; datacenter: string }[] {
  const name = (chartValue(values, 'global.name') as string) ?? 'consul';
  const dc = values.global.datacenter as string;
  const fed = values.global.federation ?? {};
  const primaryDc = fed.primaryDatacenter || dc;
  const local = { authMethod: `${name}-k8s-component-auth-method`, datacenter: dc };
  return primaryDc !== dc && fed.k8sAuthMethodHost
    ? [local, { authMethod: `${name}-k8s-component-auth-method-${dc}`, datacenter: primaryDc }]
    : [local];
}
