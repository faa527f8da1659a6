import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { App } from '../constructs/private/engine';
import {
  GatewayExposure,
  HttpMatch,
  HttpPermission,
  KubernetesCluster,
  KubernetesDatacenter,
  KubernetesDatacenterProps,
  Mesh,
  MeshGatewayServiceType,
  MeshProps,
  Service,
  ServiceProps,
  ServiceProtocol,
  StateBackend,
  VmDatacenter,
  VmNetwork,
} from '../index';
import { awsVmHosts, tempDir, thrownMessage } from './support';

/** A fresh app writing into a fresh directory. */
function freshApp(): { app: App; outdir: string } {
  const outdir = path.join(tempDir(), 'cdktf.out');
  return { app: new App({ outdir, stackTraces: false }), outdir };
}

const primary: KubernetesDatacenterProps = {
  primary: true,
  cluster: KubernetesCluster.fromKubeconfig({ context: 'p' }),
  meshGateway: { address: 'mgw.example.com' },
};
const secondary: KubernetesDatacenterProps = {
  cluster: KubernetesCluster.fromKubeconfig({ context: 's', apiServerUrl: 'https://198.51.100.7' }),
};

function mesh(props: MeshProps = {}): { app: App; mesh: Mesh; outdir: string } {
  const { app, outdir } = freshApp();
  return { app, mesh: new Mesh(app, 'shop', props), outdir };
}

/** THEN helper: synthesis wrote no stack. */
function expectNothingWritten(outdir: string): void {
  const stacks = path.join(outdir, 'stacks');
  expect(fs.existsSync(stacks) ? fs.readdirSync(stacks) : []).toEqual([]);
  expect(fs.existsSync(path.join(outdir, 'manifest.json'))).toBe(false);
  expect(fs.existsSync(path.join(outdir, 'meshform'))).toBe(false);
}

describe('datacenter names', () => {
  it('rejects a duplicate datacenter name', () => {
    // GIVEN
    const { mesh: m } = mesh();
    new KubernetesDatacenter(m, 'east', primary);
    // WHEN / THEN
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'east-again', { ...secondary, name: 'east' }))).toBe(
      '[shop/east-again] datacenter name is already used by shop/east: "east". Fix: give every datacenter of a mesh its own name',
    );
  });

  it.each([
    ['Upper case', 'AWS_East', 'aws-east'],
    ['underscore (valid for Consul, not RFC 1123)', 'aws_east', 'aws-east'],
    ['leading hyphen', '-east', 'east'],
    ['dot', 'us.east', 'us-east'],
    ['too long', 'a'.repeat(64), 'a'.repeat(63)],
  ])('rejects a name that is not both a Consul datacenter name and an RFC 1123 label: %s', (_what, name, example) => {
    const { mesh: m } = mesh();
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'dc', { ...primary, name }))).toBe(
      `[shop/dc] datacenter name is not both a Consul datacenter name and an RFC 1123 label: "${name}". ` +
        `Fix: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (e.g. "${example}")`,
    );
  });

  it('rejects an invalid mesh name', () => {
    const { app } = freshApp();
    expect(thrownMessage(() => new Mesh(app, 'Shop'))).toBe(
      '[Shop] mesh name is not both a Consul datacenter name and an RFC 1123 label: "Shop". ' +
        'Fix: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (e.g. "shop")',
    );
  });
});

describe('primary', () => {
  it('rejects a mesh without a primary, writing nothing', () => {
    // GIVEN
    const { app, mesh: m, outdir } = mesh();
    new KubernetesDatacenter(m, 'a', secondary);
    new KubernetesDatacenter(m, 'b', secondary);
    // WHEN / THEN
    expect(thrownMessage(() => app.synth())).toBe(
      '[shop] no datacenter is primary; exactly one must be: ["a","b"]. Fix: set `primary: true` on exactly one datacenter',
    );
    expectNothingWritten(outdir);
  });

  it('rejects a second primary', () => {
    const { mesh: m } = mesh();
    new KubernetesDatacenter(m, 'a', primary);
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'b', primary))).toBe(
      '[shop] 2 datacenters are primary ("a", "b"); exactly one must be: ["a","b"]. ' +
        'Fix: keep `primary: true` on one datacenter and remove it from the others',
    );
  });

  it('rejects a mesh with no datacenter when the app synthesizes, writing nothing (issue 13)', () => {
    // GIVEN
    const { app, outdir } = freshApp();
    new Mesh(app, 'shop');
    // WHEN / THEN: the mesh has no stack, the app checks it
    expect(thrownMessage(() => app.synth())).toBe(
      '[shop] the mesh has no datacenter: []. Fix: add at least one datacenter, e.g. `new KubernetesDatacenter(mesh, "dc1", { primary: true, ... })`',
    );
    expectNothingWritten(outdir);
  });
});

describe('servers', () => {
  it.each([0, 2, 4, 7, 2.5])('rejects %s servers', (servers) => {
    const { mesh: m } = mesh();
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'a', { ...primary, servers }))).toBe(
      `[shop/a] Consul server count must be one of 1, 3, 5: ${servers}. ` +
        'Fix: use 3 (tolerates one failure) or 5 (tolerates two); 1 only for a throwaway datacenter',
    );
  });
});

describe('gateways', () => {
  it('rejects a multi-datacenter mesh whose primary declares no gateway address, writing nothing', () => {
    // GIVEN
    const { app, mesh: m, outdir } = mesh();
    new KubernetesDatacenter(m, 'a', { primary: true, cluster: KubernetesCluster.fromKubeconfig({ context: 'a' }) });
    new KubernetesDatacenter(m, 'b', secondary);
    new KubernetesDatacenter(m, 'c', secondary);
    // WHEN / THEN
    expect(thrownMessage(() => app.synth())).toBe(
      '[shop/a/MeshGateway] the primary datacenter "a" has no declared mesh gateway address, so "b", "c" cannot reach it ' +
        'without reading its Terraform state: (not set). Fix: set `meshGateway: { address: "<stable DNS name or reserved IP>" }` ' +
        'on the primary (for example a DNS record or a reserved load balancer IP for its mesh gateway)',
    );
    expectNothingWritten(outdir);
  });

  it('lets a single-datacenter mesh omit the gateway address', () => {
    const { app, mesh: m, outdir } = mesh();
    new KubernetesDatacenter(m, 'a', { primary: true, cluster: KubernetesCluster.fromKubeconfig({ context: 'a' }) });
    app.synth();
    expect(fs.readdirSync(path.join(outdir, 'stacks')).sort()).toEqual(['shop-a', 'shop-a-config']);
  });

  it.each(['https://mgw.example.com', 'mgw.example.com:443', 'mgw_example.com', ''])(
    'rejects gateway address %j',
    (address) => {
      const { mesh: m } = mesh();
      expect(thrownMessage(() => new KubernetesDatacenter(m, 'a', { ...primary, meshGateway: { address } }))).toBe(
        `[shop/a/MeshGateway] mesh gateway address is not a DNS name or an IP address: ${JSON.stringify(address)}. ` +
          'Fix: give a host name (e.g. "mgw.dc1.example.com") or an IP address, without a scheme or port (use `port` for the port)',
      );
    },
  );

  it('rejects a NodePort gateway without a node port in range', () => {
    const { mesh: m } = mesh();
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'a', {
            ...primary,
            meshGateway: { serviceType: MeshGatewayServiceType.NODE_PORT, nodePort: 443 },
          }),
      ),
    ).toBe(
      '[shop/a/MeshGateway] a NodePort mesh gateway needs a fixed node port in the Kubernetes NodePort range: 443. ' +
        'Fix: set `meshGateway.nodePort` to a port from 30000 to 32767',
    );
  });

  it('rejects a port out of range and zero replicas', () => {
    const { mesh: m } = mesh();
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'a', { ...primary, meshGateway: { port: 70000 } }))).toBe(
      '[shop/a/MeshGateway] mesh gateway port is not a TCP port: 70000. Fix: use a whole number from 1 to 65535',
    );
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'b', { ...primary, meshGateway: { replicas: 0 } }))).toBe(
      '[shop/b/MeshGateway] mesh gateway replicas must be a whole number from 1 to 100: 0. Fix: use 1 to 100 (2 or more for high availability)',
    );
  });
});

describe('versions', () => {
  it('rejects an unknown Consul version', () => {
    const { app } = freshApp();
    expect(thrownMessage(() => new Mesh(app, 'shop', { consulVersion: '1.99.0' }))).toBe(
      '[shop] Consul version is not known to work with consul-k8s chart 2.0.3: "1.99.0". ' +
        'Fix: use one of "2.0.0", "2.0.1", "2.0.2", "2.0.3" or pick the chart version that supports it',
    );
  });

  it('rejects an unknown chart version', () => {
    const { app } = freshApp();
    expect(thrownMessage(() => new Mesh(app, 'shop', { chartVersion: '1.9.0' }))).toBe(
      '[shop] consul-k8s Helm chart version is not one meshform has been checked against: "1.9.0". Fix: use one of "2.0.3"',
    );
  });

  it('rejects an invalid domain', () => {
    const { app } = freshApp();
    expect(thrownMessage(() => new Mesh(app, 'shop', { domain: 'consul.' }))).toBe(
      '[shop] Consul domain is not a valid DNS name: "consul.". ' +
        'Fix: use dot-separated RFC 1123 labels without a trailing dot (e.g. "consul" or "mesh.example.internal")',
    );
  });
});

describe('kubernetes settings', () => {
  it('requires the API server URL on a secondary', () => {
    const { mesh: m } = mesh();
    new KubernetesDatacenter(m, 'a', primary);
    expect(
      thrownMessage(
        () => new KubernetesDatacenter(m, 'b', { cluster: KubernetesCluster.fromKubeconfig({ context: 'b' }) }),
      ),
    ).toBe(
      '[shop/b] secondary datacenter "b" needs the URL of its Kubernetes API server for the ACL auth method the primary\'s ' +
        'servers call: (not set). Fix: set `apiServerUrl` in `KubernetesCluster.fromKubeconfig({ ... })` to the API server URL as reachable from the primary datacenter ' +
        '(`kubectl config view -o jsonpath="{.clusters[0].cluster.server}"`)',
    );
  });

  it('rejects an API server URL that is not https', () => {
    const { mesh: m } = mesh();
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'b', {
            cluster: KubernetesCluster.fromKubeconfig({ context: 'b', apiServerUrl: 'http://10.0.0.1' }),
          }),
      ),
    ).toBe(
      '[shop/b] apiServerUrl is not an https:// URL: "http://10.0.0.1". Fix: give an absolute https:// URL, e.g. "https://203.0.113.10:6443"',
    );
  });

  it('rejects an empty kubeconfig context and a bad namespace', () => {
    const { mesh: m } = mesh();
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'a', { ...primary, cluster: KubernetesCluster.fromKubeconfig({ context: ' ' }) }),
      ),
    ).toBe('[shop/a] kubeconfig context must not be empty: "". Fix: set kubeconfig context');
    expect(thrownMessage(() => new KubernetesDatacenter(m, 'b', { ...primary, namespace: 'Consul' }))).toBe(
      '[shop/b] namespace is not an RFC 1123 label: "Consul". ' +
        'Fix: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit',
    );
  });

  it('refuses a mesh inside a stack', async () => {
    const { app } = freshApp();
    const { TerraformStack } = await import('../constructs/private/engine');
    const stack = new TerraformStack(app, 'mine');
    expect(thrownMessage(() => new Mesh(stack, 'shop'))).toBe(
      '[mine/shop] a Mesh must not be created inside a TerraformStack: meshform creates one stack per datacenter itself: "mine/shop". ' +
        'Fix: create the Mesh directly under the App: `new Mesh(app, "shop", { ... })`',
    );
  });

  it('refuses a second stack with the same name', () => {
    const { app } = freshApp();
    new Mesh(app, 'shop-a');
    const m = new Mesh(app, 'shop');
    new KubernetesDatacenter(m, 'a-b', primary);
    const other = new Mesh(app, 'shop-a-b-mesh', { name: 'shop-a' });
    expect(thrownMessage(() => new KubernetesDatacenter(other, 'b', primary))).toBe(
      '[shop-a-b-mesh/b] another stack of this app already has the name this datacenter needs: "shop-a-b". ' +
        'Fix: rename the mesh or the datacenter so that "<mesh>-<datacenter>" is unique in the app',
    );
  });
});

describe('backends', () => {
  it('rejects an absolute local state directory', () => {
    const { app } = freshApp();
    expect(
      thrownMessage(() => new Mesh(app, 'shop', { backend: StateBackend.local({ directory: '/var/state' }) })),
    ).toBe(
      '[shop] state backend directory is not valid: "/var/state". ' +
        'Fix: give a directory relative to the project root, so that the output is the same on every machine',
    );
  });

  it('rejects a malformed S3 bucket and region', () => {
    const { app } = freshApp();
    expect(
      thrownMessage(
        () => new Mesh(app, 'a', { backend: StateBackend.s3({ bucket: 'My_Bucket', region: 'eu-west-1' }) }),
      ),
    ).toBe(
      '[a] state backend bucket is not valid: "My_Bucket". Fix: give an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens',
    );
    expect(
      thrownMessage(() => new Mesh(app, 'b', { backend: StateBackend.s3({ bucket: 'state', region: 'europe' }) })),
    ).toBe('[b] state backend region is not valid: "europe". Fix: give an AWS region such as "eu-west-1"');
  });

  it('rejects an empty Terraform Cloud organization', () => {
    const { app } = freshApp();
    expect(
      thrownMessage(() => new Mesh(app, 'a', { backend: StateBackend.terraformCloud({ organization: '' }) })),
    ).toBe('[a] terraformCloud organization must not be empty: "". Fix: set terraformCloud organization');
  });
});

/*
 * Issue 13, point 2: every invalid topology is refused at synth with the construct path, the value and the
 * fix, and nothing is written. Topology-level refusals synthesize and check the output directory; refusals
 * of a single construct's props are thrown when the construct is declared (nothing can be written then).
 */
describe('invalid topologies (issue 13)', () => {
  /** GIVEN helper: HTTP service `api` running in `east`, with overridable props. */
  function api(m: Mesh, east: KubernetesDatacenter, props: Partial<ServiceProps> = {}): Service {
    return new Service(m, 'api', { port: 8080, protocol: ServiceProtocol.HTTP, datacenters: [east], ...props });
  }

  /**
   * WHEN helper: `build` declares into mesh `shop` with Kubernetes primary `east`, then the app synthesizes;
   * THEN nothing is written. Gives the error's message.
   */
  function refused(build: (m: Mesh, east: KubernetesDatacenter) => void): string {
    const { app, mesh: m, outdir } = mesh();
    const east = new KubernetesDatacenter(m, 'east', primary);
    const message = thrownMessage(() => {
      build(m, east);
      app.synth();
    });
    expectNothingWritten(outdir);
    return message;
  }

  const NUMBERS = [
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a negative number', -3],
    ['a fraction', 1.5],
  ] as const;

  describe.each(NUMBERS)('%s where a whole number is expected', (_what, n) => {
    it('refuses it as a count (server count, gateway replicas, EKS nodes, instances per service)', () => {
      const { mesh: m } = mesh();
      expect(thrownMessage(() => new KubernetesDatacenter(m, 'a', { ...primary, servers: n }))).toBe(
        `[shop/a] Consul server count must be one of 1, 3, 5: ${n}. ` +
          'Fix: use 3 (tolerates one failure) or 5 (tolerates two); 1 only for a throwaway datacenter',
      );
      expect(
        thrownMessage(
          () =>
            new KubernetesDatacenter(m, 'b', { ...primary, meshGateway: { address: 'mgw.example.com', replicas: n } }),
        ),
      ).toBe(
        `[shop/b/MeshGateway] mesh gateway replicas must be a whole number from 1 to 100: ${n}. Fix: use 1 to 100 (2 or more for high availability)`,
      );
      expect(
        thrownMessage(
          () =>
            new KubernetesDatacenter(m, 'c', {
              primary: true,
              cluster: KubernetesCluster.eks({ region: 'eu-west-1', vpcCidr: '10.1.0.0/16', nodes: n }),
            }),
        ),
      ).toBe(`[shop/c] nodes must be a whole number from 1 to 450: ${n}. Fix: use a whole number from 1 to 450`);
      expect(
        thrownMessage(() => new VmDatacenter(m, 'd', { primary: true, hosts: awsVmHosts({ instancesPerService: n }) })),
      ).toBe(
        `[shop/d] instancesPerService must be a whole number from 1 to 100: ${n}. Fix: use a whole number from 1 to 100`,
      );
    });

    it('refuses it as a port (service, gateway, upstream local bind port)', () => {
      expect(refused((m) => new Service(m, 'web', { port: n }))).toBe(
        `[shop/web] service "web" has no valid port: ${n}. Fix: set \`port\` to the port the service listens on (1 to 65535)`,
      );
      expect(refused((m) => new KubernetesDatacenter(m, 'b', { ...secondary, meshGateway: { port: n } }))).toBe(
        `[shop/b/MeshGateway] mesh gateway port is not a TCP port: ${n}. Fix: use a whole number from 1 to 65535`,
      );
      expect(
        refused((m, east) =>
          api(m, east).addUpstream(new Service(m, 'db', { port: 5432, datacenters: [east] }), { localBindPort: n }),
        ),
      ).toBe(
        `[shop/api] local bind port of upstream db is not a TCP port: ${n}. Fix: use a whole number from 1 to 65535`,
      );
    });

    it('refuses it as a timeout (connect, request, route, outlier interval)', () => {
      expect(refused((m, east) => api(m, east, { connectTimeoutMs: n }))).toBe(
        `[shop/api] connectTimeoutMs must be a whole number from 1 to 2147483647: ${n}. Fix: use a whole number from 1 to 2147483647`,
      );
      expect(refused((m, east) => api(m, east, { requestTimeoutMs: n }))).toBe(
        `[shop/api] requestTimeoutMs must be a whole number from 1 to 2147483647: ${n}. Fix: use a whole number from 1 to 2147483647`,
      );
      expect(
        refused((m, east) =>
          api(m, east).addRoute({ match: { pathPrefix: '/x' }, destination: { requestTimeoutMs: n } }),
        ),
      ).toBe(
        `[shop/api] requestTimeoutMs of route 1 of "api" must be a whole number from 1 to 2147483647: ${n}. Fix: use a whole number from 1 to 2147483647`,
      );
      expect(
        refused((m, east) =>
          api(m, east, { circuitBreaker: { outlierDetection: { consecutive5xx: 5, intervalSeconds: n } } }),
        ),
      ).toBe(
        `[shop/api] circuitBreaker.outlierDetection.intervalSeconds must be a whole number from 1 to 2147483: ${n}. Fix: use a whole number from 1 to 2147483`,
      );
    });

    it('refuses it as a percentage (outlier ejection)', () => {
      expect(
        refused((m, east) =>
          api(m, east, { circuitBreaker: { outlierDetection: { consecutive5xx: 5, maxEjectionPercent: n } } }),
        ),
      ).toBe(
        `[shop/api] circuitBreaker.outlierDetection.maxEjectionPercent must be a whole number from 0 to 100: ${n}. Fix: use a percentage from 0 to 100`,
      );
    });
  });

  it.each([NaN, Infinity, -3, 0, 101])('refuses a traffic split weight of %s', (weight) => {
    expect(
      refused((m, east) =>
        api(m, east, {
          subsets: [
            { name: 'v1', filter: 'Service.Meta.version == v1' },
            { name: 'v2', filter: 'Service.Meta.version == v2' },
          ],
        }).splitTraffic([
          { subset: 'v1', weight },
          { subset: 'v2', weight: 100 - weight },
        ]),
      ),
    ).toBe(
      `[shop/api] a traffic split of "api" has a weight outside (0, 100]: ${weight}. Fix: give each leg a weight above 0 and at most 100`,
    );
  });

  it('refuses empty and too many availability zones, and a zone of another region', () => {
    const { mesh: m } = mesh();
    const zones = (availabilityZones: string[]) =>
      awsVmHosts({ network: VmNetwork.newVpc({ cidr: '10.20.0.0/16', availabilityZones }) });
    expect(thrownMessage(() => new VmDatacenter(m, 'a', { primary: true, hosts: zones([]) }))).toBe(
      '[shop/a] availability zones are fewer than 1: []. Fix: list 1 to 8 distinct zones of eu-west-1, e.g. ["eu-west-1a", "eu-west-1b"]',
    );
    const nine = [...'abcdefghi'].map((z) => `eu-west-1${z}`);
    expect(thrownMessage(() => new VmDatacenter(m, 'b', { primary: true, hosts: zones(nine) }))).toBe(
      `[shop/b] availability zones are more than the 8 a VPC is split into: ${JSON.stringify(nine)}. ` +
        'Fix: list 1 to 8 distinct zones of eu-west-1, e.g. ["eu-west-1a", "eu-west-1b"]',
    );
    expect(thrownMessage(() => new VmDatacenter(m, 'c', { primary: true, hosts: zones(['us-east-1a']) }))).toBe(
      '[shop/c] availability zones hold a name that is not a zone of eu-west-1: "us-east-1a". ' +
        'Fix: list 1 to 8 distinct zones of eu-west-1, e.g. ["eu-west-1a", "eu-west-1b"]',
    );
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'd', {
            primary: true,
            cluster: KubernetesCluster.eks({
              region: 'eu-west-1',
              vpcCidr: '10.1.0.0/16',
              availabilityZones: ['eu-west-1a'],
            }),
          }),
      ),
    ).toBe(
      '[shop/d] availability zones are fewer than 2 (EKS needs subnets in two zones): ["eu-west-1a"]. ' +
        'Fix: list 2 to 8 distinct zones of eu-west-1, e.g. ["eu-west-1a", "eu-west-1b"]',
    );
  });

  // Filter grammar: hashicorp/go-bexpr (grammar/grammar.peg). Consul refuses a subset whose filter does not
  // parse (hashicorp/consul agent/structs/config_entry_discoverychain.go, bexpr.CreateEvaluator), as does
  // consul-k8s v2.0.3 (control-plane/api/v1alpha1/serviceresolver_types.go); selectors are the fields of the
  // CheckServiceNode a subset filters (agent/xds endpoints.go, filterSubsetEndpoints).
  it.each([
    ['Service.Meta.version ==', 'it ends too early'],
    ['Foo.Bar == 1', 'selector "Foo" does not start with Node, Service, Checks'],
    ['', 'it is empty'],
  ])('refuses a subset filter Consul would reject: %j', (filter, why) => {
    expect(refused((m, east) => api(m, east, { subsets: [{ name: 'v1', filter }] }))).toBe(
      `[shop/api] the filter of subset "v1" of "api" is not a valid Consul filter expression (${why}): ${JSON.stringify(filter)}. ` +
        'Fix: write <selector> <operator> <value>, e.g. `Service.Meta.version == v2` or `Service.Meta.version == "1.8"`, ' +
        'joined with and / or / not; selectors start with Service, Node or Checks',
    );
  });

  it('refuses a subset name Consul refuses and a default subset that does not exist', () => {
    expect(
      refused((m, east) => api(m, east, { subsets: [{ name: 'V_1', filter: 'Service.Meta.version == v1' }] })),
    ).toBe(
      '[shop/api] subset of "api" has a name Consul refuses (subset names are DNS labels in SNI names): "V_1". ' +
        'Fix: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (e.g. "v2")',
    );
    expect(refused((m, east) => api(m, east, { defaultSubset: 'nope' }))).toBe(
      '[shop/api] service "api" has no subset of this name: "nope". Fix: define it with addSubset({ name, filter })',
    );
  });

  describe.each([
    [
      'a route',
      'route 1 of "api"',
      (match: HttpMatch) => (m: Mesh, east: KubernetesDatacenter) => api(m, east).addRoute({ match, destination: {} }),
    ],
    [
      'an intention permission',
      'permission 1 of the intention from "web"',
      (match: HttpMatch) => (m: Mesh, east: KubernetesDatacenter) =>
        api(m, east).allowFrom(new Service(m, 'web', { port: 9000 }), { permissions: [HttpPermission.allow(match)] }),
    ],
  ])('HTTP matches of %s', (_what, where, declare) => {
    const match = (m: HttpMatch) => refused(declare(m));

    it('refuses two path kinds', () => {
      expect(match({ pathPrefix: '/x', pathExact: '/y' })).toBe(
        `[shop/api] ${where} sets pathExact and pathPrefix: a match takes at most one path kind: {"pathExact":"/y","pathPrefix":"/x"}. ` +
          'Fix: keep one of pathExact, pathPrefix or pathRegex',
      );
    });

    // RE2 syntax (github.com/google/re2/wiki/Syntax): Envoy matches path regexes with RE2
    it.each([
      ['(', 'Unterminated group'],
      ['/(?=x)', 'lookahead and lookbehind are not supported by RE2'],
    ])('refuses the path regex %j', (pathRegex, why) => {
      expect(match({ pathRegex })).toBe(
        `[shop/api] pathRegex of ${where} is not a valid RE2 regular expression (${why}): ${JSON.stringify(pathRegex)}. ` +
          'Fix: write an RE2 expression (no lookaround, no backreferences), e.g. "^/api/v[0-9]+/"',
      );
    });

    it.each(['FETCH', 'get'])('refuses the unknown method %j', (method) => {
      expect(match({ methods: [method] })).toBe(
        `[shop/api] ${where} has an unknown HTTP method: "${method}". ` +
          'Fix: use GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE (in upper case)',
      );
    });

    // found by the fuzz test: the primary's config entries render at declaration, before the mesh is validated
    it('refuses a missing match instead of a TypeError', () => {
      expect(match(undefined as unknown as HttpMatch)).toBe(
        `[shop/api] the match of ${where} is missing or not of the expected kind (got nothing): (not set). ` +
          'Fix: give an HttpMatch, e.g. `{ pathPrefix: "/api/" }`',
      );
    });

    it('refuses a header match with no condition', () => {
      expect(match({ headers: [{ name: 'x' }] })).toBe(
        `[shop/api] ${where} has a match of header "x" with no condition: {"name":"x"}. ` +
          'Fix: set exactly one of exact, prefix, suffix, regex (not empty) or present: true',
      );
    });
  });

  it.each([99, 600, 1.5, NaN])('refuses retry status code %s (HTTP status codes are 100 to 599)', (code) => {
    expect(refused((m, east) => api(m, east, { retries: { attempts: 2, onStatusCodes: [code] } }))).toBe(
      `[shop/api] retries.onStatusCodes holds a value that is not an HTTP status code: ${code}. Fix: use whole numbers from 100 to 599, e.g. 503`,
    );
  });

  it.each([
    ['10.0.0.0/33', 'is not an IPv4 CIDR block: "10.0.0.0/33". Fix: write it as a.b.c.d/prefix, e.g. "10.20.0.0/16"'],
    ['999.1.1.1/8', 'is not an IPv4 CIDR block: "999.1.1.1/8". Fix: write it as a.b.c.d/prefix, e.g. "10.20.0.0/16"'],
    ['', 'is not an IPv4 CIDR block: "". Fix: write it as a.b.c.d/prefix, e.g. "10.20.0.0/16"'],
    ['10.0.0.1/8', 'has host bits set: "10.0.0.1/8". Fix: use the network address "10.0.0.0/8"'],
  ])('refuses %j in an allow-list (gateway sources, EKS API access)', (cidr, problem) => {
    const { mesh: m } = mesh();
    const exposure = GatewayExposure.networkLoadBalancer({ internetFacing: true, allowedCidrs: [cidr] });
    expect(
      thrownMessage(
        () =>
          new VmDatacenter(m, 'a', {
            primary: true,
            meshGateway: { address: 'mgw.example.com' },
            hosts: awsVmHosts({ gatewayExposure: exposure }),
          }),
      ),
    ).toBe(`[shop/a] allowed CIDR ${problem}`);
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'b', {
            primary: true,
            cluster: KubernetesCluster.eks({
              region: 'eu-west-1',
              vpcCidr: '10.1.0.0/16',
              apiPublicAccessCidrs: [cidr],
            }),
          }),
      ),
    ).toBe(`[shop/b] apiPublicAccessCidrs entry ${problem}`);
  });

  it('refuses empty instance types', () => {
    const { mesh: m } = mesh();
    expect(
      thrownMessage(() => new VmDatacenter(m, 'a', { primary: true, hosts: awsVmHosts({ serverInstanceType: '' }) })),
    ).toBe('[shop/a] serverInstanceType is not an EC2 instance type: "". Fix: give a type such as "m6i.large"');
    expect(
      thrownMessage(
        () =>
          new KubernetesDatacenter(m, 'b', {
            primary: true,
            cluster: KubernetesCluster.eks({ region: 'eu-west-1', vpcCidr: '10.1.0.0/16', nodeInstanceType: '' }),
          }),
      ),
    ).toBe('[shop/b] nodeInstanceType is not an EC2 instance type: "". Fix: give a type such as "m6i.large"');
  });

  // Annotation keys are qualified names: kubernetes/apimachinery pkg/api/validation/objectmeta.go ValidateAnnotations
  it('refuses an annotation with an empty key', () => {
    expect(
      refused(
        (m) => new KubernetesDatacenter(m, 'a', { ...secondary, meshGateway: { serviceAnnotations: { '': 'x' } } }),
      ),
    ).toBe(
      '[shop/a/MeshGateway] mesh gateway service annotation key is not a Kubernetes qualified name: "". ' +
        'Fix: use [prefix/]name: an optional DNS subdomain prefix, and a name of 1 to 63 letters, digits, "-", "_" and "." ' +
        'starting and ending with a letter or digit (e.g. "service.beta.kubernetes.io/aws-load-balancer-type")',
    );
  });

  it("refuses a service placed in another mesh's datacenter", () => {
    const { app, mesh: m } = mesh();
    const east = new KubernetesDatacenter(m, 'east', primary);
    const other = new Mesh(app, 'other');
    new KubernetesDatacenter(other, 'west', primary);
    expect(thrownMessage(() => new Service(other, 'web', { port: 80, datacenters: [east] }))).toBe(
      '[other/web] service "web" cannot run in datacenter "east": it belongs to mesh "shop": "east". ' +
        'Fix: use a datacenter of the service\'s own mesh ("west"), or declare the service in mesh "shop"',
    );
  });

  it("refuses a typo's undefined (mesh.datacenter('typo')) instead of a TypeError", () => {
    const { mesh: m } = mesh();
    new KubernetesDatacenter(m, 'east', primary);
    const web = new Service(m, 'web', { port: 80 });
    const message =
      '[shop/web] a datacenter "web" runs in is not a datacenter (got nothing; `mesh.datacenter(name)` gives undefined ' +
      'for a name the mesh does not have): (not set). Fix: pass one of the mesh\'s datacenters: "east"';
    expect(thrownMessage(() => web.runsIn(m.datacenter('typo')!))).toBe(message);
    expect(thrownMessage(() => new Service(m, 'web2', { port: 80, datacenters: [m.datacenter('typo')!] }))).toBe(
      message.replace(/web/g, 'web2'),
    );
  });

  it('refuses duplicate and empty construct ids with a meshform error, not a raw constructs error', () => {
    const { app, mesh: m } = mesh();
    new KubernetesDatacenter(m, 'east', primary);
    new Service(m, 'web', { port: 80 });
    expect(thrownMessage(() => new Service(m, 'web', { port: 81, name: 'web2' }))).toBe(
      '[shop/web] shop already has a construct with this id (shop/web): "web". Fix: give every construct of one scope its own id',
    );
    expect(thrownMessage(() => new Mesh(app, 'shop', { name: 'shop2' }))).toBe(
      '[shop] the app already has a construct with this id (shop): "shop". Fix: give every construct of one scope its own id',
    );
    expect(thrownMessage(() => new Service(m, '', { port: 81 }))).toBe(
      '[shop] the id of a construct created in shop must be a non-empty string: "". Fix: give the construct an id, e.g. "shop" or "aws-east"',
    );
    expect(thrownMessage(() => new Mesh(app, ''))).toBe(
      '[(the app)] the id of a construct created in the app must be a non-empty string: "". Fix: give the construct an id, e.g. "shop" or "aws-east"',
    );
  });
});
