import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { meshConfigEntries, toApiEntry } from '../constructs/private/config-entries';
import type { App } from '../constructs/private/engine';
import { EXAMPLES } from '../examples';
import { defineDefaultMesh } from '../examples/default/main';
import {
  HostRole,
  HttpPermission,
  KubernetesCluster,
  KubernetesDatacenter,
  MachineImage,
  Mesh,
  MeshGatewayMode,
  Service,
  ServiceProtocol,
  VmDatacenter,
  VmHosts,
  VmNetwork,
} from '../index';
import { crdProblems, crdValidators } from './crd-schemas';
import { resources, synth, thrownMessage } from './support';

/** The custom resources of a synthesized config stack. */
function customResources(
  stack: ReturnType<ReturnType<typeof synth>['stack']>,
): { kind: string; metadata: { name: string; namespace: string }; spec: any; apiVersion: string }[] {
  return resources(stack, 'kubernetes_manifest').map((r) => r.manifest as never);
}

/** GIVEN helper: a two-cluster mesh where `define` declares services. */
function twoClusters(
  define: (mesh: Mesh, east: KubernetesDatacenter, west: KubernetesDatacenter) => void,
  traffic?: ConstructorParameters<typeof Mesh>[2],
) {
  return (app: App) => {
    const mesh = new Mesh(app, 'shop', traffic);
    const east = new KubernetesDatacenter(mesh, 'east', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      meshGateway: { address: 'mgw.east.example.com' },
    });
    const west = new KubernetesDatacenter(mesh, 'west', {
      cluster: KubernetesCluster.fromKubeconfig({ context: 'west', apiServerUrl: 'https://198.51.100.7' }),
    });
    define(mesh, east, west);
  };
}

describe('config entries on a Kubernetes primary', () => {
  it('renders the default example app as custom resources on the primary cluster, in a stack after its control plane', () => {
    // GIVEN / WHEN
    const out = synth(defineDefaultMesh);
    const stack = out.stack('shop-aws-us-east-config');
    const crs = customResources(stack);
    // THEN
    // (Terraform applies them in any order; the controller retries until what each depends on exists)
    expect(crs.map((c) => `${c.kind}/${c.metadata.name}`).sort()).toEqual(
      [
        'ProxyDefaults/global',
        'Mesh/mesh',
        'ServiceDefaults/db',
        'ServiceDefaults/api',
        'ServiceDefaults/web',
        'ServiceResolver/api',
        'ServiceSplitter/api',
        'ServiceRouter/api',
        'ServiceIntentions/db',
        'ServiceIntentions/api',
      ].sort(),
    );
    for (const c of crs) {
      expect(c).toMatchObject({
        apiVersion: 'consul.hashicorp.com/v1alpha1',
        metadata: { namespace: 'consul', labels: { 'app.kubernetes.io/managed-by': 'meshform' } },
      });
    }
    expect(out.manifest.stacks['shop-aws-us-east-config']!.dependencies).toEqual(['shop-aws-us-east']);
    expect(Object.keys(stack.provider ?? {}).sort()).toEqual(['aws', 'kubernetes']);
    expect(stack.variable).toBeUndefined();
    const spec = (kind: string, name: string) => crs.find((c) => c.kind === kind && c.metadata.name === name)!.spec;
    expect(spec('ProxyDefaults', 'global')).toEqual({
      config: { envoy_prometheus_bind_addr: '0.0.0.0:20200' },
      meshGateway: { mode: 'local' },
    });
    expect(spec('Mesh', 'mesh')).toEqual({ transparentProxy: { meshDestinationsOnly: true } });
    expect(spec('ServiceDefaults', 'db')).toEqual({ protocol: 'tcp' });
    expect(spec('ServiceDefaults', 'web')).toEqual({
      protocol: 'http',
      upstreamConfig: {
        overrides: [
          {
            name: 'api',
            limits: { maxPendingRequests: 256 },
            passiveHealthCheck: {
              interval: '10s',
              maxFailures: 5,
              enforcingConsecutive5xx: 100,
              baseEjectionTime: '30s',
              maxEjectionPercent: 10,
            },
          },
        ],
      },
    });
    expect(spec('ServiceResolver', 'api')).toEqual({
      connectTimeout: '2s',
      requestTimeout: '3s',
      defaultSubset: 'v1',
      subsets: {
        v1: { filter: 'Service.Meta.version == v1', onlyPassing: true },
        v2: { filter: 'Service.Meta.version == v2', onlyPassing: true },
      },
      failover: { '*': { datacenters: ['gcp-europe-west'] } },
    });
    expect(spec('ServiceSplitter', 'api')).toEqual({
      splits: [
        { weight: 90, serviceSubset: 'v1' },
        { weight: 10, serviceSubset: 'v2' },
      ],
    });
    expect(spec('ServiceRouter', 'api')).toEqual({
      routes: [
        {
          match: { http: { header: [{ name: 'x-canary', exact: 'true' }] } },
          destination: { serviceSubset: 'v2', numRetries: 2, retryOnConnectFailure: true, retryOnStatusCodes: [503] },
        },
        {
          match: { http: { pathPrefix: '/' } },
          destination: { numRetries: 2, retryOnConnectFailure: true, retryOnStatusCodes: [503] },
        },
      ],
    });
    expect(spec('ServiceIntentions', 'api')).toEqual({
      destination: { name: 'api' },
      sources: [
        { name: 'web', permissions: [{ action: 'allow', http: { pathPrefix: '/api/', methods: ['GET', 'POST'] } }] },
      ],
    });
    expect(spec('ServiceIntentions', 'db')).toEqual({
      destination: { name: 'db' },
      sources: [{ name: 'api', action: 'allow' }],
    });
  });

  it('creates no config stack on secondaries: config entries replicate from the primary', () => {
    const out = synth(defineDefaultMesh);
    expect(out.stackNames().filter((s) => s.endsWith('-config'))).toEqual(['shop-aws-us-east-config']);
  });
});

describe('every rendered custom resource validates against the consul-k8s 2.0.3 CRD schemas', () => {
  const validators = crdValidators();

  it.each(EXAMPLES.map((e) => [e.name, e.define] as const))('example %s', (_name, define) => {
    const out = synth(define);
    const configStacks = out.stackNames().filter((s) => s.endsWith('-config'));
    expect(configStacks.length).toBe(1);
    const crs = configStacks.flatMap((s) => customResources(out.stack(s)));
    expect(crs.length).toBeGreaterThanOrEqual(2);
    for (const cr of crs) expect(crdProblems(validators, cr), `${cr.kind}/${cr.metadata.name}`).toEqual([]);
  });

  it('a mesh using every traffic feature', () => {
    const out = synth(
      twoClusters(
        (mesh, east, west) => {
          const api = new Service(mesh, 'api', {
            port: 8080,
            protocol: ServiceProtocol.HTTP2,
            datacenters: [east, west],
            subsets: [
              { name: 'blue', filter: 'Service.Meta.color == blue' },
              { name: 'green', filter: 'Service.Meta.color == green' },
            ],
            defaultSubset: 'blue',
            failover: [west],
            connectTimeoutMs: 1500,
            requestTimeoutMs: 10000,
            retries: { attempts: 3, onConnectFailure: false },
            circuitBreaker: {
              maxConnections: 100,
              maxPendingRequests: 50,
              maxConcurrentRequests: 200,
              outlierDetection: {
                consecutive5xx: 3,
                intervalSeconds: 5,
                baseEjectionSeconds: 60,
                maxEjectionPercent: 50,
              },
            },
          });
          const web = new Service(mesh, 'web', {
            port: 80,
            protocol: ServiceProtocol.HTTP,
            datacenters: [east, west],
            upstreams: [api],
          });
          const batch = new Service(mesh, 'batch', { port: 9000, protocol: ServiceProtocol.GRPC, datacenters: [east] });
          const legacy = new Service(mesh, 'legacy', { port: 7000, datacenters: [west] });
          batch.addUpstream(api, { localBindPort: 18080 });
          api.splitTraffic([
            { subset: 'blue', weight: 50 },
            { subset: 'green', weight: 50 },
          ]);
          api.addRoute({ match: { pathExact: '/healthz', methods: ['GET'] }, destination: { requestTimeoutMs: 500 } });
          api.addRoute({
            match: {
              pathRegex: '^/v[0-9]+/admin',
              headers: [
                { name: 'x-admin', present: true },
                { name: 'x-beta', prefix: 'on', invert: true },
              ],
            },
            destination: {
              subset: 'green',
              retries: { attempts: 1, onStatusCodes: [502, 503] },
            },
          });
          // Consul rewrites a prefix only of a pathExact or pathPrefix match
          api.addRoute({ match: { pathPrefix: '/beta/admin' }, destination: { prefixRewrite: '/admin' } });
          api.allowFrom(web, {
            description: 'the front end',
            permissions: [
              HttpPermission.deny({ pathPrefix: '/admin' }),
              HttpPermission.allow({
                pathRegex: '^/v[0-9]+/',
                headers: [
                  { name: 'x-tenant', regex: '^[a-z]+$' },
                  { name: 'x-debug', suffix: 'off', invert: true },
                ],
              }),
            ],
          });
          api.allowFrom(batch);
          api.denyFrom(legacy, { description: 'legacy must go through web' });
        },
        {
          traffic: {
            meshGatewayMode: MeshGatewayMode.REMOTE,
            meshDestinationsOnly: false,
            prometheusBindAddress: '0.0.0.0:9102',
          },
        },
      ),
    );
    const crs = customResources(out.stack('shop-east-config'));
    expect(crs.map((c) => `${c.kind}/${c.metadata.name}`).sort()).toEqual(
      [
        'ProxyDefaults/global',
        'Mesh/mesh',
        'ServiceDefaults/api',
        'ServiceDefaults/web',
        'ServiceDefaults/batch',
        'ServiceDefaults/legacy',
        'ServiceResolver/api',
        'ServiceSplitter/api',
        'ServiceRouter/api',
        'ServiceIntentions/api',
      ].sort(),
    );
    for (const cr of crs) expect(crdProblems(validators, cr), `${cr.kind}/${cr.metadata.name}`).toEqual([]);
    const intentions = crs.find((c) => c.kind === 'ServiceIntentions')!.spec;
    expect(intentions.sources).toEqual([
      {
        name: 'web',
        description: 'the front end',
        permissions: [
          { action: 'deny', http: { pathPrefix: '/admin' } },
          {
            action: 'allow',
            http: {
              pathRegex: '^/v[0-9]+/',
              header: [
                { name: 'x-tenant', regex: '^[a-z]+$' },
                { name: 'x-debug', suffix: 'off', invert: true },
              ],
            },
          },
        ],
      },
      { name: 'batch', action: 'allow' },
      { name: 'legacy', action: 'deny', description: 'legacy must go through web' },
    ]);
  });

  it('catches what the API server would drop or refuse (the check itself can fail)', () => {
    expect(
      crdProblems(validators, {
        apiVersion: 'consul.hashicorp.com/v1alpha1',
        kind: 'ServiceSplitter',
        metadata: {},
        spec: { splits: [{ weight: 100, subset: 'v1' }] },
      }),
    ).toEqual(['/spec/splits/0 must NOT have additional properties (subset)']);
    expect(
      crdProblems(validators, {
        apiVersion: 'consul.hashicorp.com/v1alpha1',
        kind: 'ServiceRouter',
        metadata: {},
        spec: { routes: [{ destination: { numRetries: 'two' } }] },
      }),
    ).toEqual(['/spec/routes/0/destination/numRetries must be integer']);
    expect(crdProblems(validators, { apiVersion: 'consul.hashicorp.com/v1', kind: 'Mesh', spec: {} })).toEqual([
      'apiVersion consul.hashicorp.com/v1 is not consul.hashicorp.com/v1alpha1',
    ]);
  });
});

describe('config entries on a VM primary', () => {
  /** A mesh whose primary runs on EC2 VMs, with a Kubernetes secondary. */
  const vmPrimary = (app: App) => {
    const mesh = new Mesh(app, 'lab');
    const vms = new VmDatacenter(mesh, 'vms', {
      primary: true,
      meshGateway: { address: 'mgw.vms.example.com' },
      hosts: VmHosts.onAws({
        region: 'eu-west-1',
        network: VmNetwork.newVpc({ cidr: '10.30.0.0/16' }),
        machineImage: MachineImage.fromId('ami-0123456789abcdef0'),
      }),
    });
    const k8s = new KubernetesDatacenter(mesh, 'k8s', {
      cluster: KubernetesCluster.fromKubeconfig({ context: 'k8s', apiServerUrl: 'https://198.51.100.8' }),
    });
    const api = new Service(mesh, 'api', {
      port: 9090,
      protocol: ServiceProtocol.HTTP,
      datacenters: [vms, k8s],
      failover: [k8s],
    });
    const web = new Service(mesh, 'web', {
      port: 80,
      protocol: ServiceProtocol.HTTP,
      datacenters: [k8s],
      upstreams: [api],
    });
    api.allowFrom(web);
  };

  it('hands them to the primary servers in their secret, applied through the API by a timer, with no config stack', () => {
    const out = synth(vmPrimary);
    expect(out.stackNames().filter((s) => s.endsWith('-config'))).toEqual([]);
    const versions = out.stack('lab-vms').resource!.aws_secretsmanager_secret_version!;
    const server = Object.entries(versions).find(([k]) => k.startsWith('SecretValue-server'))![1]
      .secret_string_wo as string;
    // the entries travel as a JSON local (user text stays data), which the server's document names
    expect(server).toContain('"config_entries" = local.config_entries');
    const entries = (out.stack('lab-vms') as { locals?: { [name: string]: unknown } }).locals!.config_entries as {
      Kind: string;
      Name?: string;
      Sources?: unknown;
    }[];
    expect(entries.map((e) => e.Kind)).toContain('proxy-defaults');
    expect(entries).toContainEqual(
      expect.objectContaining({
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [{ Name: 'web', Action: 'allow' }],
        Meta: { 'managed-by': 'meshform' },
      }),
    );
    const gateway = Object.entries(versions).find(([k]) => k.startsWith('SecretValue-mesh-gateway'))![1]
      .secret_string_wo as string;
    expect(gateway).not.toContain('config_entries');
    const cloudInit = out.files().get('stacks/lab-vms/hosts/server/cloud-init.yaml')!;
    expect(cloudInit).toContain('path: /etc/systemd/system/meshform-config-entries.timer');
    expect(cloudInit).toMatch(/- --now\n(\s+- [a-z.-]+\n)*\s+- meshform-config-entries\.timer/);
    expect(out.files().get('stacks/lab-vms/hosts/server/systemd/meshform-config-entries.service')).toContain(
      'ExecStart=/usr/local/sbin/meshform-node config-entries',
    );
  });

  it("speaks the API's field names, and marks every entry as managed by meshform", () => {
    const entries = meshConfigEntries(
      [
        {
          name: 'api',
          port: 9090,
          protocol: ServiceProtocol.HTTP,
          datacenters: ['a'],
          subsets: [{ name: 'v2', filter: 'Service.Meta.version == v2' }],
          failover: ['b'],
          intentions: [
            {
              source: 'web',
              action: 'allow' as never,
              permissions: [{ action: 'allow' as never, match: { pathPrefix: '/x' } }],
            },
          ],
        },
      ],
      { meshGatewayMode: MeshGatewayMode.LOCAL, meshDestinationsOnly: true, prometheusBindAddress: '0.0.0.0:20200' },
    ).map(toApiEntry);
    expect(entries).toEqual([
      {
        Kind: 'proxy-defaults',
        Name: 'global',
        Config: { envoy_prometheus_bind_addr: '0.0.0.0:20200' },
        MeshGateway: { Mode: 'local' },
        Meta: { 'managed-by': 'meshform' },
      },
      {
        Kind: 'mesh',
        Name: 'mesh',
        TransparentProxy: { MeshDestinationsOnly: true },
        Meta: { 'managed-by': 'meshform' },
      },
      { Kind: 'service-defaults', Name: 'api', Protocol: 'http', Meta: { 'managed-by': 'meshform' } },
      {
        Kind: 'service-resolver',
        Name: 'api',
        Subsets: { v2: { Filter: 'Service.Meta.version == v2' } },
        Failover: { '*': { Datacenters: ['b'] } },
        Meta: { 'managed-by': 'meshform' },
      },
      {
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/x' } }] }],
        Meta: { 'managed-by': 'meshform' },
      },
    ]);
  });
});

describe('validation at synth', () => {
  const error = (define: (mesh: Mesh, east: KubernetesDatacenter, west: KubernetesDatacenter) => void) =>
    thrownMessage(() => synth(twoClusters(define)));

  it.each([
    [
      'routes on a TCP service',
      (mesh: Mesh, east: KubernetesDatacenter) =>
        new Service(mesh, 'db', { port: 5432, datacenters: [east] }).addRoute({
          match: { pathPrefix: '/' },
          destination: {},
        }),
      '[shop/db] service "db" speaks tcp, so it cannot have routes: they act on HTTP requests: "tcp". Fix: set `protocol: ServiceProtocol.HTTP` (or HTTP2, GRPC) if the service speaks it, or drop the L7 setting',
    ],
    [
      'L7 permissions on a TCP service',
      (mesh: Mesh, east: KubernetesDatacenter) => {
        const db = new Service(mesh, 'db', { port: 5432, datacenters: [east] });
        db.allowFrom(new Service(mesh, 'api', { port: 80, datacenters: [east] }), {
          permissions: [HttpPermission.allow({ methods: ['GET'] })],
        });
      },
      '[shop/db] service "db" speaks tcp, so it cannot have L7 permissions (from api): they act on HTTP requests: "tcp". Fix: set `protocol: ServiceProtocol.HTTP` (or HTTP2, GRPC) if the service speaks it, or drop the L7 setting',
    ],
    [
      'split weights that do not sum to 100',
      (mesh: Mesh, east: KubernetesDatacenter) =>
        new Service(mesh, 'api', {
          port: 80,
          protocol: ServiceProtocol.HTTP,
          datacenters: [east],
          subsets: [
            { name: 'v1', filter: 'Service.Meta.version == v1' },
            { name: 'v2', filter: 'Service.Meta.version == v2' },
          ],
        }).splitTraffic([
          { subset: 'v1', weight: 80 },
          { subset: 'v2', weight: 10 },
        ]),
      '[shop/api] the traffic split of "api" does not add up to 100: 90. Fix: make the weights of the legs sum to 100',
    ],
    [
      'a subset referenced but not defined',
      (mesh: Mesh, east: KubernetesDatacenter) =>
        new Service(mesh, 'api', {
          port: 80,
          protocol: ServiceProtocol.HTTP,
          datacenters: [east],
          subsets: [{ name: 'v1', filter: 'Service.Meta.version == v1' }],
        }).addRoute({ match: { pathPrefix: '/beta' }, destination: { subset: 'beta' } }),
      '[shop/api] service "api" has no subset of this name: "beta". Fix: use one of "v1", or define it with addSubset({ name, filter })',
    ],
    [
      'failover to a datacenter where the service does not run',
      (mesh: Mesh, east: KubernetesDatacenter, west: KubernetesDatacenter) =>
        new Service(mesh, 'api', { port: 80, datacenters: [east], failover: [west] }),
      '[shop/api] service "api" does not run in datacenter "west", so its traffic cannot go there: "west". Fix: use a datacenter it runs in ("east"), or add it with runsIn()',
    ],
    [
      'allow and deny of the same pair',
      (mesh: Mesh, east: KubernetesDatacenter) => {
        const api = new Service(mesh, 'api', { port: 80, datacenters: [east] });
        const web = new Service(mesh, 'web', { port: 80, datacenters: [east] });
        api.allowFrom(web).denyFrom(web);
      },
      '[shop/api] "web" → "api" is declared more than once (allow and deny): Consul keeps one intention per pair: "web". Fix: keep one allowFrom or denyFrom per pair; use L7 permissions to allow some requests and deny others',
    ],
    [
      'an upstream that is not declared in this mesh',
      (mesh: Mesh, east: KubernetesDatacenter) => {
        const other = new Mesh(mesh.node.scope as App, 'other');
        new KubernetesDatacenter(other, 'x', {
          primary: true,
          cluster: KubernetesCluster.fromKubeconfig({ context: 'x' }),
        });
        new Service(mesh, 'web', { port: 80, datacenters: [east] }).addUpstream(
          new Service(other, 'api', { port: 80 }),
        );
      },
      '[shop/web] service "web" refers to a service that is not declared in this mesh: "api". Fix: declare it with new Service(mesh, ...) in the same mesh',
    ],
    [
      'two upstreams on one local port',
      (mesh: Mesh, east: KubernetesDatacenter) => {
        const a = new Service(mesh, 'a', { port: 80, datacenters: [east] });
        const b = new Service(mesh, 'b', { port: 80, datacenters: [east] });
        new Service(mesh, 'web', { port: 80, datacenters: [east] })
          .addUpstream(a, { localBindPort: 9000 })
          .addUpstream(b, { localBindPort: 9000 });
      },
      '[shop/web] upstreams "a" and "b" of "web" use the same local port: 9000. Fix: give each upstream its own localBindPort',
    ],
  ])('refuses %s, writing nothing', (_what, define, expected) => {
    expect(error(define)).toBe(expected);
  });

  it('refuses a duplicate service name and a duplicate subset at once', () => {
    expect(
      thrownMessage(() =>
        synth(
          twoClusters((mesh, east) => {
            new Service(mesh, 'api', { port: 80, datacenters: [east] });
            new Service(mesh, 'api2', { name: 'api', port: 81 });
          }),
        ),
      ),
    ).toBe(
      '[shop/api2] service name is already used by shop/api: "api". Fix: give every service of a mesh its own name',
    );
    expect(
      thrownMessage(() =>
        synth(
          twoClusters(
            (mesh, east) =>
              new Service(mesh, 'api', {
                port: 80,
                datacenters: [east],
                subsets: [
                  { name: 'v1', filter: 'Service.Meta.version == a' },
                  { name: 'v1', filter: 'Service.Meta.version == b' },
                ],
              }),
          ),
        ),
      ),
    ).toBe('[shop/api] service "api" already has this subset: "v1". Fix: give every subset its own name');
  });

  it('keeps an own-hosts primary: its server secrets carry the config entries', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'lab');
      const api = new Service(mesh, 'api', { port: 80 });
      const dc = new VmDatacenter(mesh, 'onprem', {
        primary: true,
        hosts: VmHosts.existing([
          { name: 's1', address: '10.0.0.1', role: HostRole.SERVER },
          { name: 's2', address: '10.0.0.2', role: HostRole.SERVER },
          { name: 's3', address: '10.0.0.3', role: HostRole.SERVER },
          { name: 'g1', address: '10.0.0.4', role: HostRole.MESH_GATEWAY },
          { name: 'c1', address: '10.0.0.5', role: HostRole.CLIENT, services: [api] },
        ]),
      });
      api.runsIn(dc);
    });
    expect(
      fs.existsSync(
        path.join(
          out.outdir,
          'bundles',
          'lab-onprem',
          's1',
          'files',
          'etc',
          'systemd',
          'system',
          'meshform-config-entries.timer',
        ),
      ),
    ).toBe(true);
    expect(
      fs.existsSync(
        path.join(
          out.outdir,
          'bundles',
          'lab-onprem',
          'g1',
          'files',
          'etc',
          'systemd',
          'system',
          'meshform-config-entries.timer',
        ),
      ),
    ).toBe(false);
  });
});
