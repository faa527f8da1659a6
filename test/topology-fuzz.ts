/**
 * Random topologies for the fuzz test (test/fuzz.test.ts): a topology is plain data (a `Plan`), built into a
 * mesh with the public API only. Plans start valid (every kind of datacenter, services, intentions, routes,
 * splits, failover, gateways, CA choices, backends) and are then varied: one value replaced by a hostile one
 * (NaN, Infinity, a negative or fractional number, an empty or odd string, a value of the wrong kind), several
 * at once, or a misuse of the API (a typo's undefined used as a datacenter, a datacenter of another mesh, a
 * duplicate or empty id...).
 */
import fc from 'fast-check';
import type { App } from '../constructs/private/engine';
import {
  CertificateAuthority,
  CertificateKeyAlgorithm,
  Cloud,
  Datacenter,
  GatewayExposure,
  HostRole,
  HttpPermission,
  KubernetesCluster,
  KubernetesDatacenter,
  MachineImage,
  Mesh,
  MeshGatewayMode,
  Service,
  ServiceProtocol,
  StateBackend,
  TerraformCloudExecutionMode,
  VaultAuth,
  VmDatacenter,
  VmHosts,
  VmNetwork,
} from '../index';

/** A value a careless or hostile program may pass anywhere. */
const HOSTILE: readonly unknown[] = [
  NaN,
  Infinity,
  -Infinity,
  -1,
  0,
  1.5,
  1e12,
  70000,
  '',
  ' ',
  'x',
  'UPPER_case',
  '${path.cwd}',
  '%{ if true }x%{ endif }',
  'say "hi"',
  'back\\slash',
  'line\nbreak',
  '/',
  'a/b',
  '10.0.0.0/33',
  '999.1.1.1',
  'é',
  undefined,
  null,
  true,
  {},
  [],
  [undefined],
  () => 1,
];

export interface DatacenterPlan {
  kind: 'kubeconfig' | 'eks' | 'vm-aws' | 'vm-own';
  id: string;
  name?: unknown;
  servers?: unknown;
  cloud?: unknown;
  gateway: { [key: string]: unknown };
  options: { [key: string]: unknown };
  backend?: { [key: string]: unknown };
}

export interface ServicePlan {
  id: string;
  props: { [key: string]: unknown };
  runsIn: number[];
  subsets: { [key: string]: unknown }[];
  routes: { match: { [key: string]: unknown }; destination: { [key: string]: unknown } }[];
  splits: { [key: string]: unknown }[];
  failover: number[];
}

export interface RelationPlan {
  kind: 'upstream' | 'allow' | 'deny';
  from: number;
  to: number;
  options: { [key: string]: unknown };
  permissions: { action: 'allow' | 'deny'; match: { [key: string]: unknown } }[];
}

/** A topology as data. */
export interface Plan {
  mesh: { [key: string]: unknown };
  ca: { kind: 'offline' | 'vault' | 'pca'; options: { [key: string]: unknown } };
  backend: { kind: 'local' | 's3' | 'tfc'; options: { [key: string]: unknown } };
  datacenters: DatacenterPlan[];
  primary: number;
  services: ServicePlan[];
  relations: RelationPlan[];
  /** A misuse of the API applied after the topology is built. */
  misuse?: string;
}

const port = fc.integer({ min: 1024, max: 60000 });

function datacenterPlan(kind: DatacenterPlan['kind'], i: number): fc.Arbitrary<DatacenterPlan> {
  const gateway = fc.record(
    {
      address: fc.constantFrom(`mgw${i}.example.com`, `203.0.113.${10 + i}`),
      port: fc.constantFrom(443, 8443),
      replicas: fc.constantFrom(1, 2),
      serviceAnnotations: fc.constantFrom({}, { 'service.beta.kubernetes.io/aws-load-balancer-internal': 'true' }),
    },
    { requiredKeys: ['address'] },
  );
  const options: fc.Arbitrary<{ [key: string]: unknown }> =
    kind === 'kubeconfig'
      ? fc.record({ context: fc.constant(`ctx${i}`), apiServerUrl: fc.constant(`https://198.51.100.${i + 1}:6443`) })
      : kind === 'eks'
        ? fc.record({
            region: fc.constantFrom('us-east-1', 'eu-west-1'),
            vpcCidr: fc.constant(`10.${10 + i}.0.0/16`),
            apiPublicAccessCidrs: fc.constant(['198.51.100.0/24']),
            nodes: fc.constant(5),
          })
        : kind === 'vm-aws'
          ? fc.record({
              region: fc.constant('eu-west-1'),
              cidr: fc.constant(`10.${30 + i}.0.0/16`),
              zones: fc.constantFrom(undefined, ['eu-west-1a', 'eu-west-1b']),
              instancesPerService: fc.constantFrom(1, 2),
              exposure: fc.constantFrom('internal', 'internet', 'eip'),
            })
          : fc.record({ subnet: fc.constant(`192.168.${i}`) });
  return fc.record({
    kind: fc.constant(kind),
    id: fc.constant(`dc${i}`),
    servers: fc.constantFrom(undefined, 3, 5),
    cloud: fc.constantFrom(undefined, Cloud.AWS, Cloud.ON_PREMISES),
    gateway,
    options,
  }) as fc.Arbitrary<DatacenterPlan>;
}

const match = fc
  .record(
    {
      pathPrefix: fc.constantFrom('/api/', '/'),
      methods: fc.constantFrom(['GET'], ['GET', 'POST']),
      headers: fc.constantFrom(
        [{ name: 'x-canary', exact: 'true' }],
        [{ name: 'x-debug', present: true, invert: true }],
      ),
    },
    { requiredKeys: [] },
  )
  .filter((m) => Object.keys(m).length > 0);

function servicePlan(i: number, dcCount: number): fc.Arbitrary<ServicePlan> {
  const dcIndex = fc.integer({ min: 0, max: dcCount - 1 });
  return fc
    .record({
      l7: fc.boolean(),
      port,
      runsIn: fc.uniqueArray(dcIndex, { minLength: 1, maxLength: dcCount }),
      subsets: fc.boolean(),
      split: fc.boolean(),
      route: fc.boolean(),
      failover: fc.boolean(),
      timeouts: fc.boolean(),
    })
    .map(({ l7, port: p, runsIn, subsets, split, route, failover, timeouts }) => {
      const withSubsets = l7 && subsets;
      return {
        id: `svc${i}`,
        props: {
          port: p,
          protocol: l7 ? ServiceProtocol.HTTP : ServiceProtocol.TCP,
          ...(withSubsets ? { defaultSubset: 'v1' } : {}),
          ...(timeouts ? { connectTimeoutMs: 2000 } : {}),
          ...(timeouts && l7
            ? {
                requestTimeoutMs: 3000,
                retries: { attempts: 2, onStatusCodes: [503] },
                circuitBreaker: {
                  maxPendingRequests: 64,
                  outlierDetection: { consecutive5xx: 5, intervalSeconds: 10 },
                },
              }
            : {}),
        },
        runsIn,
        subsets: withSubsets
          ? [
              { name: 'v1', filter: 'Service.Meta.version == v1', onlyPassing: true },
              { name: 'v2', filter: 'Service.Meta.version == "2.0"' },
            ]
          : [],
        routes:
          l7 && route
            ? [
                {
                  match: { pathPrefix: '/beta/', headers: [{ name: 'x-beta', prefix: 'on' }] },
                  destination: { requestTimeoutMs: 500, ...(withSubsets ? { subset: 'v2' } : {}) },
                },
              ]
            : [],
        splits:
          withSubsets && split
            ? [
                { subset: 'v1', weight: 90 },
                { subset: 'v2', weight: 10 },
              ]
            : [],
        failover: failover && runsIn.length > 1 ? [runsIn[runsIn.length - 1]!] : [],
      };
    });
}

/** A valid topology (as far as its generator knows): every kind of datacenter, services and relations. */
export const validPlan: fc.Arbitrary<Plan> = fc
  .record({
    kinds: fc.array(fc.constantFrom('kubeconfig', 'eks', 'vm-aws', 'vm-own') as fc.Arbitrary<DatacenterPlan['kind']>, {
      minLength: 1,
      maxLength: 3,
    }),
    serviceCount: fc.integer({ min: 0, max: 3 }),
  })
  .chain(({ kinds, serviceCount }) =>
    fc.record({
      mesh: fc.record({
        name: fc.constant('shop'),
        domain: fc.constantFrom(undefined, 'consul', 'mesh.example.internal'),
        traffic: fc.constantFrom(undefined, {
          meshGatewayMode: MeshGatewayMode.REMOTE,
          prometheusBindAddress: '0.0.0.0:20300',
        }),
      }),
      ca: fc.oneof(
        fc.record({
          kind: fc.constant('offline' as const),
          options: fc.constantFrom({}, { keyAlgorithm: CertificateKeyAlgorithm.RSA_2048 }, { meshLeafTtlHours: 24 }),
        }),
        fc.record({
          kind: fc.constant('vault' as const),
          options: fc.constant({ address: 'https://vault.example.com:8200', rootPkiPath: 'connect-root' }),
        }),
        fc.record({
          kind: fc.constant('pca' as const),
          options: fc.constant({
            primaryCaArn:
              'arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/0123abcd-0123-4567-89ab-0123456789ab',
          }),
        }),
      ),
      backend: fc.oneof(
        fc.record({ kind: fc.constant('local' as const), options: fc.constantFrom({}, { directory: 'state' }) }),
        fc.record({
          kind: fc.constant('s3' as const),
          options: fc.constant({ bucket: 'meshform-state', region: 'eu-west-1' }),
        }),
        fc.record({
          kind: fc.constant('tfc' as const),
          options: fc.constant({ organization: 'acme', executionMode: TerraformCloudExecutionMode.LOCAL }),
        }),
      ),
      datacenters: fc.tuple(...kinds.map((kind, i) => datacenterPlan(kind, i))),
      primary: fc.integer({ min: 0, max: kinds.length - 1 }),
      services: fc.tuple(...Array.from({ length: serviceCount }, (_, i) => servicePlan(i, kinds.length))),
      relations:
        serviceCount < 2
          ? fc.constant([])
          : fc.array(
              fc.record({
                kind: fc.constantFrom('upstream', 'allow', 'deny') as fc.Arbitrary<RelationPlan['kind']>,
                from: fc.integer({ min: 0, max: serviceCount - 1 }),
                to: fc.integer({ min: 0, max: serviceCount - 1 }),
                options: fc.constantFrom({}, { description: 'from the front end' }),
                permissions: fc.array(
                  fc.record({ action: fc.constantFrom('allow', 'deny') as fc.Arbitrary<'allow' | 'deny'>, match }),
                  { maxLength: 2 },
                ),
              }),
              { maxLength: 4 },
            ),
    }),
  )
  .map((plan) => plan as Plan);

/** Keys of a plan that say how to build it rather than what to pass to the API: never replaced. */
const STRUCTURE = new Set(['kind', 'from', 'to', 'action', 'misuse']);

/**
 * Where a fault can go: anything the API receives, not the plan's own skeleton (its top-level parts other
 * than the mesh's props and the primary, the entries of its lists of datacenters, services and relations).
 */
function mutable(at: (string | number)[]): boolean {
  if (at.length === 0 || STRUCTURE.has(String(at[at.length - 1]))) return false;
  const [top] = at;
  if (top === 'mesh' || top === 'primary') return true;
  if (top === 'ca' || top === 'backend') return at.length >= 3;
  return at.length >= 3;
}

/** The paths of every value in a plan (where a fault can go). */
function leafPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (STRUCTURE.has(String(prefix[prefix.length - 1]))) return [];
  if (Array.isArray(value)) {
    return [prefix, ...value.flatMap((v, i) => leafPaths(v, [...prefix, i]))];
  }
  if (value !== null && typeof value === 'object') {
    return [prefix, ...Object.entries(value).flatMap(([k, v]) => leafPaths(v, [...prefix, k]))];
  }
  return [prefix];
}

function replaceAt(plan: Plan, at: (string | number)[], value: unknown): Plan {
  if (at.length === 0) return plan;
  const copy = structuredCloneSafe(plan);
  let target: any = copy;
  for (const key of at.slice(0, -1)) {
    // an earlier fault replaced a parent of this path: the path is gone, the plan stays as it is
    if (target === null || typeof target !== 'object') return plan;
    target = target[key];
  }
  if (target === null || typeof target !== 'object') return plan;
  target[at[at.length - 1]!] = value;
  return copy;
}

/** A deep copy that keeps functions and undefined (structuredClone refuses functions). */
function structuredCloneSafe<T>(value: T): T {
  if (Array.isArray(value)) return value.map(structuredCloneSafe) as T;
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, structuredCloneSafe(v)])) as T;
  return value;
}

/** Misuses of the API, applied to a built topology. */
export const MISUSES = [
  'typo-datacenter',
  'other-mesh-datacenter',
  'duplicate-service-id',
  'empty-service-id',
  'empty-mesh',
  'undefined-upstream',
  'undefined-route',
  'garbage-split',
  'empty-permission',
  'undefined-failover',
  'peer-with-undefined',
  'datacenter-outside-mesh',
  'service-outside-mesh',
  'duplicate-mesh-id',
  // the faults issue 13 lists, each through the public API
  'route-two-path-kinds',
  'route-non-re2-regex',
  'route-unknown-method',
  'header-without-condition',
  'status-code-600',
  'unbalanced-subset-filter',
  'annotation-empty-key',
  'no-availability-zones',
  'empty-instance-type',
  'allow-list-bad-cidr',
] as const;

/** Valid plans, and plans with one, then several, hostile values, and plans with a misuse of the API. */
export const anyPlan: fc.Arbitrary<Plan> = fc.oneof(
  { weight: 2, arbitrary: validPlan },
  {
    weight: 5,
    arbitrary: validPlan.chain((plan) => {
      const paths = leafPaths(plan).filter(mutable);
      return fc
        .tuple(fc.constantFrom(...paths), fc.constantFrom(...HOSTILE))
        .map(([at, value]) => replaceAt(plan, at, value));
    }),
  },
  {
    weight: 2,
    arbitrary: validPlan.chain((plan) => {
      const paths = leafPaths(plan).filter(mutable);
      return fc
        .array(fc.tuple(fc.constantFrom(...paths), fc.constantFrom(...HOSTILE)), { minLength: 2, maxLength: 4 })
        .map((faults) => faults.reduce((p, [at, value]) => replaceAt(p, at, value), plan));
    }),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(validPlan, fc.constantFrom(...MISUSES)).map(([plan, misuse]) => ({ ...plan, misuse })),
  },
);

const AMI = 'ami-0123456789abcdef0';

/** A list as the plan has it, or the one hostile value that replaced it, as a list of one. */
function list<T>(value: T[] | T): T[] {
  return Array.isArray(value) ? value : [value];
}

function backendOf(spec: Plan['backend'] | undefined): StateBackend | undefined {
  if (spec === undefined) return undefined;
  if (spec.kind === 's3') return StateBackend.s3(spec.options as any);
  if (spec.kind === 'tfc') return StateBackend.terraformCloud(spec.options as any);
  return StateBackend.local(spec.options as any);
}

function caOf(spec: Plan['ca']): CertificateAuthority {
  if (spec.kind === 'vault')
    return CertificateAuthority.vault({
      ...(spec.options as any),
      kubernetesAuth: VaultAuth.kubernetesPerDatacenter({ role: 'consul' }),
      awsAuth: VaultAuth.aws({ role: 'consul' }),
    });
  if (spec.kind === 'pca') return CertificateAuthority.awsPrivateCa(spec.options as any);
  return CertificateAuthority.offline(spec.options as any);
}

/**
 * Builds a plan with the public API (errors propagate: the caller classifies them). True when a misuse of the
 * API was applied: such a topology is invalid and must be refused.
 */
export function buildPlan(app: App, plan: Plan): boolean {
  const mesh = new Mesh(app, 'shop', {
    ...(plan.mesh as any),
    certificateAuthority: caOf(plan.ca),
    backend: backendOf(plan.backend),
  });
  const services: Service[] = [];
  // services first: own hosts carry them
  const dcs: Datacenter[] = [];
  const placement = (i: number) =>
    plan.services.map((s, n) => (list(s.runsIn).includes(i) ? n : -1)).filter((n) => n >= 0);
  plan.services.forEach((s) => {
    services.push(new Service(mesh, s.id, s.props as any));
  });
  plan.datacenters.forEach((d, i) => {
    const common = {
      name: d.name,
      servers: d.servers,
      cloud: d.cloud,
      primary: i === plan.primary,
      meshGateway: d.gateway,
      ...(d.backend ? { backend: d.backend } : {}),
    } as any;
    const o = d.options ?? {};
    if (d.kind === 'kubeconfig') {
      dcs.push(
        new KubernetesDatacenter(mesh, d.id, { ...common, cluster: KubernetesCluster.fromKubeconfig(o as any) }),
      );
    } else if (d.kind === 'eks') {
      dcs.push(new KubernetesDatacenter(mesh, d.id, { ...common, cluster: KubernetesCluster.eks(o as any) }));
    } else if (d.kind === 'vm-aws') {
      const exposure =
        o.exposure === 'internet'
          ? GatewayExposure.networkLoadBalancer({ internetFacing: true, allowedCidrs: ['198.51.100.0/24'] })
          : o.exposure === 'eip'
            ? GatewayExposure.elasticIp({ allowedCidrs: ['198.51.100.0/24'] })
            : GatewayExposure.networkLoadBalancer();
      dcs.push(
        new VmDatacenter(mesh, d.id, {
          ...common,
          ...(o.exposure === 'eip' ? { meshGateway: { ...(d.gateway as object), replicas: 1 } } : {}),
          hosts: VmHosts.onAws({
            region: o.region as string,
            network: VmNetwork.newVpc({ cidr: o.cidr as string, availabilityZones: o.zones as string[] }),
            machineImage: MachineImage.fromId(AMI),
            instancesPerService: o.instancesPerService as number,
            gatewayExposure: exposure,
          }),
        }),
      );
    } else {
      const net = o.subnet as string;
      const here = placement(i).map((n) => services[n]!);
      dcs.push(
        new VmDatacenter(mesh, d.id, {
          ...common,
          servers: undefined,
          hosts: VmHosts.existing([
            { name: 's1', address: `${net}.1`, role: HostRole.SERVER },
            { name: 's2', address: `${net}.2`, role: HostRole.SERVER },
            { name: 's3', address: `${net}.3`, role: HostRole.SERVER },
            { name: 'g1', address: `${net}.4`, role: HostRole.MESH_GATEWAY },
            { name: 'c1', address: `${net}.5`, role: HostRole.CLIENT, services: here },
          ]),
        }),
      );
    }
  });
  plan.services.forEach((s, n) => {
    const service = services[n]!;
    for (const i of list(s.runsIn)) service.runsIn(dcs[i as number]!);
    for (const subset of list(s.subsets)) service.addSubset(subset as any);
    for (const route of list(s.routes)) service.addRoute(route as any);
    if (!Array.isArray(s.splits) || s.splits.length) service.splitTraffic(s.splits as any);
    for (const i of list(s.failover)) service.failoverTo(dcs[i as number]!);
  });
  for (const r of plan.relations) {
    const from = services[r.from]!;
    const to = services[r.to]!;
    if (r.kind === 'upstream') from.addUpstream(to, r.options as any);
    else if (r.kind === 'deny') to.denyFrom(from, r.options as any);
    else {
      const permissions = list(r.permissions).map((p) =>
        p?.action === 'deny' ? HttpPermission.deny(p.match as any) : HttpPermission.allow(p?.match as any),
      );
      to.allowFrom(from, { ...(r.options as object), ...(permissions.length ? { permissions } : {}) });
    }
  }
  return misuse(app, mesh, services, dcs, plan.misuse);
}

/** Applies a misuse; false when there is none, or when the topology offers nothing to misuse. */
function misuse(app: App, mesh: Mesh, services: Service[], dcs: Datacenter[], kind: string | undefined): boolean {
  if (kind === undefined) return false;
  const service = services[0] ?? new Service(mesh, 'extra', { port: 8080 });
  switch (kind) {
    case 'typo-datacenter':
      service.runsIn(mesh.datacenter('typo')!);
      break;
    case 'other-mesh-datacenter': {
      const other = new Mesh(app, 'other');
      const dc = new KubernetesDatacenter(other, 'elsewhere', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'elsewhere' }),
      });
      service.runsIn(dc);
      break;
    }
    case 'duplicate-service-id':
      new Service(mesh, service.node.id, { port: 1234, name: 'renamed' });
      break;
    case 'empty-service-id':
      new Service(mesh, '', { port: 1234 });
      break;
    case 'empty-mesh':
      new Mesh(app, 'empty');
      break;
    case 'undefined-upstream':
      service.addUpstream(undefined as any);
      break;
    case 'undefined-route':
      service.addRoute(undefined as any);
      break;
    case 'garbage-split':
      service.splitTraffic([{ weight: NaN }, 'v2' as any]);
      break;
    case 'empty-permission':
      service.allowFrom(services[1] ?? service, { permissions: [HttpPermission.allow({})] });
      break;
    case 'undefined-failover':
      service.failoverTo(undefined as any);
      break;
    case 'peer-with-undefined': {
      const vm = dcs.find((d) => d instanceof VmDatacenter) as VmDatacenter | undefined;
      if (!vm) return false;
      vm.peerWith(undefined as any);
      break;
    }
    case 'datacenter-outside-mesh':
      new KubernetesDatacenter(app as any, 'stray', { cluster: KubernetesCluster.fromKubeconfig({ context: 'x' }) });
      break;
    case 'service-outside-mesh':
      new Service(app as any, 'stray', { port: 80 });
      break;
    case 'duplicate-mesh-id':
      new Mesh(app, 'shop');
      break;
    case 'route-two-path-kinds':
      service.addRoute({ match: { pathPrefix: '/a/', pathExact: '/b' }, destination: {} });
      break;
    case 'route-non-re2-regex':
      service.addRoute({ match: { pathRegex: '^/(?!admin)' }, destination: {} });
      break;
    case 'route-unknown-method':
      service.addRoute({ match: { methods: ['FETCH'] }, destination: {} });
      break;
    case 'header-without-condition':
      service.addRoute({ match: { headers: [{ name: 'x-canary' }] }, destination: {} });
      break;
    case 'status-code-600':
      new Service(mesh, 'retrying', {
        port: 8081,
        protocol: ServiceProtocol.HTTP,
        retries: { attempts: 2, onStatusCodes: [600] },
      });
      break;
    case 'unbalanced-subset-filter':
      service.addSubset({ name: 'bad', filter: 'Service.Meta.version == "1.8' });
      break;
    case 'annotation-empty-key':
      new KubernetesDatacenter(mesh, 'annotated', {
        cluster: KubernetesCluster.fromKubeconfig({ context: 'a', apiServerUrl: 'https://198.51.100.99:6443' }),
        meshGateway: { address: 'annotated.example.com', serviceAnnotations: { '': 'x' } },
      });
      break;
    case 'no-availability-zones':
      new VmDatacenter(mesh, 'zoneless', {
        hosts: VmHosts.onAws({
          region: 'eu-west-1',
          network: VmNetwork.newVpc({ cidr: '10.99.0.0/16', availabilityZones: [] }),
          machineImage: MachineImage.fromId(AMI),
        }),
      });
      break;
    case 'empty-instance-type':
      new VmDatacenter(mesh, 'untyped', {
        hosts: VmHosts.onAws({
          region: 'eu-west-1',
          network: VmNetwork.newVpc({ cidr: '10.98.0.0/16' }),
          machineImage: MachineImage.fromId(AMI),
          clientInstanceType: '',
        }),
      });
      break;
    case 'allow-list-bad-cidr':
      new VmDatacenter(mesh, 'exposed', {
        meshGateway: { address: 'exposed.example.com' },
        hosts: VmHosts.onAws({
          region: 'eu-west-1',
          network: VmNetwork.newVpc({ cidr: '10.97.0.0/16' }),
          machineImage: MachineImage.fromId(AMI),
          gatewayExposure: GatewayExposure.networkLoadBalancer({ internetFacing: true, allowedCidrs: ['10.0.0.0/33'] }),
        }),
      });
      break;
    default:
      return false;
  }
  return true;
}
